//! A job handed back to the queue by hand (`admin requeue`), and a user's orders at a glance
//! (`admin user`, and the user's own "My videos").

use super::users::{apply_credit, LedgerRefs};
use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{ErrorClass, JobId, JobStatus, LedgerKind, OrderId, UserId};

/// What `admin requeue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Back in the queue, to be taken at once; it keeps its phase and its KIE task.
    Requeued(JobStatus),
    /// Left as it is: requeueing it could create a second KIE task, send a video twice, or
    /// it is finished.
    Refused(JobStatus),
}

/// One order as `admin user` and "My videos" list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub id: OrderId,
    pub created_at: Millis,
    pub videos: i64,
    pub delivered: i64,
    pub failed: i64,
    pub template: Option<String>,
    pub prompt: String,
    /// The catalogue's id of the model (orders placed before models were recorded: none).
    pub model: Option<String>,
}

/// What "Cancel" did: the videos that had not reached KIE, now refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The cancelled videos' numbers in the order.
    pub seqs: Vec<i64>,
    pub credits: i64,
    pub balance: i64,
}

/// An order as "Repeat" places it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatSource {
    pub photo: String,
    pub template: Option<String>,
    pub prompt: String,
    pub model: String,
    pub option: String,
    pub count: i64,
}

impl Store {
    /// Hands a job back to the queue now, whoever holds it: only a queued job (its task not
    /// created yet) or a generating one whose task id is stored (it is followed, not made
    /// again). A job in the middle of a createTask or a send, or finished, is refused.
    pub async fn requeue_job(&self, job: JobId) -> Result<Requeue, StoreError> {
        const CONTEXT: &str = "requeueing a job";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job.0)
            .fetch_optional(&mut *tx)
            .await
            .context(CONTEXT)?;
        let status: JobStatus = status
            .ok_or(StoreError::UnknownJob(job))?
            .parse()
            .map_err(StoreError::from)?;
        let requeued = sqlx::query(
            "UPDATE jobs SET locked_by = NULL, attempt_token = NULL, claimed_at = NULL,
                             run_at = $2, updated_at = $2
             WHERE id = $1
               AND ((status = 'queued' AND submit_started_at IS NULL)
                    OR (status = 'generating' AND kie_task_id IS NOT NULL))",
        )
        .bind(job.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        tx.commit().await.context(CONTEXT)?;
        Ok(if requeued == 1 {
            Requeue::Requeued(status)
        } else {
            Requeue::Refused(status)
        })
    }

    /// The user's orders, newest first, from the `offset`-th on, with how their videos stand.
    pub async fn orders_of(
        &self,
        user: UserId,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<OrderLine>, StoreError> {
        const CONTEXT: &str = "reading a user's orders";
        type Row = (
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.id, o.created_at, o.video_count,
                    COALESCE(SUM(CASE WHEN j.status = 'delivered' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN j.status = 'failed' THEN 1 ELSE 0 END), 0),
                    o.template_id, o.prompt, o.model
             FROM orders o LEFT JOIN jobs j ON j.order_id = o.id
             WHERE o.user_id = $1
             GROUP BY o.id, o.created_at, o.video_count, o.template_id, o.prompt, o.model
             ORDER BY o.id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user.0)
        .bind(limit)
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, videos, delivered, failed, template, prompt, model)| OrderLine {
                    id: OrderId(id),
                    created_at,
                    videos,
                    delivered,
                    failed,
                    template,
                    prompt,
                    model,
                },
            )
            .collect())
    }

    /// Cancels the videos of the user's order that have not reached KIE (queued, no
    /// createTask begun), whoever holds them, and refunds each at once, in one transaction.
    /// A worker holding one finds its lease gone at its next step and leaves it; the videos
    /// already at KIE go on and are delivered.
    pub async fn cancel_pending(
        &self,
        order: OrderId,
        user: UserId,
    ) -> Result<Cancelled, StoreError> {
        const CONTEXT: &str = "cancelling videos";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let pending: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT j.id, j.seq, o.unit_price FROM jobs j JOIN orders o ON o.id = j.order_id
             WHERE j.order_id = $1 AND o.user_id = $2
               AND j.status = 'queued' AND j.submit_started_at IS NULL
             ORDER BY j.seq",
        )
        .bind(order.0)
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await
        .context(CONTEXT)?;
        let mut cancelled = Cancelled {
            seqs: Vec::new(),
            credits: 0,
            balance: 0,
        };
        for (job, seq, price) in pending {
            // Conditional again under the write lock: a worker may have begun it since.
            let taken = sqlx::query(
                "UPDATE jobs SET status = 'failed', error_class = $2, error_message = $3,
                        locked_by = NULL, attempt_token = NULL, updated_at = $4, finished_at = $4
                 WHERE id = $1 AND status = 'queued' AND submit_started_at IS NULL",
            )
            .bind(job)
            .bind(ErrorClass::Cancelled.as_str())
            .bind("cancelled by the user")
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            let refs = LedgerRefs {
                order_id: Some(order),
                job_id: Some(JobId(job)),
                payment_id: None,
            };
            cancelled.balance = apply_credit(
                &mut tx,
                user,
                price,
                LedgerKind::Refund,
                Some(ErrorClass::Cancelled.as_str()),
                refs,
                now,
            )
            .await?;
            cancelled.seqs.push(seq);
            cancelled.credits += price;
        }
        tx.commit().await.context(CONTEXT)?;
        if cancelled.seqs.is_empty() {
            cancelled.balance = self.balance(user).await?;
        }
        Ok(cancelled)
    }

    /// What "Repeat" needs of the user's order; `None` when it is not theirs (or was placed
    /// before orders recorded their model).
    pub async fn repeat_source(
        &self,
        order: OrderId,
        user: UserId,
    ) -> Result<Option<RepeatSource>, StoreError> {
        type Row = (
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            i64,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT photo_file_id, template_id, prompt, model, model_option, video_count
             FROM orders WHERE id = $1 AND user_id = $2",
        )
        .bind(order.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .context("reading an order to repeat")?;
        Ok(
            row.and_then(|(photo, template, prompt, model, option, count)| {
                Some(RepeatSource {
                    photo,
                    template,
                    prompt,
                    model: model?,
                    option: option?,
                    count,
                })
            }),
        )
    }

    /// The delivered videos of the user's order, in order, to send again (by Telegram's
    /// file id when known: free and instant); empty when the order is not theirs.
    pub async fn order_videos(
        &self,
        order: OrderId,
        user: UserId,
    ) -> Result<Vec<super::Resend>, StoreError> {
        sqlx::query_as(
            "SELECT j.id AS job_id, o.chat_id, j.seq, o.video_count, o.language,
                    j.result_url, j.tg_file_id AS file_id
             FROM jobs j JOIN orders o ON o.id = j.order_id
             WHERE o.id = $1 AND o.user_id = $2 AND j.status = $3
             ORDER BY j.seq",
        )
        .bind(order.0)
        .bind(user.0)
        .bind(JobStatus::Delivered.as_str())
        .fetch_all(&self.pool)
        .await
        .context("reading an order's videos")
    }
}
