//! The application, assembled in one place. `run`, `bot`, `worker`, the demo and the test
//! rigs all build it here, so the wiring production runs is the wiring the tests run: one
//! database pool, one Telegram client (one rate budget for the bot token), one shutdown
//! signal, and one supervisor that owns every part of the process.

mod supervise;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use teloxide::prelude::Requester;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::billing::Billing;
use crate::bot::inbox::InboxSettings;
use crate::bot::{BotContext, BotRunner};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::domain::retry::RetryPolicy;
use crate::http::callback_auth::CallbackAuth;
use crate::kie::{KeyPool, KieClient};
use crate::packages::Packages;
use crate::store::{Engine, Store};
use crate::telegram::{redact_token, Telegram};
use crate::templates::Templates;
use crate::worker::{PollSchedule, QueueSignal, Worker, WorkerSettings};

pub use supervise::{supervise, Part};

/// How often the database figures of `/metrics` are refreshed.
const METRICS_EVERY: Duration = Duration::from_secs(15);
/// How long a starting process waits for a database it cannot reach yet: longer than a
/// failover or a restart of the server, short enough that a wrong host is reported soon.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// Which parts a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dialog, the worker pool and the HTTP server: `neurocards run`.
    All,
    /// The dialog alone: `neurocards bot`.
    Bot,
    /// The worker pool alone: `neurocards worker`.
    Worker,
}

/// What a caller supplies instead of building it from the configuration.
#[derive(Default)]
pub struct Overrides {
    /// A store already open: a test's database, or one reached through a proxy it can cut.
    pub store: Option<Store>,
    /// The models offered, instead of reading `MODELS_FILE`.
    pub catalogue: Option<Catalogue>,
}

pub struct App {
    store: Store,
    telegram: Telegram,
    bot: Option<BotRunner>,
    worker: Option<Arc<Worker>>,
    /// With the dialog: reconciles payments at start and every `RECONCILE_EVERY`.
    reconciling: Option<(Billing, Duration)>,
    /// The HTTP server, with the metrics it serves when the recorder is this process's.
    http: Option<(SocketAddr, axum::Router, Option<PrometheusHandle>)>,
    shutdown: CancellationToken,
    /// How long the parts get to stop once the process is stopping.
    stop_within: Duration,
}

impl App {
    /// Opens the database (bringing its schema up to date) and builds the parts of `role`.
    pub async fn build(config: &Config, role: Role) -> anyhow::Result<App> {
        App::build_with(config, role, Overrides::default()).await
    }

    pub async fn build_with(
        config: &Config,
        role: Role,
        overrides: Overrides,
    ) -> anyhow::Result<App> {
        let store = match overrides.store {
            Some(store) => store,
            None => {
                Store::connect_patiently(&config.database_url, config.store.clone(), START_PATIENCE)
                    .await?
            }
        };
        let mut telegram = telegram_client(config)?;
        // Only `run` on the embedded database is sure to be the token's one sender; the
        // others share its budget with the processes beside them.
        if role != Role::All || store.engine() == Engine::Postgres {
            telegram = telegram.with_shared_budget(store.clone());
        }
        let catalogue = match overrides.catalogue {
            Some(catalogue) => catalogue,
            None => Catalogue::load(config.models_file.as_deref())?,
        };
        let cheapest_price = catalogue.cheapest_price();
        let worker = match role {
            Role::All | Role::Worker => {
                let mut settings = worker_settings(config);
                settings.cheapest_price = cheapest_price;
                // KIE calls PUBLIC_URL; the process serving it wakes its own jobs and notes
                // the other callbacks for the workers (`worker/callbacks.rs`).
                settings.poll.woken_by_callbacks = config.public_url.is_some();
                Some(build_worker(config, store.clone(), telegram.clone(), settings).await?)
            }
            Role::Bot => None,
        };
        let mut webhook = None;
        let (bot, reconciling) = match role {
            Role::All | Role::Bot => {
                let packages = Arc::new(Packages::load(config.packages_file.as_deref())?);
                let billing = Billing::new(
                    store.clone(),
                    telegram.clone(),
                    packages.clone(),
                    alerts(config, &store, &telegram),
                );
                let mut bot = build_bot(
                    config,
                    store.clone(),
                    &telegram,
                    catalogue,
                    packages,
                    billing.clone(),
                    // `run`: the orders the bot places wake the worker beside it at once.
                    worker.as_ref().map(|worker| worker.queue_signal()),
                )
                .await?;
                if let Some(hook) = &config.webhook {
                    let arrived = Arc::new(tokio::sync::Notify::new());
                    bot = bot.from_inbox(InboxSettings::default(), arrived.clone());
                    webhook = Some(crate::http::telegram_webhook::router(
                        hook.url.path(),
                        store.clone(),
                        &hook.secret,
                        arrived,
                    ));
                    tracing::info!(path = hook.url.path(), "Telegram updates come by webhook");
                }
                (Some(bot), Some((billing, config.reconcile_every)))
            }
            Role::Worker => (None, None),
        };
        // A worker-only process serves HTTP only where told (WORKER_HTTP_ADDR): several of
        // them share a host.
        let http_addr = match role {
            Role::All | Role::Bot => Some(config.http_addr),
            Role::Worker => config.worker_http_addr,
        };
        let http = match http_addr {
            Some(addr) => {
                let auth = config.kie_webhook_hmac_key.clone().map(CallbackAuth::new);
                let metrics = crate::metrics::install();
                // Without a worker in the process, a KIE callback has nobody to wake: the
                // workers' own polling follows the task.
                let wakeups = worker.as_ref().map(|w| w.wakeups()).unwrap_or_default();
                let mut router = crate::http::router(store.clone(), wakeups, auth, metrics.clone());
                if let Some(webhook) = webhook {
                    router = router.merge(webhook);
                }
                Some((addr, router, metrics))
            }
            None => None,
        };
        Ok(App {
            store,
            telegram,
            bot,
            worker,
            reconciling,
            http,
            shutdown: CancellationToken::new(),
            stop_within: config.shutdown_grace + Duration::from_secs(15),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The process's one Telegram client.
    pub fn telegram(&self) -> &Telegram {
        &self.telegram
    }

    /// Cancelling it stops the process: SIGTERM, the end of the demo, a test.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn worker(&self) -> Option<&Arc<Worker>> {
        self.worker.as_ref()
    }

    /// Takes the worker out, for a test that runs (and crashes) it on its own.
    pub fn take_worker(&mut self) -> Option<Arc<Worker>> {
        self.worker.take()
    }

    /// Takes the dialog out, for a test that runs it on its own.
    pub fn take_bot(&mut self) -> Option<BotRunner> {
        self.bot.take()
    }

    /// Runs every part until the shutdown signal, or until one part stops by itself: then
    /// the others are stopped too and the error says which part failed.
    pub async fn run(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown;
        let mut parts: Vec<Part> = Vec::new();
        if let Some(bot) = self.bot {
            let stop = shutdown.clone();
            parts.push((
                "bot",
                tokio::spawn(async move {
                    bot.run(stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some(worker) = self.worker {
            let stop = shutdown.clone();
            parts.push((
                "worker",
                tokio::spawn(async move { worker.run(stop).await.context("running the worker") }),
            ));
        }
        if let Some((billing, every)) = self.reconciling {
            let stop = shutdown.clone();
            parts.push((
                "payments reconciliation",
                tokio::spawn(async move {
                    billing.keep_reconciling(every, stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some((_, _, Some(handle))) = &self.http {
            let (store, handle, stop) = (self.store.clone(), handle.clone(), shutdown.clone());
            parts.push((
                "metrics snapshot",
                tokio::spawn(async move {
                    crate::metrics::keep_snapshotting(store, handle, METRICS_EVERY, stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some((addr, router, _)) = self.http {
            let stop = shutdown.clone();
            parts.push((
                "http server",
                tokio::spawn(async move {
                    crate::http::serve(addr, router, stop)
                        .await
                        .with_context(|| format!("serving HTTP on {addr} (HTTP_ADDR)"))
                }),
            ));
        }
        supervise(shutdown, parts, self.stop_within).await
    }
}

/// The process's one Telegram client.
pub fn telegram_client(config: &Config) -> anyhow::Result<Telegram> {
    Ok(Telegram::with_timeouts(
        config.require_bot_token()?,
        &config.telegram_api_url,
        config.telegram.request,
        config.telegram.upload,
    )
    .context("building the Telegram client")?
    .with_rate(config.telegram_per_second))
}

/// Refunds and reconciliation, for `admin refund-payment` and `admin payments reconcile`.
pub fn billing(config: &Config, store: Store) -> anyhow::Result<Billing> {
    let packages = Packages::load(config.packages_file.as_deref())?;
    let telegram = telegram_client(config)?;
    let alerts = alerts(config, &store, &telegram);
    Ok(Billing::new(store, telegram, Arc::new(packages), alerts))
}

/// The admins' alerts, limited per kind by `ALERT_EVERY` across every process.
pub fn alerts(config: &Config, store: &Store, telegram: &Telegram) -> Alerts {
    Alerts::new(
        telegram.clone(),
        store.clone(),
        config.admin_ids.clone(),
        config.alert_every,
    )
}

/// The dialog; asks Telegram who the bot is (which also proves the token).
async fn build_bot(
    config: &Config,
    store: Store,
    telegram: &Telegram,
    catalogue: Catalogue,
    packages: Arc<Packages>,
    billing: Billing,
    queue: Option<QueueSignal>,
) -> anyhow::Result<BotRunner> {
    let token = config.require_bot_token()?;
    let templates = Templates::load(config.templates_file.as_deref(), &catalogue)?;
    let terms = match &config.terms_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading TERMS_FILE {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let bot = telegram.dialog_bot();
    let me = bot
        .get_me()
        .await
        .map_err(|err| anyhow::anyhow!(redact_token(&err.to_string(), token.expose_secret())))
        .context("asking Telegram who the bot is (is BOT_TOKEN right?)")?;
    let context = BotContext {
        store,
        catalogue: Arc::new(catalogue),
        templates: Arc::new(templates),
        telegram: telegram.clone(),
        admin_ids: config.admin_ids.clone(),
        free_credits: config.free_credits,
        max_photo_bytes: config.max_photo_mb * 1024 * 1024,
        bot_username: me.username.clone().unwrap_or_default(),
        packages,
        billing,
        support_contact: config.support_contact.clone(),
        terms,
        queue,
    };
    tracing::info!(bot = %context.bot_username, "bot ready");
    Ok(BotRunner::new(bot, me, context).with_poll_timeout(config.telegram.long_poll))
}

/// The worker pool: its KIE keys, client and settings.
async fn build_worker(
    config: &Config,
    store: Store,
    telegram: Telegram,
    settings: WorkerSettings,
) -> anyhow::Result<Arc<Worker>> {
    let keys = config.require_kie_keys()?;
    let pool = KeyPool::start(keys, config.kie.status_per_second, store.clone())
        .await
        .context("registering the KIE keys")?;
    let kie = KieClient::with_user_agent(
        config.kie_api_url.clone(),
        config.kie_upload_url.clone(),
        config.kie.request_timeout,
        &config.kie_user_agent,
    )
    .context("building the KIE client")?;
    Worker::new(store, kie, pool, telegram, settings).context("building the worker")
}

pub fn worker_settings(config: &Config) -> WorkerSettings {
    WorkerSettings {
        concurrency: config.worker_concurrency,
        poll: PollSchedule {
            first: config.kie.poll_first_interval,
            max: config.poll_max_interval,
            woken_by_callbacks: false,
        },
        poll_timeout: config.poll_timeout,
        retry: RetryPolicy {
            max_attempts: config.kie.max_attempts,
            base_delay: config.kie.retry_base_delay,
        },
        create_limit: config.kie.create_limit,
        create_window: config.kie.create_window,
        rate_limit_rest: config.kie.rate_limit_rest,
        heartbeat_every: config.heartbeat_every,
        idle_wait: config.queue_check_every,
        shutdown_grace: config.shutdown_grace,
        max_photo_bytes: config.max_photo_mb * 1024 * 1024,
        delivery_patience: config.delivery_patience,
        max_transfers: config.max_transfers,
        worker_id: config.worker_id.clone(),
        public_url: config.public_url.clone(),
        admin_ids: config.admin_ids.clone(),
        // Set from the catalogue by the caller.
        cheapest_price: 1,
        alert_every: config.alert_every,
        queue_alert_age: config.queue_alert_age,
        low_credits: config.kie_low_credits,
        progress_every: config.progress_every,
        credit_check_every: config.kie_credit_check_every,
        failure_alert_percent: config.failure_alert_percent,
    }
}
