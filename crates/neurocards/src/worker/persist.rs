//! A job's writes outlive a database blip: a write that failed because the database was
//! unreachable or busy is tried again, with growing pauses, until it goes through or the
//! lease is found lost. A job is never dropped by the process that holds it.

use std::future::Future;
use std::time::Duration;

use super::{jitter, Worker};
use crate::domain::retry::backoff;
use crate::domain::JobId;
use crate::store::StoreError;

const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

impl Worker {
    pub(super) async fn persist<T, F, Fut>(
        &self,
        job: JobId,
        what: &'static str,
        mut write: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let _timer = crate::metrics::step(what);
        let mut failures: u32 = 0;
        loop {
            match write().await {
                Err(err) if err.is_transient() => {
                    let pause = backoff(FIRST_PAUSE, failures.min(6), jitter()).min(LONGEST_PAUSE);
                    failures = failures.saturating_add(1);
                    tracing::warn!(job = %job, what, error = %err, ?pause, failures, "the database did not take a job's write; trying again");
                    tokio::time::sleep(pause).await;
                }
                other => {
                    if failures > 0 {
                        tracing::info!(job = %job, what, failures, "the database took the write again");
                    }
                    return other;
                }
            }
        }
    }
}
