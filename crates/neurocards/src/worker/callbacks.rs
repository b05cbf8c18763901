//! KIE's callbacks reach whichever process serves `PUBLIC_URL`: in a split deployment the
//! bot, while the job that follows the task runs in a worker. The receiving process notes a
//! callback none of its own jobs follows in the database, and every worker looks there for
//! its tasks twice a second, so its jobs are woken within about half a second and polling
//! stays the slow safety net it is in `run`. (Without this a worker's jobs polled at KIE's
//! pace, every few seconds while a task is young.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::clock::millis_of;

/// How often the noted callbacks are read.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How far back each look reaches: the receiving host's clock may run a little behind.
const OVERLAP: Duration = Duration::from_secs(5);
/// Noted callbacks older than this are forgotten (a task's job reads it long before).
const KEEP: Duration = Duration::from_secs(3600);
/// Looks between two clean-ups.
const LOOKS_PER_CLEANUP: u32 = 1200;

impl Worker {
    pub(super) async fn keep_watching_callbacks(self: Arc<Self>, stop: CancellationToken) {
        let mut since = self.now().saturating_sub(millis_of(OVERLAP));
        // A callback stays in the overlap for several looks: its job is woken once.
        let mut woken_last_look: HashSet<String> = HashSet::new();
        let mut failing = false;
        let mut looks = 0u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
            match self.store.kie_callbacks_since(since).await {
                Ok((tasks, now)) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("noted KIE callbacks can be read again");
                    }
                    for task in &tasks {
                        if !woken_last_look.contains(task) && self.wakeups.wake(task) {
                            tracing::debug!(%task, "woken by a callback another process received");
                        }
                    }
                    woken_last_look = tasks.into_iter().collect();
                    since = now.saturating_sub(millis_of(OVERLAP));
                }
                Err(err) => {
                    // Polling goes on meanwhile: the jobs are only woken later.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %err, "cannot read the noted KIE callbacks");
                    }
                }
            }
            looks = looks.wrapping_add(1);
            if looks.is_multiple_of(LOOKS_PER_CLEANUP) {
                let before = self.now().saturating_sub(millis_of(KEEP));
                if let Err(err) = self.store.forget_kie_callbacks(before).await {
                    tracing::debug!(error = %err, "could not forget old KIE callbacks");
                }
            }
        }
    }
}
