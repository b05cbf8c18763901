//! The bot token's send budget shared by every process of a deployment.

use crate::clock::{millis_of, Clock};
use crate::domain::send_budget::{self, Lane, Limits, Sent, SharedTurn};

use super::{Engine, ResultExt, Store, StoreError};

impl Store {
    /// Takes a send to `chat` in `lane` from the token's budget (see [`SharedTurn`]), by
    /// `clock`. Telegram counts in wall time, so the senders pass the system clock, not the
    /// store's (which tests move by hand). `dialog_waiting`: a dialog answer of the caller's
    /// process is waiting, so a delivery holds back.
    pub async fn take_telegram_send(
        &self,
        clock: &dyn Clock,
        limits: &Limits,
        chat: i64,
        lane: Lane,
        dialog_waiting: bool,
    ) -> Result<SharedTurn, StoreError> {
        const CONTEXT: &str = "taking a Telegram send";
        let mut tx = self.begin_write(CONTEXT).await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT id FROM telegram_budget WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .context(CONTEXT)?;
        }
        // Read the clock once the budget is ours: time spent waiting for the lock must not
        // make the window look emptier than it is.
        let now = clock.now_millis();
        sqlx::query("DELETE FROM telegram_sends WHERE at <= $1")
            .bind(now.saturating_sub(millis_of(limits.memory())))
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        let rows: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT at, chat, lane FROM telegram_sends ORDER BY at, id")
                .fetch_all(&mut *tx)
                .await
                .context(CONTEXT)?;
        let recent: Vec<Sent> = rows
            .into_iter()
            .map(|(at, chat, lane)| Sent {
                at,
                chat,
                // Only the two lanes pass the table's check.
                lane: Lane::parse(&lane).unwrap_or(Lane::Bulk),
            })
            .collect();
        let granted = send_budget::shared_turn(limits, &recent, chat, lane, now, dialog_waiting);
        match granted {
            SharedTurn::At(at) => {
                sqlx::query("INSERT INTO telegram_sends (at, chat, lane) VALUES ($1, $2, $3)")
                    .bind(at)
                    .bind(chat)
                    .bind(lane.as_str())
                    .execute(&mut *tx)
                    .await
                    .context(CONTEXT)?;
                tx.commit().await.context(CONTEXT)?;
            }
            SharedTurn::Wait { .. } => tx.rollback().await.context(CONTEXT)?,
        }
        Ok(granted)
    }
}
