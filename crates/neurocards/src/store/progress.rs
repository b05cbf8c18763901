//! "Where my order stands": which "order accepted" messages are due an edit, and what their
//! orders' videos are doing. Each order is looked at by one worker at most once per period.

use std::time::Duration;

use super::{ResultExt, Store, StoreError};
use crate::clock::millis_of;
use crate::domain::{ChatId, Lang, OrderId};

/// An order whose accepted message may be edited now, with how its videos stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderProgress {
    pub order: OrderId,
    pub chat: ChatId,
    pub message_id: i64,
    pub language: Lang,
    /// What the message shows now.
    pub shown: Option<String>,
    pub total: i64,
    /// Waiting in the queue, no createTask begun: these can still be cancelled.
    pub waiting: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Other users' videos before this order's first waiting one.
    pub ahead: i64,
}

impl OrderProgress {
    pub fn finished(&self) -> bool {
        self.delivered + self.failed >= self.total
    }
}

impl Store {
    /// The bot's "order accepted" message for `order`, to edit as it moves.
    pub async fn set_accepted_message(
        &self,
        order: OrderId,
        message_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET accepted_message_id = $2, progress_at = $3 WHERE id = $1")
            .bind(order.0)
            .bind(message_id)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .context("recording the accepted message")?;
        Ok(())
    }

    /// Up to `limit` orders whose message was last looked at `every` ago or more, taken for
    /// this caller (another worker skips them for `every`), oldest look first.
    pub async fn take_progress_due(
        &self,
        every: Duration,
        limit: i64,
    ) -> Result<Vec<OrderProgress>, StoreError> {
        const CONTEXT: &str = "reading the orders to show the progress of";
        let now = self.now();
        let cutoff = now.saturating_sub(millis_of(every));
        let candidates: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, progress_at FROM orders
             WHERE accepted_message_id IS NOT NULL AND progress_done = 0 AND progress_at <= $1
             ORDER BY progress_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        let mut due = Vec::new();
        for (order, seen_at) in candidates {
            let taken = sqlx::query(
                "UPDATE orders SET progress_at = $2 WHERE id = $1 AND progress_at = $3",
            )
            .bind(order)
            .bind(now)
            .bind(seen_at)
            .execute(&self.pool)
            .await
            .context(CONTEXT)?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            type Row = (i64, i64, String, Option<String>, i64, i64, i64, i64);
            let row: Row = sqlx::query_as(
                "SELECT o.chat_id, o.accepted_message_id, o.language, o.progress_text, o.video_count,
                        COALESCE(SUM(CASE WHEN j.status = 'queued' AND j.submit_started_at IS NULL
                                          THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN j.status = 'delivered' THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN j.status = 'failed' THEN 1 ELSE 0 END), 0)
                 FROM orders o JOIN jobs j ON j.order_id = o.id
                 WHERE o.id = $1
                 GROUP BY o.chat_id, o.accepted_message_id, o.language, o.progress_text, o.video_count",
            )
            .bind(order)
            .fetch_one(&self.pool)
            .await
            .context(CONTEXT)?;
            let (chat, message_id, language, shown, total, waiting, delivered, failed) = row;
            let ahead = if waiting > 0 {
                self.jobs_ahead_of(OrderId(order)).await?
            } else {
                0
            };
            due.push(OrderProgress {
                order: OrderId(order),
                chat: ChatId(chat),
                message_id,
                language: Lang::from_code(&language),
                shown,
                total,
                waiting,
                delivered,
                failed,
                ahead,
            });
        }
        Ok(due)
    }

    /// What the message shows now; `done` once it shows the order finished (it is not
    /// looked at again).
    pub async fn record_progress(
        &self,
        order: OrderId,
        text: &str,
        done: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET progress_text = $2, progress_done = $3 WHERE id = $1")
            .bind(order.0)
            .bind(text)
            .bind(i64::from(done))
            .execute(&self.pool)
            .await
            .context("recording an order's progress")?;
        Ok(())
    }
}
