//! Prometheus metrics. Counters and histograms live in the process and cost nothing to
//! scrape; the database figures (jobs by status, the oldest queued job, live workers) come
//! from a snapshot taken every few seconds by one task, so a scrape never scans a table.
//!
//! The names, all prefixed `neurocards_`:
//! - `orders_total`, `videos_total{outcome,model,class}`, `refunds_total{class}`,
//!   `order_to_video_seconds` (histogram, from the order to the video's delivery)
//! - `kie_requests_total{endpoint,outcome}`, `kie_request_seconds{endpoint}` (histogram),
//!   `rate_limited_total{service}` (429s from KIE or Telegram)
//! - `telegram_requests_total{method,outcome}`
//! - `payments_total`, `stars_total`, `payment_refunds_total`
//! - `kie_key_state{key}` (0 healthy, 1 resting after a 429, 2 out of rotation),
//!   `models_unavailable`,
//!   `kie_credits{account}` (as last read)
//! - `updates_total` (Telegram updates handled), `inbox_backlog` (webhook mode: updates
//!   stored and not processed yet)
//! - `jobs{status}`, `oldest_queued_seconds`, `live_workers`, `jobs_in_flight` (this process)
//! - `step_seconds{step}` (summary): the time a job spends in each of its steps (claiming,
//!   fitting the photo, each KIE call, each write, waiting for Telegram's budget, sending),
//!   to show where the time goes

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::store::{KeyState, Store};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Seconds, from a KIE request (tens of milliseconds) to a video (minutes).
const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const VIDEO_BUCKETS: [f64; 12] = [
    10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Installs the process's recorder once and returns its handle; `None` when another
/// recorder was installed first (the metrics then go there).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("neurocards_kie_request_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("neurocards_order_to_video_seconds".into()),
                        &VIDEO_BUCKETS,
                    )
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(err)) | Err(err) => {
                    tracing::warn!(error = %err, "metrics are not recorded");
                    None
                }
            }
        })
        .clone()
}

/// Records, when dropped, the time since it was made as `neurocards_step_seconds{step}`.
#[must_use = "the step is timed until the value is dropped"]
pub struct StepTimer {
    step: &'static str,
    started: Instant,
}

/// Starts timing one step of a job.
pub fn step(step: &'static str) -> StepTimer {
    StepTimer {
        step,
        started: Instant::now(),
    }
}

impl Drop for StepTimer {
    fn drop(&mut self) {
        metrics::histogram!("neurocards_step_seconds", "step" => self.step)
            .record(self.started.elapsed().as_secs_f64());
    }
}

pin_project_lite::pin_project! {
    /// A future timed as one step: what [`timed`] returns.
    pub struct Timed<F> {
        #[pin]
        future: F,
        timer: StepTimer,
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

/// Times `future` as the step `name`, from this call until the future is done or dropped.
/// A plain struct rather than an `async fn`: an async fn keeps its argument future and the
/// future it awaits apart, so each wrapper doubled the size of what it timed and the job's
/// nested steps multiplied it (`cargo bench --bench inflight`: 175 MiB for 10,000 jobs
/// instead of 104).
pub fn timed<F: Future>(name: &'static str, future: F) -> Timed<F> {
    Timed {
        future,
        timer: step(name),
    }
}

/// Refreshes the database figures every `every` until `stop`, and keeps the histograms'
/// memory bounded.
pub async fn keep_snapshotting(
    store: Store,
    handle: PrometheusHandle,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        snapshot(&store).await;
        handle.run_upkeep();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Reads the database figures once.
pub async fn snapshot(store: &Store) {
    match store.queue_stats().await {
        Ok(stats) => {
            for (status, jobs) in &stats.by_status {
                metrics::gauge!("neurocards_jobs", "status" => status.as_str()).set(*jobs as f64);
            }
            let oldest = stats.oldest_queued_age.map_or(0.0, |age| age.as_secs_f64());
            metrics::gauge!("neurocards_oldest_queued_seconds").set(oldest);
            let live = stats.workers.iter().filter(|worker| worker.alive).count();
            metrics::gauge!("neurocards_live_workers").set(live as f64);
        }
        Err(err) => tracing::warn!(error = %err, "reading the queue for the metrics failed"),
    }
    match store.key_health().await {
        Ok(keys) => {
            for key in keys {
                let state = match key.state {
                    KeyState::Healthy => 0.0,
                    KeyState::Cooling => 1.0,
                    KeyState::Disabled => 2.0,
                };
                metrics::gauge!("neurocards_kie_key_state", "key" => key.key_id).set(state);
            }
        }
        Err(err) => tracing::warn!(error = %err, "reading key health for the metrics failed"),
    }
    match store.unavailable_models().await {
        Ok(models) => metrics::gauge!("neurocards_models_unavailable").set(models.len() as f64),
        Err(err) => tracing::warn!(error = %err, "reading model states for the metrics failed"),
    }
    match store.inbox_backlog().await {
        Ok(backlog) => metrics::gauge!("neurocards_inbox_backlog").set(backlog as f64),
        Err(err) => tracing::warn!(error = %err, "reading the update inbox for the metrics failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_step_is_hardly_larger_than_what_it_times() {
        let work = async {
            let buffer = [7u8; 1024];
            tokio::task::yield_now().await;
            buffer.iter().map(|byte| usize::from(*byte)).sum::<usize>()
        };
        let bare = std::mem::size_of_val(&work);
        let nested = timed("outer", timed("inner", work));
        let overhead = std::mem::size_of::<StepTimer>() * 2;
        assert!(
            std::mem::size_of_val(&nested) <= bare + overhead,
            "{} bytes for a {bare}-byte future",
            std::mem::size_of_val(&nested)
        );
    }
}
