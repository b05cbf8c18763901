//! The bot token's send budget shared by every process of a deployment.

use crate::clock::millis_of;
use crate::domain::send_budget::{self, Lane, Limits, Sent, Turn};

use super::{Engine, ResultExt, Store, StoreError};

impl Store {
    /// Takes a send to `chat` in `lane` from the token's budget when it may go now (and
    /// counts it as sent), or says until when it must wait, by this store's clock
    /// ([`Store::now_millis`]).
    pub async fn take_telegram_send(
        &self,
        limits: &Limits,
        chat: i64,
        lane: Lane,
    ) -> Result<Turn, StoreError> {
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
        let now = self.now();
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
        let turn = send_budget::turn(limits, &recent, chat, lane, now, false);
        if turn == Turn::Now {
            sqlx::query("INSERT INTO telegram_sends (at, chat, lane) VALUES ($1, $2, $3)")
                .bind(now)
                .bind(chat)
                .bind(lane.as_str())
                .execute(&mut *tx)
                .await
                .context(CONTEXT)?;
            tx.commit().await.context(CONTEXT)?;
        } else {
            tx.rollback().await.context(CONTEXT)?;
        }
        Ok(turn)
    }
}
