//! KIE callbacks handed from the process that receives them to the worker that follows the
//! task. A callback is only a wake-up: the job still reads the task's state from KIE.

use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;

impl Store {
    /// Notes that KIE called back about `task_id` (again: the latest moment counts).
    pub async fn note_kie_callback(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kie_callbacks (task_id, at) VALUES ($1, $2)
             ON CONFLICT (task_id) DO UPDATE SET at = excluded.at",
        )
        .bind(task_id)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("noting a KIE callback")?;
        Ok(())
    }

    /// The tasks KIE called back about after `since` (on the store's clock), with when; and
    /// the store's clock now, the next `since` less whatever overlap the caller keeps.
    pub async fn kie_callbacks_since(
        &self,
        since: Millis,
    ) -> Result<(Vec<String>, Millis), StoreError> {
        let now = self.now();
        let tasks: Vec<(String,)> =
            sqlx::query_as("SELECT task_id FROM kie_callbacks WHERE at > $1 ORDER BY at")
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .context("reading recent KIE callbacks")?;
        Ok((tasks.into_iter().map(|(task,)| task).collect(), now))
    }

    /// Forgets the callbacks noted before `before`; returns how many.
    pub async fn forget_kie_callbacks(&self, before: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM kie_callbacks WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .context("forgetting old KIE callbacks")?;
        Ok(done.rows_affected())
    }
}
