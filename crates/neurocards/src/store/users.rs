//! Users and the credit ledger. Every balance change goes through [`apply_credit`], which
//! writes the ledger row and the cached balance in the caller's transaction (invariant 1).

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{JobId, Lang, LedgerKind, OrderId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Option<String>,
    pub language: String,
    pub credits: i64,
    pub created_at: Millis,
    /// Since when Telegram says the user blocked the bot; `None` while they can be reached.
    pub unreachable_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub user_id: UserId,
    pub delta: i64,
    pub kind: LedgerKind,
    pub reason: Option<String>,
    pub order_id: Option<OrderId>,
    pub job_id: Option<JobId>,
    pub payment_id: Option<String>,
    pub created_at: Millis,
}

/// What a ledger row points at; at most the fields its kind needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct LedgerRefs<'a> {
    pub order_id: Option<OrderId>,
    pub job_id: Option<JobId>,
    pub payment_id: Option<&'a str>,
}

impl Store {
    /// Registers a Telegram user, or refreshes the name and language of a known one (the
    /// language only while they have not chosen one with `/language`). A new
    /// user receives `free_credits` as a ledger row. Returns the user and whether they are new.
    pub async fn register_user(
        &self,
        id: UserId,
        username: Option<&str>,
        language: &str,
        free_credits: i64,
    ) -> Result<(User, bool), StoreError> {
        const CONTEXT: &str = "registering a user";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, language, credits, created_at, updated_at)
             VALUES ($1, $2, $3, 0, $4, $4)
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .bind(id.0)
        .bind(username)
        .bind(language)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context(CONTEXT)?
        .is_some();
        if inserted && free_credits > 0 {
            let refs = LedgerRefs::default();
            let reason = Some("free credits for a new user");
            apply_credit(
                &mut tx,
                id,
                free_credits,
                LedgerKind::Grant,
                reason,
                refs,
                now,
            )
            .await?;
        } else if !inserted {
            sqlx::query(
                "UPDATE users SET username = $2,
                                  language = CASE WHEN language_chosen = 1 THEN language ELSE $3 END,
                                  updated_at = $4
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(username)
            .bind(language)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        }
        let user = fetch_user(&mut tx, id)
            .await?
            .ok_or(StoreError::UnknownUser(id))?;
        tx.commit().await.context(CONTEXT)?;
        Ok((user, inserted))
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool.acquire().await.context("reading a user")?;
        fetch_user(&mut conn, id).await
    }

    /// `/language`: the user's own choice, which Telegram's language no longer replaces.
    pub async fn choose_language(&self, id: UserId, language: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET language = $2, language_chosen = 1, updated_at = $3 WHERE id = $1",
        )
        .bind(id.0)
        .bind(language)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("choosing a language")?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::UnknownUser(id));
        }
        Ok(())
    }

    /// The language to write to a user in (an admin, an inviter) outside their own update:
    /// the one they use with the bot, Russian for someone who never wrote to it.
    pub async fn language_of(&self, id: UserId) -> Lang {
        match self.user(id).await {
            Ok(Some(user)) => Lang::from_code(&user.language),
            _ => Lang::Ru,
        }
    }

    pub async fn balance(&self, id: UserId) -> Result<i64, StoreError> {
        self.user(id)
            .await?
            .map(|user| user.credits)
            .ok_or(StoreError::UnknownUser(id))
    }

    /// Gives (`delta` > 0) or takes back (`delta` < 0) credits, as a `grant` ledger row.
    /// Taking more than the balance is refused and changes nothing. Returns the new balance.
    pub async fn grant(
        &self,
        user: UserId,
        delta: i64,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        const CONTEXT: &str = "granting credits";
        if delta == 0 {
            return self.balance(user).await;
        }
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let refs = LedgerRefs::default();
        let balance =
            apply_credit(&mut tx, user, delta, LedgerKind::Grant, reason, refs, now).await?;
        tx.commit().await.context(CONTEXT)?;
        Ok(balance)
    }

    /// The user's newest ledger rows first.
    pub async fn ledger(&self, user: UserId, limit: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, delta, kind, reason, order_id, job_id, payment_id, created_at
             FROM ledger WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(user.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading the ledger")?;
        rows.iter().map(ledger_entry_from_row).collect()
    }
}

async fn fetch_user(
    conn: &mut sqlx::AnyConnection,
    id: UserId,
) -> Result<Option<User>, StoreError> {
    let row =
        sqlx::query("SELECT id, username, language, credits, created_at, unreachable_at FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .context("reading a user")?;
    row.map(|row| {
        Ok(User {
            id: UserId(row.try_get("id").context("reading a user")?),
            username: row.try_get("username").context("reading a user")?,
            language: row.try_get("language").context("reading a user")?,
            credits: row.try_get("credits").context("reading a user")?,
            created_at: row.try_get("created_at").context("reading a user")?,
            unreachable_at: row.try_get("unreachable_at").context("reading a user")?,
        })
    })
    .transpose()
}

pub(crate) fn ledger_entry_from_row(row: &AnyRow) -> Result<LedgerEntry, StoreError> {
    const CONTEXT: &str = "reading the ledger";
    let kind: String = row.try_get("kind").context(CONTEXT)?;
    Ok(LedgerEntry {
        id: row.try_get("id").context(CONTEXT)?,
        user_id: UserId(row.try_get("user_id").context(CONTEXT)?),
        delta: row.try_get("delta").context(CONTEXT)?,
        kind: kind
            .parse()
            .map_err(|e: crate::domain::ledger::UnknownLedgerKind| {
                StoreError::Corrupt(e.to_string())
            })?,
        reason: row.try_get("reason").context(CONTEXT)?,
        order_id: row
            .try_get::<Option<i64>, _>("order_id")
            .context(CONTEXT)?
            .map(OrderId),
        job_id: row
            .try_get::<Option<i64>, _>("job_id")
            .context(CONTEXT)?
            .map(JobId),
        payment_id: row.try_get("payment_id").context(CONTEXT)?,
        created_at: row.try_get("created_at").context(CONTEXT)?,
    })
}

/// Moves `delta` credits for `user` inside `tx`: one ledger row plus the cached balance.
/// Refuses (writing nothing) when the balance would go below zero. Returns the new balance.
pub(crate) async fn apply_credit(
    tx: &mut Transaction<'static, Any>,
    user: UserId,
    delta: i64,
    kind: LedgerKind,
    reason: Option<&str>,
    refs: LedgerRefs<'_>,
    now: Millis,
) -> Result<i64, StoreError> {
    const CONTEXT: &str = "moving credits";
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET credits = credits + $2, updated_at = $3
         WHERE id = $1 AND credits + $2 >= 0
         RETURNING credits",
    )
    .bind(user.0)
    .bind(delta)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .context(CONTEXT)?;
    let Some(balance) = balance else {
        let current = fetch_user(tx, user)
            .await?
            .ok_or(StoreError::UnknownUser(user))?;
        return Err(StoreError::InsufficientCredits {
            user,
            balance: current.credits,
            needed: -delta,
        });
    };
    sqlx::query(
        "INSERT INTO ledger (user_id, delta, kind, reason, order_id, job_id, payment_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(user.0)
    .bind(delta)
    .bind(kind.as_str())
    .bind(reason)
    .bind(refs.order_id.map(|id| id.0))
    .bind(refs.job_id.map(|id| id.0))
    .bind(refs.payment_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .context(CONTEXT)?;
    Ok(balance)
}
