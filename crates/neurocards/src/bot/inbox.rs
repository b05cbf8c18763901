//! The processing side of both update sources: takes the updates the webhook (or the long
//! poller) stored in the database and runs each through the dialog.
//!
//! Every bot process runs this loop against the one inbox. Only the oldest pending update of
//! a chat can be claimed, so a chat's updates are handled in order whichever process takes
//! them; different chats, and pre-checkout queries (which have ten seconds to be answered),
//! go in parallel. A process that crashes mid-update leaves a claim nobody renews: another
//! process takes the update over once the claim is stale. An update is processed at least
//! once; the dialog's nonces and the order and payment keys make a second run harmless.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use teloxide::types::{Me, Update, UpdateKind};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::state::DialogStorage;
use super::{schema, BotContext, TgBot};
use crate::store::{InboxUpdate, Store};

#[derive(Debug, Clone)]
pub struct InboxSettings {
    /// Updates processed at once by this process.
    pub concurrency: usize,
    /// A claim not renewed for this long belongs to a dead process and is taken over.
    pub stale_after: Duration,
    /// How often a claim is renewed while its update is processed.
    pub renew_every: Duration,
    /// How often the inbox is looked at when nothing woke this process (updates another
    /// process stored, claims gone stale).
    pub look_every: Duration,
    /// Processed updates are kept this long, so a late repeat of one is still recognised.
    pub keep_processed: Duration,
}

impl Default for InboxSettings {
    fn default() -> Self {
        InboxSettings {
            concurrency: 64,
            stale_after: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            look_every: Duration::from_secs(1),
            keep_processed: Duration::from_secs(24 * 3600),
        }
    }
}

/// The chat whose updates must be handled in order; none for a pre-checkout query, which
/// must be answered within seconds whatever the chat's backlog.
pub(crate) fn chat_of(update: &Update) -> Option<i64> {
    match update.kind {
        UpdateKind::PreCheckoutQuery(_) => None,
        _ => update
            .chat()
            .map(|chat| chat.id.0)
            .or_else(|| update.from().and_then(|user| i64::try_from(user.id.0).ok())),
    }
}

/// What one update needs to be handled.
#[derive(Clone)]
struct Handling {
    store: Store,
    bot: TgBot,
    me: Me,
    context: Arc<BotContext>,
    storage: Arc<DialogStorage>,
    settings: InboxSettings,
    holder: Arc<str>,
}

/// Processes the inbox until `shutdown`; `arrived` is woken by this process's webhook when
/// it stores an update. On shutdown the updates in hand are finished (their handlers are
/// short); what is still pending is left to the next process.
pub(super) async fn run(
    context: Arc<BotContext>,
    bot: TgBot,
    me: Me,
    settings: InboxSettings,
    arrived: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let handling = Handling {
        store: context.store.clone(),
        storage: Arc::new(DialogStorage(context.store.clone())),
        holder: crate::store::WorkerInfo::for_this_process().id.into(),
        bot,
        me,
        context,
        settings,
    };
    tracing::info!(holder = %handling.holder, "processing Telegram updates from the inbox");
    let mut running = JoinSet::new();
    let mut last_forget = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        // Registered before looking, so an update stored in between still wakes the loop.
        let woken = arrived.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // A handler that ended still counts in the set until it is joined, and the select
        // below joins one at a time: join every ended one first, so that the claim takes the
        // room there is. (Claiming the room of one handler at a time bounded a burst of a
        // thousand users by the claim's round trip.)
        while running.try_join_next().is_some() {}
        let free = handling.settings.concurrency.saturating_sub(running.len());
        if free > 0 {
            match handling
                .store
                .inbox_claim(&handling.holder, free, handling.settings.stale_after)
                .await
            {
                Ok(claimed) => {
                    for update in claimed {
                        running.spawn(handling.clone().process(update));
                    }
                }
                Err(err) => tracing::error!(error = %err, "reading the update inbox failed"),
            }
        }
        if last_forget.elapsed()
            >= handling
                .settings
                .keep_processed
                .min(Duration::from_secs(600))
        {
            last_forget = tokio::time::Instant::now();
            handling.forget_old().await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut woken => {}
            // A chat's next update can be claimed once the one before it is done.
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(handling.settings.look_every) => {}
        }
    }
    while running.join_next().await.is_some() {}
}

impl Handling {
    async fn process(self, claimed: InboxUpdate) {
        let update: Update = match serde_json::from_str(&claimed.body) {
            Ok(update) => update,
            Err(err) => {
                // Stored only after it parsed: this cannot come from the webhook.
                tracing::error!(update = claimed.update_id, error = %err, "an update in the inbox does not parse; skipped");
                self.mark_done(&claimed).await;
                return;
            }
        };
        let dispatch = self.dispatch(update);
        tokio::pin!(dispatch);
        let mut renew = tokio::time::interval(self.settings.renew_every);
        renew.tick().await;
        loop {
            tokio::select! {
                handled = &mut dispatch => {
                    if handled == Handled::DatabaseAway {
                        // Left claimed: once the claim is stale (the database back by then,
                        // most likely) the update is handled again instead of being lost.
                        tracing::warn!(update = claimed.update_id, "the database failed while an update was handled; it will be handled again");
                        return;
                    }
                    break;
                }
                _ = renew.tick() => match self.store.inbox_renew(&claimed).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(update = claimed.update_id, "lost the claim of an update being processed"),
                    Err(err) => tracing::warn!(update = claimed.update_id, error = %err, "renewing an update's claim failed"),
                },
            }
        }
        self.mark_done(&claimed).await;
    }

    /// Runs `update` through the dialog, as teloxide's dispatcher would.
    async fn dispatch(&self, update: Update) -> Handled {
        let deps = teloxide::dptree::deps![
            Arc::clone(&self.context),
            Arc::clone(&self.storage),
            self.bot.clone(),
            self.me.clone(),
            update
        ];
        match schema().dispatch(deps).await {
            ControlFlow::Break(Ok(())) => Handled::Done,
            ControlFlow::Break(Err(err)) => {
                tracing::error!(error = %err, "an update handler failed");
                if is_database_failure(&*err) {
                    Handled::DatabaseAway
                } else {
                    Handled::Done
                }
            }
            // Group chats, channels and other updates are not for this bot.
            ControlFlow::Continue(_) => Handled::Done,
        }
    }

    /// Marks an update processed, trying again through a database blip: the update was
    /// handled, and handling it a second time is the thing to avoid. After `stale_after` of
    /// failures another process may already have taken it over.
    async fn mark_done(&self, claimed: &InboxUpdate) {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.store.inbox_done(claimed).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(
                        update = claimed.update_id,
                        "an update was taken over before it was marked processed"
                    );
                    return;
                }
                Err(err) if started.elapsed() >= self.settings.stale_after => {
                    tracing::error!(update = claimed.update_id, error = %err, "could not mark an update processed; it may be processed again");
                    return;
                }
                Err(err) => {
                    tracing::warn!(update = claimed.update_id, error = %err, "marking an update processed failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn forget_old(&self) {
        match self
            .store
            .inbox_forget_processed(self.settings.keep_processed)
            .await
        {
            Ok(0) => {}
            Ok(forgotten) => tracing::debug!(forgotten, "forgot processed updates"),
            Err(err) => tracing::warn!(error = %err, "forgetting processed updates failed"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    Done,
    /// The handler failed because the database did: handling it again later is right (the
    /// dialog's nonces and the order and payment keys make a second run harmless).
    DatabaseAway,
}

fn is_database_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = cause {
        if let Some(store) = err.downcast_ref::<crate::store::StoreError>() {
            return matches!(
                store,
                crate::store::StoreError::Database { .. }
                    | crate::store::StoreError::Connect { .. }
            );
        }
        cause = err.source();
    }
    false
}
