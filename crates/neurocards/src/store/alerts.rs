//! What the admin alerts read and write: the gate that lets each kind out at most once per
//! period across every process, and the recent outcomes of videos.

use std::time::Duration;

use super::{ResultExt, Store, StoreError};
use crate::clock::millis_of;
use crate::domain::ErrorClass;

/// Videos finished since some time, and how many of them failed for a reason that is not
/// the user's (a photo or prompt the provider refused, or a video the user cancelled, is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentOutcomes {
    pub finished: i64,
    pub failed: i64,
}

impl Store {
    /// `Some(held back since the last one)` when an alert of `kind` may go out now, which
    /// then counts as sent; `None` when one went out less than `every` ago (this one is
    /// counted as held back). Every process shares the gate.
    pub async fn admit_alert(
        &self,
        kind: &str,
        every: Duration,
    ) -> Result<Option<u64>, StoreError> {
        const CONTEXT: &str = "letting an alert out";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let first = sqlx::query(
            "INSERT INTO alert_gate (kind, sent_at, held) VALUES ($1, $2, 0)
             ON CONFLICT (kind) DO NOTHING",
        )
        .bind(kind)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if first == 1 {
            tx.commit().await.context(CONTEXT)?;
            return Ok(Some(0));
        }
        let (sent_at, held): (i64, i64) =
            sqlx::query_as("SELECT sent_at, held FROM alert_gate WHERE kind = $1")
                .bind(kind)
                .fetch_one(&mut *tx)
                .await
                .context(CONTEXT)?;
        let due = now.saturating_sub(sent_at) >= millis_of(every);
        // Conditional on what was read: of two processes racing, one sends, one holds back.
        let admitted = if due {
            sqlx::query(
                "UPDATE alert_gate SET sent_at = $2, held = 0
                 WHERE kind = $1 AND sent_at = $3 AND held = $4",
            )
            .bind(kind)
            .bind(now)
            .bind(sent_at)
            .bind(held)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?
            .rows_affected()
                == 1
        } else {
            false
        };
        if !admitted {
            sqlx::query("UPDATE alert_gate SET held = held + 1 WHERE kind = $1")
                .bind(kind)
                .execute(&mut *tx)
                .await
                .context(CONTEXT)?;
        }
        tx.commit().await.context(CONTEXT)?;
        Ok(admitted.then(|| u64::try_from(held).unwrap_or(0)))
    }

    /// Videos finished in the last `window`.
    pub async fn recent_outcomes(&self, window: Duration) -> Result<RecentOutcomes, StoreError> {
        let since = self.now().saturating_sub(millis_of(window));
        let (finished, failed): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN status = 'failed' AND COALESCE(error_class, '') NOT IN ($2, $3) THEN 1 ELSE 0 END), 0)
             FROM jobs WHERE finished_at IS NOT NULL AND finished_at >= $1",
        )
        .bind(since)
        .bind(ErrorClass::UserViolation.as_str())
        .bind(ErrorClass::Cancelled.as_str())
        .fetch_one(&self.pool)
        .await
        .context("counting the videos finished lately")?;
        Ok(RecentOutcomes { finished, failed })
    }
}
