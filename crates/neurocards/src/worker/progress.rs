//! "Where my order stands": the worker edits each order's "order accepted" message as the
//! order moves (its place in the queue, then how many videos are ready, then done), at most
//! once per `PROGRESS_EVERY` an order and only when the text changes, in the bulk lane of
//! the Telegram budget so that edits never crowd out the dialog.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::Worker;
use crate::domain::callback::Callback;
use crate::store::OrderProgress;
use crate::texts::{text, videos};

/// Orders looked at per housekeeping tick and process: edits share Telegram's budget with
/// the videos.
const EDITS_PER_TICK: i64 = 10;

/// The message for an order as it stands.
pub(crate) fn progress_text(progress: &OrderProgress) -> String {
    let lang = progress.language;
    let args: [(&str, &(dyn std::fmt::Display + Sync)); 6] = [
        ("order", &progress.order),
        ("videos", &videos(lang, progress.total)),
        ("made", &progress.delivered),
        ("total", &progress.total),
        ("ahead", &progress.ahead),
        ("waiting", &progress.waiting),
    ];
    if progress.finished() {
        text(lang, "progress.done", &args)
    } else if progress.waiting == progress.total {
        text(lang, "progress.queued", &args)
    } else {
        let mut making = text(lang, "progress.making", &args);
        if progress.waiting > 0 {
            making.push(' ');
            making.push_str(&text(lang, "progress.still_waiting", &args));
        }
        making
    }
}

impl Worker {
    pub(super) async fn show_progress(&self) {
        let due = match self
            .store
            .take_progress_due(self.settings.progress_every, EDITS_PER_TICK)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "reading the orders to show the progress of failed");
                return;
            }
        };
        for progress in due {
            let text = progress_text(&progress);
            let done = progress.finished();
            if progress.shown.as_deref() != Some(text.as_str()) {
                // The cancel button stays while some videos can still be cancelled.
                let buttons = (progress.waiting > 0).then(|| {
                    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
                        crate::texts::text(progress.language, "button.cancel_order", &[]),
                        Callback::CancelOrder(progress.order).encode(),
                    )]])
                });
                if let Err(err) = self
                    .telegram
                    .edit_text(progress.chat.0, progress.message_id, &text, buttons)
                    .await
                {
                    tracing::debug!(order = %progress.order, error = %err, "editing an order's progress failed; next time");
                    continue;
                }
            }
            if let Err(err) = self
                .store
                .record_progress(progress.order, &text, done)
                .await
            {
                tracing::warn!(order = %progress.order, error = %err, "recording an order's progress failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChatId, Lang, OrderId};

    fn progress(waiting: i64, delivered: i64, failed: i64, ahead: i64) -> OrderProgress {
        OrderProgress {
            order: OrderId(7),
            chat: ChatId(1),
            message_id: 1,
            language: Lang::En,
            shown: None,
            total: 3,
            waiting,
            delivered,
            failed,
            ahead,
        }
    }

    #[test]
    fn the_text_follows_the_order_from_the_queue_to_done() {
        assert_eq!(
            progress_text(&progress(3, 0, 0, 12)),
            "Order #7, 3 videos: in the queue, 12 videos before yours."
        );
        assert_eq!(
            progress_text(&progress(0, 0, 0, 0)),
            "Order #7, 3 videos: being made, 0 of 3 ready."
        );
        assert_eq!(
            progress_text(&progress(1, 1, 0, 0)),
            "Order #7, 3 videos: being made, 1 of 3 ready. 1 still waiting in the queue."
        );
        assert_eq!(
            progress_text(&progress(0, 2, 1, 0)),
            "Order #7, 3 videos: done, 2 of 3 made. The summary is below."
        );
    }
}
