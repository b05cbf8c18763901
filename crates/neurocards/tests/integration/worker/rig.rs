//! A worker wired to both emulators and a fresh database, with timings shrunk so a test
//! runs in seconds: the same code paths as production, on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{SentKind, SentMessage, TelegramConfig, TelegramEmulator};
use neurocards::app::{App, Overrides, Role};
use neurocards::config::{Config, KieKey};
use neurocards::domain::{ChatId, JobStatus, Lang, OrderId, UserId};
use neurocards::store::{Engine, NewOrder, PlacedOrder, Store, StoreOptions};
use neurocards::worker::Worker;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{assert_invariants_hold, default_spec, TestDb};

/// A real product photo (landscape, as sellers often send): the worker decodes it and fits
/// it to 9:16 before uploading.
pub static JPEG: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(|| neurocards::sample_photo::product_jpeg(480, 320));

pub struct Rig {
    pub db: TestDb,
    pub kie: KieEmulator,
    pub telegram: TelegramEmulator,
    /// The configuration every worker of the rig is built from, pointed at the emulators.
    pub config: Config,
    workers: Vec<(CancellationToken, JoinHandle<()>)>,
}

/// The configuration of a test: production's variables with the pauses shrunk so a test runs
/// in seconds. The rig points it at its emulators and database.
pub fn fast_config() -> Config {
    let admin = ADMIN_ID.to_string();
    Config::from_pairs([
        ("WORKER_CONCURRENCY", "100"),
        ("POLL_FIRST_INTERVAL", "60ms"),
        ("POLL_MAX_INTERVAL", "200ms"),
        ("POLL_TIMEOUT", "20s"),
        ("MAX_ATTEMPTS", "3"),
        ("RETRY_BASE_DELAY", "200ms"),
        ("KIE_CREATE_LIMIT", "20"),
        ("KIE_CREATE_WINDOW", "10s"),
        ("KIE_RATE_LIMIT_REST", "300ms"),
        // Well below the emulator's 10 per second: a loaded test machine bunches requests,
        // and a worker learns that another joined only at its next heartbeat.
        ("KIE_STATUS_PER_SECOND", "6"),
        ("KIE_TIMEOUT", "2s"),
        ("HEARTBEAT_EVERY", "200ms"),
        ("PROGRESS_EVERY", "1s"),
        ("QUEUE_CHECK_EVERY", "50ms"),
        ("SHUTDOWN_GRACE", "5s"),
        ("DELIVERY_PATIENCE", "30s"),
        ("MAX_TRANSFERS", "8"),
        ("MAX_PHOTO_MB", "10"),
        ("TELEGRAM_LONG_POLL", "500ms"),
        ("ADMIN_IDS", admin.as_str()),
    ])
    .expect("the test configuration parses")
}

/// Points `config` at the emulators: their URLs, the bot token and the keys of the KIE
/// emulator's `accounts`.
pub fn point_at(
    config: &mut Config,
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
    accounts: &[KieAccount],
) {
    let url = |raw: String| url::Url::parse(&raw).expect("an emulator URL");
    config.bot_token = Some(SecretString::from(telegram.token()));
    config.telegram_api_url = url(telegram.base_url());
    config.kie_api_url = url(kie.base_url());
    config.kie_upload_url = url(kie.base_url());
    config.kie_keys = accounts
        .iter()
        .flat_map(|account: &KieAccount| {
            account.keys.iter().map(|key| KieKey {
                id: format!("key-{key}"),
                account: account.name.clone(),
                secret: SecretString::from(key.clone()),
            })
        })
        .collect();
}

/// Receives the operator alerts in the worker tests.
pub const ADMIN_ID: i64 = 777;

pub fn one_account() -> KieConfig {
    KieConfig {
        stage_delay: Duration::from_millis(100),
        ..KieConfig::default()
    }
}

impl Rig {
    pub async fn start(engine: Engine) -> Rig {
        Rig::with(
            engine,
            one_account(),
            fast_config(),
            StoreOptions::default(),
        )
        .await
    }

    pub async fn with(
        engine: Engine,
        kie_config: KieConfig,
        config: Config,
        options: StoreOptions,
    ) -> Rig {
        Rig::with_telegram(
            engine,
            kie_config,
            config,
            options,
            TelegramConfig::default(),
        )
        .await
    }

    pub async fn with_telegram(
        engine: Engine,
        kie_config: KieConfig,
        mut config: Config,
        options: StoreOptions,
        telegram_config: TelegramConfig,
    ) -> Rig {
        let db = TestDb::real_time(engine, options.clone()).await;
        let accounts = kie_config.accounts.clone();
        let kie = KieEmulator::start(kie_config)
            .await
            .expect("starting the KIE emulator");
        let telegram = TelegramEmulator::start(telegram_config)
            .await
            .expect("starting the Telegram emulator");
        point_at(&mut config, &telegram, &kie, &accounts);
        config.store = options;
        Rig {
            db,
            kie,
            telegram,
            config,
            workers: Vec::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub async fn build_worker(&self) -> Arc<Worker> {
        self.build_worker_on(self.db.store.clone()).await
    }

    /// A worker that reaches the database through `store` (a proxy a test can cut, say),
    /// assembled as `neurocards worker` assembles it.
    pub async fn build_worker_on(&self, store: Store) -> Arc<Worker> {
        let overrides = Overrides {
            store: Some(store),
            ..Overrides::default()
        };
        App::build_with(&self.config, Role::Worker, overrides)
            .await
            .expect("assembling a worker process")
            .take_worker()
            .expect("a worker process has a worker")
    }

    /// Starts a worker; returns its index for [`Rig::crash_worker`] / [`Rig::stop_worker`].
    pub async fn spawn_worker(&mut self) -> usize {
        let worker = self.build_worker().await;
        self.spawn_built(worker)
    }

    /// Runs a worker the test built (to share its wake-ups with an HTTP server, say).
    pub fn spawn_built(&mut self, worker: Arc<Worker>) -> usize {
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move {
                if let Err(err) = worker.run(stop).await {
                    panic!("worker failed: {err}");
                }
            }
        });
        self.workers.push((stop, handle));
        self.workers.len() - 1
    }

    /// Kills a worker as a crash would: no clean stop, no hand-back, no more heartbeats.
    pub fn crash_worker(&mut self, index: usize) {
        self.workers[index].1.abort();
    }

    /// Stops a worker as SIGTERM does and waits until it has handed its jobs back.
    pub async fn stop_worker(&mut self, index: usize) {
        self.workers[index].0.cancel();
        let handle = &mut self.workers[index].1;
        let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
    }

    pub async fn user(&self, id: i64, credits: i64, language: &str) -> UserId {
        let user = UserId(id);
        self.store()
            .register_user(user, Some("seller"), language, credits)
            .await
            .expect("registering a user");
        user
    }

    /// Places an order whose photo is stored in the Telegram emulator.
    pub async fn order(&self, user: UserId, count: i64, prompt: &str) -> PlacedOrder {
        self.order_with_photo(user, count, prompt, JPEG.to_vec())
            .await
    }

    pub async fn order_with_photo(
        &self,
        user: UserId,
        count: i64,
        prompt: &str,
        photo: Vec<u8>,
    ) -> PlacedOrder {
        self.order_of_spec(user, count, prompt, photo, default_spec(), 1)
            .await
    }

    /// An order made with exactly `spec` at `unit_price` credits a video.
    pub async fn order_of_spec(
        &self,
        user: UserId,
        count: i64,
        prompt: &str,
        photo: Vec<u8>,
        spec: neurocards::domain::generation::GenerationSpec,
        unit_price: i64,
    ) -> PlacedOrder {
        let language = self
            .store()
            .user(user)
            .await
            .expect("reading the user")
            .map(|user| Lang::from_code(&user.language))
            .unwrap_or(Lang::Ru);
        let photo_file_id = self.telegram.add_file(photo);
        self.store()
            .place_order(&NewOrder {
                user_id: user,
                chat_id: ChatId(user.0),
                idempotency_key: None,
                video_count: count,
                unit_price,
                photo_file_id,
                template_id: None,
                prompt: prompt.to_owned(),
                generation: spec,
                language,
            })
            .await
            .expect("placing an order")
    }

    /// Waits until every job of the order ended and its summary was sent.
    pub async fn wait_until_summarised(&self, order: OrderId, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent: Option<i64> =
                sqlx::query_scalar("SELECT summary_sent_at FROM orders WHERE id = $1")
                    .bind(order.0)
                    .fetch_one(self.store().pool())
                    .await
                    .expect("reading the order");
            if sent.is_some() {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let jobs = self.job_statuses(order).await;
                panic!("order {order} was not summarised within {timeout:?}; jobs: {jobs:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn job_statuses(&self, order: OrderId) -> Vec<JobStatus> {
        let statuses: Vec<String> =
            sqlx::query_scalar("SELECT status FROM jobs WHERE order_id = $1 ORDER BY seq")
                .bind(order.0)
                .fetch_all(self.store().pool())
                .await
                .expect("reading jobs");
        statuses
            .iter()
            .map(|status| status.parse().expect("a known status"))
            .collect()
    }

    pub fn videos(&self, chat: i64) -> Vec<SentMessage> {
        self.telegram
            .sent(chat)
            .into_iter()
            .filter(|message| matches!(message.kind, SentKind::Video { .. }))
            .collect()
    }

    pub fn texts(&self, chat: i64) -> Vec<String> {
        self.telegram
            .sent(chat)
            .into_iter()
            .filter(|message| message.kind == SentKind::Text)
            .filter_map(|message| message.text)
            .collect()
    }

    /// Summaries are the messages with the "make more" button.
    pub fn summaries(&self, chat: i64) -> Vec<SentMessage> {
        self.telegram
            .sent(chat)
            .into_iter()
            .filter(|message| {
                message
                    .buttons()
                    .iter()
                    .any(|(_, data)| data.starts_with("more:"))
            })
            .collect()
    }

    /// What every test must leave true: sound data, and no bot token sent to KIE.
    pub async fn assert_sound(&self) {
        assert_invariants_hold(self.store()).await;
        let token = self.telegram.token();
        for request in self.kie.requests() {
            let seen = format!(
                "{} {} {:?} {}",
                request.path, request.body, request.query, request.method
            );
            assert!(
                !seen.contains(&token),
                "a KIE request carried the bot token: {seen}"
            );
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (stop, handle) in &self.workers {
            stop.cancel();
            handle.abort();
        }
    }
}
