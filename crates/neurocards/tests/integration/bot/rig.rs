//! The real bot (and, when a test needs videos, the real worker) against the emulators and a
//! fresh database. A test plays the user through the Telegram emulator.

use std::sync::Arc;
use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{SentMessage, TelegramConfig, TelegramEmulator, TestUser};
use neurocards::app::{App, Overrides, Role};
use neurocards::catalogue::Catalogue;
use neurocards::config::{Config, Webhook};
use neurocards::domain::UserId;
use neurocards::store::{Engine, Store, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{assert_invariants_hold, TestDb};
use crate::worker::rig::{fast_config, point_at, JPEG};

pub const ADMIN: i64 = 999;
pub const WEBHOOK_SECRET: &str = "rig-webhook-secret_1";

pub struct BotRig {
    pub db: TestDb,
    pub telegram: TelegramEmulator,
    /// Kept alive for the worker of [`BotRig::with_worker`], which reaches it by its URL.
    _kie: KieEmulator,
    catalogue: Catalogue,
    config: Config,
    bot: Option<(CancellationToken, JoinHandle<()>)>,
    worker: Option<(CancellationToken, JoinHandle<()>)>,
}

impl BotRig {
    /// The bot alone: orders are placed but nobody generates them.
    pub async fn start(engine: Engine) -> BotRig {
        BotRig::with_catalogue(engine, Catalogue::built_in().expect("catalogue")).await
    }

    /// The bot alone, offering what `catalogue` offers.
    pub async fn with_catalogue(engine: Engine, catalogue: Catalogue) -> BotRig {
        BotRig::assemble(engine, catalogue, false).await
    }

    /// The bot in webhook mode (its whole process: the webhook, the inbox, the dialog)
    /// with the webhook registered at the emulator, and a worker: orders become videos.
    pub async fn with_webhook(engine: Engine) -> BotRig {
        let rig = BotRig::assemble(engine, Catalogue::built_in().expect("catalogue"), true).await;
        rig.with_worker_process(None).await
    }

    async fn assemble(engine: Engine, catalogue: Catalogue, webhook: bool) -> BotRig {
        let db = TestDb::real_time(engine, StoreOptions::default()).await;
        let telegram = TelegramEmulator::start(TelegramConfig::default())
            .await
            .expect("starting the Telegram emulator");
        let kie_config = KieConfig {
            stage_delay: Duration::from_millis(100),
            ..KieConfig::default()
        };
        let accounts = kie_config.accounts.clone();
        let kie = KieEmulator::start(kie_config)
            .await
            .expect("starting the KIE emulator");
        let mut config = fast_config();
        point_at(&mut config, &telegram, &kie, &accounts);
        config.admin_ids = vec![ADMIN];
        config.free_credits = 0;
        config.kie.status_per_second = 10;
        if webhook {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            config.webhook = Some(Webhook {
                url: format!("http://127.0.0.1:{port}/telegram/webhook")
                    .parse()
                    .expect("a URL"),
                secret: WEBHOOK_SECRET.to_owned().into(),
                max_connections: 10,
            });
        }
        let mut rig = BotRig {
            db,
            telegram,
            _kie: kie,
            catalogue,
            config,
            bot: None,
            worker: None,
        };
        if let Some(webhook) = &rig.config.webhook {
            let bot = neurocards::app::telegram_client(&rig.config)
                .expect("a Telegram client")
                .dialog_bot();
            neurocards::cli::webhook::register(&bot, webhook)
                .await
                .expect("registering the webhook at the emulator");
        }
        rig.start_bot().await;
        rig
    }

    /// The bot and a worker: orders become videos.
    pub async fn with_worker(engine: Engine) -> BotRig {
        BotRig::with_worker_and_catalogue(engine, Catalogue::built_in().expect("catalogue")).await
    }

    pub async fn with_worker_and_catalogue(engine: Engine, catalogue: Catalogue) -> BotRig {
        BotRig::with_worker_options(engine, catalogue, None).await
    }

    /// The bot and a worker whose requests to Telegram time out after `timeout`.
    pub async fn with_worker_timeout(engine: Engine, timeout: Duration) -> BotRig {
        let catalogue = Catalogue::built_in().expect("catalogue");
        BotRig::with_worker_options(engine, catalogue, Some(timeout)).await
    }

    async fn with_worker_options(
        engine: Engine,
        catalogue: Catalogue,
        telegram_timeout: Option<Duration>,
    ) -> BotRig {
        BotRig::with_catalogue(engine, catalogue)
            .await
            .with_worker_process(telegram_timeout)
            .await
    }

    async fn with_worker_process(self, telegram_timeout: Option<Duration>) -> BotRig {
        let mut rig = self;
        let mut config = rig.config.clone();
        if let Some(timeout) = telegram_timeout {
            config.telegram.request = timeout;
            config.telegram.upload = timeout;
        }
        // A worker process beside the bot's, as `neurocards worker` runs it.
        let worker = rig
            .app(&config, Role::Worker)
            .await
            .take_worker()
            .expect("a worker");
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move {
                let _ = Arc::clone(&worker).run(stop).await;
            }
        });
        rig.worker = Some((stop, handle));
        rig
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    /// The KIE emulator the worker of [`BotRig::with_worker`] talks to.
    pub fn kie(&self) -> &KieEmulator {
        &self._kie
    }

    /// Refunds and reconciliation as `neurocards admin` runs them, against the emulator.
    pub fn billing(&self) -> neurocards::billing::Billing {
        neurocards::app::billing(&self.config, self.db.store.clone()).expect("billing")
    }

    /// The same, with requests to Telegram that give up after `timeout`.
    pub fn billing_with_timeout(&self, timeout: Duration) -> neurocards::billing::Billing {
        let mut config = self.config.clone();
        config.telegram.request = timeout;
        neurocards::app::billing(&config, self.db.store.clone()).expect("billing")
    }

    async fn app(&self, config: &Config, role: Role) -> App {
        let overrides = Overrides {
            store: Some(self.db.store.clone()),
            catalogue: Some(self.catalogue.clone()),
        };
        App::build_with(config, role, overrides)
            .await
            .expect("assembling the process")
    }

    async fn start_bot(&mut self) {
        if self.config.webhook.is_some() {
            self.start_bot_process(true).await;
            return;
        }
        let runner = self
            .app(&self.config, Role::Bot)
            .await
            .take_bot()
            .expect("a bot process has a bot");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(runner.run(stop.clone()));
        self.bot = Some((stop, handle));
    }

    /// Webhook mode: the whole bot process; without `processing`, a process that stores and
    /// acknowledges updates and then dies before it processes any.
    async fn start_bot_process(&mut self, processing: bool) {
        let mut app = self.app(&self.config, Role::Bot).await;
        if !processing {
            drop(app.take_bot());
        }
        let stop = app.shutdown();
        let handle = tokio::spawn(async move {
            let _ = app.run().await;
        });
        self.bot = Some((stop, handle));
        let health = format!("{}healthz", self.webhook_base());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while reqwest::get(&health).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bot's HTTP server never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:PORT/` of the bot process in webhook mode.
    pub fn webhook_base(&self) -> String {
        format!("http://{}/", self.config.http_addr)
    }

    /// The webhook's URL.
    pub fn webhook_url(&self) -> String {
        self.config
            .webhook
            .as_ref()
            .map(|webhook| webhook.url.to_string())
            .expect("webhook mode")
    }

    /// Stops the bot process and starts one that acknowledges updates but never processes
    /// them: a process that dies right after each 200.
    pub async fn restart_as_receiver_only(&mut self) {
        self.stop_bot().await;
        self.start_bot_process(false).await;
    }

    async fn stop_bot(&mut self) {
        if let Some((stop, handle)) = self.bot.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(20), handle).await;
        }
    }

    /// Stops the bot process and starts a new one on the same database.
    pub async fn restart_bot(&mut self) {
        self.stop_bot().await;
        self.start_bot().await;
    }

    /// A user who has `credits` (registered the way the bot registers them).
    pub async fn user(&self, id: i64, language: &str, credits: i64) -> TestUser {
        self.store()
            .register_user(UserId(id), Some("seller"), language, credits)
            .await
            .expect("registering a user");
        TestUser::new(id, language)
    }

    pub async fn balance(&self, user: &TestUser) -> i64 {
        self.store()
            .balance(UserId(user.id))
            .await
            .expect("a balance")
    }

    pub async fn orders(&self, user: &TestUser) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(self.store().pool())
            .await
            .expect("counting orders")
    }

    /// Sends a text and waits for `replies` answers; returns the new messages.
    pub async fn say(&self, user: &TestUser, text: &str, replies: usize) -> Vec<SentMessage> {
        let before = self.telegram.sent(user.id).len();
        self.telegram.send_text(user, text);
        self.replies(user, before, replies).await
    }

    pub async fn photo(&self, user: &TestUser, replies: usize) -> Vec<SentMessage> {
        let before = self.telegram.sent(user.id).len();
        self.telegram.send_photo(user, JPEG.to_vec());
        self.replies(user, before, replies).await
    }

    /// Presses a button by its position in the message's keyboard.
    pub async fn press(
        &self,
        user: &TestUser,
        message: &SentMessage,
        index: usize,
        replies: usize,
    ) -> Vec<SentMessage> {
        let data = buttons(message)
            .into_iter()
            .nth(index)
            .map(|(_, data)| data)
            .unwrap_or_else(|| panic!("no button {index} in {message:?}"));
        self.press_data(user, message.message_id, &data, replies)
            .await
    }

    pub async fn press_data(
        &self,
        user: &TestUser,
        message_id: i64,
        data: &str,
        replies: usize,
    ) -> Vec<SentMessage> {
        let before = self.telegram.sent(user.id).len();
        let query = self.telegram.press_button(user, message_id, data);
        let new = self.replies(user, before, replies).await;
        self.wait_answered(&query).await;
        new
    }

    /// Waits until the callback query was answered (every press must be).
    pub async fn wait_answered(&self, query: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self
            .telegram
            .answered_callbacks()
            .iter()
            .any(|answered| answered == query)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "callback {query} was never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn replies(&self, user: &TestUser, before: usize, count: usize) -> Vec<SentMessage> {
        let sent = self
            .telegram
            .wait_for_sent(user.id, before + count, Duration::from_secs(15))
            .await;
        assert!(
            sent.len() >= before + count,
            "expected {count} replies, got {:?}",
            &sent[before.min(sent.len())..]
        );
        sent[before..].to_vec()
    }

    /// Waits for a message of the chat, sent after the first `from`, that `matches`.
    pub async fn wait_for(
        &self,
        user: &TestUser,
        from: usize,
        matches: impl Fn(&SentMessage) -> bool,
    ) -> SentMessage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let sent = self.telegram.sent(user.id);
            if let Some(found) = sent.iter().skip(from).find(|message| matches(message)) {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such message among {:?}",
                &sent[from.min(sent.len())..]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a photo and returns the message with the template buttons.
    pub async fn photo_to_templates(&self, user: &TestUser) -> SentMessage {
        let before = self.telegram.sent(user.id).len();
        self.telegram.send_photo(user, JPEG.to_vec());
        self.wait_for(user, before, |message| has_button(message, "t:"))
            .await
    }

    /// Goes from a photo to the count buttons with the first template.
    pub async fn up_to_count(&self, user: &TestUser) -> SentMessage {
        let templates = self.photo_to_templates(user).await;
        let before = self.telegram.sent(user.id).len();
        let data = buttons(&templates)[0].1.clone();
        self.telegram
            .press_button(user, templates.message_id, &data);
        self.wait_for(user, before, |message| has_button(message, "c:"))
            .await
    }

    pub async fn assert_sound(&self) {
        assert_invariants_hold(self.store()).await;
    }
}

impl Drop for BotRig {
    fn drop(&mut self) {
        for (stop, handle) in self.bot.iter().chain(self.worker.iter()) {
            stop.cancel();
            handle.abort();
        }
    }
}

pub fn buttons(message: &SentMessage) -> Vec<(String, String)> {
    message.buttons()
}

/// True when a button's data starts with `prefix`.
pub fn has_button(message: &SentMessage, prefix: &str) -> bool {
    buttons(message)
        .iter()
        .any(|(_, data)| data.starts_with(prefix))
}

pub fn text_of(message: &SentMessage) -> String {
    message.text.clone().unwrap_or_default()
}
