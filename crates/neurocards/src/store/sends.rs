//! The bot token's send budget shared by every process of a deployment.

use crate::clock::{millis_of, Clock};
use crate::domain::send_budget::{self, Lane, Limits, Sent, SharedTurn};

use super::{Engine, ResultExt, Store, StoreError};

/// Serialises the senders of the token (its one row) and lets the commit skip the flush.
const LOCK_BUDGET: &str = "SELECT set_config('synchronous_commit', 'off', true)
    FROM telegram_budget WHERE id = CAST($1 AS INTEGER) FOR UPDATE";

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
        let turns = self
            .take_telegram_sends(clock, limits, &[chat], lane, dialog_waiting)
            .await?;
        Ok(turns.into_iter().next().unwrap_or(SharedTurn::Wait {
            until: clock.now_millis(),
            by_chat: false,
        }))
    }

    /// [`Store::take_telegram_send`] for the sends to `chats` that wait in one process, in
    /// one transaction: the turns of the token are taken a batch at a time, not a
    /// transaction per message. Each gets its answer, in order.
    pub async fn take_telegram_sends(
        &self,
        clock: &dyn Clock,
        limits: &Limits,
        chats: &[i64],
        lane: Lane,
        dialog_waiting: bool,
    ) -> Result<Vec<SharedTurn>, StoreError> {
        const CONTEXT: &str = "taking a Telegram send";
        if chats.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, _) = self.begin_pacing(CONTEXT, LOCK_BUDGET, "1").await?;
        // Read the clock once the budget is ours: time spent waiting for the lock must not
        // make the window look emptier than it is.
        let now = clock.now_millis();
        let forget_before = now.saturating_sub(millis_of(limits.memory()));
        let rows: Vec<(i64, i64, String)> = match self.engine {
            // One round trip: the rows deleted are the ones the read leaves out.
            Engine::Postgres => sqlx::query_as(
                "WITH forgotten AS (DELETE FROM telegram_sends WHERE at <= $1)
                 SELECT at, chat, lane FROM telegram_sends WHERE at > $1 ORDER BY at, id",
            )
            .bind(forget_before)
            .fetch_all(&mut *tx)
            .await
            .context(CONTEXT)?,
            Engine::Sqlite => {
                sqlx::query("DELETE FROM telegram_sends WHERE at <= $1")
                    .bind(forget_before)
                    .execute(&mut *tx)
                    .await
                    .context(CONTEXT)?;
                sqlx::query_as("SELECT at, chat, lane FROM telegram_sends ORDER BY at, id")
                    .fetch_all(&mut *tx)
                    .await
                    .context(CONTEXT)?
            }
        };
        let recent: Vec<Sent> = rows
            .into_iter()
            .map(|(at, chat, lane)| Sent {
                at,
                chat,
                // Only the two lanes pass the table's check.
                lane: Lane::parse(&lane).unwrap_or(Lane::Bulk),
            })
            .collect();
        let turns = send_budget::shared_turns(limits, &recent, chats, lane, now, dialog_waiting);
        let granted: Vec<(i64, i64)> = chats
            .iter()
            .zip(&turns)
            .filter_map(|(chat, turn)| match turn {
                SharedTurn::At(at) => Some((*at, *chat)),
                SharedTurn::Wait { .. } => None,
            })
            .collect();
        if granted.is_empty() {
            tx.rollback().await.context(CONTEXT)?;
            return Ok(turns);
        }
        // One statement for the batch; the text holds only numbered placeholders (the Any
        // driver's query builder writes `?`, which PostgreSQL refuses).
        let rows: Vec<String> = (0..granted.len())
            .map(|n| format!("(${}, ${}, ${})", 3 * n + 1, 3 * n + 2, 3 * n + 3))
            .collect();
        let text = format!(
            "INSERT INTO telegram_sends (at, chat, lane) VALUES {}",
            rows.join(", ")
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(text));
        for (at, chat) in &granted {
            insert = insert.bind(*at).bind(*chat).bind(lane.as_str());
        }
        insert.execute(&mut *tx).await.context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)?;
        Ok(turns)
    }
}
