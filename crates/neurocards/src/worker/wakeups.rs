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
