//! The worker's heartbeat runs on a task of its own, so nothing else the worker does (sending
//! summaries, a slow query) can delay it and make the others take over a live worker. It also
//! remembers since when this worker has been reaching the database without a break: a worker
//! takes over the jobs of silent peers only after it has itself been beating for a whole
//! liveness window, so a database outage, which silences everyone, kills nobody.
//!
//! The takeover runs on the same task, right after a beat: a dead worker's jobs wait for
//! `worker_dead_after` and at most one more beat, however busy the job loop is. (It used to
//! run with the job loop's housekeeping, which a steady stream of new jobs or a slow
//! Telegram could hold back for a minute and more: `neurocards chaos` measured 51 and 111 s.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::clock::{millis_of, Millis};
use crate::store::StoreError;

pub(crate) struct Liveness {
    beats: Mutex<Beats>,
    /// The longest gap between two beats that still counts as "without a break": a
    /// heartbeat stuck in a call for the length of an outage fails no call, yet its worker
    /// heard nothing from the database all that time.
    max_gap: Millis,
    /// The others took our jobs while we were silent: the job loop must drop them all.
    presumed_dead: AtomicBool,
}

#[derive(Default, Clone, Copy)]
struct Beats {
    /// Since when every heartbeat went through; `None` right after a failed one.
    since: Option<Millis>,
    last: Option<Millis>,
}

impl Liveness {
    /// `dead_after` is the silence after which the workers judge each other dead.
    pub(crate) fn new(dead_after: Duration) -> Liveness {
        Liveness {
            beats: Mutex::new(Beats::default()),
            max_gap: millis_of(dead_after) / 2,
            presumed_dead: AtomicBool::new(false),
        }
    }

    pub(crate) fn beat(&self, now: Millis) {
        if let Ok(mut beats) = self.beats.lock() {
            let unbroken = beats
                .last
                .is_some_and(|last| now.saturating_sub(last) <= self.max_gap);
            if !unbroken {
                beats.since = None;
            }
            beats.since.get_or_insert(now);
            beats.last = Some(now);
        }
    }

    pub(crate) fn missed(&self) {
        if let Ok(mut beats) = self.beats.lock() {
            beats.since = None;
        }
    }

    /// True once this worker has beaten without a break for `dead_after` and its last beat
    /// is recent: only then can it tell a silent peer from a database that was away for
    /// everyone.
    pub(crate) fn may_judge_others(&self, now: Millis, dead_after: Duration) -> bool {
        let Ok(beats) = self.beats.lock().map(|beats| *beats) else {
            return false;
        };
        let recent = beats
            .last
            .is_some_and(|last| now.saturating_sub(last) <= self.max_gap);
        recent
            && beats
                .since
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
                Ok(()) => {
                    self.liveness.beat(self.now());
                    self.take_back_from_dead_workers().await;
                }
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

impl Worker {
    /// Takes back the jobs of workers silent for `worker_dead_after`, when this worker may
    /// judge them.
    async fn take_back_from_dead_workers(self: &Arc<Self>) {
        if !self
            .liveness
            .may_judge_others(self.now(), self.store.options().worker_dead_after)
        {
            return;
        }
        match self
            .store
            .requeue_jobs_of_dead_workers_judged_by(&self.info.id)
            .await
        {
            Ok(0) => {}
            Ok(taken) => {
                tracing::warn!(jobs = taken, "took back the jobs of dead workers");
                // The alert waits for its turn at Telegram: never on the heartbeat's task.
                let worker = Arc::clone(self);
                tokio::spawn(async move {
                    worker
                        .alerts
                        .raise(crate::alerts::AlertKind::WorkerGone, &[("jobs", &taken)])
                        .await;
                });
            }
            Err(err) => {
                tracing::error!(error = %err, "taking back jobs of dead workers failed")
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
        let liveness = Liveness::new(WINDOW);
        assert!(!liveness.may_judge_others(0, WINDOW), "never beaten yet");
        liveness.beat(1_000);
        liveness.beat(11_000);
        assert!(!liveness.may_judge_others(20_000, WINDOW));
        liveness.beat(21_000);
        assert!(liveness.may_judge_others(31_000, WINDOW));
        // The database went away: everyone was silent, nobody is judged until this worker
        // has beaten for a whole window again.
        liveness.missed();
        assert!(!liveness.may_judge_others(40_000, WINDOW));
        liveness.beat(45_000);
        liveness.beat(55_000);
        liveness.beat(65_000);
        assert!(!liveness.may_judge_others(70_000, WINDOW));
        assert!(liveness.may_judge_others(75_000, WINDOW));
    }

    #[test]
    fn a_heartbeat_stuck_through_an_outage_counts_as_a_break() {
        let liveness = Liveness::new(WINDOW);
        for at in (0..=40_000).step_by(5_000) {
            liveness.beat(at);
        }
        assert!(liveness.may_judge_others(40_000, WINDOW));
        // The next call hangs for the whole outage: no failure is recorded, yet the worker
        // has heard nothing for longer than half a window.
        assert!(
            !liveness.may_judge_others(60_000, WINDOW),
            "last beat too old"
        );
        // It comes back with a success: the window starts again from there.
        liveness.beat(75_000);
        assert!(!liveness.may_judge_others(76_000, WINDOW));
        for at in (80_000..=105_000).step_by(5_000) {
            liveness.beat(at);
        }
        assert!(liveness.may_judge_others(105_000, WINDOW));
    }
}
