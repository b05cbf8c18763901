//! Method names and the dispatch of every method but getUpdates (which waits, see routes).

use std::time::Instant;

use serde_json::{json, Value};

use super::error::TgError;
use super::faults;
use super::params::Params;
use super::sending;
use super::stars;
use super::state::TgState;
use super::types;
use super::webhook;
use super::{PreCheckoutAnswer, TelegramConfig};

/// Methods that deliver something to a chat: blocking applies to all of them.
const SENDS: &[&str] = &[
    "sendMessage",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "sendAnimation",
    "sendAudio",
    "sendVoice",
    "sendSticker",
    "sendVideoNote",
    "sendMediaGroup",
    "sendLocation",
    "sendContact",
    "sendPoll",
    "sendDice",
    "sendInvoice",
    "sendChatAction",
    "copyMessage",
    "forwardMessage",
];

/// The other methods the emulator knows by name, in their canonical spelling.
const OTHERS: &[&str] = &[
    "getMe",
    "getUpdates",
    "logOut",
    "close",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "answerPreCheckoutQuery",
    "getFile",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "setMyDescription",
    "setMyShortDescription",
    "setChatMenuButton",
    "getStarTransactions",
    "refundStarPayment",
];

/// Telegram's answer to a query answered too late, or unknown.
const QUERY_TOO_OLD: &str = "query is too old and response timeout expired or query ID is invalid";

fn known_methods() -> impl Iterator<Item = &'static &'static str> {
    SENDS.iter().chain(OTHERS)
}

/// Telegram matches method names case-insensitively, and teloxide sends them PascalCase.
pub(crate) fn canonical(name: &str) -> String {
    if let Some(known) = known_methods().find(|m| m.eq_ignore_ascii_case(name)) {
        return (*known).to_owned();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Runs `method` against the state. Sends are checked against faults and flood limits first.
pub(crate) fn call(
    st: &mut TgState,
    config: &TelegramConfig,
    method: &str,
    p: &Params,
) -> Result<Value, TgError> {
    if !SENDS.contains(&method) {
        return call_other(st, method, p);
    }
    let chat_id = chat_id(p)?;
    if faults::is_blocked(&st.faults, chat_id) {
        return Err(TgError::blocked());
    }
    // A chat action is not a message: Telegram does not count it against flood limits.
    let limited = config.enforce_limits && method != "sendChatAction";
    let now = Instant::now();
    if limited {
        st.limiter
            .check(chat_id, now)
            .map_err(TgError::too_many_requests)?;
    }
    let result = match method {
        "sendMessage" => sending::send_message(st, chat_id, p),
        "sendVideo" => sending::send_video(st, chat_id, p),
        "sendPhoto" => sending::send_photo(st, chat_id, p),
        "sendDocument" => sending::send_document(st, chat_id, p),
        "sendInvoice" => sending::send_invoice(st, chat_id, p),
        "sendChatAction" => Ok(json!(true)),
        other => sending::send_other(st, chat_id, other, p),
    }?;
    if limited {
        st.limiter.record(chat_id, now);
    }
    Ok(result)
}

fn call_other(st: &mut TgState, method: &str, p: &Params) -> Result<Value, TgError> {
    match method {
        "getMe" => Ok(types::me(st.bot_id, &st.bot_username)),
        "editMessageText" => sending::edit_text(st, p),
        "editMessageCaption" => sending::edit_caption(st, p),
        "editMessageReplyMarkup" => sending::edit_reply_markup(st, p),
        "deleteMessage" => sending::delete(st, p),
        "answerCallbackQuery" => {
            let id = p
                .str("callback_query_id")
                .ok_or_else(|| TgError::bad_request(QUERY_TOO_OLD))?;
            st.answered_callbacks.push(id);
            Ok(json!(true))
        }
        "answerPreCheckoutQuery" => {
            let query_id = p
                .str("pre_checkout_query_id")
                .ok_or_else(|| TgError::bad_request("QUERY_ID_INVALID"))?;
            let ok = p.bool("ok").unwrap_or(false);
            let error_message = p.str("error_message");
            if !ok && error_message.is_none() {
                return Err(TgError::bad_request("ERROR_MESSAGE_EMPTY"));
            }
            // Telegram cancelled the payment when the answer did not come in time.
            if st.expired_pre_checkouts.contains(&query_id) {
                return Err(TgError::bad_request(QUERY_TOO_OLD));
            }
            st.pre_checkout_answers.push(PreCheckoutAnswer {
                query_id,
                ok,
                error_message,
            });
            Ok(json!(true))
        }
        "getStarTransactions" => Ok(stars::get_star_transactions(&st.stars, p)),
        "refundStarPayment" => stars::refund_star_payment(&mut st.stars, p),
        "getFile" => {
            let file = p
                .str("file_id")
                .and_then(|id| st.file(&id))
                .ok_or_else(|| TgError::bad_request("invalid file_id"))?;
            Ok(types::file(&file.meta, &file.path))
        }
        "setWebhook" => {
            st.webhook = webhook::registration(p)?;
            if p.bool("drop_pending_updates") == Some(true) {
                st.clear_updates();
            }
            Ok(json!(true))
        }
        "deleteWebhook" => {
            st.webhook = None;
            if p.bool("drop_pending_updates") == Some(true) {
                st.clear_updates();
            }
            Ok(json!(true))
        }
        "getWebhookInfo" => Ok(webhook::info(st)),
        "setMyCommands" => {
            st.commands = p.json("commands").unwrap_or_else(|| json!([]));
            Ok(json!(true))
        }
        "getMyCommands" => Ok(st.commands.clone()),
        "deleteMyCommands" => {
            st.commands = json!([]);
            Ok(json!(true))
        }
        // Everything else that only configures the bot answers True, as those methods do;
        // the call is recorded, so a test can still assert on it.
        other => {
            if !known_methods().any(|known| *known == other) {
                tracing::warn!(
                    method = other,
                    "Telegram emulator: unknown method, answering true"
                );
            }
            Ok(json!(true))
        }
    }
}

fn chat_id(p: &Params) -> Result<i64, TgError> {
    if let Some(id) = p.i64("chat_id") {
        return Ok(id);
    }
    match p.str("chat_id") {
        Some(_) => Err(TgError::bad_request("chat not found")),
        None => Err(TgError::bad_request("chat_id is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_are_canonicalised() {
        assert_eq!(canonical("SendMessage"), "sendMessage");
        assert_eq!(canonical("getupdates"), "getUpdates");
        assert_eq!(canonical("SomethingNew"), "somethingNew");
    }
}
