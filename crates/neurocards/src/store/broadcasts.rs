//! Broadcasts: an admin's message to a segment of the users, sent by one worker at a time,
//! each recipient claimed before the send, so that a restart resumes without messaging
//! anyone twice (a crash between a claim and its send skips that one user instead).

use std::time::Duration;

use super::{ResultExt, Store, StoreError};
use crate::clock::millis_of;
use crate::domain::UserId;

/// Who a broadcast goes to (users who blocked the bot are always left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    All,
    /// Users who paid at least once.
    Paid,
    /// Users who wrote to the bot in the last 7 days.
    Active7d,
    /// Users with credits left.
    WithBalance,
}

impl Segment {
    pub fn parse(text: &str) -> Option<Segment> {
        match text {
            "all" => Some(Segment::All),
            "paid" => Some(Segment::Paid),
            "active-7d" => Some(Segment::Active7d),
            "with-balance" => Some(Segment::WithBalance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::All => "all",
            Segment::Paid => "paid",
            Segment::Active7d => "active-7d",
            Segment::WithBalance => "with-balance",
        }
    }

    /// The condition on `u` (users) and `$2` (now minus 7 days).
    fn condition(self) -> &'static str {
        match self {
            Segment::All => "1 = 1",
            Segment::Paid => "EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id)",
            Segment::Active7d => "u.updated_at >= $2",
            Segment::WithBalance => "u.credits > 0",
        }
    }
}

/// A broadcast being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: i64,
    pub text: String,
    /// An inline button with a link: `(label, URL)`.
    pub button: Option<(String, String)>,
}

/// How a broadcast stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastStatus {
    pub state: String,
    pub segment: String,
    pub recipients: i64,
    pub sent: i64,
    pub blocked: i64,
    pub failed: i64,
    /// Not claimed yet.
    pub pending: i64,
}

impl Store {
    /// A draft, to be tried on the admins and then started.
    pub async fn create_broadcast(
        &self,
        text: &str,
        button: Option<(&str, &str)>,
        segment: Segment,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO broadcasts (text, button_text, button_url, segment, state, created_at)
             VALUES ($1, $2, $3, $4, 'draft', $5) RETURNING id",
        )
        .bind(text)
        .bind(button.map(|(label, _)| label))
        .bind(button.map(|(_, url)| url))
        .bind(segment.as_str())
        .bind(self.now())
        .fetch_one(&self.pool)
        .await
        .context("creating a broadcast")
    }

    pub async fn broadcast(&self, id: i64) -> Result<Option<Broadcast>, StoreError> {
        let row: Option<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, text, button_text, button_url FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a broadcast")?;
        Ok(row.map(|(id, text, label, url)| Broadcast {
            id,
            text,
            button: label.zip(url),
        }))
    }

    /// Fixes the recipients of a draft and starts it; `None` when it is not a draft.
    pub async fn start_broadcast(&self, id: i64) -> Result<Option<i64>, StoreError> {
        const CONTEXT: &str = "starting a broadcast";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let segment: Option<String> = sqlx::query_scalar(
            "UPDATE broadcasts SET state = 'sending', started_at = $2
             WHERE id = $1 AND state = 'draft' RETURNING segment",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context(CONTEXT)?;
        let Some(segment) = segment.as_deref().and_then(Segment::parse) else {
            return Ok(None);
        };
        let insert = format!(
            "INSERT INTO broadcast_recipients (broadcast_id, user_id)
             SELECT $1, u.id FROM users u WHERE u.unreachable_at IS NULL AND {}",
            segment.condition()
        );
        // The condition is one of four constants: nothing from input.
        let recipients = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(id)
            .bind(now.saturating_sub(7 * 24 * 3_600_000))
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?
            .rows_affected();
        tx.commit().await.context(CONTEXT)?;
        Ok(Some(i64::try_from(recipients).unwrap_or(i64::MAX)))
    }

    /// Stops a broadcast; false when it was not a draft or being sent.
    pub async fn cancel_broadcast(&self, id: i64) -> Result<bool, StoreError> {
        let cancelled = sqlx::query(
            "UPDATE broadcasts SET state = 'cancelled', finished_at = $2
             WHERE id = $1 AND state IN ('draft', 'sending')",
        )
        .bind(id)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("cancelling a broadcast")?
        .rows_affected();
        Ok(cancelled == 1)
    }

    pub async fn broadcast_status(&self, id: i64) -> Result<Option<BroadcastStatus>, StoreError> {
        type Row = (String, String, i64, i64, i64, i64, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT b.state, b.segment,
                    (SELECT COUNT(*) FROM broadcast_recipients r WHERE r.broadcast_id = b.id),
                    (SELECT COUNT(*) FROM broadcast_recipients r
                     WHERE r.broadcast_id = b.id AND r.outcome = 'sent'),
                    (SELECT COUNT(*) FROM broadcast_recipients r
                     WHERE r.broadcast_id = b.id AND r.outcome = 'blocked'),
                    (SELECT COUNT(*) FROM broadcast_recipients r
                     WHERE r.broadcast_id = b.id AND r.outcome = 'failed'),
                    (SELECT COUNT(*) FROM broadcast_recipients r
                     WHERE r.broadcast_id = b.id AND r.claimed_at IS NULL)
             FROM broadcasts b WHERE b.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a broadcast's progress")?;
        Ok(row.map(
            |(state, segment, recipients, sent, blocked, failed, pending)| BroadcastStatus {
                state,
                segment,
                recipients,
                sent,
                blocked,
                failed,
                pending,
            },
        ))
    }

    /// The broadcast `holder` sends now: one being sent that nobody else holds (or whose
    /// holder went quiet for `stale_after`), taken for `holder`.
    pub async fn take_broadcast(
        &self,
        holder: &str,
        stale_after: Duration,
    ) -> Result<Option<Broadcast>, StoreError> {
        const CONTEXT: &str = "taking a broadcast to send";
        let now = self.now();
        let stale = now.saturating_sub(millis_of(stale_after));
        let candidate: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM broadcasts
             WHERE state = 'sending' AND (holder IS NULL OR holder = $1 OR held_at < $2)
             ORDER BY id LIMIT 1",
        )
        .bind(holder)
        .bind(stale)
        .fetch_optional(&self.pool)
        .await
        .context(CONTEXT)?;
        let Some(id) = candidate else {
            return Ok(None);
        };
        let taken = sqlx::query(
            "UPDATE broadcasts SET holder = $2, held_at = $3
             WHERE id = $1 AND state = 'sending' AND (holder IS NULL OR holder = $2 OR held_at < $4)",
        )
        .bind(id)
        .bind(holder)
        .bind(now)
        .bind(stale)
        .execute(&self.pool)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        self.broadcast(id).await
    }

    /// The next `limit` recipients, claimed before they are sent to; empty once everyone
    /// was (the broadcast is then done) or when the broadcast stopped being `holder`'s.
    pub async fn claim_recipients(
        &self,
        id: i64,
        holder: &str,
        limit: i64,
    ) -> Result<Vec<UserId>, StoreError> {
        const CONTEXT: &str = "claiming broadcast recipients";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let ours = sqlx::query(
            "UPDATE broadcasts SET held_at = $3
             WHERE id = $1 AND state = 'sending' AND holder = $2",
        )
        .bind(id)
        .bind(holder)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if ours == 0 {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM broadcast_recipients
             WHERE broadcast_id = $1 AND claimed_at IS NULL ORDER BY user_id LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context(CONTEXT)?;
        for user in &users {
            sqlx::query(
                "UPDATE broadcast_recipients SET claimed_at = $3
                 WHERE broadcast_id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        }
        if users.is_empty() {
            sqlx::query(
                "UPDATE broadcasts SET state = 'done', finished_at = $2, holder = NULL
                 WHERE id = $1 AND state = 'sending'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        }
        tx.commit().await.context(CONTEXT)?;
        Ok(users.into_iter().map(UserId).collect())
    }

    /// How the send to one recipient ended: `sent`, `blocked` or `failed`.
    pub async fn record_recipient(
        &self,
        id: i64,
        user: UserId,
        outcome: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE broadcast_recipients SET outcome = $3 WHERE broadcast_id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user.0)
        .bind(outcome)
        .execute(&self.pool)
        .await
        .context("recording a broadcast send")?;
        Ok(())
    }
}
