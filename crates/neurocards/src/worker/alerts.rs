//! What the worker tells the admins: a retired model (once across all workers: the store
//! decides who saw it first), a disabled key, a refused client, a worker gone, a stuck queue,
//! too many failed videos, a KIE account low on credits.

use std::collections::HashSet;
use std::time::Duration;

use super::Worker;
use crate::alerts::AlertKind;
use crate::store::{ClaimedJob, KeyState, RecentOutcomes, StoreError};

/// The failure share is judged over this window...
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// ...once at least this many videos finished in it: two failures of three are bad luck,
/// not an outage.
const FAILURE_MIN_VIDEOS: i64 = 10;

/// The percentage of failed videos when it is above `limit` percent (0: never) over enough
/// videos to mean something.
pub(crate) fn failure_share_above(outcomes: RecentOutcomes, limit: u8) -> Option<i64> {
    if limit == 0 || outcomes.finished < FAILURE_MIN_VIDEOS {
        return None;
    }
    let percent = outcomes.failed * 100 / outcomes.finished;
    (outcomes.failed * 100 > i64::from(limit) * outcomes.finished).then_some(percent)
}

impl Worker {
    /// Takes the job's model out of the offer; the worker that changed its state tells the
    /// admins.
    pub(super) async fn retire_model(
        &self,
        job: &ClaimedJob,
        detail: &str,
    ) -> Result<(), StoreError> {
        let spec = &job.generation;
        let newly = self
            .store
            .mark_model_unavailable(&spec.model, detail)
            .await?;
        tracing::error!(job = %job.lease.job_id, model = %spec.model, error = %detail, newly, "KIE says the model is unavailable: it is no longer offered");
        if newly {
            self.alerts
                .raise(
                    AlertKind::ModelRetired,
                    &[
                        ("model", &spec.model),
                        ("kie_model", &spec.kie_model),
                        ("error", &detail),
                    ],
                )
                .await;
        }
        Ok(())
    }

    /// The oldest queued job has waited too long: nobody is working on the queue.
    pub(super) async fn check_queue_age(&self) {
        match self.store.oldest_queued_at().await {
            Ok(Some(oldest)) => {
                let waited = self.now().saturating_sub(oldest).max(0);
                let limit =
                    i64::try_from(self.settings.queue_alert_age.as_millis()).unwrap_or(i64::MAX);
                if waited > limit {
                    let minutes = waited / 60_000;
                    self.alerts
                        .raise(AlertKind::QueueStuck, &[("minutes", &minutes)])
                        .await;
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "reading the oldest queued job failed"),
        }
    }

    /// Too many of the last minutes' videos failed (the user's own refused photos aside).
    pub(super) async fn check_failure_share(&self) {
        match self.store.recent_outcomes(FAILURE_WINDOW).await {
            Ok(outcomes) => {
                if let Some(percent) =
                    failure_share_above(outcomes, self.settings.failure_alert_percent)
                {
                    self.alerts
                        .raise(
                            AlertKind::FailureShare,
                            &[
                                ("failed", &outcomes.failed),
                                ("finished", &outcomes.finished),
                                ("minutes", &(FAILURE_WINDOW.as_secs() / 60)),
                                ("percent", &percent),
                            ],
                        )
                        .await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "counting the recent failures failed"),
        }
    }

    /// Reads each KIE account's credits every `credit_check_every`: below `low_credits` the
    /// admins are told; a key that was taken out of rotation and now reads at least that
    /// many (at least one when the alert is off) is put back, so orders flow again without
    /// an operator once the account is topped up.
    pub(super) async fn check_kie_credits(&self) {
        let due = match self.credits_read_at.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|at| at.elapsed() >= self.settings.credit_check_every);
                if due {
                    *last = Some(tokio::time::Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        let limit = self.settings.low_credits;
        let mut accounts_read = HashSet::new();
        for health in self.keys.snapshot() {
            let disabled = health.state == KeyState::Disabled;
            // One read per account, and one for every key out of rotation (a read with the
            // key itself shows the key works).
            if !disabled && accounts_read.contains(&health.account) {
                continue;
            }
            let Some(key) = self.keys.by_id(&health.key_id) else {
                continue;
            };
            let credits = match self.kie.credit(&key.secret).await {
                Ok(credits) => credits,
                Err(err) => {
                    tracing::debug!(key = %key.id, error = %err, "reading a KIE account's credits failed");
                    continue;
                }
            };
            metrics::gauge!("neurocards_kie_credits", "account" => key.account.clone())
                .set(credits as f64);
            if disabled && credits >= limit.max(1) {
                tracing::warn!(key = %key.id, credits, "a KIE key out of rotation works and its account has credits: back in rotation");
                self.keys
                    .enable(&key.id, self.now(), &format!("{credits} credits again"))
                    .await;
            }
            if accounts_read.insert(health.account.clone()) && limit > 0 && credits < limit {
                self.alerts
                    .raise(
                        AlertKind::LowCredits,
                        &[
                            ("account", &key.account),
                            ("credits", &credits),
                            ("limit", &limit),
                        ],
                    )
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(finished: i64, failed: i64) -> RecentOutcomes {
        RecentOutcomes { finished, failed }
    }

    #[test]
    fn the_failure_share_is_told_above_the_limit_over_enough_videos() {
        assert_eq!(
            failure_share_above(outcomes(9, 9), 50),
            None,
            "too few videos"
        );
        assert_eq!(
            failure_share_above(outcomes(10, 5), 50),
            None,
            "at the limit"
        );
        assert_eq!(failure_share_above(outcomes(10, 6), 50), Some(60));
        assert_eq!(failure_share_above(outcomes(200, 101), 50), Some(50));
        assert_eq!(
            failure_share_above(outcomes(100, 100), 0),
            None,
            "turned off"
        );
        assert_eq!(failure_share_above(outcomes(100, 1), 0), None);
    }
}
