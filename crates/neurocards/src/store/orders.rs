//! Orders: the debit and the jobs written together, and the one summary per order.

use sqlx::Row;

use super::users::{apply_credit, LedgerRefs};
use super::{ResultExt, Store, StoreError};
use crate::domain::generation::GenerationSpec;
use crate::domain::pricing::order_cost;
use crate::domain::{ChatId, ErrorClass, JobId, JobStatus, Lang, LedgerKind, OrderId, UserId};

/// What the bot asks for when the user picks a count.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: UserId,
    pub chat_id: ChatId,
    /// The same key twice places one order (the bot derives it from the count step).
    pub idempotency_key: Option<String>,
    pub video_count: i64,
    /// Credits per video: the price of the chosen option, which each failed video refunds.
    pub unit_price: i64,
    pub photo_file_id: String,
    pub template_id: Option<String>,
    pub prompt: String,
    /// The model, option and input fields, frozen for the order's lifetime.
    pub generation: GenerationSpec,
    pub language: Lang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_id: OrderId,
    pub job_ids: Vec<JobId>,
    /// False when the idempotency key had already placed this order: nothing new was
    /// charged.
    pub newly_placed: bool,
    pub balance_after: i64,
}

/// How an order ended, for the one message that tells the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub chat_id: ChatId,
    pub language: Lang,
    pub video_count: i64,
    pub delivered: i64,
    pub failed: i64,
    pub refunded_credits: i64,
    /// Failed videos by why they failed.
    pub failures: Vec<(ErrorClass, i64)>,
    /// Videos whose send got no answer (job and its number in the order): the user may
    /// not have them and can ask for them again.
    pub unconfirmed: Vec<(JobId, i64)>,
}

/// What the bot needs to send a delivered video again.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Resend {
    #[sqlx(try_from = "i64")]
    pub job_id: JobId,
    #[sqlx(try_from = "i64")]
    pub chat_id: ChatId,
    pub seq: i64,
    pub video_count: i64,
    #[sqlx(try_from = "String")]
    pub language: Lang,
    /// KIE's result link (it expires about a day after the video was made).
    pub result_url: Option<String>,
    /// Telegram's id of the video once it was delivered: sending it again is free.
    pub file_id: Option<String>,
}

impl Store {
    /// Debits the order's cost and writes the order and its jobs in one transaction. A
    /// short balance is refused with [`StoreError::InsufficientCredits`] and writes nothing.
    /// A repeated idempotency key returns the first order, even when both calls race.
    pub async fn place_order(&self, order: &NewOrder) -> Result<PlacedOrder, StoreError> {
        const CONTEXT: &str = "placing an order";
        let cost = order_cost(order.video_count, order.unit_price)?;
        let generation = serde_json::to_string(&order.generation)
            .map_err(|err| StoreError::Corrupt(format!("an order's settings: {err}")))?;
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        // The order row goes first: a racing twin blocks on the unique key here, before
        // touching the balance, and then finds the winner's order.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO orders (user_id, chat_id, idempotency_key, video_count, unit_price,
                                 photo_file_id, template_id, prompt, generation, language, created_at,
                                 model, model_option)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id",
        )
        .bind(order.user_id.0)
        .bind(order.chat_id.0)
        .bind(order.idempotency_key.as_deref())
        .bind(order.video_count)
        .bind(order.unit_price)
        .bind(order.photo_file_id.as_str())
        .bind(order.template_id.as_deref())
        .bind(order.prompt.as_str())
        .bind(generation)
        .bind(order.language.code())
        .bind(now)
        .bind(order.generation.model.as_str())
        .bind(order.generation.option.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|source| match source.as_database_error() {
            Some(db) if db.is_foreign_key_violation() => StoreError::UnknownUser(order.user_id),
            _ => StoreError::Database { context: CONTEXT, source },
        })?;

        let Some(order_id) = inserted.map(OrderId) else {
            tx.rollback().await.context(CONTEXT)?;
            let key = order.idempotency_key.as_deref().unwrap_or_default();
            return self.order_by_key(key).await;
        };

        let refs = LedgerRefs {
            order_id: Some(order_id),
            ..LedgerRefs::default()
        };
        let balance_after = apply_credit(
            &mut tx,
            order.user_id,
            -cost,
            LedgerKind::Order,
            None,
            refs,
            now,
        )
        .await?;

        let mut job_ids = Vec::with_capacity(usize::try_from(order.video_count).unwrap_or(0));
        for seq in 1..=order.video_count {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (order_id, user_id, seq, status, run_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5, $5)
                 RETURNING id",
            )
            .bind(order_id.0)
            .bind(order.user_id.0)
            .bind(seq)
            .bind(JobStatus::Queued.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .context(CONTEXT)?;
            job_ids.push(JobId(id));
        }
        tx.commit().await.context(CONTEXT)?;
        Ok(PlacedOrder {
            order_id,
            job_ids,
            newly_placed: true,
            balance_after,
        })
    }

    async fn order_by_key(&self, key: &str) -> Result<PlacedOrder, StoreError> {
        const CONTEXT: &str = "reading an order by its idempotency key";
        let row = sqlx::query(
            "SELECT o.id, u.credits FROM orders o JOIN users u ON u.id = o.user_id
             WHERE o.idempotency_key = $1",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .context(CONTEXT)?;
        let order_id = OrderId(row.try_get("id").context(CONTEXT)?);
        let job_ids = sqlx::query_scalar("SELECT id FROM jobs WHERE order_id = $1 ORDER BY seq")
            .bind(order_id.0)
            .fetch_all(&self.pool)
            .await
            .context(CONTEXT)?
            .into_iter()
            .map(JobId)
            .collect();
        Ok(PlacedOrder {
            order_id,
            job_ids,
            newly_placed: false,
            balance_after: row.try_get("credits").context(CONTEXT)?,
        })
    }

    /// How many jobs wait ahead of the order's first job: the queue position the bot shows.
    pub async fn jobs_ahead_of(&self, order: OrderId) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs
             WHERE status NOT IN ('delivered', 'failed')
               AND id < (SELECT MIN(id) FROM jobs WHERE order_id = $1)",
        )
        .bind(order.0)
        .fetch_one(&self.pool)
        .await
        .context("counting the jobs ahead of an order")
    }

    /// True when every job of the order has ended.
    pub async fn order_finished(&self, order: OrderId) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS jobs,
                    COUNT(CASE WHEN status IN ('delivered', 'failed') THEN 1 END) AS ended
             FROM jobs WHERE order_id = $1",
        )
        .bind(order.0)
        .fetch_one(&self.pool)
        .await
        .context("reading an order's progress")?;
        let jobs: i64 = row.try_get("jobs").context("reading an order's progress")?;
        let ended: i64 = row
            .try_get("ended")
            .context("reading an order's progress")?;
        if jobs == 0 {
            return Err(StoreError::UnknownOrder(order));
        }
        Ok(jobs == ended)
    }

    /// Claims for `worker` the right to send the order's summary. Exactly one caller gets
    /// `Some`, and only once every job has ended; a claim held by a worker that dies is
    /// released with its jobs. Call [`Store::mark_summary_sent`] once it is sent.
    pub async fn claim_summary(
        &self,
        order: OrderId,
        worker: &str,
    ) -> Result<Option<OrderSummary>, StoreError> {
        let claimed = sqlx::query(
            "UPDATE orders SET summary_claimed_by = $2, summary_claimed_at = $3
             WHERE id = $1 AND summary_sent_at IS NULL AND summary_claimed_by IS NULL
               AND NOT EXISTS (SELECT 1 FROM jobs
                               WHERE order_id = $1 AND status NOT IN ('delivered', 'failed'))",
        )
        .bind(order.0)
        .bind(worker)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("claiming an order summary")?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        self.order_summary(order).await.map(Some)
    }

    /// Records that the summary reached the user; only the claim's holder may do it.
    /// Returns false when the claim was lost (the worker was presumed dead).
    pub async fn mark_summary_sent(
        &self,
        order: OrderId,
        worker: &str,
        message_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE orders SET summary_sent_at = $3, summary_message_id = $4
             WHERE id = $1 AND summary_claimed_by = $2 AND summary_sent_at IS NULL",
        )
        .bind(order.0)
        .bind(worker)
        .bind(self.now())
        .bind(message_id)
        .execute(&self.pool)
        .await
        .context("marking an order summary sent")?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Gives up a summary claim that could not be sent, so a later sweep tries again.
    pub async fn release_summary(&self, order: OrderId, worker: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE orders SET summary_claimed_by = NULL, summary_claimed_at = NULL
             WHERE id = $1 AND summary_claimed_by = $2 AND summary_sent_at IS NULL",
        )
        .bind(order.0)
        .bind(worker)
        .execute(&self.pool)
        .await
        .context("releasing an order summary claim")?;
        Ok(())
    }

    /// Orders whose jobs have all ended and whose summary nobody sent or holds: a sweep
    /// sends them, in case the worker that ended the last job died first.
    pub async fn orders_awaiting_summary(&self, limit: i64) -> Result<Vec<OrderId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT o.id FROM orders o
             WHERE o.summary_sent_at IS NULL AND o.summary_claimed_by IS NULL
               AND NOT EXISTS (SELECT 1 FROM jobs j
                               WHERE j.order_id = o.id AND j.status NOT IN ('delivered', 'failed'))
             ORDER BY o.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("listing orders awaiting their summary")?;
        Ok(ids.into_iter().map(OrderId).collect())
    }

    pub async fn order_summary(&self, order: OrderId) -> Result<OrderSummary, StoreError> {
        const CONTEXT: &str = "summing up an order";
        let head =
            sqlx::query("SELECT user_id, chat_id, language, video_count FROM orders WHERE id = $1")
                .bind(order.0)
                .fetch_optional(&self.pool)
                .await
                .context(CONTEXT)?
                .ok_or(StoreError::UnknownOrder(order))?;
        let outcomes = sqlx::query(
            "SELECT status, error_class, COUNT(*) AS jobs FROM jobs WHERE order_id = $1
             GROUP BY status, error_class",
        )
        .bind(order.0)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        let refunded_credits: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(l.delta), 0) AS BIGINT) FROM ledger l
             JOIN jobs j ON j.id = l.job_id
             WHERE j.order_id = $1 AND l.kind = 'refund'",
        )
        .bind(order.0)
        .fetch_one(&self.pool)
        .await
        .context(CONTEXT)?;

        let mut summary = OrderSummary {
            order_id: order,
            user_id: UserId(head.try_get("user_id").context(CONTEXT)?),
            chat_id: ChatId(head.try_get("chat_id").context(CONTEXT)?),
            language: Lang::from_code(&head.try_get::<String, _>("language").context(CONTEXT)?),
            video_count: head.try_get("video_count").context(CONTEXT)?,
            delivered: 0,
            failed: 0,
            refunded_credits,
            failures: Vec::new(),
            unconfirmed: sqlx::query_as::<_, (i64, i64)>(
                "SELECT id, seq FROM jobs WHERE order_id = $1 AND delivery_unconfirmed = 1
                 ORDER BY seq",
            )
            .bind(order.0)
            .fetch_all(&self.pool)
            .await
            .context(CONTEXT)?
            .into_iter()
            .map(|(id, seq)| (JobId(id), seq))
            .collect(),
        };
        for row in &outcomes {
            let status: JobStatus = row
                .try_get::<String, _>("status")
                .context(CONTEXT)?
                .parse()?;
            let jobs: i64 = row.try_get("jobs").context(CONTEXT)?;
            match status {
                JobStatus::Delivered => summary.delivered += jobs,
                JobStatus::Failed => {
                    summary.failed += jobs;
                    let class = row
                        .try_get::<Option<String>, _>("error_class")
                        .context(CONTEXT)?
                        .and_then(|class| class.parse().ok())
                        .unwrap_or(ErrorClass::Unknown);
                    match summary.failures.iter_mut().find(|(c, _)| *c == class) {
                        Some((_, count)) => *count += jobs,
                        None => summary.failures.push((class, jobs)),
                    }
                }
                _ => {}
            }
        }
        summary.failures.sort();
        Ok(summary)
    }

    /// A delivered video of `user`, to send again; `None` when the job is not theirs or not
    /// delivered.
    pub async fn resend_target(
        &self,
        job: JobId,
        user: UserId,
    ) -> Result<Option<Resend>, StoreError> {
        sqlx::query_as(
            "SELECT j.id AS job_id, o.chat_id, j.seq, o.video_count, o.language,
                    j.result_url, j.tg_file_id AS file_id
             FROM jobs j JOIN orders o ON o.id = j.order_id
             WHERE j.id = $1 AND j.user_id = $2 AND j.status = $3",
        )
        .bind(job.0)
        .bind(user.0)
        .bind(JobStatus::Delivered.as_str())
        .fetch_optional(&self.pool)
        .await
        .context("reading a video to send again")
    }

    /// The user now has the video: record Telegram's ids, the delivery is confirmed.
    pub async fn confirm_delivery(
        &self,
        job: JobId,
        message_id: i64,
        file_id: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET delivery_unconfirmed = 0, tg_message_id = $2,
                    tg_file_id = COALESCE($3, tg_file_id), updated_at = $4
             WHERE id = $1 AND status = $5",
        )
        .bind(job.0)
        .bind(message_id)
        .bind(file_id)
        .bind(self.now())
        .bind(JobStatus::Delivered.as_str())
        .execute(&self.pool)
        .await
        .context("confirming a delivery")?;
        Ok(())
    }
}
