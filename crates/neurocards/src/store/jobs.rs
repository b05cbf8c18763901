//! The job queue: claiming under a lease, and every later write fenced by the lease's token.
//!
//! A claim hands a worker a fresh attempt token. Every write after it presents the token;
//! once the job was taken back (its worker presumed dead), released or finished, the token
//! is stale and the write changes nothing and returns [`StoreError::StaleLease`]. That is
//! what keeps a worker that was only slow from finishing or refunding a job someone else
//! now holds.

use std::time::Duration;

use sqlx::{Any, Row, Transaction};

use super::users::{apply_credit, ledger_entry_from_row, LedgerEntry, LedgerRefs};
use super::{Engine, ResultExt, Store, StoreError};
use crate::clock::{millis_of, Millis};
use crate::domain::generation::GenerationSpec;
use crate::domain::{ChatId, ErrorClass, JobId, JobStatus, Lang, LedgerKind, OrderId, UserId};

/// A worker's hold on one job. Only its holder knows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: JobId,
    pub token: String,
}

/// A job as a worker receives it: everything needed to resume it from what is stored.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub lease: Lease,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub chat_id: ChatId,
    pub seq: i64,
    /// Videos in the order, for "video 2 of 3".
    pub video_count: i64,
    pub status: JobStatus,
    /// Failed attempts so far that were retried.
    pub attempts: i64,
    /// When set, a createTask may have reached KIE for the current attempt.
    pub submit_started_at: Option<Millis>,
    /// When set, follow this task with this key; never create a second one.
    pub kie_task_id: Option<String>,
    pub kie_key_id: Option<String>,
    pub photo_file_id: String,
    pub template_id: Option<String>,
    pub prompt: String,
    pub generation: GenerationSpec,
    pub language: Lang,
    /// When the order was placed: the metrics measure each video from it.
    pub ordered_at: Millis,
}

/// What Telegram answered when the video was sent. `message_id` is `None` when the user
/// could not receive it (blocked the bot) or when the answer never came (`unconfirmed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: Option<i64>,
    pub file_id: Option<String>,
    /// The send may or may not have reached the user: it is not repeated on its own, never
    /// refunded, and the user can ask for the video again.
    pub unconfirmed: bool,
}

impl Delivery {
    pub fn unconfirmed() -> Delivery {
        Delivery {
            unconfirmed: true,
            ..Delivery::default()
        }
    }
}

impl From<crate::telegram::SentVideo> for Delivery {
    fn from(sent: crate::telegram::SentVideo) -> Self {
        Delivery {
            message_id: Some(sent.message_id),
            file_id: sent.file_id,
            unconfirmed: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    pub credits: i64,
    pub balance_after: i64,
}

/// Everything known about a job, for `admin job`.
#[derive(Debug, Clone)]
pub struct JobDetails {
    pub id: JobId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub seq: i64,
    pub video_count: i64,
    pub status: JobStatus,
    pub attempts: i64,
    pub run_at: Millis,
    pub locked_by: Option<String>,
    pub claimed_at: Option<Millis>,
    pub submit_started_at: Option<Millis>,
    pub kie_task_id: Option<String>,
    pub kie_key_id: Option<String>,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub tg_message_id: Option<i64>,
    pub tg_file_id: Option<String>,
    pub template_id: Option<String>,
    pub prompt: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
    pub ledger: Vec<LedgerEntry>,
}

#[derive(sqlx::FromRow)]
struct JobDetailsRow {
    #[sqlx(try_from = "i64")]
    order_id: OrderId,
    #[sqlx(try_from = "i64")]
    user_id: UserId,
    seq: i64,
    video_count: i64,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    attempts: i64,
    run_at: Millis,
    locked_by: Option<String>,
    claimed_at: Option<Millis>,
    submit_started_at: Option<Millis>,
    kie_task_id: Option<String>,
    kie_key_id: Option<String>,
    error_class: Option<String>,
    error_message: Option<String>,
    tg_message_id: Option<i64>,
    tg_file_id: Option<String>,
    template_id: Option<String>,
    prompt: String,
    created_at: Millis,
    updated_at: Millis,
    finished_at: Option<Millis>,
}

/// SQLite holds one writer at a time, so one statement can count held jobs per user and
/// claim within the limit.
const SQLITE_CLAIM: &str = "
    WITH held AS (
        SELECT user_id, COUNT(*) AS n FROM jobs WHERE locked_by IS NOT NULL GROUP BY user_id
    ),
    ranked AS (
        SELECT id, user_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) AS rn
        FROM jobs
        WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed') AND run_at <= $3
    )
    UPDATE jobs SET locked_by = $1, attempt_token = $2, claimed_at = $3, updated_at = $3
    WHERE id IN (
        SELECT r.id FROM ranked r LEFT JOIN held h ON h.user_id = r.user_id
        WHERE r.rn + COALESCE(h.n, 0) <= $4
        ORDER BY r.id LIMIT $5
    )";

/// PostgreSQL, step 1: lock the users whose jobs this claim may take. A user row locked by
/// a concurrent claimer is skipped, so two claimers never count one user's jobs at once and
/// the per-user limit holds under any concurrency. Only the oldest `$4` due jobs of users
/// below the limit are looked at (an index walk), so a claim costs the same whatever the
/// length of the queue; a user with more due jobs than that window holds fills it until they
/// reach the limit, a claim or two.
const POSTGRES_LOCK_USERS: &str = "
    WITH full_users AS MATERIALIZED (
        SELECT user_id FROM jobs WHERE locked_by IS NOT NULL
        GROUP BY user_id HAVING COUNT(*) >= $2
    ),
    due AS (
        SELECT id, user_id FROM jobs
        WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed') AND run_at <= $1
          AND user_id NOT IN (SELECT user_id FROM full_users)
        ORDER BY id
        LIMIT $4
    )
    SELECT u.id FROM users u
    JOIN (SELECT user_id, MIN(id) AS first_job FROM due GROUP BY user_id) d ON d.user_id = u.id
    ORDER BY d.first_job
    LIMIT $3
    FOR UPDATE OF u SKIP LOCKED";

/// The fewest due jobs a claim looks at. A user below the limit whose jobs fill the window
/// is the only one a claim sees, and concurrent claimers skip that user's locked row and find
/// nobody: a window wider than any one user's usual queue keeps them busy.
const CLAIM_WINDOW_AT_LEAST: i64 = 500;

/// PostgreSQL, step 2, in a new statement so its snapshot sees every claim committed before
/// the locks were taken. Job rows are locked with SKIP LOCKED too.
const POSTGRES_CLAIM: &str = "
    WITH mine AS (
        SELECT CAST(unnest(string_to_array($6, ',')) AS BIGINT) AS user_id
    ),
    held AS (
        SELECT user_id, COUNT(*) AS n FROM jobs
        WHERE locked_by IS NOT NULL AND user_id IN (SELECT user_id FROM mine)
        GROUP BY user_id
    ),
    ranked AS (
        SELECT id, user_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) AS rn
        FROM jobs
        WHERE locked_by IS NULL AND status NOT IN ('delivered', 'failed') AND run_at <= $3
          AND user_id IN (SELECT user_id FROM mine)
    ),
    picked AS (
        SELECT j.id FROM jobs j
        WHERE j.id IN (SELECT r.id FROM ranked r LEFT JOIN held h ON h.user_id = r.user_id
                       WHERE r.rn + COALESCE(h.n, 0) <= $4)
        ORDER BY j.id LIMIT $5
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs SET locked_by = $1, attempt_token = $2, claimed_at = $3, updated_at = $3
    WHERE id IN (SELECT id FROM picked) AND locked_by IS NULL";

const CLAIMED_JOBS: &str = "
    SELECT j.id, j.order_id, j.user_id, j.seq, j.status, j.attempts, j.submit_started_at,
           j.kie_task_id, j.kie_key_id, o.chat_id, o.video_count, o.photo_file_id, o.template_id, o.prompt,
           o.generation, o.language, o.created_at AS ordered_at
    FROM jobs j JOIN orders o ON o.id = j.order_id
    WHERE j.attempt_token = $1
    ORDER BY j.id";

impl Store {
    /// Claims up to `max` due jobs for `worker`, oldest first, keeping at most
    /// `per_user_active_limit` jobs of any user held at once. Each claim gets a fresh
    /// attempt token. Jobs keep their phase: a job taken over mid-generation comes back
    /// `generating` with its KIE task id.
    pub async fn claim_jobs(
        &self,
        worker: &str,
        max: usize,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        const CONTEXT: &str = "claiming jobs";
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let limit = i64::from(self.options.per_user_active_limit);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        match self.engine {
            Engine::Sqlite => {
                sqlx::query(SQLITE_CLAIM)
                    .bind(worker)
                    .bind(token.as_str())
                    .bind(now)
                    .bind(limit)
                    .bind(max)
                    .execute(&mut *tx)
                    .await
                    .context(CONTEXT)?;
            }
            Engine::Postgres => {
                let users: Vec<i64> = sqlx::query_scalar(POSTGRES_LOCK_USERS)
                    .bind(now)
                    .bind(limit)
                    .bind(max)
                    .bind(max.saturating_mul(limit.max(1)).max(CLAIM_WINDOW_AT_LEAST))
                    .fetch_all(&mut *tx)
                    .await
                    .context(CONTEXT)?;
                if users.is_empty() {
                    tx.rollback().await.context(CONTEXT)?;
                    return Ok(Vec::new());
                }
                let users = users
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                sqlx::query(POSTGRES_CLAIM)
                    .bind(worker)
                    .bind(token.as_str())
                    .bind(now)
                    .bind(limit)
                    .bind(max)
                    .bind(users)
                    .execute(&mut *tx)
                    .await
                    .context(CONTEXT)?;
            }
        }
        let rows: Vec<ClaimedJobRow> = sqlx::query_as(CLAIMED_JOBS)
            .bind(token.as_str())
            .fetch_all(&mut *tx)
            .await
            .context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)?;
        Ok(rows
            .into_iter()
            .map(|row| row.into_claimed(&token))
            .collect())
    }

    /// Records, before the createTask request leaves, that one may reach KIE: a job taken
    /// over in this state must not blindly submit again.
    pub async fn mark_submit_started(&self, lease: &Lease) -> Result<(), StoreError> {
        let to = JobStatus::Submitting;
        let sql = fenced_move("status = $3, submit_started_at = $4, updated_at = $4", to);
        let update = fenced_query(sql, lease).bind(to.as_str()).bind(self.now());
        self.transition(lease, Move::to(to), "recording a submission", update)
            .await
    }

    /// Stores the KIE task id and the key that created it, the moment KIE accepts the task.
    pub async fn record_task(
        &self,
        lease: &Lease,
        task_id: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        let to = JobStatus::Generating;
        let sql = fenced_move(
            "status = $3, kie_task_id = $4, kie_key_id = $5, updated_at = $6",
            to,
        );
        let update = fenced_query(sql, lease)
            .bind(to.as_str())
            .bind(task_id.to_owned())
            .bind(key_id.to_owned())
            .bind(self.now());
        let made = Move {
            to,
            task_id: Some(task_id),
        };
        self.transition(lease, made, "recording a KIE task", update)
            .await
    }

    /// Records that the video is about to be sent: from here on the job is never generated
    /// again, so a video cannot reach the user twice.
    pub async fn mark_delivering(&self, lease: &Lease, result_url: &str) -> Result<(), StoreError> {
        let to = JobStatus::Delivering;
        let sql = fenced_move("status = $3, result_url = $4, updated_at = $5", to);
        let update = fenced_query(sql, lease)
            .bind(to.as_str())
            .bind(result_url.to_owned())
            .bind(self.now());
        self.transition(lease, Move::to(to), "recording a delivery start", update)
            .await
    }

    /// Ends the job as delivered and releases it.
    pub async fn mark_delivered(
        &self,
        lease: &Lease,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        let to = JobStatus::Delivered;
        let sql = fenced_move(
            "status = $3, tg_message_id = $4, tg_file_id = $5, delivery_unconfirmed = $6,
             locked_by = NULL, attempt_token = NULL, updated_at = $7, finished_at = $7",
            to,
        );
        let update = fenced_query(sql, lease)
            .bind(to.as_str())
            .bind(delivery.message_id)
            .bind(delivery.file_id.clone())
            .bind(i64::from(delivery.unconfirmed))
            .bind(self.now());
        self.transition(lease, Move::to(to), "recording a delivery", update)
            .await
    }

    /// Puts the job back in the queue for a new attempt after `delay`, releasing it. The
    /// failed attempt's task id is dropped: the next attempt creates its own task.
    pub async fn schedule_retry(
        &self,
        lease: &Lease,
        delay: Duration,
        class: ErrorClass,
        message: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let to = JobStatus::Queued;
        let sql = fenced_move(
            "status = $3, attempts = attempts + 1, run_at = $4,
             error_class = $5, error_message = $6, submit_started_at = NULL,
             kie_task_id = NULL, kie_key_id = NULL,
             locked_by = NULL, attempt_token = NULL, claimed_at = NULL, updated_at = $7",
            to,
        );
        let update = fenced_query(sql, lease)
            .bind(to.as_str())
            .bind(now.saturating_add(millis_of(delay)))
            .bind(class.as_str())
            .bind(message.to_owned())
            .bind(now);
        self.transition(lease, Move::to(to), "scheduling a retry", update)
            .await
    }

    /// Ends the job as failed and refunds its credit, in one transaction. A unique index
    /// allows one refund per job, so no caller can pay it twice.
    pub async fn fail_job(
        &self,
        lease: &Lease,
        class: ErrorClass,
        message: &str,
    ) -> Result<Refund, StoreError> {
        const CONTEXT: &str = "failing and refunding a job";
        let (mut tx, job) = self
            .begin_transition(lease, JobStatus::Failed, CONTEXT)
            .await?;
        let now = self.now();
        sqlx::query(
            "UPDATE jobs SET status = $5, error_class = $2, error_message = $3,
                    locked_by = NULL, attempt_token = NULL, updated_at = $4, finished_at = $4
             WHERE id = $1",
        )
        .bind(lease.job_id.0)
        .bind(class.as_str())
        .bind(message)
        .bind(now)
        .bind(JobStatus::Failed.as_str())
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        let refs = LedgerRefs {
            order_id: Some(job.order_id),
            job_id: Some(lease.job_id),
            payment_id: None,
        };
        let reason = Some(class.as_str());
        let balance_after = apply_credit(
            &mut tx,
            job.user_id,
            job.unit_price,
            LedgerKind::Refund,
            reason,
            refs,
            now,
        )
        .await?;
        tx.commit().await.context(CONTEXT)?;
        Ok(Refund {
            credits: job.unit_price,
            balance_after,
        })
    }

    /// Hands the job back to the queue as it stands (phase, task id and all), for another
    /// worker to resume at once. Used on shutdown.
    pub async fn release_job(&self, lease: &Lease) -> Result<(), StoreError> {
        const CONTEXT: &str = "releasing a job";
        let released = sqlx::query(
            "UPDATE jobs SET locked_by = NULL, attempt_token = NULL, claimed_at = NULL, updated_at = $3
             WHERE id = $1 AND attempt_token = $2",
        )
        .bind(lease.job_id.0)
        .bind(lease.token.as_str())
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if released == 0 {
            return Err(self.why_not_held(lease.job_id).await?);
        }
        Ok(())
    }

    pub async fn job(&self, id: JobId) -> Result<Option<JobDetails>, StoreError> {
        const CONTEXT: &str = "reading a job";
        let Some(row) = sqlx::query_as::<_, JobDetailsRow>(
            "SELECT j.order_id, j.user_id, j.seq, j.status, j.attempts, j.run_at, j.locked_by,
                    j.claimed_at, j.submit_started_at, j.kie_task_id, j.kie_key_id, j.error_class,
                    j.error_message, j.tg_message_id, j.tg_file_id, j.created_at, j.updated_at,
                    j.finished_at, o.video_count, o.template_id, o.prompt
             FROM jobs j JOIN orders o ON o.id = j.order_id WHERE j.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .context(CONTEXT)?
        else {
            return Ok(None);
        };
        let ledger = sqlx::query(
            "SELECT id, user_id, delta, kind, reason, order_id, job_id, payment_id, created_at
             FROM ledger WHERE job_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?
        .iter()
        .map(ledger_entry_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let error_class = row
            .error_class
            .as_deref()
            .map(str::parse::<ErrorClass>)
            .transpose()
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        Ok(Some(JobDetails {
            id,
            order_id: row.order_id,
            user_id: row.user_id,
            seq: row.seq,
            video_count: row.video_count,
            status: row.status,
            attempts: row.attempts,
            run_at: row.run_at,
            locked_by: row.locked_by,
            claimed_at: row.claimed_at,
            submit_started_at: row.submit_started_at,
            kie_task_id: row.kie_task_id,
            kie_key_id: row.kie_key_id,
            error_class,
            error_message: row.error_message,
            tg_message_id: row.tg_message_id,
            tg_file_id: row.tg_file_id,
            template_id: row.template_id,
            prompt: row.prompt,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
            ledger,
        }))
    }

    /// Runs `update`, a statement made by [`fenced_move`] and [`fenced_query`], as one
    /// statement: the lease and the legality of the move are its `WHERE`, so a move costs
    /// one round trip and one commit. When it changed nothing, a read says why.
    async fn transition(
        &self,
        lease: &Lease,
        made: Move<'_>,
        context: &'static str,
        update: AnyQuery<'_>,
    ) -> Result<(), StoreError> {
        let moved = update
            .execute(&self.pool)
            .await
            .context(context)?
            .rows_affected();
        if moved > 0 {
            return Ok(());
        }
        self.why_not_moved(lease, made, context).await
    }

    /// Why a fenced move changed nothing. A move found already made under the same lease
    /// is this holder's own write, committed while its answer was lost (a timeout, a
    /// dropped connection) and now tried again: it counts as done, so a blip at the wrong
    /// moment does not make the holder give up a job it still holds.
    async fn why_not_moved(
        &self,
        lease: &Lease,
        made: Move<'_>,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT status, attempt_token, kie_task_id FROM jobs WHERE id = $1")
            .bind(lease.job_id.0)
            .fetch_optional(&self.pool)
            .await
            .context(context)?
            .ok_or(StoreError::UnknownJob(lease.job_id))?;
        let from = held_phase(&row, lease, context)?;
        let task_id: Option<String> = row.try_get("kie_task_id").context(context)?;
        let same_task = made
            .task_id
            .is_none_or(|expected| task_id.as_deref() == Some(expected));
        if from == made.to && same_task {
            return Ok(());
        }
        Err(StoreError::IllegalTransition {
            job: lease.job_id,
            from,
            to: made.to,
        })
    }

    /// Opens a write transaction holding the job's row, after checking the lease is current
    /// and the move is legal. The caller performs its update and commits.
    async fn begin_transition(
        &self,
        lease: &Lease,
        to: JobStatus,
        context: &'static str,
    ) -> Result<(Transaction<'static, Any>, LockedJob), StoreError> {
        let sql = match self.engine {
            Engine::Sqlite => {
                "SELECT j.status, j.attempt_token, j.user_id, j.order_id, o.unit_price
                 FROM jobs j JOIN orders o ON o.id = j.order_id WHERE j.id = $1"
            }
            Engine::Postgres => {
                "SELECT j.status, j.attempt_token, j.user_id, j.order_id, o.unit_price
                 FROM jobs j JOIN orders o ON o.id = j.order_id WHERE j.id = $1
                 FOR UPDATE OF j"
            }
        };
        let mut tx = self.begin_write(context).await?;
        let row = sqlx::query(sql)
            .bind(lease.job_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context(context)?
            .ok_or(StoreError::UnknownJob(lease.job_id))?;
        let from = held_phase(&row, lease, context)?;
        if !from.can_move_to(to) {
            return Err(StoreError::IllegalTransition {
                job: lease.job_id,
                from,
                to,
            });
        }
        let job = LockedJob {
            user_id: UserId(row.try_get("user_id").context(context)?),
            order_id: OrderId(row.try_get("order_id").context(context)?),
            unit_price: row.try_get("unit_price").context(context)?,
        };
        Ok((tx, job))
    }

    async fn why_not_held(&self, job: JobId) -> Result<StoreError, StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
            .bind(job.0)
            .fetch_optional(&self.pool)
            .await
            .context("reading a job")?;
        Ok(match exists {
            Some(_) => StoreError::StaleLease(job),
            None => StoreError::UnknownJob(job),
        })
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// A move of a job to `to`; `task_id`, when set, must be the one recorded for a repeat of
/// the move to count as already made.
#[derive(Clone, Copy)]
struct Move<'a> {
    to: JobStatus,
    task_id: Option<&'a str>,
}

impl Move<'_> {
    fn to(to: JobStatus) -> Move<'static> {
        Move { to, task_id: None }
    }
}

/// `UPDATE jobs SET <set>` fenced by the lease (`$1` the job id, `$2` its token) and by the
/// phases the job may move to `to` from ([`JobStatus::can_move_to`]); `set` numbers its own
/// parameters from `$3`.
fn fenced_move(set: &str, to: JobStatus) -> String {
    let from: Vec<String> = JobStatus::ALL
        .into_iter()
        .filter(|from| from.can_move_to(to))
        .map(|from| format!("'{}'", from.as_str()))
        .collect();
    format!(
        "UPDATE jobs SET {set} WHERE id = $1 AND attempt_token = $2 AND status IN ({})",
        from.join(", ")
    )
}

/// The statement of [`fenced_move`] with the lease bound.
fn fenced_query(sql: String, lease: &Lease) -> AnyQuery<'_> {
    // Safe to assemble: the only text added to the callers' constant is the phase names.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(lease.job_id.0)
        .bind(lease.token.as_str())
}

/// The phase of a job's row read under `lease`, or why the lease no longer holds it.
fn held_phase(
    row: &sqlx::any::AnyRow,
    lease: &Lease,
    context: &'static str,
) -> Result<JobStatus, StoreError> {
    let token: Option<String> = row.try_get("attempt_token").context(context)?;
    if token.as_deref() != Some(lease.token.as_str()) {
        return Err(StoreError::StaleLease(lease.job_id));
    }
    Ok(row
        .try_get::<String, _>("status")
        .context(context)?
        .parse()?)
}

struct LockedJob {
    user_id: UserId,
    order_id: OrderId,
    unit_price: i64,
}

/// A claimed job's row; the lease token is the claimer's, not a column read back.
#[derive(sqlx::FromRow)]
struct ClaimedJobRow {
    #[sqlx(try_from = "i64")]
    id: JobId,
    #[sqlx(try_from = "i64")]
    order_id: OrderId,
    #[sqlx(try_from = "i64")]
    user_id: UserId,
    #[sqlx(try_from = "i64")]
    chat_id: ChatId,
    seq: i64,
    video_count: i64,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    attempts: i64,
    submit_started_at: Option<i64>,
    kie_task_id: Option<String>,
    kie_key_id: Option<String>,
    photo_file_id: String,
    template_id: Option<String>,
    prompt: String,
    #[sqlx(try_from = "String")]
    generation: GenerationSpec,
    #[sqlx(try_from = "String")]
    language: Lang,
    ordered_at: i64,
}

impl ClaimedJobRow {
    fn into_claimed(self, token: &str) -> ClaimedJob {
        ClaimedJob {
            lease: Lease {
                job_id: self.id,
                token: token.to_owned(),
            },
            order_id: self.order_id,
            user_id: self.user_id,
            chat_id: self.chat_id,
            seq: self.seq,
            video_count: self.video_count,
            status: self.status,
            attempts: self.attempts,
            submit_started_at: self.submit_started_at,
            kie_task_id: self.kie_task_id,
            kie_key_id: self.kie_key_id,
            photo_file_id: self.photo_file_id,
            template_id: self.template_id,
            prompt: self.prompt,
            generation: self.generation,
            language: self.language,
            ordered_at: self.ordered_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_move_names_exactly_the_phases_the_domain_allows() {
        assert_eq!(
            fenced_move("status = $3", JobStatus::Submitting),
            "UPDATE jobs SET status = $3 WHERE id = $1 AND attempt_token = $2 \
             AND status IN ('queued')"
        );
        let retry = fenced_move("status = $3", JobStatus::Queued);
        assert!(
            retry.ends_with("status IN ('queued', 'submitting', 'generating')"),
            "{retry}"
        );
        let delivered = fenced_move("status = $3", JobStatus::Delivered);
        assert!(
            delivered.ends_with("status IN ('delivering')"),
            "{delivered}"
        );
    }
}
