//! What operators look at: the queue's state and the data invariants (money, jobs, summaries).

use std::fmt;
use std::time::Duration;

use sqlx::Row;

use super::{ResultExt, Store, StoreError};
use crate::clock::{millis_of, Millis};
use crate::domain::{JobId, JobStatus, OrderId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Every status, including those with no job.
    pub by_status: Vec<(JobStatus, i64)>,
    /// Jobs a worker holds right now.
    pub held: i64,
    /// Jobs nobody holds that could be claimed right now.
    pub due: i64,
    pub oldest_queued_age: Option<Duration>,
    pub workers: Vec<WorkerStats>,
}

impl QueueStats {
    /// Jobs that have ended, whichever way.
    pub fn ended(&self) -> i64 {
        self.by_status
            .iter()
            .filter(|(status, _)| status.is_terminal())
            .map(|(_, jobs)| jobs)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub heartbeat_age: Duration,
    pub alive: bool,
    pub held_jobs: i64,
}

/// A broken invariant: a bug or a hand-edited database, never a normal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    BalanceDiffersFromLedger {
        user: UserId,
        credits: i64,
        ledger_sum: i64,
    },
    NegativeBalance {
        user: UserId,
        credits: i64,
    },
    FailedJobRefundCount {
        job: JobId,
        refunds: i64,
    },
    RefundOfUnfailedJob {
        job: JobId,
        status: String,
        refunds: i64,
    },
    OrderDebitMismatch {
        order: OrderId,
        cost: i64,
        debited: i64,
    },
    OrderJobCountMismatch {
        order: OrderId,
        video_count: i64,
        jobs: i64,
    },
    FinishedJobStillHeld {
        job: JobId,
        status: String,
    },
    /// A payment whose ledger rows do not match it: not credited once with its credits, or
    /// a refund not taken back as recorded.
    PaymentLedgerMismatch {
        charge_id: String,
        credits: i64,
        credited: i64,
        taken_back: i64,
    },
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::BalanceDiffersFromLedger {
                user,
                credits,
                ledger_sum,
            } => write!(
                f,
                "user {user}: balance {credits} but ledger rows sum to {ledger_sum}"
            ),
            Breach::NegativeBalance { user, credits } => {
                write!(f, "user {user}: negative balance {credits}")
            }
            Breach::FailedJobRefundCount { job, refunds } => {
                write!(
                    f,
                    "job {job}: failed with {refunds} refunds instead of exactly 1"
                )
            }
            Breach::RefundOfUnfailedJob {
                job,
                status,
                refunds,
            } => {
                write!(f, "job {job}: {status} but refunded {refunds} times")
            }
            Breach::OrderDebitMismatch {
                order,
                cost,
                debited,
            } => write!(
                f,
                "order {order}: costs {cost} credits but its debit rows sum to {debited}"
            ),
            Breach::OrderJobCountMismatch {
                order,
                video_count,
                jobs,
            } => write!(
                f,
                "order {order}: {video_count} videos ordered but {jobs} jobs exist"
            ),
            Breach::FinishedJobStillHeld { job, status } => {
                write!(f, "job {job}: {status} but still held by a worker")
            }
            Breach::PaymentLedgerMismatch {
                charge_id,
                credits,
                credited,
                taken_back,
            } => write!(
                f,
                "payment {charge_id}: bought {credits} credits, the ledger credited {credited} and took back {taken_back}"
            ),
        }
    }
}

impl Store {
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        const CONTEXT: &str = "reading queue statistics";
        let now = self.now();
        let counted = sqlx::query("SELECT status, COUNT(*) AS jobs FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .context(CONTEXT)?;
        let mut by_status: Vec<(JobStatus, i64)> =
            JobStatus::ALL.iter().map(|status| (*status, 0)).collect();
        for row in &counted {
            let status: JobStatus = row
                .try_get::<String, _>("status")
                .context(CONTEXT)?
                .parse()?;
            let jobs: i64 = row.try_get("jobs").context(CONTEXT)?;
            if let Some(entry) = by_status.iter_mut().find(|(s, _)| *s == status) {
                entry.1 = jobs;
            }
        }
        let totals = sqlx::query(
            "SELECT COUNT(CASE WHEN locked_by IS NOT NULL THEN 1 END) AS held,
                    COUNT(CASE WHEN locked_by IS NULL AND status NOT IN ('delivered', 'failed')
                                    AND run_at <= $1 THEN 1 END) AS due,
                    MIN(CASE WHEN status = 'queued' THEN created_at END) AS oldest_queued
             FROM jobs",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .context(CONTEXT)?;
        let oldest: Option<i64> = totals.try_get("oldest_queued").context(CONTEXT)?;
        let dead_after = millis_of(self.options.worker_dead_after);
        let beat_now = self.liveness_now().await?;
        let workers = sqlx::query(
            "SELECT w.id, w.hostname, w.pid, w.heartbeat_at,
                    (SELECT COUNT(*) FROM jobs j WHERE j.locked_by = w.id) AS held_jobs
             FROM workers w ORDER BY w.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?
        .iter()
        .map(|row| {
            let heartbeat_at: i64 = row.try_get("heartbeat_at").context(CONTEXT)?;
            let age = beat_now.saturating_sub(heartbeat_at).max(0);
            Ok(WorkerStats {
                id: row.try_get("id").context(CONTEXT)?,
                hostname: row.try_get("hostname").context(CONTEXT)?,
                pid: row.try_get("pid").context(CONTEXT)?,
                heartbeat_age: age_of(age),
                alive: age <= dead_after,
                held_jobs: row.try_get("held_jobs").context(CONTEXT)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(QueueStats {
            by_status,
            held: totals.try_get("held").context(CONTEXT)?,
            due: totals.try_get("due").context(CONTEXT)?,
            oldest_queued_age: oldest.map(|created| age_of(now.saturating_sub(created))),
            workers,
        })
    }

    /// Every breach of the data invariants; empty when the data is sound.
    /// When the oldest job still waiting for its first claim was placed (an indexed read).
    pub async fn oldest_queued_at(&self) -> Result<Option<Millis>, StoreError> {
        sqlx::query_scalar("SELECT MIN(created_at) FROM jobs WHERE status = 'queued'")
            .fetch_one(&self.pool)
            .await
            .context("reading the oldest queued job")
    }

    pub async fn check_invariants(&self) -> Result<Vec<Breach>, StoreError> {
        const CONTEXT: &str = "checking invariants";
        let mut breaches = Vec::new();

        let balances = sqlx::query(
            "SELECT u.id, u.credits, CAST(COALESCE(SUM(l.delta), 0) AS BIGINT) AS ledger_sum
             FROM users u LEFT JOIN ledger l ON l.user_id = u.id
             GROUP BY u.id, u.credits
             HAVING u.credits <> COALESCE(SUM(l.delta), 0) OR u.credits < 0
             ORDER BY u.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &balances {
            let user = UserId(row.try_get("id").context(CONTEXT)?);
            let credits: i64 = row.try_get("credits").context(CONTEXT)?;
            let ledger_sum: i64 = row.try_get("ledger_sum").context(CONTEXT)?;
            if credits != ledger_sum {
                breaches.push(Breach::BalanceDiffersFromLedger {
                    user,
                    credits,
                    ledger_sum,
                });
            }
            if credits < 0 {
                breaches.push(Breach::NegativeBalance { user, credits });
            }
        }

        let refunds = sqlx::query(
            "SELECT j.id, j.status, COUNT(l.id) AS refunds
             FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id AND l.kind = 'refund'
             GROUP BY j.id, j.status
             HAVING (j.status = 'failed' AND COUNT(l.id) <> 1)
                 OR (j.status <> 'failed' AND COUNT(l.id) > 0)
             ORDER BY j.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &refunds {
            let job = JobId(row.try_get("id").context(CONTEXT)?);
            let status: String = row.try_get("status").context(CONTEXT)?;
            let refunds: i64 = row.try_get("refunds").context(CONTEXT)?;
            breaches.push(if status == JobStatus::Failed.as_str() {
                Breach::FailedJobRefundCount { job, refunds }
            } else {
                Breach::RefundOfUnfailedJob {
                    job,
                    status,
                    refunds,
                }
            });
        }

        let debits = sqlx::query(
            "SELECT o.id, o.video_count * o.unit_price AS cost,
                    CAST(COALESCE(-SUM(l.delta), 0) AS BIGINT) AS debited
             FROM orders o LEFT JOIN ledger l ON l.order_id = o.id AND l.kind = 'order'
             GROUP BY o.id, o.video_count, o.unit_price
             HAVING COALESCE(-SUM(l.delta), 0) <> o.video_count * o.unit_price
             ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &debits {
            breaches.push(Breach::OrderDebitMismatch {
                order: OrderId(row.try_get("id").context(CONTEXT)?),
                cost: row.try_get("cost").context(CONTEXT)?,
                debited: row.try_get("debited").context(CONTEXT)?,
            });
        }

        let job_counts = sqlx::query(
            "SELECT o.id, o.video_count, COUNT(j.id) AS jobs
             FROM orders o LEFT JOIN jobs j ON j.order_id = o.id
             GROUP BY o.id, o.video_count
             HAVING COUNT(j.id) <> o.video_count
             ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &job_counts {
            breaches.push(Breach::OrderJobCountMismatch {
                order: OrderId(row.try_get("id").context(CONTEXT)?),
                video_count: row.try_get("video_count").context(CONTEXT)?,
                jobs: row.try_get("jobs").context(CONTEXT)?,
            });
        }

        let held_finished = sqlx::query(
            "SELECT id, status FROM jobs
             WHERE locked_by IS NOT NULL AND status IN ('delivered', 'failed') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &held_finished {
            breaches.push(Breach::FinishedJobStillHeld {
                job: JobId(row.try_get("id").context(CONTEXT)?),
                status: row.try_get("status").context(CONTEXT)?,
            });
        }
        let payments = sqlx::query(
            "SELECT p.charge_id, p.credits, COALESCE(p.refunded_credits, 0) AS refunded,
                    CAST(COALESCE(SUM(CASE WHEN l.kind = 'purchase' THEN l.delta END), 0) AS BIGINT) AS credited,
                    CAST(COALESCE(-SUM(CASE WHEN l.kind = 'payment_refund' THEN l.delta END), 0) AS BIGINT) AS taken_back,
                    COUNT(CASE WHEN l.kind = 'purchase' THEN 1 END) AS purchases
             FROM payments p LEFT JOIN ledger l ON l.payment_id = p.charge_id
             GROUP BY p.charge_id, p.credits, p.refunded_credits
             HAVING COUNT(CASE WHEN l.kind = 'purchase' THEN 1 END) <> 1
                 OR COALESCE(SUM(CASE WHEN l.kind = 'purchase' THEN l.delta END), 0) <> p.credits
                 OR COALESCE(-SUM(CASE WHEN l.kind = 'payment_refund' THEN l.delta END), 0)
                    <> COALESCE(p.refunded_credits, 0)
             ORDER BY p.charge_id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        for row in &payments {
            breaches.push(Breach::PaymentLedgerMismatch {
                charge_id: row.try_get("charge_id").context(CONTEXT)?,
                credits: row.try_get("credits").context(CONTEXT)?,
                credited: row.try_get("credited").context(CONTEXT)?,
                taken_back: row.try_get("taken_back").context(CONTEXT)?,
            });
        }
        Ok(breaches)
    }
}

fn age_of(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}
