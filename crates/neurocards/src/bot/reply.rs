//! Sending from the bot: a 429 waits as Telegram asks and tries once more; a user who blocked
//! the bot is recorded as unreachable instead of failing the handler.

use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, Message};
use teloxide::{ApiError, RequestError};

use super::{Ctx, HandlerResult, TgBot};
use crate::domain::UserId;

pub async fn send(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<Option<Message>, RequestError> {
    let mut waited = false;
    loop {
        ctx.telegram.dialog_turn(chat.0).await;
        let request = bot.send_message(chat, text);
        let sent = match markup.clone() {
            Some(markup) => request.reply_markup(markup).await,
            None => request.await,
        };
        let outcome = match &sent {
            Ok(_) => "ok",
            Err(RequestError::RetryAfter(_)) => {
                metrics::counter!("neurocards_rate_limited_total", "service" => "telegram")
                    .increment(1);
                "retry_after"
            }
            Err(_) => "error",
        };
        metrics::counter!("neurocards_telegram_requests_total", "method" => "sendMessage", "outcome" => outcome)
            .increment(1);
        match sent {
            Ok(message) => return Ok(Some(message)),
            Err(RequestError::RetryAfter(wait)) if !waited => {
                waited = true;
                tokio::time::sleep(wait.duration()).await;
            }
            Err(RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated)) => {
                if let Err(err) = ctx.store.mark_unreachable(UserId(chat.0)).await {
                    tracing::warn!(chat = chat.0, error = %err, "could not record an unreachable user");
                }
                return Ok(None);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Sends a text; the handler's error when Telegram fails otherwise.
pub async fn say(bot: &TgBot, ctx: &Ctx, chat: ChatId, text: &str) -> HandlerResult {
    send(bot, ctx, chat, text, None).await?;
    Ok(())
}

pub async fn say_with(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    text: &str,
    markup: InlineKeyboardMarkup,
) -> Result<Option<Message>, RequestError> {
    send(bot, ctx, chat, text, Some(markup)).await
}
