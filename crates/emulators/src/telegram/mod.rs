//! A fake of the Telegram Bot API, answering what teloxide 0.17 (teloxide-core 0.13) parses.
//!
//! A test acts as users (`send_text`, `send_photo`, `press_button`…), which queues updates for
//! `getUpdates`, and reads back what the bot did (`sent`, `calls`).
//!
//! Stars payments: `pre_checkout`, `successful_payment` and `refunded_payment` queue the
//! updates, and the payments and refunds form the ledger that getStarTransactions lists and
//! refundStarPayment checks (`star_refunds`); `record_payment_only` adds a payment whose
//! update was lost. `pay_invoice` plays a whole payment of one of the bot's invoices: the
//! pre_checkout_query, the wait for the bot's answer, then the successful_payment message.
//! `repeat_message` delivers a message again in a new update, as Telegram sometimes does.
//!
//! Faults make calls fail the way Telegram does. Injected with `inject` (method names match
//! case-insensitively; `clear_faults` drops those pending):
//! - [`Fault::TooManyRequests`]: the next call of a method gets 429 with `retry_after`;
//! - [`Fault::ServerError`]: the next call of a method gets 500;
//! - [`Fault::Blocked`]: every send to a chat gets 403 "bot was blocked by the user" until
//!   cleared;
//! - [`Fault::RefuseVideoUrl`]: the next sendVideo by URL gets 400 "failed to get HTTP URL
//!   content";
//! - [`Fault::LateAnswer`]: the next call of a method takes effect at once but is answered only
//!   after a delay, as when the answer comes after the client's timeout.
//!
//! Webhooks: once setWebhook names a (loopback) URL, queued updates are posted to it one at
//! a time with the secret token header, and leave the queue only on a 2xx answer
//! (`webhook_delivered` lists them); getUpdates then answers 409, as Telegram does.
//!
//! And on the connection: `refuse_connections_for` refuses connects (and cuts open connections)
//! for a while, then serves again on the same port with the state intact.

mod error;
mod faults;
mod methods;
mod params;
mod routes;
mod sending;
mod stars;
mod state;
mod types;
mod webhook;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::server::{self, Server};
use state::Shared;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: String,
    pub bot_username: String,
    /// Answer 429 beyond 1 send per second per chat and 30 per second overall.
    pub enforce_limits: bool,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            token: "123456:TEST-TOKEN".to_owned(),
            bot_username: "neurocards_test_bot".to_owned(),
            enforce_limits: false,
        }
    }
}

/// A user the test acts as; its id is also its private chat's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

impl TestUser {
    pub fn new(id: i64, language_code: &str) -> TestUser {
        TestUser {
            id,
            first_name: format!("User{id}"),
            username: Some(format!("user{id}")),
            language_code: Some(language_code.to_owned()),
        }
    }
}

/// A failure Telegram may answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next call of `method` gets 429 "Too Many Requests: retry after N".
    TooManyRequests { method: String, retry_after: u32 },
    /// The next call of `method` gets 500 "Internal Server Error".
    ServerError { method: String },
    /// Every send to the chat gets 403 "Forbidden: bot was blocked by the user" until cleared.
    Blocked { chat_id: i64 },
    /// The next sendVideo by URL gets 400 "Bad Request: failed to get HTTP URL content".
    RefuseVideoUrl,
    /// The next call of `method` takes effect at once, as usual (a send is recorded in `sent`
    /// and delivered), but its answer is written only after `delay`: Telegram accepted the send
    /// and the answer came after the client's timeout. A client with a shorter timeout sees a
    /// timeout (reqwest `is_timeout()`; teloxide `RequestError::Network`). The next call is
    /// delayed whatever its answer, an error included.
    LateAnswer { method: String, delay: Duration },
}

/// Injects faults into a running emulator from anywhere (see [`TelegramEmulator::inject`]).
#[derive(Debug, Clone)]
pub struct FaultInjector {
    shared: Arc<Shared>,
}

impl FaultInjector {
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }
}

/// A message the bot sent, in its current (possibly edited) state.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub message_id: i64,
    pub chat_id: i64,
    pub kind: SentKind,
    /// The text, or the caption of a media message.
    pub text: Option<String>,
    pub reply_markup: Option<Value>,
    pub edits: usize,
    /// Deleted by deleteMessage; such messages stay in `sent` so that counts do not shrink.
    pub deleted: bool,
}

impl SentMessage {
    /// The inline buttons, row after row, as `(label, callback data)`.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(markup) = &self.reply_markup else {
            return Vec::new();
        };
        markup["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .filter_map(|button| {
                Some((
                    button["text"].as_str()?.to_owned(),
                    button["callback_data"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentKind {
    Text,
    Video {
        source: VideoSource,
        file_id: String,
    },
    Photo,
    Invoice {
        payload: String,
        currency: String,
        amount: i64,
    },
    /// Another kind of message, by its field name ("document"…).
    Other(String),
}

/// Where a sent video came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    Url(String),
    FileId(String),
    Upload {
        bytes: usize,
        file_name: Option<String>,
    },
}

/// One Bot API call.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The canonical lowerCamel name, e.g. "sendVideo", whatever case the client used.
    pub method: String,
    pub token_ok: bool,
    /// The parameters; an uploaded file appears as `"<upload n bytes>"`.
    pub params: Value,
    /// When the request arrived: benchmarks measure the bot's answer times from it.
    pub at: std::time::Instant,
}

/// An answerPreCheckoutQuery the bot made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCheckoutAnswer {
    pub query_id: String,
    pub ok: bool,
    pub error_message: Option<String>,
}

/// How a payment played by [`TelegramEmulator::pay_invoice`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The bot accepted the pre-checkout query in time; the successful_payment message with
    /// this id is queued.
    Paid { message_id: i64 },
    /// The bot answered the pre-checkout query with ok=false; nothing more is queued.
    Refused { error_message: Option<String> },
    /// The bot did not answer in time: Telegram cancelled the payment, nothing more is queued,
    /// and a late answer is refused.
    TimedOut,
}

/// How long Telegram waits for the answer to a pre_checkout_query.
pub const PRE_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Telegram emulator; it stops when dropped.
#[derive(Debug)]
pub struct TelegramEmulator {
    shared: Arc<Shared>,
    server: Server,
}

impl TelegramEmulator {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: TelegramConfig) -> std::io::Result<TelegramEmulator> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts on `addr`, which must be a loopback address.
    pub async fn start_on(
        addr: SocketAddr,
        config: TelegramConfig,
    ) -> std::io::Result<TelegramEmulator> {
        let listener = server::bind(addr).await?;
        let shared = Arc::new(Shared::new(config));
        let http = reqwest::Client::builder()
            .no_proxy()
            .user_agent("telegram-emulator")
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        webhook::spawn(Arc::clone(&shared), http);
        let router = routes::router(Arc::clone(&shared));
        let server = server::spawn(listener, router, shared.cancel.clone())?;
        Ok(TelegramEmulator { shared, server })
    }

    /// `http://127.0.0.1:PORT`, for `Bot::new(token).set_api_url(url)`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn token(&self) -> String {
        self.shared.config.token.clone()
    }

    /// A private text message from `user`; a text starting with `/` gets a bot_command entity.
    pub fn send_text(&self, user: &TestUser, text: &str) -> i64 {
        let id = self.shared.lock().user_text(user, text);
        self.shared.updates.notify_waiters();
        id
    }

    /// A photo from `user`: three sizes (the largest last), all serving `bytes`.
    pub fn send_photo(&self, user: &TestUser, bytes: Vec<u8>) -> i64 {
        let id = self.shared.lock().user_photo(user, bytes.into());
        self.shared.updates.notify_waiters();
        id
    }

    /// A file sent as a document (uncompressed image, PDF…).
    pub fn send_document(
        &self,
        user: &TestUser,
        bytes: Vec<u8>,
        file_name: &str,
        mime_type: &str,
    ) -> i64 {
        let id = self
            .shared
            .lock()
            .user_document(user, bytes.into(), file_name, mime_type);
        self.shared.updates.notify_waiters();
        id
    }

    /// A private message from `user` with `fields` merged in, e.g. `{"sticker": {…}}`.
    pub fn send_message_json(&self, user: &TestUser, fields: Value) -> i64 {
        let id = self.shared.lock().user_message(user, fields);
        self.shared.updates.notify_waiters();
        id
    }

    /// Updates queued and not yet confirmed (by getUpdates' offset or the webhook's 2xx).
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().pending_updates()
    }

    /// Every update the webhook accepted (answered 2xx), in order; pushing one again with
    /// [`TelegramEmulator::push_update`] delivers it again under the same `update_id`.
    pub fn webhook_delivered(&self) -> Vec<Value> {
        self.shared.lock().webhook_delivered.clone()
    }

    /// Queues a raw update; `update_id` is assigned when missing.
    pub fn push_update(&self, update: Value) {
        self.shared.lock().push_update(update);
        self.shared.updates.notify_waiters();
    }

    /// `user` presses an inline button with `data` on the bot's message `message_id`;
    /// returns the callback query id.
    pub fn press_button(&self, user: &TestUser, message_id: i64, data: &str) -> String {
        let id = self.shared.lock().press_button(user, message_id, data);
        self.shared.updates.notify_waiters();
        id
    }

    /// `user` confirms paying an invoice: a pre_checkout_query update; returns its id.
    pub fn pre_checkout(
        &self,
        user: &TestUser,
        currency: &str,
        total_amount: i64,
        payload: &str,
    ) -> String {
        let id = self
            .shared
            .lock()
            .pre_checkout(user, currency, total_amount, payload);
        self.shared.updates.notify_waiters();
        id
    }

    /// The payment went through: a message with `successful_payment`; returns its id. A Stars
    /// payment (currency "XTR") is also recorded as a Star transaction with id `charge_id`,
    /// listed by getStarTransactions and refundable by refundStarPayment.
    pub fn successful_payment(
        &self,
        user: &TestUser,
        currency: &str,
        total_amount: i64,
        payload: &str,
        charge_id: &str,
    ) -> i64 {
        let fields = json!({"successful_payment": {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }});
        let id = {
            let mut st = self.shared.lock();
            // Under the same lock as the update: a bot that sees the update and looks the
            // charge up must find it.
            if currency == "XTR" {
                st.stars
                    .record_payment(user, total_amount, payload, charge_id);
            }
            st.user_message(user, fields)
        };
        self.shared.updates.notify_waiters();
        id
    }

    /// `user` pays the bot's invoice `invoice_message_id` in their chat, as Telegram runs a
    /// payment: a pre_checkout_query for the invoice's currency, amount and payload is queued,
    /// then the bot has [`PRE_CHECKOUT_TIMEOUT`] (10 s) to answer it by answerPreCheckoutQuery.
    /// Answered ok, the successful_payment message is queued as by `successful_payment` (a
    /// Stars payment is recorded as a Star transaction with id `charge_id`). Answered not ok,
    /// or not in time, nothing more is queued. The bot must be polling meanwhile.
    ///
    /// # Panics
    /// When the bot sent no invoice with that id to `user`'s chat (or deleted it).
    pub async fn pay_invoice(
        &self,
        user: &TestUser,
        invoice_message_id: i64,
        charge_id: &str,
    ) -> PaymentOutcome {
        self.pay_invoice_within(user, invoice_message_id, charge_id, PRE_CHECKOUT_TIMEOUT)
            .await
    }

    /// `pay_invoice` with Telegram waiting `within` for the bot's answer instead of 10 s.
    ///
    /// # Panics
    /// When the bot sent no invoice with that id to `user`'s chat (or deleted it).
    pub async fn pay_invoice_within(
        &self,
        user: &TestUser,
        invoice_message_id: i64,
        charge_id: &str,
        within: Duration,
    ) -> PaymentOutcome {
        let (currency, amount, payload) = self.invoice(user.id, invoice_message_id);
        let query_id = self.pre_checkout(user, &currency, amount, &payload);
        let Some(answer) = self.wait_pre_checkout_answer(&query_id, within).await else {
            return PaymentOutcome::TimedOut;
        };
        if !answer.ok {
            return PaymentOutcome::Refused {
                error_message: answer.error_message,
            };
        }
        let message_id = self.successful_payment(user, &currency, amount, &payload, charge_id);
        PaymentOutcome::Paid { message_id }
    }

    /// The currency, amount and payload of the bot's invoice `message_id` in `chat_id`.
    fn invoice(&self, chat_id: i64, message_id: i64) -> (String, i64, String) {
        let found = {
            let st = self.shared.lock();
            match st.message(chat_id, message_id).map(|m| &m.summary.kind) {
                Some(SentKind::Invoice {
                    payload,
                    currency,
                    amount,
                }) => Ok((currency.clone(), *amount, payload.clone())),
                _ => Err(st
                    .sent(chat_id)
                    .into_iter()
                    .map(|m| (m.message_id, m.kind, m.deleted))
                    .collect::<Vec<_>>()),
            }
        };
        found.unwrap_or_else(|sent| {
            panic!(
                "pay_invoice: the bot sent no invoice with message id {message_id} to chat \
                 {chat_id}; its messages there, as (id, kind, deleted): {sent:?}"
            )
        })
    }

    /// Waits up to `within` for the bot's answer to the pre-checkout query `query_id`; then
    /// expires the query, unless answered, under the same lock as the last look.
    async fn wait_pre_checkout_answer(
        &self,
        query_id: &str,
        within: Duration,
    ) -> Option<PreCheckoutAnswer> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.sent.notified();
            tokio::pin!(notified);
            // Registered before the look, so an answer in between still wakes us.
            notified.as_mut().enable();
            if tokio::time::Instant::now() >= deadline {
                return self.shared.lock().expire_pre_checkout(query_id);
            }
            if let Some(answer) = self.shared.lock().pre_checkout_answer(query_id) {
                return Some(answer);
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Delivers again, in a new update (with a new update_id), the message `message_id` that
    /// `user` sent in their chat, exactly as first delivered: Telegram may deliver an update
    /// twice, a successful_payment included. Returns the new update's id. The message may
    /// come from any of the methods acting as `user` or from `push_update`, and may have been
    /// confirmed already. Nothing else is repeated: a payment stays one Star transaction.
    ///
    /// # Panics
    /// When no message `message_id` was delivered in `user`'s chat.
    pub fn repeat_message(&self, user: &TestUser, message_id: i64) -> i64 {
        let update_id = self.shared.lock().repeat_message(user.id, message_id);
        let Some(update_id) = update_id else {
            panic!(
                "repeat_message: no message {message_id} was delivered in chat {}",
                user.id
            )
        };
        self.shared.updates.notify_waiters();
        update_id
    }

    /// A Stars payment Telegram took but whose successful_payment update the bot never got
    /// (lost during an outage): only the Star transaction is recorded, no update is queued,
    /// so the bot can find it only through getStarTransactions.
    pub fn record_payment_only(
        &self,
        user: &TestUser,
        total_amount: i64,
        payload: &str,
        charge_id: &str,
    ) {
        self.shared
            .lock()
            .stars
            .record_payment(user, total_amount, payload, charge_id);
    }

    /// A Stars payment was refunded: a message with `refunded_payment` (Bot API 7.10); returns
    /// its id. The refund joins the Star transactions unless the charge was refunded already
    /// (by the bot's refundStarPayment, say), as it is Telegram's record whoever refunded.
    pub fn refunded_payment(
        &self,
        user: &TestUser,
        total_amount: i64,
        payload: &str,
        charge_id: &str,
    ) -> i64 {
        let fields = json!({"refunded_payment": {
            "currency": "XTR",
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
        }});
        let id = {
            let mut st = self.shared.lock();
            st.stars
                .record_refund(user, total_amount, payload, charge_id);
            st.user_message(user, fields)
        };
        self.shared.updates.notify_waiters();
        id
    }

    /// Stores `bytes` as a file; the id is servable by getFile.
    pub fn add_file(&self, bytes: Vec<u8>) -> String {
        self.shared.lock().add_photo_file(bytes.into())
    }

    /// The bot's messages in `chat_id`, in send order, each in its current state.
    pub fn sent(&self, chat_id: i64) -> Vec<SentMessage> {
        self.shared.lock().sent(chat_id)
    }

    /// Every Bot API call, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Waits until at least `count` messages were sent to `chat_id`, or `timeout`; returns
    /// `sent(chat_id)` either way.
    pub async fn wait_for_sent(
        &self,
        chat_id: i64,
        count: usize,
        timeout: Duration,
    ) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.sent.notified();
            tokio::pin!(notified);
            // Registered before the check, so a send between the check and the wait still wakes us.
            notified.as_mut().enable();
            let sent = self.sent(chat_id);
            if sent.len() >= count || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// How many requests were answered with 429 Too Many Requests.
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// Callback query ids answered by answerCallbackQuery, in order.
    pub fn answered_callbacks(&self) -> Vec<String> {
        self.shared.lock().answered_callbacks.clone()
    }

    /// answerPreCheckoutQuery calls, in order.
    pub fn pre_checkout_answers(&self) -> Vec<PreCheckoutAnswer> {
        self.shared.lock().pre_checkout_answers.clone()
    }

    /// Successful refundStarPayment calls, in order, as `(user id, charge id)`.
    pub fn star_refunds(&self) -> Vec<(i64, String)> {
        self.shared.lock().stars.refunds()
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// A handle that injects faults from another task, for as long as the emulator runs.
    pub fn fault_injector(&self) -> FaultInjector {
        FaultInjector {
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Telegram unreachable: from now until `duration` has passed, a connect to the emulator's
    /// port is refused (a reqwest error with `is_connect()`, so the request surely did not get
    /// through; teloxide: `RequestError::Network`); then the same port and base URL serve
    /// again, with all the state kept. The connections open before are cut when the window
    /// opens: a request in flight on one fails as an incomplete message (reqwest `is_request()`
    /// but not `is_connect()`: it may have taken effect), and an idle keep-alive connection is
    /// closed, so the client's next request reconnects and is refused. Calling again during a
    /// window extends it, never shortens it.
    pub fn refuse_connections_for(&self, duration: Duration) {
        self.server.refuse_connections_for(duration);
    }

    /// Stops the server (as dropping the handle does).
    pub fn shutdown(self) {}
}
