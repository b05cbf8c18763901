//! Telling the admins (`ADMIN_IDS`) in Telegram about what only an operator can fix. Each
//! problem is told once: a retired model once across all workers (the store decides who
//! saw it first), a refused client once per process.

use super::Worker;
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
            let text = format!(
                "neurocards: KIE no longer serves the model {} ({}): {detail}\n\
                 Its videos are refunded and the bot stops offering it; templates move to their \
                 fallback model when the catalogue names one. When KIE serves it again: \
                 neurocards admin models enable {}",
                spec.model, spec.kie_model, spec.model
            );
            self.tell_admins(&text).await;
        }
        Ok(())
    }

    /// Sends `text` to the admins the first time this process meets `problem`.
    pub(super) async fn alert_once(&self, problem: &'static str, text: &str) {
        let first = match self.alerted.lock() {
            Ok(mut alerted) => alerted.insert(problem),
            Err(_) => false,
        };
        tracing::error!(problem, "an operator must act");
        if first {
            self.tell_admins(text).await;
        }
    }

    async fn tell_admins(&self, text: &str) {
        for admin in &self.settings.admin_ids {
            if let Err(err) = self.telegram.send_text(*admin, text, None).await {
                tracing::warn!(admin, error = %err, "could not alert an admin");
            }
        }
    }
}
