//! Worker liveness: one heartbeat per process, and the takeover of a dead worker's jobs.

use std::time::Duration;

use super::{Lease, ResultExt, Store, StoreError};
use crate::clock::millis_of;
use crate::domain::JobId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
}

impl WorkerInfo {
    /// A unique id for this process: host, pid and a random suffix, so a restarted process
    /// never inherits the leases of its previous life.
    pub fn for_this_process() -> WorkerInfo {
        let info = WorkerInfo::named("");
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        WorkerInfo {
            id: format!("{}-{}-{}", info.hostname, info.pid, &suffix[..8]),
            ..info
        }
    }

    /// A stable id (`WORKER_ID`): a process restarted under it resumes its predecessor's jobs
    /// at once instead of waiting until they are presumed dead. Each live process needs its
    /// own.
    pub fn named(id: &str) -> WorkerInfo {
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .filter(|name| !name.is_empty())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let pid = i64::from(std::process::id());
        WorkerInfo {
            id: id.to_owned(),
            hostname,
            pid,
        }
    }
}

impl Store {
    /// Registers `worker`. Jobs still held under its id belong to a previous process of the
    /// same id (a restart under `WORKER_ID`): they are handed back for anyone to resume now.
    pub async fn register_worker(&self, worker: &WorkerInfo) -> Result<(), StoreError> {
        const CONTEXT: &str = "registering a worker";
        let now = self.liveness_now().await?;
        let mut tx = self.begin_write(CONTEXT).await?;
        sqlx::query(
            "INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                 pid = excluded.pid, started_at = excluded.started_at",
        )
        .bind(worker.id.as_str())
        .bind(worker.hostname.as_str())
        .bind(worker.pid)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        sqlx::query(
            "UPDATE jobs SET locked_by = NULL, attempt_token = NULL, claimed_at = NULL, updated_at = $2
             WHERE locked_by = $1",
        )
        .bind(worker.id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        // The predecessor may have died between sending a summary and recording it: the
        // summary counts as sent, unconfirmed, rather than risk a second one.
        sqlx::query(
            "UPDATE orders SET summary_sent_at = $2
             WHERE summary_claimed_by = $1 AND summary_sent_at IS NULL",
        )
        .bind(worker.id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)
    }

    /// Proves the worker is alive. Fails with [`StoreError::WorkerPresumedDead`] when it was
    /// already declared dead: its leases are gone and it must register again.
    pub async fn heartbeat(&self, worker: &str) -> Result<(), StoreError> {
        let now = self.liveness_now().await?;
        let updated = sqlx::query("UPDATE workers SET heartbeat_at = $2 WHERE id = $1")
            .bind(worker)
            .bind(now)
            .execute(&self.pool)
            .await
            .context("recording a heartbeat")?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::WorkerPresumedDead(worker.to_owned()));
        }
        Ok(())
    }

    /// Worker processes whose heartbeat is recent.
    pub async fn live_workers(&self) -> Result<i64, StoreError> {
        let cutoff = self
            .liveness_now()
            .await?
            .saturating_sub(millis_of(self.options.worker_dead_after));
        sqlx::query_scalar("SELECT COUNT(*) FROM workers WHERE heartbeat_at >= $1")
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .context("counting live workers")
    }

    /// Takes back every job held by a worker whose heartbeat is older than
    /// `worker_dead_after`, or by no registered worker at all, closes the summaries such a
    /// worker had claimed (as sent, unconfirmed), and forgets the dead workers. The jobs keep their phase, KIE task id and key id. Returns how many jobs
    /// were taken back. Safe to run from every worker at once.
    pub async fn requeue_jobs_of_dead_workers(&self) -> Result<u64, StoreError> {
        self.take_back_from_dead_workers(None).await
    }

    /// The same sweep run by the worker `judge`, which only judges while its own heartbeat
    /// is fresh by the database's clock (younger than half of `worker_dead_after`) and never
    /// takes back its own jobs: a worker whose heartbeat was stuck behind a database outage
    /// would otherwise find itself the oldest and take its own jobs back from under itself.
    pub async fn requeue_jobs_of_dead_workers_judged_by(
        &self,
        judge: &str,
    ) -> Result<u64, StoreError> {
        self.take_back_from_dead_workers(Some(judge)).await
    }

    async fn take_back_from_dead_workers(&self, judge: Option<&str>) -> Result<u64, StoreError> {
        const CONTEXT: &str = "taking back the jobs of dead workers";
        let now = self.now();
        let liveness_now = self.liveness_now().await?;
        let dead_after = millis_of(self.options.worker_dead_after);
        let cutoff = liveness_now.saturating_sub(dead_after);
        let mut tx = self.begin_write(CONTEXT).await?;
        if let Some(judge) = judge {
            let fresh_since = liveness_now.saturating_sub(dead_after / 2);
            let judge_is_fresh: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM workers WHERE id = $1 AND heartbeat_at >= $2",
            )
            .bind(judge)
            .bind(fresh_since)
            .fetch_one(&mut *tx)
            .await
            .context(CONTEXT)?;
            if judge_is_fresh == 0 {
                return Ok(0);
            }
        }
        let jobs = sqlx::query(
            "UPDATE jobs SET locked_by = NULL, attempt_token = NULL, claimed_at = NULL, updated_at = $1
             WHERE locked_by IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM workers w
                               WHERE w.id = jobs.locked_by AND w.heartbeat_at >= $2)",
        )
        .bind(now)
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        // A summary claimed by a dead worker may have reached the user (the claim is held
        // across the send): it counts as sent, unconfirmed. A lost summary costs the user a
        // message whose buttons "My videos" also offers; a doubled one is a visible defect.
        sqlx::query(
            "UPDATE orders SET summary_sent_at = $2
             WHERE summary_claimed_by IS NOT NULL AND summary_sent_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM workers w
                               WHERE w.id = orders.summary_claimed_by AND w.heartbeat_at >= $1)",
        )
        .bind(cutoff)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        sqlx::query("DELETE FROM workers WHERE heartbeat_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)?;
        Ok(jobs)
    }

    /// How long until the stalest worker other than `judge` will have been silent for
    /// `worker_dead_after` by the database's clock (zero when it already has); `None` when
    /// no other worker is registered.
    pub async fn until_next_worker_judgement(
        &self,
        judge: &str,
    ) -> Result<Option<Duration>, StoreError> {
        let now = self.liveness_now().await?;
        let stalest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(heartbeat_at) FROM workers WHERE id <> $1")
                .bind(judge)
                .fetch_one(&self.pool)
                .await
                .context("reading the stalest heartbeat")?;
        Ok(stalest.map(|beat| {
            let due = beat
                .saturating_add(millis_of(self.options.worker_dead_after))
                .saturating_sub(now);
            Duration::from_millis(u64::try_from(due).unwrap_or(0))
        }))
    }

    /// The leases the database says `worker` holds.
    pub async fn held_jobs(&self, worker: &str) -> Result<Vec<Lease>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, attempt_token FROM jobs WHERE locked_by = $1 AND attempt_token IS NOT NULL",
        )
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .context("listing a worker's jobs")?;
        Ok(rows
            .into_iter()
            .map(|(id, token)| Lease {
                job_id: JobId(id),
                token,
            })
            .collect())
    }

    /// A clean stop: hands every job the worker holds back to the queue at once (instead
    /// of after `worker_dead_after`) and removes the worker. Returns how many jobs it held.
    pub async fn deregister_worker(&self, worker: &str) -> Result<u64, StoreError> {
        const CONTEXT: &str = "deregistering a worker";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let jobs = sqlx::query(
            "UPDATE jobs SET locked_by = NULL, attempt_token = NULL, claimed_at = NULL, updated_at = $2
             WHERE locked_by = $1",
        )
        .bind(worker)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        sqlx::query(
            "UPDATE orders SET summary_claimed_by = NULL, summary_claimed_at = NULL
             WHERE summary_claimed_by = $1 AND summary_sent_at IS NULL",
        )
        .bind(worker)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(worker)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)?;
        Ok(jobs)
    }
}
