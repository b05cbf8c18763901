//! Promo codes: created by an admin, redeemed by users at most once each, never beyond the
//! code's uses (of two users racing for the last use, one wins), not after it expires or is
//! disabled. Wrong codes are counted per user so that guessing is slowed down.

use std::time::Duration;

use super::users::{apply_credit, LedgerRefs};
use super::{ResultExt, Store, StoreError};
use crate::clock::{millis_of, Millis};
use crate::domain::{LedgerKind, UserId};

/// A code as `admin promo list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoCode {
    pub code: String,
    pub credits: i64,
    pub max_uses: Option<i64>,
    pub used: i64,
    pub expires_at: Option<Millis>,
    pub disabled_at: Option<Millis>,
    pub created_at: Millis,
}

/// How a redemption ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// Credited; the new balance.
    Credited { credits: i64, balance: i64 },
    /// This user redeemed this code before: nothing more.
    AlreadyRedeemed,
    /// Unknown, expired, disabled or used up: the user is not told which.
    NotValid,
    /// Too many wrong codes lately: nothing was looked up.
    TooManyTries,
}

impl Store {
    /// Creates a code; false when one with that name exists already.
    pub async fn create_promo(
        &self,
        code: &str,
        credits: i64,
        max_uses: Option<i64>,
        expires_at: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let created = sqlx::query(
            "INSERT INTO promo_codes (code, credits, max_uses, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
        )
        .bind(code)
        .bind(credits)
        .bind(max_uses)
        .bind(expires_at)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("creating a promo code")?
        .rows_affected();
        Ok(created == 1)
    }

    /// Stops a code from being redeemed; false when there is no such code.
    pub async fn disable_promo(&self, code: &str) -> Result<bool, StoreError> {
        let disabled = sqlx::query(
            "UPDATE promo_codes SET disabled_at = COALESCE(disabled_at, $2) WHERE code = $1",
        )
        .bind(code)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("disabling a promo code")?
        .rows_affected();
        Ok(disabled == 1)
    }

    pub async fn promo_codes(&self) -> Result<Vec<PromoCode>, StoreError> {
        type Row = (String, i64, Option<i64>, i64, Option<i64>, Option<i64>, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT code, credits, max_uses, used, expires_at, disabled_at, created_at
             FROM promo_codes ORDER BY created_at DESC, code",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing promo codes")?;
        Ok(rows
            .into_iter()
            .map(
                |(code, credits, max_uses, used, expires_at, disabled_at, created_at)| PromoCode {
                    code,
                    credits,
                    max_uses,
                    used,
                    expires_at,
                    disabled_at,
                    created_at,
                },
            )
            .collect())
    }

    /// Redeems `code` for `user`, unless the user entered `max_misses` wrong codes within
    /// `window`. One transaction: the use is counted, the redemption recorded and the
    /// credits given together, or nothing is.
    pub async fn redeem_promo(
        &self,
        user: UserId,
        code: &str,
        max_misses: i64,
        window: Duration,
    ) -> Result<Redemption, StoreError> {
        const CONTEXT: &str = "redeeming a promo code";
        let now = self.now();
        let misses: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM promo_misses WHERE user_id = $1 AND at >= $2")
                .bind(user.0)
                .bind(now.saturating_sub(millis_of(window)))
                .fetch_one(&self.pool)
                .await
                .context(CONTEXT)?;
        if misses >= max_misses {
            return Ok(Redemption::TooManyTries);
        }
        let mut tx = self.begin_write(CONTEXT).await?;
        let redeemed_before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM promo_redemptions WHERE code = $1 AND user_id = $2",
        )
        .bind(code)
        .bind(user.0)
        .fetch_one(&mut *tx)
        .await
        .context(CONTEXT)?;
        if redeemed_before > 0 {
            return Ok(Redemption::AlreadyRedeemed);
        }
        // The use is taken under the row's lock: of two users racing for the last use, the
        // second finds none left.
        let credits: Option<i64> = sqlx::query_scalar(
            "UPDATE promo_codes SET used = used + 1
             WHERE code = $1 AND disabled_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)
               AND (max_uses IS NULL OR used < max_uses)
             RETURNING credits",
        )
        .bind(code)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context(CONTEXT)?;
        let Some(credits) = credits else {
            drop(tx);
            sqlx::query("INSERT INTO promo_misses (user_id, at) VALUES ($1, $2)")
                .bind(user.0)
                .bind(now)
                .execute(&self.pool)
                .await
                .context(CONTEXT)?;
            return Ok(Redemption::NotValid);
        };
        let inserted = sqlx::query(
            "INSERT INTO promo_redemptions (code, user_id, redeemed_at) VALUES ($1, $2, $3)
             ON CONFLICT (code, user_id) DO NOTHING",
        )
        .bind(code)
        .bind(user.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if inserted == 0 {
            // The same user redeeming twice at once: the other attempt got it.
            return Ok(Redemption::AlreadyRedeemed);
        }
        let reason = format!("promo code {code}");
        let balance = apply_credit(
            &mut tx,
            user,
            credits,
            LedgerKind::Promo,
            Some(&reason),
            LedgerRefs::default(),
            now,
        )
        .await?;
        tx.commit().await.context(CONTEXT)?;
        Ok(Redemption::Credited { credits, balance })
    }
}
