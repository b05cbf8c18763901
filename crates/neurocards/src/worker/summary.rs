//! The one message that ends an order: sent by whichever worker ends its last job, or by the
//! sweep when that worker died first.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::Worker;
use crate::domain::callback::{Callback, MenuItem};
use crate::domain::OrderId;
use crate::telegram::TelegramError;
use crate::texts;

impl Worker {
    pub(super) async fn summarize(&self, order: OrderId) {
        let claim = self.store.claim_summary(order, &self.info.id);
        let summary = match crate::metrics::timed("claim_summary", claim).await {
            Ok(Some(summary)) => summary,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(order = %order, error = %err, "claiming an order summary failed");
                return;
            }
        };
        let lang = summary.language;
        let balance = crate::metrics::timed("balance", self.store.balance(summary.user_id))
            .await
            .ok();
        let text = texts::order_summary(lang, &summary, balance);
        let mut rows: Vec<Vec<InlineKeyboardButton>> = summary
            .unconfirmed
            .iter()
            .map(|(job, seq)| {
                vec![InlineKeyboardButton::callback(
                    texts::text(lang, "button.send_again", &[("n", seq)]),
                    Callback::SendAgain(*job).encode(),
                )]
            })
            .collect();
        if balance.is_some_and(|balance| balance < self.settings.cheapest_price) {
            rows.push(vec![InlineKeyboardButton::callback(
                texts::text(lang, "button.top_up", &[]),
                Callback::Menu(MenuItem::Buy).encode(),
            )]);
        }
        rows.push(vec![
            InlineKeyboardButton::callback(
                texts::text(lang, "button.make_more", &[]),
                Callback::MakeMore(order).encode(),
            ),
            InlineKeyboardButton::callback(
                texts::text(lang, "button.repeat", &[]),
                Callback::Repeat(order).encode(),
            ),
            InlineKeyboardButton::callback(
                texts::text(lang, "button.main_menu", &[]),
                Callback::MainMenu.encode(),
            ),
        ]);
        let buttons = InlineKeyboardMarkup::new(rows);
        let message_id = match self
            .telegram
            .send_text(summary.chat_id.0, &text, Some(buttons))
            .await
        {
            Ok(message_id) => Some(message_id),
            // Nobody will read it: count it as sent rather than retry forever.
            Err(TelegramError::Unreachable) => None,
            // It may have arrived: a second summary would be a visible defect, a missing one
            // costs a message whose buttons "My videos" also offers.
            Err(TelegramError::Ambiguous(reason)) => {
                tracing::warn!(order = %order, error = %reason, "the summary's send was not confirmed; it is not sent again");
                None
            }
            Err(err) => {
                tracing::warn!(order = %order, error = %err, "sending an order summary failed; will try again");
                if let Err(err) = self.store.release_summary(order, &self.info.id).await {
                    tracing::error!(order = %order, error = %err, "releasing a summary claim failed");
                }
                return;
            }
        };
        let marking = self
            .store
            .mark_summary_sent(order, &self.info.id, message_id);
        match crate::metrics::timed("mark_summary_sent", marking).await {
            Ok(true) => tracing::info!(order = %order, "order summary sent"),
            Ok(false) => {
                tracing::warn!(order = %order, "the summary claim was lost before it was marked sent")
            }
            Err(err) => {
                tracing::error!(order = %order, error = %err, "marking a summary sent failed")
            }
        }
    }

    pub(super) async fn sweep_summaries(&self) {
        match self.store.orders_awaiting_summary(50).await {
            Ok(orders) => {
                for order in orders {
                    self.summarize(order).await;
                }
            }
            Err(err) => tracing::error!(error = %err, "listing orders awaiting a summary failed"),
        }
    }
}
