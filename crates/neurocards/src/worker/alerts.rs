//! What the worker tells the admins: a retired model (once across all workers: the store
//! decides who saw it first), a disabled key, a refused client, a worker gone, a stuck queue.

use super::Worker;
use crate::alerts::AlertKind;
use crate::store::ClaimedJob;
use crate::store::StoreError;

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
}
