//! What a soak test reads back after the storm: every order and video as the database ended
//! them, in the shapes the chaos report compares with what Telegram and KIE saw.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{ResultExt, Store, StoreError};
use crate::domain::{ChatId, JobId, OrderId, UserId};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub orders: i64,
    /// Orders with a video not yet delivered or failed, or whose summary is not yet sent.
    pub open_orders: Vec<OrderId>,
    pub videos: i64,
    pub delivered: i64,
    /// Delivered videos whose send Telegram never confirmed (counted in `delivered`).
    pub delivered_unconfirmed: i64,
    /// Failed videos by error class (`None`: a failure without a class, itself a defect).
    pub failed_by_class: BTreeMap<Option<String>, i64>,
    /// Refund rows by the error class of their video.
    pub refunds_by_class: BTreeMap<Option<String>, i64>,
    /// Videos with more than one refund row.
    pub refunded_twice: i64,
    /// Refund rows whose video is not failed (delivered or still running).
    pub refunds_of_unfailed: i64,
    /// Delivered videos per chat, and of them those whose send Telegram never confirmed.
    pub delivered_per_chat: BTreeMap<ChatId, (i64, i64)>,
    /// Every order's chat and the message id of its summary once sent.
    pub summaries: Vec<(OrderId, ChatId, Option<i64>)>,
    pub orders_per_user: BTreeMap<UserId, i64>,
    /// The KIE task each video ended with.
    pub task_ids: Vec<String>,
    /// Jobs refunded because their createTask may have reached KIE without its answer being
    /// stored (an ambiguous create), with their order's prompt.
    pub ambiguous_creates: Vec<(JobId, String)>,
    /// Per order with its summary recorded: from placing it to its summary, and its prompt.
    pub order_times: Vec<(OrderId, std::time::Duration, String)>,
    /// KIE callbacks the receiving process noted for the workers, of the last hour.
    pub noted_callbacks: i64,
}

impl Store {
    pub async fn audit(&self) -> Result<Audit, StoreError> {
        const CONTEXT: &str = "auditing orders and videos";
        let mut audit = Audit::default();

        let open = sqlx::query(
            "SELECT o.id FROM orders o
             WHERE o.summary_sent_at IS NULL
                OR EXISTS (SELECT 1 FROM jobs j
                           WHERE j.order_id = o.id AND j.status NOT IN ('delivered', 'failed'))
             ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &open {
            audit
                .open_orders
                .push(OrderId(row.try_get("id").context(CONTEXT)?));
        }

        let jobs = sqlx::query(
            "SELECT status, error_class, delivery_unconfirmed, COUNT(*) AS jobs
             FROM jobs GROUP BY status, error_class, delivery_unconfirmed",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &jobs {
            let status: String = row.try_get("status").context(CONTEXT)?;
            let class: Option<String> = row.try_get("error_class").context(CONTEXT)?;
            let unconfirmed: i64 = row.try_get("delivery_unconfirmed").context(CONTEXT)?;
            let count: i64 = row.try_get("jobs").context(CONTEXT)?;
            audit.videos += count;
            match status.as_str() {
                "delivered" => {
                    audit.delivered += count;
                    if unconfirmed != 0 {
                        audit.delivered_unconfirmed += count;
                    }
                }
                "failed" => *audit.failed_by_class.entry(class).or_default() += count,
                _ => {}
            }
        }

        let refunds = sqlx::query(
            "SELECT j.id, j.status, j.error_class, COUNT(l.id) AS refunds
             FROM ledger l JOIN jobs j ON j.id = l.job_id
             WHERE l.kind = 'refund'
             GROUP BY j.id, j.status, j.error_class",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &refunds {
            let status: String = row.try_get("status").context(CONTEXT)?;
            let class: Option<String> = row.try_get("error_class").context(CONTEXT)?;
            let count: i64 = row.try_get("refunds").context(CONTEXT)?;
            *audit.refunds_by_class.entry(class).or_default() += count;
            if count > 1 {
                audit.refunded_twice += 1;
            }
            if status != "failed" {
                audit.refunds_of_unfailed += count;
            }
        }

        let per_chat = sqlx::query(
            "SELECT o.chat_id, COUNT(*) AS videos,
                    COUNT(CASE WHEN j.delivery_unconfirmed <> 0 THEN 1 END) AS unconfirmed
             FROM jobs j JOIN orders o ON o.id = j.order_id
             WHERE j.status = 'delivered' GROUP BY o.chat_id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &per_chat {
            audit.delivered_per_chat.insert(
                ChatId(row.try_get("chat_id").context(CONTEXT)?),
                (
                    row.try_get("videos").context(CONTEXT)?,
                    row.try_get("unconfirmed").context(CONTEXT)?,
                ),
            );
        }

        let orders =
            sqlx::query("SELECT id, user_id, chat_id, summary_message_id FROM orders ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .context(CONTEXT)?;
        for row in &orders {
            let user = UserId(row.try_get("user_id").context(CONTEXT)?);
            *audit.orders_per_user.entry(user).or_default() += 1;
            audit.summaries.push((
                OrderId(row.try_get("id").context(CONTEXT)?),
                ChatId(row.try_get("chat_id").context(CONTEXT)?),
                row.try_get("summary_message_id").context(CONTEXT)?,
            ));
        }
        audit.orders = audit.summaries.len() as i64;

        let times = sqlx::query(
            "SELECT id, summary_sent_at - created_at AS took, prompt FROM orders
             WHERE summary_sent_at IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &times {
            let took: i64 = row.try_get("took").context(CONTEXT)?;
            audit.order_times.push((
                OrderId(row.try_get("id").context(CONTEXT)?),
                std::time::Duration::from_millis(u64::try_from(took).unwrap_or(0)),
                row.try_get("prompt").context(CONTEXT)?,
            ));
        }

        let tasks = sqlx::query("SELECT kie_task_id FROM jobs WHERE kie_task_id IS NOT NULL")
            .fetch_all(&self.pool)
            .await
            .context(CONTEXT)?;
        for row in &tasks {
            audit
                .task_ids
                .push(row.try_get("kie_task_id").context(CONTEXT)?);
        }

        let ambiguous = sqlx::query(
            "SELECT j.id, o.prompt FROM jobs j JOIN orders o ON o.id = j.order_id
             WHERE j.status = 'failed' AND j.error_message = $1 ORDER BY j.id",
        )
        .bind(crate::domain::INTERRUPTED_SUBMISSION)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &ambiguous {
            audit.ambiguous_creates.push((
                JobId(row.try_get("id").context(CONTEXT)?),
                row.try_get("prompt").context(CONTEXT)?,
            ));
        }
        audit.noted_callbacks = sqlx::query_scalar("SELECT COUNT(*) FROM kie_callbacks")
            .fetch_one(&self.pool)
            .await
            .context(CONTEXT)?;
        Ok(audit)
    }
}
