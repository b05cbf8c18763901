//! The bot's dialog state per chat, stored as the bot serialises it.

use super::{ResultExt, Store, StoreError};

impl Store {
    pub async fn dialog(&self, chat_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT state FROM dialogs WHERE chat_id = $1")
            .bind(chat_id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a dialog")
    }

    pub async fn set_dialog(&self, chat_id: i64, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dialogs (chat_id, state, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(chat_id)
        .bind(state)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("saving a dialog")?;
        Ok(())
    }

    /// Returns whether there was a dialog to remove.
    pub async fn remove_dialog(&self, chat_id: i64) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM dialogs WHERE chat_id = $1")
            .bind(chat_id)
            .execute(&self.pool)
            .await
            .context("removing a dialog")?
            .rows_affected();
        Ok(removed > 0)
    }
}
