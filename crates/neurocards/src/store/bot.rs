//! What the bot reads and records beside orders: reachability, running work, an order's
//! photo for "make more", and the last hour's outcomes for `/stats`.

use sqlx::Row;

use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{OrderId, UserId};

/// How jobs ended since a moment: `(status, error class or None, jobs)`.
pub type Outcomes = Vec<(String, Option<String>, i64)>;

impl Store {
    /// Telegram said the user blocked the bot.
    pub async fn mark_unreachable(&self, user: UserId) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET unreachable_at = $2 WHERE id = $1")
            .bind(user.0)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .context("marking a user unreachable")?;
        Ok(())
    }

    /// The user wrote to us: they can be reached again.
    pub async fn mark_reachable(&self, user: UserId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET unreachable_at = NULL WHERE id = $1 AND unreachable_at IS NOT NULL",
        )
        .bind(user.0)
        .execute(&self.pool)
        .await
        .context("marking a user reachable")?;
        Ok(())
    }

    pub async fn is_unreachable(&self, user: UserId) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT unreachable_at FROM users WHERE id = $1")
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await
                .context("reading a user's reachability")?;
        Ok(at.flatten().is_some())
    }

    /// True while any video of the user is not finished.
    pub async fn has_unfinished_jobs(&self, user: UserId) -> Result<bool, StoreError> {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE user_id = $1 AND status NOT IN ('delivered', 'failed')",
        )
        .bind(user.0)
        .fetch_one(&self.pool)
        .await
        .context("counting a user's unfinished jobs")?;
        Ok(unfinished > 0)
    }

    /// The owner and the photo of an order, for "make more".
    pub async fn order_photo(
        &self,
        order: OrderId,
    ) -> Result<Option<(UserId, String)>, StoreError> {
        const CONTEXT: &str = "reading an order's photo";
        let row = sqlx::query("SELECT user_id, photo_file_id FROM orders WHERE id = $1")
            .bind(order.0)
            .fetch_optional(&self.pool)
            .await
            .context(CONTEXT)?;
        row.map(|row| {
            Ok((
                UserId(row.try_get("user_id").context(CONTEXT)?),
                row.try_get("photo_file_id").context(CONTEXT)?,
            ))
        })
        .transpose()
    }

    pub async fn outcomes_since(&self, since: Millis) -> Result<Outcomes, StoreError> {
        const CONTEXT: &str = "reading recent outcomes";
        let rows = sqlx::query(
            "SELECT status, error_class, COUNT(*) AS jobs FROM jobs
             WHERE finished_at >= $1 GROUP BY status, error_class ORDER BY status, error_class",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("status").context(CONTEXT)?,
                    row.try_get("error_class").context(CONTEXT)?,
                    row.try_get("jobs").context(CONTEXT)?,
                ))
            })
            .collect()
    }

    pub fn now_millis(&self) -> Millis {
        self.now()
    }
}
