//! Long polling into the inbox: each batch from getUpdates is stored in the database before
//! Telegram is told (by the next offset) that it was received. A database outage therefore
//! pauses the polling instead of losing the updates fetched meanwhile; the inbox loop then
//! handles them exactly as it handles the webhook's.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::inbox::chat_of;
use super::{TgBot, ALLOWED_UPDATES};
use crate::store::Store;

pub(super) async fn run(
    bot: TgBot,
    store: Store,
    long_poll: Duration,
    arrived: Arc<Notify>,
    shutdown: CancellationToken,
) {
    // A webhook left registered would make getUpdates fail with 409 for ever.
    if let Err(err) = bot.delete_webhook().await {
        tracing::warn!(error = %err, "deleting a registered webhook before polling failed");
    }
    let long_poll = u32::try_from(long_poll.as_secs()).unwrap_or(25);
    let mut offset: Option<i32> = None;
    let mut pause = Duration::from_millis(250);
    while !shutdown.is_cancelled() {
        let mut request = bot
            .get_updates()
            .timeout(long_poll)
            .allowed_updates(ALLOWED_UPDATES.to_vec());
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let updates = tokio::select! {
            () = shutdown.cancelled() => break,
            updates = request.send() => updates,
        };
        let stored = match updates {
            Ok(updates) => store_all(&store, &updates).await.map(|()| updates),
            Err(err) => Err(format!("reading updates from Telegram failed: {err}")),
        };
        match stored {
            Ok(updates) => {
                pause = Duration::from_millis(250);
                if let Some(last) = updates.last() {
                    offset = i32::try_from(last.id.0).ok().map(|id| id.saturating_add(1));
                    arrived.notify_waiters();
                }
            }
            Err(problem) => {
                tracing::warn!(error = %problem, retry_in = ?pause, "polling paused");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Stores every update of a batch, in one transaction (a repeat of one already stored is
/// ignored).
async fn store_all(store: &Store, updates: &[Update]) -> Result<(), String> {
    let mut rows = Vec::with_capacity(updates.len());
    for update in updates {
        let body = serde_json::to_string(update)
            .map_err(|err| format!("an update does not serialise: {err}"))?;
        rows.push((i64::from(update.id.0), chat_of(update), body));
    }
    store
        .inbox_put_all(&rows)
        .await
        .map_err(|err| format!("storing updates failed: {err}"))
}
