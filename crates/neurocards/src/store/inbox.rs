//! The durable inbox of webhook mode: Telegram's updates are stored before they are
//! acknowledged and processed from here by any bot process.
//!
//! Order: only the oldest unprocessed update of a chat can be claimed, so one chat's updates
//! are handled one after another, whichever process takes them; updates without a chat
//! (pre-checkout queries) wait behind nobody. A claim carries a token and a time: the holder
//! renews it while it works, and a claim left alone for `stale_after` (its process died) is
//! taken over. An update is marked processed under its token, so a process that lost its
//! claim cannot mark another's work.

use std::time::Duration;

use super::{ResultExt, Store, StoreError};
use crate::clock::millis_of;

/// An update claimed for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxUpdate {
    pub update_id: i64,
    /// The update as Telegram sent it.
    pub body: String,
    pub token: String,
}

impl Store {
    /// Stores an update Telegram posted; false when it was stored before (a repeated
    /// delivery), which is then not stored again.
    pub async fn inbox_put(
        &self,
        update_id: i64,
        chat_id: Option<i64>,
        body: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO telegram_inbox (update_id, chat_id, body, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (update_id) DO NOTHING",
        )
        .bind(update_id)
        .bind(chat_id)
        .bind(body)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("storing a Telegram update")?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Stores a batch of updates from `getUpdates` (`(update_id, chat_id, body)`) in one
    /// transaction: one commit for up to a hundred updates instead of one each, which bounded
    /// how fast a burst of users got in. Updates stored before are left as they are.
    pub async fn inbox_put_all(
        &self,
        updates: &[(i64, Option<i64>, String)],
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "storing Telegram updates";
        if updates.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        for (update_id, chat_id, body) in updates {
            sqlx::query(
                "INSERT INTO telegram_inbox (update_id, chat_id, body, received_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (update_id) DO NOTHING",
            )
            .bind(*update_id)
            .bind(*chat_id)
            .bind(body.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .context(CONTEXT)?;
        }
        tx.commit().await.context(CONTEXT)
    }

    /// Claims up to `limit` updates for `holder`: the oldest pending update of each chat
    /// whose claim is free or older than `stale_after`, oldest first. One statement claims
    /// them all under one token (a burst of a thousand users used to cost a commit per
    /// update here); an update another process claimed meanwhile fails the statement's own
    /// condition and is left to it.
    pub async fn inbox_claim(
        &self,
        holder: &str,
        limit: usize,
        stale_after: Duration,
    ) -> Result<Vec<InboxUpdate>, StoreError> {
        const CONTEXT: &str = "claiming Telegram updates";
        let now = self.now();
        let stale_before = now.saturating_sub(millis_of(stale_after));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut claimed: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE telegram_inbox SET claimed_by = $1, claim_token = $2, claimed_at = $3
             WHERE processed_at IS NULL AND (claimed_at IS NULL OR claimed_at < $4)
               AND update_id IN (
                 SELECT i.update_id FROM telegram_inbox i
                 WHERE i.processed_at IS NULL
                   AND (i.claimed_at IS NULL OR i.claimed_at < $4)
                   AND (i.chat_id IS NULL OR NOT EXISTS (
                         SELECT 1 FROM telegram_inbox o
                         WHERE o.chat_id = i.chat_id AND o.processed_at IS NULL
                           AND o.update_id < i.update_id))
                 ORDER BY i.update_id
                 LIMIT $5)
             RETURNING update_id, body",
        )
        .bind(holder)
        .bind(token.as_str())
        .bind(now)
        .bind(stale_before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        claimed.sort_unstable_by_key(|(update_id, _)| *update_id);
        Ok(claimed
            .into_iter()
            .map(|(update_id, body)| InboxUpdate {
                update_id,
                body,
                token: token.clone(),
            })
            .collect())
    }

    /// Keeps a claim from going stale while its update is being processed; false when the
    /// claim was lost (taken over, or processed by another).
    pub async fn inbox_renew(&self, update: &InboxUpdate) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE telegram_inbox SET claimed_at = $1
             WHERE update_id = $2 AND claim_token = $3 AND processed_at IS NULL",
        )
        .bind(self.now())
        .bind(update.update_id)
        .bind(&update.token)
        .execute(&self.pool)
        .await
        .context("renewing the claim of a Telegram update")?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Marks a claimed update processed; false when the claim had been lost.
    pub async fn inbox_done(&self, update: &InboxUpdate) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE telegram_inbox
             SET processed_at = $1, claimed_by = NULL, claim_token = NULL, claimed_at = NULL
             WHERE update_id = $2 AND claim_token = $3 AND processed_at IS NULL",
        )
        .bind(self.now())
        .bind(update.update_id)
        .bind(&update.token)
        .execute(&self.pool)
        .await
        .context("marking a Telegram update processed")?
        .rows_affected();
        Ok(done == 1)
    }

    /// Updates stored and not processed yet.
    pub async fn inbox_backlog(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM telegram_inbox WHERE processed_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .context("counting unprocessed Telegram updates")
    }

    /// Forgets the updates processed more than `keep` ago: long enough that Telegram no
    /// longer delivers them again. Returns how many were forgotten.
    pub async fn inbox_forget_processed(&self, keep: Duration) -> Result<u64, StoreError> {
        let before = self.now().saturating_sub(millis_of(keep));
        sqlx::query(
            "DELETE FROM telegram_inbox WHERE processed_at IS NOT NULL AND processed_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .context("forgetting processed Telegram updates")
        .map(|done| done.rows_affected())
    }
}
