//! Which models of the catalogue KIE has retired. A model KIE answers "temporarily paused" or
//! "page does not exist" for is marked unavailable once, by whichever worker saw it first:
//! that worker alone alerts the admins, and the bot stops offering the model until an
//! operator enables it again.

use std::collections::HashSet;

use super::{ResultExt, Store, StoreError};
use crate::clock::Millis;

/// A model's stored state; models without one are available.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ModelState {
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
    pub changed_at: Millis,
}

impl ModelState {
    pub fn is_available(&self) -> bool {
        self.state == "available"
    }
}

impl Store {
    /// Marks `model` unavailable. True only for the call that changed its state, so exactly
    /// one caller alerts the operators however many videos failed at once.
    pub async fn mark_model_unavailable(
        &self,
        model: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        const CONTEXT: &str = "marking a model unavailable";
        let changed = sqlx::query(
            "INSERT INTO model_states (id, state, reason, changed_at) VALUES ($1, 'unavailable', $2, $3)
             ON CONFLICT (id) DO UPDATE SET state = 'unavailable', reason = excluded.reason,
                                            changed_at = excluded.changed_at
             WHERE model_states.state <> 'unavailable'",
        )
        .bind(model)
        .bind(reason)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context(CONTEXT)?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Offers `model` again. True when it was unavailable.
    pub async fn enable_model(&self, model: &str) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE model_states SET state = 'available', changed_at = $2
             WHERE id = $1 AND state <> 'available'",
        )
        .bind(model)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("enabling a model")?
        .rows_affected();
        Ok(changed == 1)
    }

    /// The ids of the models not to offer.
    pub async fn unavailable_models(&self) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM model_states WHERE state = 'unavailable'")
                .fetch_all(&self.pool)
                .await
                .context("listing unavailable models")?;
        Ok(ids.into_iter().collect())
    }

    /// Every stored model state (with the last error), for `admin models`.
    pub async fn model_states(&self) -> Result<Vec<ModelState>, StoreError> {
        sqlx::query_as("SELECT id, state, reason, changed_at FROM model_states ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .context("listing model states")
    }
}
