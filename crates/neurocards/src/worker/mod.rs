//! The worker pool: claims jobs from the queue and runs up to `WORKER_CONCURRENCY` of them at
//! once on tokio. A job waiting for KIE costs a timer, not a thread or a connection.
//!
//! Housekeeping runs on one timer per process: the heartbeat (one write, whatever the number
//! of jobs), taking back the jobs of dead workers, sharing key health, and sending the
//! summaries of finished orders whose last worker died first.

mod alerts;
mod broadcast;
mod callbacks;
mod create_slots;
mod held;
mod job;
mod liveness;
mod persist;
mod photos;
pub mod polling;
mod progress;
mod summary;
pub mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::clock::Clock;
use crate::domain::retry::RetryPolicy;
use crate::kie::{KeyPool, KieClient};
use crate::store::{Store, StoreError, WorkerInfo};
use crate::telegram::Telegram;

pub use polling::PollSchedule;
pub use wakeups::{QueueSignal, Wakeups};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub poll: PollSchedule,
    /// Give up on a task after this long (as UNKNOWN, refunded).
    pub poll_timeout: Duration,
    pub retry: RetryPolicy,
    /// Accepted createTask calls per KIE account per `create_window`, across all workers.
    pub create_limit: u32,
    pub create_window: Duration,
    /// How long a key rests after a 429 that named no Retry-After.
    pub rate_limit_rest: Duration,
    pub heartbeat_every: Duration,
    /// How long an idle worker waits before looking at the queue again.
    pub idle_wait: Duration,
    /// On shutdown, jobs in the middle of a step get this long to finish it.
    pub shutdown_grace: Duration,
    pub max_photo_bytes: u64,
    /// How long a video that did not reach Telegram (refused connections, Telegram's own
    /// errors) is tried again before the delivery is left unconfirmed.
    pub delivery_patience: Duration,
    /// Photos and videos held in memory at once (a video is up to 50 MB): memory does not
    /// grow with `concurrency`.
    pub max_transfers: usize,
    /// `WORKER_ID`: a stable id, so a restarted process resumes its own jobs at once.
    pub worker_id: Option<String>,
    /// When set, KIE is asked to call `<public_url>/kie/callback` besides being polled.
    pub public_url: Option<Url>,
    /// The price of the cheapest video on offer: a summary whose balance is below it offers
    /// to buy credits.
    pub cheapest_price: i64,
    /// Told in Telegram about what only an operator can fix (a retired model, a refused
    /// client).
    pub admin_ids: Vec<i64>,
    /// An alert of one kind goes out at most this often (`ALERT_EVERY`).
    pub alert_every: Duration,
    /// The admins are told when the oldest queued job waits longer (`QUEUE_ALERT_AGE`).
    pub queue_alert_age: Duration,
    /// An order's "order accepted" message is edited at most this often (`PROGRESS_EVERY`).
    pub progress_every: Duration,
    /// The admins are told when a KIE account has fewer credits (`KIE_LOW_CREDITS`, 0: off);
    /// a key taken out for want of credits comes back once its account has this many.
    pub low_credits: i64,
    /// How often the accounts' credits are read (`KIE_CREDIT_CHECK_EVERY`).
    pub credit_check_every: Duration,
    /// The admins are told when more than this percentage of the last 15 minutes' videos
    /// failed (`FAILURE_ALERT_PERCENT`, 0: off).
    pub failure_alert_percent: u8,
}

/// Everything a job needs, shared by all jobs of the process.
pub struct Worker {
    pub(crate) store: Store,
    pub(crate) kie: KieClient,
    pub(crate) keys: Arc<KeyPool>,
    pub(crate) telegram: Telegram,
    pub(crate) settings: WorkerSettings,
    pub(crate) info: WorkerInfo,
    pub(crate) wakeups: Wakeups,
    pub(crate) queue: QueueSignal,
    pub(crate) clock: Arc<dyn Clock>,
    /// Fetches finished videos when Telegram refuses to take them by URL.
    pub(crate) downloads: reqwest::Client,
    /// Tells the admins what only an operator can fix, at most once per `ALERT_EVERY` a kind.
    pub(crate) alerts: crate::alerts::Alerts,
    pub(crate) photos: photos::OnceCache<Arc<crate::photo::FittedPhoto>>,
    /// An order's photo on KIE's file host, per key.
    pub(crate) uploads: photos::OnceCache<String>,
    /// The jobs this process is working on, to find held jobs nobody works on.
    pub(crate) running: held::Running,
    pub(crate) liveness: liveness::Liveness,
    /// When the KIE credits were last read.
    pub(crate) credits_read_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Bounds the photos and videos in memory.
    pub(crate) transfers: tokio::sync::Semaphore,
    pub(crate) create_slots: create_slots::CreateSlots,
}

impl Worker {
    pub fn new(
        store: Store,
        kie: KieClient,
        keys: Arc<KeyPool>,
        telegram: Telegram,
        settings: WorkerSettings,
    ) -> Result<Arc<Worker>, reqwest::Error> {
        let downloads = reqwest::Client::builder()
            .user_agent(crate::kie::client::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()?;
        let alerts = crate::alerts::Alerts::new(
            telegram.clone(),
            store.clone(),
            settings.admin_ids.clone(),
            settings.alert_every,
        );
        let dead_after = store.options().worker_dead_after;
        let create_slots = create_slots::CreateSlots::new(
            store.clone(),
            settings.create_limit,
            settings.create_window,
        );
        Ok(Arc::new(Worker {
            clock: store.clock(),
            store,
            kie,
            keys,
            telegram,
            info: settings
                .worker_id
                .as_deref()
                .map_or_else(WorkerInfo::for_this_process, WorkerInfo::named),
            wakeups: Wakeups::default(),
            queue: QueueSignal::default(),
            downloads,
            alerts,
            photos: photos::OnceCache::default(),
            uploads: photos::OnceCache::default(),
            running: held::Running::default(),
            liveness: liveness::Liveness::new(dead_after, settings.heartbeat_every),
            credits_read_at: std::sync::Mutex::new(None),
            transfers: tokio::sync::Semaphore::new(settings.max_transfers.max(1)),
            create_slots,
            settings,
        }))
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    pub fn wakeups(&self) -> Wakeups {
        self.wakeups.clone()
    }

    /// What the bot of a `run` process tells this worker when it places an order.
    pub fn queue_signal(&self) -> QueueSignal {
        self.queue.clone()
    }

    /// Runs until `shutdown` is cancelled; then stops claiming, lets jobs finish the step
    /// they are in (up to `shutdown_grace`), and hands every job it still holds back to the
    /// queue at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), StoreError> {
        self.store.register_worker(&self.info).await?;
        self.liveness.beat(self.now());
        tracing::info!(worker = %self.info.id, concurrency = self.settings.concurrency, "worker started");
        let beating_stop = CancellationToken::new();
        // The heartbeat dies with this loop, however it ends: a worker whose loop is gone
        // must look dead to the others.
        let beating = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            Arc::clone(&self).keep_beating(beating_stop.clone()),
        ));
        // Broadcasts go out beside the jobs, on a task of their own, stopped with the loop.
        let broadcasting = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            Arc::clone(&self).keep_broadcasting(beating_stop.clone()),
        ));
        // Callbacks another process received, where KIE is told to call back at all.
        let watching = self.settings.public_url.is_some().then(|| {
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                Arc::clone(&self).keep_watching_callbacks(beating_stop.clone()),
            ))
        });
        let mut jobs = JoinSet::new();
        let mut housekeeping = tokio::time::interval(self.settings.heartbeat_every);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let job_stop = shutdown.child_token();

        let mut last_claim: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            // Ended jobs count in the set until joined: join them all, so that the gauge and
            // the room claimed are what they are.
            while let Some(ended) = jobs.try_join_next() {
                log_panic(ended);
            }
            metrics::gauge!("neurocards_jobs_in_flight").set(jobs.len() as f64);
            let free = self.settings.concurrency.saturating_sub(jobs.len());
            let since_claim = last_claim.map(|at: tokio::time::Instant| at.elapsed());
            let gather = claim_gathering(free, self.settings.concurrency, since_claim);
            let mut claimed = 0;
            if free > 0 && gather.is_none() {
                last_claim = Some(tokio::time::Instant::now());
                let claim = self.store.claim_jobs(&self.info.id, free.min(CLAIM_BATCH));
                match crate::metrics::timed("claim", claim).await {
                    Ok(batch) => {
                        claimed = batch.len();
                        for job in batch {
                            let running = self.running.enter(job.lease.job_id);
                            jobs.spawn(self.clone().run_job(job, job_stop.clone(), running));
                        }
                    }
                    Err(err) => tracing::error!(error = %err, "claiming jobs failed"),
                }
            }
            if claimed > 0 && jobs.len() < self.settings.concurrency {
                // More may be waiting: claim again at once, but not past housekeeping that
                // is due, which a steady stream of new jobs would otherwise hold back.
                if housekeeping.tick().now_or_never().is_some() {
                    self.housekeeping(&mut jobs).await;
                }
                continue;
            }
            let pause = gather.unwrap_or(self.settings.idle_wait);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = housekeeping.tick() => self.housekeeping(&mut jobs).await,
                Some(ended) = jobs.join_next(), if !jobs.is_empty() => log_panic(ended),
                _ = self.queue.queued(), if gather.is_none() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }

        tracing::info!(worker = %self.info.id, in_flight = jobs.len(), "worker stopping");
        job_stop.cancel();
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while let Some(ended) = jobs.join_next().await {
                log_panic(ended);
            }
        })
        .await;
        if drained.is_err() {
            jobs.abort_all();
        }
        beating_stop.cancel();
        let _ = beating.await;
        let _ = broadcasting.await;
        if let Some(watching) = watching {
            let _ = watching.await;
        }
        let handed_back = self.store.deregister_worker(&self.info.id).await?;
        tracing::info!(worker = %self.info.id, handed_back, "worker stopped");
        Ok(())
    }

    async fn housekeeping(self: &Arc<Self>, jobs: &mut JoinSet<()>) {
        if self.liveness.take_presumed_dead() {
            // Our leases were handed to others while we were silent: drop every job and
            // come back as a fresh worker.
            tracing::error!(worker = %self.info.id, "presumed dead by the others; dropping all jobs");
            jobs.abort_all();
            match self.store.register_worker(&self.info).await {
                Ok(()) => self.liveness.beat(self.now()),
                Err(err) => tracing::error!(error = %err, "registering again failed"),
            }
        }
        self.check_queue_age().await;
        self.check_failure_share().await;
        self.check_kie_credits().await;
        match self.store.live_workers().await {
            Ok(live) => self
                .keys
                .share_status_rate(u32::try_from(live).unwrap_or(1)),
            Err(err) => tracing::warn!(error = %err, "counting live workers failed"),
        }
        if let Err(err) = self.keys.sync().await {
            tracing::warn!(error = %err, "reading key health failed");
        }
        self.release_orphans().await;
        self.sweep_summaries().await;
        self.show_progress().await;
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}

fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended {
        if err.is_panic() {
            tracing::error!(error = %err, "a job task panicked");
        }
    }
}

/// A number in [0, 1) to spread retries and polls.
/// The most jobs one claim takes.
const CLAIM_BATCH: usize = 50;
/// While jobs end one by one, the room they leave is gathered this long before a claim.
const CLAIM_GATHER: Duration = Duration::from_millis(25);

/// How long to wait before claiming, or `None` to claim now. A claim costs one transaction
/// whatever it brings, so a busy worker whose jobs end one at a time claims the room of
/// several at once instead of one job per claim (at most [`CLAIM_GATHER`] later).
fn claim_gathering(
    free: usize,
    concurrency: usize,
    since_claim: Option<Duration>,
) -> Option<Duration> {
    let since = since_claim?;
    let batch_of_room = free >= CLAIM_BATCH.min(concurrency);
    (free > 0 && !batch_of_room && since < CLAIM_GATHER).then(|| CLAIM_GATHER - since)
}

pub(crate) fn jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_first_claim_and_a_batch_of_room_are_claimed_at_once() {
        assert_eq!(claim_gathering(3, 1000, None), None);
        assert_eq!(claim_gathering(CLAIM_BATCH, 1000, Some(MS(1))), None);
        // A small worker's whole room is a batch.
        assert_eq!(claim_gathering(4, 4, Some(MS(1))), None);
    }

    #[test]
    fn room_left_one_job_at_a_time_is_gathered_until_the_pause_is_over() {
        assert_eq!(claim_gathering(1, 1000, Some(MS(5))), Some(MS(20)));
        assert_eq!(claim_gathering(49, 1000, Some(MS(24))), Some(MS(1)));
        assert_eq!(claim_gathering(1, 1000, Some(CLAIM_GATHER)), None);
        assert_eq!(claim_gathering(1, 1000, Some(MS(500))), None);
    }

    #[test]
    fn a_full_worker_does_not_claim() {
        // No room: nothing to gather either; the loop waits for a job to end.
        assert_eq!(claim_gathering(0, 1000, Some(MS(1))), None);
    }
}
