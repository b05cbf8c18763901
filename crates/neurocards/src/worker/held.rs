//! Jobs the database says this process holds but no task of it works on (a job task that
//! ended while the database was away and could not hand its job back) are handed back, so no
//! job stays held by a process that still heartbeats.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::Worker;
use crate::domain::JobId;

#[derive(Default, Clone)]
pub(crate) struct Running {
    jobs: Arc<Mutex<HashSet<JobId>>>,
}

/// Marks a job as worked on for as long as it lives: taken when the job is claimed, before
/// its task starts, and dropped with the task however it ends.
pub(crate) struct RunningGuard {
    running: Running,
    job: JobId,
}

impl Running {
    pub(crate) fn enter(&self, job: JobId) -> RunningGuard {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job);
        }
        RunningGuard {
            running: self.clone(),
            job,
        }
    }

    fn contains(&self, job: JobId) -> bool {
        self.jobs
            .lock()
            .map(|jobs| jobs.contains(&job))
            .unwrap_or(true)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.running.jobs.lock() {
            jobs.remove(&self.job);
        }
    }
}

impl Worker {
    pub(super) async fn release_orphans(&self) {
        let held = match self.store.held_jobs(&self.info.id).await {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(error = %err, "listing the jobs this worker holds failed");
                return;
            }
        };
        for lease in held {
            if self.running.contains(lease.job_id) {
                continue;
            }
            let job = lease.job_id;
            match self.store.release_job(&lease).await {
                Ok(()) => {
                    tracing::warn!(job = %job, "handed back a job this worker held but no longer worked on")
                }
                // Claimed a moment ago and not started yet, or already handed back.
                Err(err) => tracing::debug!(job = %job, error = %err, "not handed back"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_counts_as_running_while_its_guard_lives() {
        let running = Running::default();
        {
            let _guard = running.enter(JobId(7));
            assert!(running.contains(JobId(7)));
        }
        assert!(!running.contains(JobId(7)));
    }
}
