//! The bot token's send budget shared by every process of a deployment.

use crate::clock::{millis_of, Clock};
use crate::domain::send_budget::{self, Lane, Limits, Sent, Turn};

use super::{Engine, ResultExt, Store, StoreError};

/// What [`Store::take_telegram_send`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTurn {
    /// The send is counted at `at`: now, or, for a dialog answer held back only by its own
    /// chat, the chat's next free moment, reserved so that no delivery from another process
    /// takes it first. Send at `at`.
    At(i64),
    /// Ask again at `until`. `by_chat`: only this chat is held back.
    Wait { until: i64, by_chat: bool },
}

impl Store {
    /// Takes a send to `chat` in `lane` from the token's budget (see [`SendTurn`]), by
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
    ) -> Result<SendTurn, StoreError> {
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
        let turn = send_budget::turn(limits, &recent, chat, lane, now, dialog_waiting);
        let granted = match turn {
            Turn::Now => SendTurn::At(now),
            // A person's answer keeps its place in its chat: a delivery another process is
            // about to send there goes after it, not before.
            Turn::Wait {
                until,
                by_chat: true,
            } if lane == Lane::Dialog => SendTurn::At(until),
            Turn::Wait { until, by_chat } => SendTurn::Wait { until, by_chat },
        };
        match granted {
            SendTurn::At(at) => {
                sqlx::query("INSERT INTO telegram_sends (at, chat, lane) VALUES ($1, $2, $3)")
                    .bind(at)
                    .bind(chat)
                    .bind(lane.as_str())
                    .execute(&mut *tx)
                    .await
                    .context(CONTEXT)?;
                tx.commit().await.context(CONTEXT)?;
            }
            SendTurn::Wait { .. } => tx.rollback().await.context(CONTEXT)?,
        }
        Ok(granted)
    }
}
