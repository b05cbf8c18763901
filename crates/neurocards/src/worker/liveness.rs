//! The worker's heartbeat runs on a task of its own, so nothing else the worker does (sending
//! summaries, a slow query) can delay it and make the others take over a live worker. It also
//! remembers since when this worker has been reaching the database without a break: a worker
//! takes over the jobs of silent peers only once it has itself been beating for a while, so a
//! database outage, which silences everyone, kills nobody.
//!
//! How long "a while" is: a peer is judged dead when its last beat is older than
//! `worker_dead_after` *and* this worker has reached the database without a break for two
//! heartbeats (at least 5 s, at most `worker_dead_after`). Within that time every live peer
//! that can reach the database has beaten (a missed beat is tried again every second, so
//! nobody sleeps through the database's return), so a peer silent all that time is not a
//! peer the outage silenced. Waiting for a whole `worker_dead_after` of unbroken beats
//! instead, as this did before, made a dead worker's jobs wait for the outage, then
//! `worker_dead_after` again (`neurocards chaos` measured 46 to 67 s with a cut of 10 s in
//! between).
//!
//! The takeover runs on the same task, right after a beat, and once more at the moment the
//! stalest peer's silence reaches `worker_dead_after` when that comes before the next beat:
//! a dead worker's jobs wait for `worker_dead_after`, not also for a judge's next beat, however
//! busy the job loop is. (It used to run with the job loop's housekeeping, which a steady
//! stream of new jobs or a slow Telegram could hold back for a minute and more:
//! `neurocards chaos` measured 51 and 111 s.) The jobs taken back wake this process's job
//! loop at once.

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
    /// How long this worker beats without a break before it judges others.
    settled_after: Millis,
    /// The others took our jobs while we were silent: the job loop must drop them all.
    presumed_dead: AtomicBool,
}

#[derive(Default, Clone, Copy)]
struct Beats {
    /// Since when every heartbeat went through; `None` right after a failed one.
    since: Option<Millis>,
    last: Option<Millis>,
}

/// How long after a peer's silence reaches `worker_dead_after` it is looked at: the database's
/// clock and this process's timer may differ by a few milliseconds.
const JUDGEMENT_MARGIN: Duration = Duration::from_millis(100);

/// The pause before a missed heartbeat is tried again.
const BEAT_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// The least time a worker beats without a break before judging others, however fast the
/// heartbeat: after an outage, a peer's pool may need a few seconds to open new connections
/// before its beat goes through.
const RECONNECT_ALLOWANCE: Duration = Duration::from_secs(5);

impl Liveness {
    /// `dead_after` is the silence after which the workers judge each other dead;
    /// `heartbeat_every` how often each of them beats.
    pub(crate) fn new(dead_after: Duration, heartbeat_every: Duration) -> Liveness {
        Liveness {
            beats: Mutex::new(Beats::default()),
            max_gap: millis_of(dead_after) / 2,
            settled_after: millis_of(heartbeat_every.saturating_mul(2).max(RECONNECT_ALLOWANCE))
                .min(millis_of(dead_after)),
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

    /// True once this worker has beaten without a break for two heartbeats (see the module's
    /// note) and its last beat is recent: only then can it tell a silent peer from a database
    /// that was away for everyone.
    pub(crate) fn may_judge_others(&self, now: Millis) -> bool {
        let Ok(beats) = self.beats.lock().map(|beats| *beats) else {
            return false;
        };
        let recent = beats
            .last
            .is_some_and(|last| now.saturating_sub(last) <= self.max_gap);
        recent
            && beats
                .since
                .is_some_and(|since| now.saturating_sub(since) >= self.settled_after)
    }

    pub(crate) fn take_presumed_dead(&self) -> bool {
        self.presumed_dead.swap(false, Ordering::SeqCst)
    }
}

impl Worker {
    /// Beats every `heartbeat_every` until `stop`; after a missed beat, every second until one
    /// goes through, so that the database's return is noticed at once (the others' judgement
    /// counts on it).
    pub(super) async fn keep_beating(self: Arc<Self>, stop: CancellationToken) {
        let every = self.settings.heartbeat_every;
        let mut next = tokio::time::Instant::now();
        let mut judge_at: Option<tokio::time::Instant> = None;
        let mut missed_in_a_row: u32 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
                _ = sleep_until_some(judge_at), if judge_at.is_some() => {
                    judge_at = self.take_back_from_dead_workers().await;
                    continue;
                }
            }
            let started = tokio::time::Instant::now();
            let beaten = match self.store.heartbeat(&self.info.id).await {
                Ok(()) => {
                    if missed_in_a_row > 0 {
                        tracing::info!(missed = missed_in_a_row, "heartbeat back");
                        missed_in_a_row = 0;
                    }
                    self.liveness.beat(self.now());
                    judge_at = self.take_back_from_dead_workers().await;
                    true
                }
                Err(StoreError::WorkerPresumedDead(_)) => {
                    self.liveness.missed();
                    self.liveness.presumed_dead.store(true, Ordering::SeqCst);
                    false
                }
                Err(err) => {
                    self.liveness.missed();
                    missed_in_a_row = missed_in_a_row.saturating_add(1);
                    // Tried every second through an outage: the first miss and every tenth
                    // are logged, not each one.
                    if missed_heartbeat_logged(missed_in_a_row) {
                        tracing::error!(error = %err, missed = missed_in_a_row, "heartbeat failed");
                    }
                    false
                }
            };
            if !beaten {
                judge_at = None;
            }
            next = started
                + if beaten {
                    every
                } else {
                    every.min(BEAT_AGAIN_AFTER)
                };
        }
    }
}

fn missed_heartbeat_logged(missed_in_a_row: u32) -> bool {
    missed_in_a_row == 1 || missed_in_a_row.is_multiple_of(10)
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// When to look for dead peers again before the next beat: the moment the stalest peer's
/// silence reaches `worker_dead_after` (`due`), when that comes before the next beat. Zero
/// means the sweep just made could not take it (this worker is not fresh enough to judge,
/// or the peer went silent in between): the next beat looks again.
fn judgement_before_next_beat(due: Option<Duration>, beat_every: Duration) -> Option<Duration> {
    due.filter(|due| !due.is_zero() && *due < beat_every)
        .map(|due| due + JUDGEMENT_MARGIN)
}

impl Worker {
    /// Takes back the jobs of workers silent for `worker_dead_after`, when this worker may
    /// judge them. Returns when to look again before the next beat: the moment the stalest
    /// live peer would be judged, so that a dead worker's jobs wait for its silence and not
    /// also for the next beat of a judge.
    async fn take_back_from_dead_workers(self: &Arc<Self>) -> Option<tokio::time::Instant> {
        if !self.liveness.may_judge_others(self.now()) {
            return None;
        }
        match self
            .store
            .requeue_jobs_of_dead_workers_judged_by(&self.info.id)
            .await
        {
            Ok(0) => {}
            Ok(taken) => {
                tracing::warn!(jobs = taken, "took back the jobs of dead workers");
                self.queue.jobs_queued();
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
                tracing::error!(error = %err, "taking back jobs of dead workers failed");
                return None;
            }
        }
        let checked = tokio::time::Instant::now();
        match self.store.until_next_worker_judgement(&self.info.id).await {
            Ok(due) => judgement_before_next_beat(due, self.settings.heartbeat_every)
                .map(|after| checked + after),
            Err(err) => {
                tracing::warn!(error = %err, "reading when a peer is next due failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);
    const BEAT: Duration = Duration::from_secs(5);

    #[test]
    fn an_outage_logs_its_first_missed_heartbeat_and_every_tenth() {
        let logged: Vec<u32> = (1..=30).filter(|&n| missed_heartbeat_logged(n)).collect();
        assert_eq!(logged, vec![1, 10, 20, 30]);
    }

    #[test]
    fn a_peer_about_to_be_due_is_looked_at_when_it_is_due_not_at_the_next_beat() {
        let due = |ms| Some(Duration::from_millis(ms));
        assert_eq!(
            judgement_before_next_beat(due(1_200), BEAT),
            Some(Duration::from_millis(1_200) + JUDGEMENT_MARGIN)
        );
        assert_eq!(
            judgement_before_next_beat(due(5_000), BEAT),
            None,
            "the beat comes first"
        );
        assert_eq!(judgement_before_next_beat(due(17_000), BEAT), None);
        assert_eq!(
            judgement_before_next_beat(due(0), BEAT),
            None,
            "due already and still there: the sweep could not take it, the next beat tries"
        );
        assert_eq!(judgement_before_next_beat(None, BEAT), None, "no peer");
    }

    #[test]
    fn a_worker_judges_others_only_after_two_heartbeats_of_its_own_without_a_break() {
        let liveness = Liveness::new(WINDOW, BEAT);
        assert!(!liveness.may_judge_others(0), "never beaten yet");
        liveness.beat(1_000);
        liveness.beat(6_000);
        assert!(!liveness.may_judge_others(10_000));
        liveness.beat(11_000);
        assert!(liveness.may_judge_others(11_000));
        // The database went away: everyone was silent, nobody is judged until this worker
        // has beaten for two heartbeats again, in which every live peer beats too.
        liveness.missed();
        assert!(!liveness.may_judge_others(12_000));
        liveness.beat(45_000);
        liveness.beat(50_000);
        assert!(!liveness.may_judge_others(54_000));
        liveness.beat(55_000);
        assert!(liveness.may_judge_others(55_000));
    }

    #[test]
    fn the_wait_before_judging_is_never_longer_than_the_silence_that_kills() {
        let liveness = Liveness::new(Duration::from_secs(4), BEAT);
        liveness.beat(0);
        liveness.beat(2_000);
        assert!(!liveness.may_judge_others(3_999));
        assert!(liveness.may_judge_others(4_000));
    }

    #[test]
    fn a_fast_heartbeat_still_leaves_a_peer_time_to_reconnect() {
        let liveness = Liveness::new(WINDOW, Duration::from_millis(200));
        for at in (0..5_000).step_by(200) {
            liveness.beat(at);
        }
        assert!(!liveness.may_judge_others(4_800));
        liveness.beat(5_000);
        assert!(liveness.may_judge_others(5_000));
    }

    #[test]
    fn a_heartbeat_stuck_through_an_outage_counts_as_a_break() {
        let liveness = Liveness::new(WINDOW, BEAT);
        for at in (0..=40_000).step_by(5_000) {
            liveness.beat(at);
        }
        assert!(liveness.may_judge_others(40_000));
        // The next call hangs for the whole outage: no failure is recorded, yet the worker
        // has heard nothing for longer than half a window.
        assert!(!liveness.may_judge_others(60_000), "last beat too old");
        // It comes back with a success: the count starts again from there.
        liveness.beat(75_000);
        assert!(!liveness.may_judge_others(76_000));
        liveness.beat(80_000);
        assert!(!liveness.may_judge_others(84_000));
        liveness.beat(85_000);
        assert!(liveness.may_judge_others(85_000));
    }
}
