//! What only an operator asks for: a job handed back to the queue by hand, and a user's
//! orders at a glance.

use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{JobId, JobStatus, OrderId, UserId};

/// What `admin requeue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Back in the queue, to be taken at once; it keeps its phase and its KIE task.
    Requeued(JobStatus),
    /// Left as it is: requeueing it could create a second KIE task, send a video twice, or
    /// it is finished.
    Refused(JobStatus),
}

/// One order as `admin user` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub id: OrderId,
    pub created_at: Millis,
    pub videos: i64,
    pub delivered: i64,
    pub failed: i64,
    pub template: Option<String>,
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

    /// The user's newest orders first, with how their videos stand.
    pub async fn orders_of(&self, user: UserId, limit: i64) -> Result<Vec<OrderLine>, StoreError> {
        const CONTEXT: &str = "reading a user's orders";
        let rows: Vec<(i64, i64, i64, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT o.id, o.created_at, o.video_count,
                    COALESCE(SUM(CASE WHEN j.status = 'delivered' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN j.status = 'failed' THEN 1 ELSE 0 END), 0),
                    o.template_id
             FROM orders o LEFT JOIN jobs j ON j.order_id = o.id
             WHERE o.user_id = $1
             GROUP BY o.id, o.created_at, o.video_count, o.template_id
             ORDER BY o.id DESC LIMIT $2",
        )
        .bind(user.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, videos, delivered, failed, template)| OrderLine {
                    id: OrderId(id),
                    created_at,
                    videos,
                    delivered,
                    failed,
                    template,
                },
            )
            .collect())
    }
}
