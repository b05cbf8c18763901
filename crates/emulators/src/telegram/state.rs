//! What the Telegram emulator remembers: the update queue, the bot's messages, files, calls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::faults::SendLimiter;
use super::stars::StarLedger;
use super::types::{self, FileMeta};
use super::{Fault, PreCheckoutAnswer, RecordedCall, SentMessage, TelegramConfig, TestUser};

/// State shared by the handlers and the handle. The mutex is never held across an `.await`;
/// waiters use the `Notify`s, registering before they look at the state.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<TgState>,
    pub config: TelegramConfig,
    pub cancel: CancellationToken,
    /// Woken when an update is queued (long-polling getUpdates).
    pub updates: Notify,
    /// Woken after each successful method call (`wait_for_sent`).
    pub sent: Notify,
}

impl Shared {
    pub(crate) fn new(config: TelegramConfig) -> Shared {
        // The bot's id is the number before the colon of its token, as in Telegram.
        let bot_id = config
            .token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(1);
        Shared {
            state: Mutex::new(TgState::new(bot_id, config.bot_username.clone())),
            config,
            cancel: CancellationToken::new(),
            updates: Notify::new(),
            sent: Notify::new(),
        }
    }

    /// Poisoning is ignored: the state is plain data, consistent between statements, and one
    /// panicking handler must not fail every later call.
    pub(crate) fn lock(&self) -> MutexGuard<'_, TgState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub meta: FileMeta,
    pub path: String,
    pub bytes: Bytes,
}

/// A message the bot sent: the summary tests read, and the Message object the API returns.
#[derive(Debug, Clone)]
pub(crate) struct BotMessage {
    pub summary: SentMessage,
    pub json: Value,
}

/// A webhook registered with setWebhook.
#[derive(Debug, Clone)]
pub(crate) struct WebhookReg {
    pub url: String,
    pub secret_token: Option<String>,
    pub max_connections: i64,
    /// The update kinds posted; all when `None`.
    pub allowed_updates: Option<Vec<String>>,
}

#[derive(Debug)]
pub(crate) struct TgState {
    pub bot_id: i64,
    pub bot_username: String,
    users: HashMap<i64, TestUser>,
    /// Unconfirmed updates, oldest first, with their ids.
    updates: VecDeque<(i64, Value)>,
    /// Every Message delivered in a `message` update, by `(chat id, message id)`, kept after
    /// the update is confirmed so that a test can deliver it again (`repeat_message`).
    delivered: HashMap<(i64, i64), Value>,
    next_update_id: i64,
    next_message_id: i64,
    next_file: u64,
    next_query: u64,
    pub messages: Vec<BotMessage>,
    files: HashMap<String, StoredFile>,
    pub calls: Vec<RecordedCall>,
    /// Requests answered with 429.
    pub rate_limited: usize,
    pub answered_callbacks: Vec<String>,
    pub pre_checkout_answers: Vec<PreCheckoutAnswer>,
    /// Pre-checkout queries Telegram gave up on (`pay_invoice` timed out): answering one is
    /// refused.
    pub expired_pre_checkouts: HashSet<String>,
    pub stars: StarLedger,
    pub faults: Vec<Fault>,
    pub limiter: SendLimiter,
    pub webhook: Option<WebhookReg>,
    /// The last failed webhook delivery: unix seconds and what went wrong.
    pub webhook_last_error: Option<(i64, String)>,
    /// Every update the webhook accepted, in order.
    pub webhook_delivered: Vec<Value>,
    pub commands: Value,
}

impl TgState {
    pub(crate) fn new(bot_id: i64, bot_username: String) -> TgState {
        TgState {
            bot_id,
            bot_username,
            users: HashMap::new(),
            updates: VecDeque::new(),
            delivered: HashMap::new(),
            next_update_id: 1,
            next_message_id: 1,
            next_file: 1,
            next_query: 1,
            messages: Vec::new(),
            files: HashMap::new(),
            calls: Vec::new(),
            rate_limited: 0,
            answered_callbacks: Vec::new(),
            pre_checkout_answers: Vec::new(),
            expired_pre_checkouts: HashSet::new(),
            stars: StarLedger::default(),
            faults: Vec::new(),
            limiter: SendLimiter::default(),
            webhook: None,
            webhook_last_error: None,
            webhook_delivered: Vec::new(),
            commands: json!([]),
        }
    }

    // --- updates ---

    /// Queues `update`, giving it the next `update_id` unless it has one. The Message of a
    /// `message` update is remembered for `repeat_message`.
    pub(crate) fn push_update(&mut self, mut update: Value) -> i64 {
        if let Some(message) = update.get("message") {
            let chat_id = message["chat"]["id"].as_i64();
            if let (Some(chat_id), Some(message_id)) = (chat_id, message["message_id"].as_i64()) {
                self.delivered
                    .insert((chat_id, message_id), message.clone());
            }
        }
        let id = match update.get("update_id").and_then(Value::as_i64) {
            Some(id) => id,
            None => {
                let id = self.next_update_id;
                update["update_id"] = json!(id);
                id
            }
        };
        self.next_update_id = self.next_update_id.max(id + 1);
        self.updates.push_back((id, update));
        id
    }

    /// getUpdates: `offset` confirms (drops) every update below it, a negative offset keeps
    /// only the last `-offset`; then up to `limit` updates are returned, and stay queued until
    /// confirmed.
    pub(crate) fn take_updates(&mut self, offset: Option<i64>, limit: usize) -> Vec<Value> {
        match offset {
            Some(offset) if offset < 0 => {
                let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
                while self.updates.len() > keep {
                    self.updates.pop_front();
                }
            }
            Some(offset) => self.updates.retain(|(id, _)| *id >= offset),
            None => {}
        }
        self.updates
            .iter()
            .take(limit)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// Queues the Message delivered earlier as `message_id` in `chat_id` again, in a new
    /// update; returns that update's id, or `None` when no such message was delivered.
    pub(crate) fn repeat_message(&mut self, chat_id: i64, message_id: i64) -> Option<i64> {
        let message = self.delivered.get(&(chat_id, message_id))?.clone();
        Some(self.push_update(json!({"message": message})))
    }

    pub(crate) fn pending_updates(&self) -> usize {
        self.updates.len()
    }

    /// The oldest unconfirmed update, left queued (the webhook's next delivery).
    pub(crate) fn peek_update(&self) -> Option<(i64, Value)> {
        self.updates.front().cloned()
    }

    /// Drops a delivered update from the queue.
    pub(crate) fn confirm_update(&mut self, id: i64) {
        self.updates.retain(|(queued, _)| *queued != id);
    }

    pub(crate) fn clear_updates(&mut self) {
        self.updates.clear();
    }

    // --- acting as users ---

    fn remember(&mut self, user: &TestUser) {
        self.users.insert(user.id, user.clone());
    }

    pub(crate) fn next_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    /// A private message from `user` with `fields` merged in; queued as an update.
    pub(crate) fn user_message(&mut self, user: &TestUser, fields: Value) -> i64 {
        self.remember(user);
        let message_id = self.next_message_id();
        let mut message = json!({
            "message_id": message_id,
            "from": types::user(user),
            "chat": types::chat(user.id, Some(user)),
            "date": types::now_unix(),
        });
        if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
            message.extend(fields);
        }
        self.push_update(json!({"message": message}));
        message_id
    }

    pub(crate) fn user_text(&mut self, user: &TestUser, text: &str) -> i64 {
        let mut fields = json!({"text": text});
        if let Some(entities) = types::command_entities(text) {
            fields["entities"] = entities;
        }
        self.user_message(user, fields)
    }

    pub(crate) fn user_photo(&mut self, user: &TestUser, bytes: Bytes) -> i64 {
        let sizes: Vec<FileMeta> = (0..3)
            .map(|_| self.store_file(FileKind::Photo, bytes.clone()).meta)
            .collect();
        self.user_message(user, json!({"photo": types::photo_sizes(&sizes)}))
    }

    pub(crate) fn user_document(
        &mut self,
        user: &TestUser,
        bytes: Bytes,
        file_name: &str,
        mime_type: &str,
    ) -> i64 {
        let extension = file_name.rsplit_once('.').map_or("bin", |(_, ext)| ext);
        let file = self.store_file(FileKind::Document(extension), bytes);
        let document = types::document(&file.meta, Some(file_name), Some(mime_type));
        self.user_message(user, json!({"document": document}))
    }

    pub(crate) fn press_button(&mut self, user: &TestUser, message_id: i64, data: &str) -> String {
        self.remember(user);
        let id = self.next_query_id("cbq");
        let mut query = json!({
            "id": id,
            "from": types::user(user),
            "chat_instance": format!("ci{}", user.id),
            "data": data,
        });
        if let Some(message) = self.message(user.id, message_id) {
            query["message"] = message.json.clone();
        }
        self.push_update(json!({"callback_query": query}));
        id
    }

    pub(crate) fn pre_checkout(
        &mut self,
        user: &TestUser,
        currency: &str,
        total_amount: i64,
        payload: &str,
    ) -> String {
        self.remember(user);
        let id = self.next_query_id("pcq");
        self.push_update(json!({"pre_checkout_query": {
            "id": id,
            "from": types::user(user),
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
        }}));
        id
    }

    /// The bot's first answer to the pre-checkout query `query_id`.
    pub(crate) fn pre_checkout_answer(&self, query_id: &str) -> Option<PreCheckoutAnswer> {
        self.pre_checkout_answers
            .iter()
            .find(|a| a.query_id == query_id)
            .cloned()
    }

    /// Telegram stops waiting for the answer to `query_id`, unless it came already: returns
    /// the answer, or marks the query expired so that a later answer is refused.
    pub(crate) fn expire_pre_checkout(&mut self, query_id: &str) -> Option<PreCheckoutAnswer> {
        let answer = self.pre_checkout_answer(query_id);
        if answer.is_none() {
            self.expired_pre_checkouts.insert(query_id.to_owned());
        }
        answer
    }

    fn next_query_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{}", self.next_query);
        self.next_query += 1;
        id
    }

    // --- chats and messages ---

    pub(crate) fn chat(&self, chat_id: i64) -> Value {
        types::chat(chat_id, self.users.get(&chat_id))
    }

    /// The start of a Message the bot sends to `chat_id`.
    pub(crate) fn bot_message(&mut self, chat_id: i64) -> Value {
        json!({
            "message_id": self.next_message_id(),
            "from": types::bot_user(self.bot_id, &self.bot_username),
            "chat": self.chat(chat_id),
            "date": types::now_unix(),
        })
    }

    pub(crate) fn message(&self, chat_id: i64, message_id: i64) -> Option<&BotMessage> {
        self.messages.iter().find(|m| {
            m.summary.chat_id == chat_id && m.summary.message_id == message_id && !m.summary.deleted
        })
    }

    pub(crate) fn message_mut(&mut self, chat_id: i64, message_id: i64) -> Option<&mut BotMessage> {
        self.messages.iter_mut().find(|m| {
            m.summary.chat_id == chat_id && m.summary.message_id == message_id && !m.summary.deleted
        })
    }

    pub(crate) fn sent(&self, chat_id: i64) -> Vec<SentMessage> {
        self.messages
            .iter()
            .filter(|m| m.summary.chat_id == chat_id)
            .map(|m| m.summary.clone())
            .collect()
    }

    // --- files ---

    pub(crate) fn store_file(&mut self, kind: FileKind<'_>, bytes: Bytes) -> StoredFile {
        let n = self.next_file;
        self.next_file += 1;
        let (file_id, path) = match kind {
            FileKind::Photo => {
                let id = format!("file_{n}");
                let path = format!("photos/{id}.jpg");
                (id, path)
            }
            FileKind::Document(extension) => {
                let id = format!("file_{n}");
                let path = format!("documents/{id}.{extension}");
                (id, path)
            }
            FileKind::Video => {
                let id = format!("video_{n}");
                let path = format!("videos/{id}.mp4");
                (id, path)
            }
        };
        let file = StoredFile {
            meta: FileMeta {
                unique_id: format!("u{file_id}"),
                file_id: file_id.clone(),
                size: bytes.len(),
            },
            path,
            bytes,
        };
        self.files.insert(file_id, file.clone());
        file
    }

    pub(crate) fn add_photo_file(&mut self, bytes: Bytes) -> String {
        self.store_file(FileKind::Photo, bytes).meta.file_id
    }

    pub(crate) fn file(&self, file_id: &str) -> Option<&StoredFile> {
        self.files.get(file_id)
    }

    pub(crate) fn file_by_path(&self, path: &str) -> Option<&StoredFile> {
        self.files.values().find(|f| f.path == path)
    }
}

/// Decides a stored file's id and path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileKind<'a> {
    Photo,
    /// With the extension of its name.
    Document(&'a str),
    Video,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_confirms_the_updates_below_it() {
        let mut st = TgState::new(1, "bot".to_owned());
        for _ in 0..3 {
            st.push_update(json!({}));
        }
        assert_eq!(st.take_updates(None, 100).len(), 3);
        assert_eq!(st.take_updates(Some(3), 100).len(), 1);
        assert_eq!(st.take_updates(None, 100).len(), 1);
        assert_eq!(st.take_updates(Some(4), 100).len(), 0);
    }

    #[test]
    fn a_confirmed_message_can_be_delivered_again() {
        let mut st = TgState::new(1, "bot".to_owned());
        let user = TestUser::new(5, "en");
        let message_id = st.user_text(&user, "hello");
        assert_eq!(st.take_updates(Some(2), 100).len(), 0);
        let again = st.repeat_message(5, message_id).unwrap();
        assert_eq!(again, 2);
        let updates = st.take_updates(None, 100);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0]["update_id"], 2);
        assert_eq!(updates[0]["message"]["message_id"], message_id);
        assert_eq!(updates[0]["message"]["text"], "hello");
        assert_eq!(st.repeat_message(6, message_id), None);
        assert_eq!(st.repeat_message(5, message_id + 1), None);
    }

    #[test]
    fn an_expired_pre_checkout_keeps_an_answer_given_in_time() {
        let mut st = TgState::new(1, "bot".to_owned());
        st.pre_checkout_answers.push(PreCheckoutAnswer {
            query_id: "pcq1".to_owned(),
            ok: true,
            error_message: None,
        });
        assert!(st.expire_pre_checkout("pcq1").is_some_and(|a| a.ok));
        assert!(!st.expired_pre_checkouts.contains("pcq1"));
        assert_eq!(st.expire_pre_checkout("pcq2"), None);
        assert!(st.expired_pre_checkouts.contains("pcq2"));
    }

    #[test]
    fn an_explicit_update_id_moves_the_counter_on() {
        let mut st = TgState::new(1, "bot".to_owned());
        st.push_update(json!({"update_id": 50}));
        assert_eq!(st.push_update(json!({})), 51);
    }
}
