//! Sends the broadcasts admins started: one worker at a time holds a broadcast, claims its
//! recipients 25 at a time (each claimed before its send: a restart never messages anyone
//! twice), sends at most 25 a second in the bulk lane of the Telegram budget, marks users
//! who blocked the bot (they are left out of the next broadcast), stops at once when an
//! admin cancels, keeps a progress message in each admin's chat up to date (every 10 s), and
//! tells the admins how it ended.

use std::sync::Arc;
use std::time::Duration;

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::store::Broadcast;
use crate::telegram::TelegramError;

/// Recipients per second, under Telegram's 30 messages a second for the whole bot.
const PER_SECOND: i64 = 25;
/// How often an idle worker looks for a broadcast to send.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// A holder silent this long has died: another worker takes the broadcast over.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often the progress message in each admin's chat is brought up to date.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    pub(super) async fn keep_broadcasting(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.store.take_broadcast(&self.info.id, STALE_AFTER).await {
                Ok(Some(broadcast)) => self.send_broadcast(&broadcast, &stop).await,
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "looking for a broadcast failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }

    async fn send_broadcast(&self, broadcast: &Broadcast, stop: &CancellationToken) {
        let buttons = broadcast.button.as_ref().and_then(|(label, url)| {
            let url = url::Url::parse(url).ok()?;
            Some(InlineKeyboardMarkup::new(vec![vec![
                InlineKeyboardButton::url(label.clone(), url),
            ]]))
        });
        // One message per admin, edited as the broadcast goes: (admin, its language, message).
        let mut progress = self.start_progress(broadcast.id).await;
        let mut progress_shown = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                return;
            }
            if progress_shown.elapsed() >= PROGRESS_EVERY {
                self.show_broadcast_progress(broadcast.id, &mut progress)
                    .await;
                progress_shown = tokio::time::Instant::now();
            }
            let started = tokio::time::Instant::now();
            let users = match self
                .store
                .claim_recipients(broadcast.id, &self.info.id, PER_SECOND)
                .await
            {
                Ok(users) => users,
                Err(err) => {
                    tracing::warn!(broadcast = broadcast.id, error = %err, "claiming broadcast recipients failed");
                    return;
                }
            };
            if users.is_empty() {
                self.show_broadcast_progress(broadcast.id, &mut progress)
                    .await;
                self.report_broadcast(broadcast.id).await;
                return;
            }
            for user in users {
                let outcome = match self
                    .telegram
                    .send_text(user.0, &broadcast.text, buttons.clone())
                    .await
                {
                    Ok(_) => "sent",
                    Err(TelegramError::Unreachable) => {
                        if let Err(err) = self.store.mark_unreachable(user).await {
                            tracing::warn!(user = %user, error = %err, "marking a user unreachable failed");
                        }
                        "blocked"
                    }
                    Err(err) => {
                        tracing::warn!(broadcast = broadcast.id, user = %user, error = %err, "a broadcast message was not sent");
                        "failed"
                    }
                };
                if let Err(err) = self
                    .store
                    .record_recipient(broadcast.id, user, outcome)
                    .await
                {
                    tracing::warn!(broadcast = broadcast.id, error = %err, "recording a broadcast send failed");
                }
            }
            // At most PER_SECOND a second, whatever the budget would allow.
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(started + Duration::from_secs(1)) => {}
            }
        }
    }

    /// A progress message in each admin's chat.
    async fn start_progress(&self, id: i64) -> Vec<(i64, crate::texts::Lang, Option<i64>)> {
        let mut messages = Vec::new();
        for admin in &self.settings.admin_ids {
            let lang = self.store.language_of(crate::domain::UserId(*admin)).await;
            let text = self.progress_text(id, lang).await;
            let sent = match text {
                Some(text) => self.telegram.send_text(*admin, &text, None).await.ok(),
                None => None,
            };
            messages.push((*admin, lang, sent));
        }
        messages
    }

    async fn show_broadcast_progress(
        &self,
        id: i64,
        messages: &mut [(i64, crate::texts::Lang, Option<i64>)],
    ) {
        for (admin, lang, message) in messages.iter_mut() {
            let (Some(message_id), Some(text)) = (*message, self.progress_text(id, *lang).await)
            else {
                continue;
            };
            if let Err(err) = self
                .telegram
                .edit_text(*admin, message_id, &text, None)
                .await
            {
                tracing::debug!(admin = *admin, error = %err, "updating a broadcast's progress failed");
            }
        }
    }

    async fn progress_text(&self, id: i64, lang: crate::texts::Lang) -> Option<String> {
        let status = self.store.broadcast_status(id).await.ok()??;
        let done = status.recipients - status.pending;
        Some(crate::texts::text(
            lang,
            "broadcast.progress",
            &[
                ("id", &id),
                ("done", &done),
                ("recipients", &status.recipients),
                ("blocked", &status.blocked),
            ],
        ))
    }

    /// Tells the admins how a broadcast ended (done or cancelled).
    async fn report_broadcast(&self, id: i64) {
        let status = match self.store.broadcast_status(id).await {
            Ok(Some(status)) => status,
            _ => return,
        };
        tracing::info!(broadcast = id, state = %status.state, sent = status.sent, blocked = status.blocked, "broadcast ended");
        for admin in &self.settings.admin_ids {
            let lang = self.store.language_of(crate::domain::UserId(*admin)).await;
            let text = crate::texts::text(
                lang,
                "broadcast.ended",
                &[
                    ("id", &id),
                    ("state", &status.state),
                    ("sent", &status.sent),
                    ("recipients", &status.recipients),
                    ("blocked", &status.blocked),
                    ("failed", &status.failed),
                ],
            );
            if let Err(err) = self.telegram.send_text(*admin, &text, None).await {
                tracing::warn!(admin, error = %err, "could not tell an admin about a broadcast");
            }
        }
    }
}
