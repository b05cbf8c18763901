//! The worker's heartbeat runs on a task of its own, so nothing else the worker does (sending
//! summaries, a slow query) can delay it and make the others take over a live worker. It also
//! remembers since when this worker has been reaching the database without a break: a worker
//! takes over the jobs of silent peers only after it has itself been beating for a whole
//! liveness window, so a database outage, which silences everyone, kills nobody.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::clock::{millis_of, Millis};
use crate::store::StoreError;

#[derive(Default)]
pub(crate) struct Liveness {
    /// Since when every heartbeat went through; `None` right after a failed one.
    beating_since: Mutex<Option<Millis>>,
    /// The others took our jobs while we were silent: the job loop must drop them all.
    presumed_dead: AtomicBool,
}

impl Liveness {
    pub(crate) fn beat(&self, now: Millis) {
        if let Ok(mut since) = self.beating_since.lock() {
            since.get_or_insert(now);
        }
    }

    pub(crate) fn missed(&self) {
        if let Ok(mut since) = self.beating_since.lock() {
            *since = None;
        }
    }

    /// True once this worker has beaten without a break for `dead_after`: only then can it
    /// tell a silent peer from a database that was away for everyone.
    pub(crate) fn may_judge_others(&self, now: Millis, dead_after: Duration) -> bool {
        self.beating_since
            .lock()
            .ok()
            .and_then(|since| *since)
            .is_some_and(|since| now.saturating_sub(since) >= millis_of(dead_after))
    }

    pub(crate) fn take_presumed_dead(&self) -> bool {
        self.presumed_dead.swap(false, Ordering::SeqCst)
    }
}

impl Worker {
    /// Beats every `heartbeat_every` until `stop`.
    pub(super) async fn keep_beating(self: Arc<Self>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.settings.heartbeat_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.store.heartbeat(&self.info.id).await {
                Ok(()) => self.liveness.beat(self.now()),
                Err(StoreError::WorkerPresumedDead(_)) => {
                    self.liveness.missed();
                    self.liveness.presumed_dead.store(true, Ordering::SeqCst);
                }
                Err(err) => {
                    self.liveness.missed();
                    tracing::error!(error = %err, "heartbeat failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    #[test]
    fn a_worker_judges_others_only_after_a_whole_window_of_its_own_beats() {
        let liveness = Liveness::default();
        assert!(!liveness.may_judge_others(0, WINDOW), "never beaten yet");
        liveness.beat(1_000);
        liveness.beat(11_000);
        assert!(!liveness.may_judge_others(20_000, WINDOW));
        assert!(liveness.may_judge_others(31_000, WINDOW));
        // The database went away: everyone was silent, nobody is judged until this worker
        // has beaten for a whole window again.
        liveness.missed();
        assert!(!liveness.may_judge_others(40_000, WINDOW));
        liveness.beat(45_000);
        assert!(!liveness.may_judge_others(70_000, WINDOW));
        assert!(liveness.may_judge_others(75_000, WINDOW));
    }
}
