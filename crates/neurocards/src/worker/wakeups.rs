//! Early wake-ups of jobs waiting on a KIE task: a callback names the task, and the job
//! that follows it queries at once instead of at its next poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Wakeups {
    waiting: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Wakeups {
    /// The signal a job following `task_id` waits on.
    pub fn register(&self, task_id: &str) -> Arc<Notify> {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        waiting.entry(task_id.to_owned()).or_default().clone()
    }

    pub fn forget(&self, task_id: &str) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        waiting.remove(task_id);
    }

    /// Returns whether a job of this process follows the task.
    pub fn wake(&self, task_id: &str) -> bool {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match waiting.get(task_id) {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Wakes the job loop of this process when jobs were queued in it: an order placed by the
/// bot of a `run` process, a dead worker's jobs taken back by this one. Other processes see
/// them at their next look at the queue (`QUEUE_CHECK_EVERY`).
#[derive(Clone, Default)]
pub struct QueueSignal(Arc<Notify>);

impl QueueSignal {
    pub fn jobs_queued(&self) {
        // One stored permit: a loop busy elsewhere claims when it next waits.
        self.0.notify_one();
    }

    pub(crate) async fn queued(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn jobs_queued_while_the_loop_was_busy_wake_it_when_it_waits() {
        let signal = QueueSignal::default();
        signal.jobs_queued();
        signal.jobs_queued();
        let woke = tokio::time::timeout(Duration::from_millis(100), signal.queued()).await;
        assert!(woke.is_ok(), "the signal given before the wait was kept");
        let again = tokio::time::timeout(Duration::from_millis(50), signal.queued()).await;
        assert!(again.is_err(), "two signals while busy wake it once");
    }
}
