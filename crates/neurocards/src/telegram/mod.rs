//! Outbound Telegram: what the worker sends and fetches, over teloxide. Errors are reduced
//! to what the caller must decide on, and their texts never carry the bot token (a Bot API
//! URL contains it).

pub mod budget;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{FileId, InlineKeyboardMarkup, InputFile};
use teloxide::{ApiError, RequestError};
use url::Url;

use budget::{Budget, Lane, Limits};

use crate::store::Store;

/// Telegram accepts uploads of up to 50 MB from bots.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TelegramError {
    /// The user blocked the bot (or deleted their account): stop writing to them.
    #[error("the user blocked the bot or is gone")]
    Unreachable,
    #[error("Telegram asks to wait {0:?}")]
    RetryAfter(Duration),
    /// Telegram could not take the file by URL (unreachable, too large, wrong type).
    #[error("Telegram refused the file: {0}")]
    FileRefused(String),
    #[error("the file has {size} bytes, more than allowed")]
    TooLarge { size: u64 },
    /// The request certainly did not deliver anything: the connection was refused, or
    /// Telegram answered with a server error. Worth trying again.
    #[error("Telegram did not take the request: {0}")]
    NotSent(String),
    /// No answer (a timeout, a connection lost after the request went out): the message may
    /// have been delivered. Sending again could deliver it twice.
    #[error("Telegram's answer did not come: {0}")]
    Ambiguous(String),
    #[error("Telegram error: {0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentVideo {
    pub message_id: i64,
    pub file_id: Option<String>,
}

#[derive(Clone)]
pub struct Telegram {
    bot: Bot,
    /// Uploads of whole videos take longer than the default 17 s timeout.
    uploads: Bot,
    /// Every message of the process, the dialog's and the worker's, takes its turn here.
    budget: Arc<Budget>,
    token: SecretString,
}

impl Telegram {
    pub fn new(token: &SecretString, api_url: &Url) -> Result<Telegram, TelegramError> {
        Telegram::with_timeouts(
            token,
            api_url,
            Duration::from_secs(30),
            Duration::from_secs(300),
        )
    }

    /// `request`: messages and sends by URL; `upload`: whole videos.
    pub fn with_timeouts(
        token: &SecretString,
        api_url: &Url,
        request: Duration,
        upload: Duration,
    ) -> Result<Telegram, TelegramError> {
        let client = |timeout: Duration| {
            teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map_err(|err| TelegramError::Other(err.to_string()))
        };
        let api_url = api_url.clone();
        let bot =
            Bot::with_client(token.expose_secret(), client(request)?).set_api_url(api_url.clone());
        let uploads = Bot::with_client(token.expose_secret(), client(upload)?).set_api_url(api_url);
        Ok(Telegram {
            bot,
            uploads,
            budget: Arc::new(Budget::new(Limits::default())),
            token: token.clone(),
        })
    }

    /// The same client with `per_second` messages a second for the token. Call before the
    /// client is cloned.
    pub fn with_rate(mut self, per_second: usize) -> Telegram {
        self.budget = Arc::new(Budget::new(Limits::with_rate(per_second)));
        self
    }

    /// The same client, taking its turns from the token's budget shared through `store` by
    /// every process that sends with the token. Call before the client is cloned.
    pub fn with_shared_budget(mut self, store: Store) -> Telegram {
        self.budget = Arc::new(Budget::shared(self.budget.limits().clone(), store));
        self
    }

    /// The client for the dialog. Its messages must first wait for [`Telegram::dialog_turn`].
    pub fn dialog_bot(&self) -> Bot {
        self.bot.clone()
    }

    /// Waits until an answer to a person in `chat` may be sent: before any delivery that is
    /// waiting too.
    pub async fn dialog_turn(&self, chat: i64) {
        crate::metrics::timed("telegram_turn", self.budget.acquire(chat, Lane::Dialog)).await;
    }

    async fn bulk_turn(&self, chat: i64) {
        crate::metrics::timed("telegram_turn", self.budget.acquire(chat, Lane::Bulk)).await;
    }

    /// Downloads a file the user sent, refusing it beyond `max_bytes`.
    pub async fn fetch_file(
        &self,
        file_id: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, TelegramError> {
        let file = self
            .uploads
            .get_file(FileId(file_id.to_owned()))
            .await
            .observed(self, "getFile")?;
        // teloxide reads a missing file_size (optional in the Bot API) as u32::MAX: unknown.
        let declared = Some(u64::from(file.size)).filter(|_| file.size != u32::MAX);
        if let Some(size) = declared.filter(|size| *size > max_bytes) {
            return Err(TelegramError::TooLarge { size });
        }
        let capacity = declared.unwrap_or(0).min(max_bytes);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        self.uploads
            .download_file(&file.path, &mut bytes)
            .await
            .map_err(|err| TelegramError::Other(self.redact(&err.to_string())))?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > max_bytes {
            return Err(TelegramError::TooLarge { size });
        }
        Ok(bytes)
    }

    pub async fn send_video_url(
        &self,
        chat_id: i64,
        url: &str,
        caption: &str,
    ) -> Result<SentVideo, TelegramError> {
        let url = Url::parse(url).map_err(|err| TelegramError::FileRefused(err.to_string()))?;
        self.bulk_turn(chat_id).await;
        let message = self
            .bot
            .send_video(ChatId(chat_id), InputFile::url(url))
            .caption(caption)
            .supports_streaming(true)
            .await
            .observed(self, "sendVideo")?;
        Ok(sent_video(&message))
    }

    /// A video Telegram already has, by its file id.
    pub async fn send_video_file(
        &self,
        chat_id: i64,
        file_id: &str,
        caption: &str,
    ) -> Result<SentVideo, TelegramError> {
        self.bulk_turn(chat_id).await;
        let message = self
            .bot
            .send_video(
                ChatId(chat_id),
                InputFile::file_id(FileId(file_id.to_owned())),
            )
            .caption(caption)
            .await
            .observed(self, "sendVideo")?;
        Ok(sent_video(&message))
    }

    pub async fn send_video_bytes(
        &self,
        chat_id: i64,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<SentVideo, TelegramError> {
        self.bulk_turn(chat_id).await;
        let message = self
            .uploads
            .send_video(
                ChatId(chat_id),
                InputFile::memory(bytes).file_name("video.mp4"),
            )
            .caption(caption)
            .supports_streaming(true)
            .await
            .observed(self, "sendVideo")?;
        Ok(sent_video(&message))
    }

    /// Sends a text, with buttons when given; returns the message id.
    pub async fn send_text(
        &self,
        chat_id: i64,
        text: &str,
        buttons: Option<InlineKeyboardMarkup>,
    ) -> Result<i64, TelegramError> {
        self.bulk_turn(chat_id).await;
        let request = self.bot.send_message(ChatId(chat_id), text);
        let sent = match buttons {
            Some(markup) => request.reply_markup(markup).await,
            None => request.await,
        };
        sent.map(|message| i64::from(message.id.0))
            .observed(self, "sendMessage")
    }

    /// Replaces a message's text and buttons (none: removed). A text that did not change
    /// is not an error.
    pub async fn edit_text(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
        buttons: Option<InlineKeyboardMarkup>,
    ) -> Result<(), TelegramError> {
        self.bulk_turn(chat_id).await;
        let message = teloxide::types::MessageId(i32::try_from(message_id).unwrap_or(i32::MAX));
        let request = self.bot.edit_message_text(ChatId(chat_id), message, text);
        let edited = request
            .reply_markup(
                buttons.unwrap_or_else(|| InlineKeyboardMarkup::new(Vec::<Vec<_>>::new())),
            )
            .await;
        match edited {
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            other => other.map(|_| ()).observed(self, "editMessageText"),
        }
    }

    /// One page of the bot's Star transactions, newest first: payments in and refunds out.
    pub async fn star_transactions(
        &self,
        offset: u32,
        limit: u8,
    ) -> Result<Vec<StarTransaction>, TelegramError> {
        let page = self
            .bot
            .get_star_transactions()
            .offset(offset)
            .limit(limit)
            .await
            .observed(self, "getStarTransactions")?;
        Ok(page
            .transactions
            .iter()
            .filter_map(star_transaction)
            .collect())
    }

    /// Gives a payment's Stars back. A charge Telegram has already refunded is not an
    /// error: the caller records the refund either way.
    pub async fn refund_star_payment(
        &self,
        user: i64,
        charge_id: &str,
    ) -> Result<StarRefund, TelegramError> {
        let user = teloxide::types::UserId(u64::try_from(user).unwrap_or(0));
        let charge = teloxide::types::TelegramTransactionId(charge_id.to_owned());
        match self.bot.refund_star_payment(user, charge).await {
            Ok(_) => Ok(StarRefund::Refunded),
            Err(RequestError::Api(ApiError::Unknown(text)))
                if text.contains("CHARGE_ALREADY_REFUNDED") =>
            {
                Ok(StarRefund::AlreadyRefunded)
            }
            Err(err) => Err(self.request_error(err)),
        }
    }

    fn request_error(&self, err: RequestError) -> TelegramError {
        match err {
            RequestError::Api(
                ApiError::BotBlocked
                | ApiError::UserDeactivated
                | ApiError::ChatNotFound
                | ApiError::BotKicked
                | ApiError::BotKickedFromSupergroup,
            ) => TelegramError::Unreachable,
            RequestError::Api(
                api @ (ApiError::FailedToGetUrlContent
                | ApiError::WrongFileIdOrUrl
                | ApiError::WrongHttpUrl
                | ApiError::RequestEntityTooLarge),
            ) => TelegramError::FileRefused(api.to_string()),
            RequestError::Api(ApiError::Unknown(text))
                if text.contains("failed to get HTTP URL content")
                    || text.contains("wrong file identifier")
                    || text.contains("wrong type of the web page content") =>
            {
                TelegramError::FileRefused(text)
            }
            // Telegram asks for seconds to minutes; more than that parks a paid video.
            RequestError::RetryAfter(seconds) => {
                TelegramError::RetryAfter(seconds.duration().min(MAX_RETRY_AFTER))
            }
            RequestError::Api(ApiError::Unknown(text)) if is_server_error(&text) => {
                TelegramError::NotSent(self.redact(&text))
            }
            RequestError::Network(err) if err.is_connect() => {
                TelegramError::NotSent(self.redact(&err.to_string()))
            }
            // The request may have been taken: a timeout, a reset after sending, an answer
            // that does not parse.
            err @ (RequestError::Network(_)
            | RequestError::Io(_)
            | RequestError::InvalidJson { .. }) => {
                TelegramError::Ambiguous(self.redact(&err.to_string()))
            }
            other => TelegramError::Other(self.redact(&other.to_string())),
        }
    }

    fn redact(&self, text: &str) -> String {
        redact_token(text, self.token.expose_secret())
    }
}

/// A payment to the bot, or its refund, as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarTransaction {
    pub charge_id: String,
    pub user: i64,
    pub stars: i64,
    /// The invoice's payload (payments and their refunds of invoices).
    pub payload: Option<String>,
    pub kind: StarTransactionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StarTransactionKind {
    Payment,
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StarRefund {
    Refunded,
    /// Telegram had already refunded it (CHARGE_ALREADY_REFUNDED).
    AlreadyRefunded,
}

/// Only transactions with a user through an invoice concern us (not Fragment withdrawals,
/// ads, gifts).
fn star_transaction(transaction: &teloxide::types::StarTransaction) -> Option<StarTransaction> {
    use teloxide::types::TransactionPartner;
    let (partner, kind) = match (&transaction.source, &transaction.receiver) {
        (Some(source), _) => (source, StarTransactionKind::Payment),
        (None, Some(receiver)) => (receiver, StarTransactionKind::Refund),
        (None, None) => return None,
    };
    let TransactionPartner::User(user) = partner else {
        return None;
    };
    let invoice = user.kind.invoice_payment()?;
    Some(StarTransaction {
        charge_id: transaction.id.0.clone(),
        user: i64::try_from(user.user.id.0).unwrap_or(i64::MAX),
        stars: i64::from(transaction.amount),
        payload: invoice.invoice_payload,
        kind,
    })
}

/// Maps a request's error for the caller and counts the request for the metrics.
trait Observed<T> {
    fn observed(self, telegram: &Telegram, method: &'static str) -> Result<T, TelegramError>;
}

impl<T> Observed<T> for Result<T, RequestError> {
    fn observed(self, telegram: &Telegram, method: &'static str) -> Result<T, TelegramError> {
        let result = self.map_err(|err| telegram.request_error(err));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TelegramError::Unreachable) => "unreachable",
            Err(TelegramError::RetryAfter(_)) => {
                metrics::counter!("neurocards_rate_limited_total", "service" => "telegram")
                    .increment(1);
                "retry_after"
            }
            Err(TelegramError::FileRefused(_)) => "file_refused",
            Err(TelegramError::TooLarge { .. }) => "too_large",
            Err(TelegramError::NotSent(_)) => "not_sent",
            Err(TelegramError::Ambiguous(_)) => "ambiguous",
            Err(TelegramError::Other(_)) => "other",
        };
        metrics::counter!("neurocards_telegram_requests_total", "method" => method, "outcome" => outcome)
            .increment(1);
        result
    }
}

fn sent_video(message: &Message) -> SentVideo {
    SentVideo {
        message_id: i64::from(message.id.0),
        file_id: message.video().map(|video| video.file.id.0.clone()),
    }
}

/// The longest a `retry_after` from Telegram is obeyed at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Telegram's own failures ("Internal Server Error", "Bad Gateway"): nothing was sent.
fn is_server_error(description: &str) -> bool {
    let text = description.to_ascii_lowercase();
    [
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Replaces the bot token wherever it appears (Bot API URLs are `/bot<token>/…`).
pub fn redact_token(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, "<bot-token>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_survives_in_an_error_text() {
        let text = "error sending request for url (https://api.telegram.org/bot123:ABC/GetFile)";
        assert_eq!(
            redact_token(text, "123:ABC"),
            "error sending request for url (https://api.telegram.org/bot<bot-token>/GetFile)"
        );
    }
}
