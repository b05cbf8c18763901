//! Configuration from environment variables (and an optional `.env` file).
//!
//! Every variable is parsed into a typed value; a missing or malformed one is an error that
//! names the variable and says what it expects. Secrets are `SecretString`s: their `Debug`
//! prints `[REDACTED]` and no error message ever repeats their value.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::store::{Engine, StoreOptions};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://neurocards.db";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set: it must be {expected}")]
    Missing {
        name: &'static str,
        expected: &'static str,
    },
    #[error("{name} is invalid: it must be {expected} ({problem})")]
    Invalid {
        name: String,
        expected: &'static str,
        problem: String,
    },
}

/// The database location. The URL may hold a password, so it is kept secret and shown only
/// in its redacted form.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    engine: Engine,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            name: "DATABASE_URL".into(),
            expected: "a sqlite://FILE or postgres://USER@HOST/DB URL",
            problem: problem.to_owned(),
        };
        let engine = if raw.starts_with("sqlite:") {
            Engine::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
            Engine::Postgres
        } else {
            let scheme = raw.split(':').next().unwrap_or_default();
            return Err(invalid(&format!("unsupported scheme {scheme:?}")));
        };
        Ok(DatabaseUrl {
            url: SecretString::from(raw.to_owned()),
            engine,
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with its secret parts; only for handing to the database driver.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL without password or query string, safe for logs and messages.
    pub fn redacted(&self) -> String {
        match Url::parse(self.expose()) {
            Ok(mut url) if self.engine == Engine::Postgres => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                url.set_query(None);
                url.to_string()
            }
            _ => self
                .expose()
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// One KIE API key. `id` names it in logs, the database and `admin keys` without revealing it.
/// Keys of one `account` share that account's create limit.
#[derive(Clone, Debug)]
pub struct KieKey {
    pub id: String,
    pub account: String,
    pub secret: SecretString,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub store: StoreOptions,
    pub bot_token: Option<SecretString>,
    pub kie_keys: Vec<KieKey>,
    pub admin_ids: Vec<i64>,
    pub telegram_api_url: Url,
    pub kie_api_url: Url,
    pub kie_upload_url: Url,
    pub worker_concurrency: usize,
    pub poll_timeout: Duration,
    pub poll_max_interval: Duration,
    pub http_addr: SocketAddr,
    /// Where a worker-only process (`neurocards worker`) serves `/healthz`, `/metrics` and
    /// the KIE callback; none when unset (several workers share a host).
    pub worker_http_addr: Option<SocketAddr>,
    pub public_url: Option<Url>,
    /// Telegram posts updates here (`WEBHOOK_URL`); long polling when unset.
    pub webhook: Option<Webhook>,
    pub templates_file: Option<PathBuf>,
    pub models_file: Option<PathBuf>,
    pub packages_file: Option<PathBuf>,
    /// The operator's terms for `/terms` (a text file); built-in terms when unset.
    pub terms_file: Option<PathBuf>,
    /// An alert of one kind goes to the admins at most this often.
    pub alert_every: Duration,
    /// The admins are told when the oldest queued job has waited longer than this.
    pub queue_alert_age: Duration,
    /// How often at most an order's "order accepted" message is edited to show its progress.
    pub progress_every: Duration,
    /// The admins are told when a KIE account has fewer credits (0: never).
    pub kie_low_credits: i64,
    /// How often each worker process reads its KIE accounts' credits.
    pub kie_credit_check_every: Duration,
    /// The admins are told when more than this percentage of the videos of the last 15
    /// minutes failed (0: never).
    pub failure_alert_percent: u8,
    /// How often the bot reconciles its payments with Telegram's Star transactions (and
    /// once at start).
    pub reconcile_every: Duration,
    /// Whom buyers write to about payments (`@username`, an e-mail, a URL), for `/paysupport`.
    pub support_contact: Option<String>,
    /// Verifies KIE's callback signatures when set.
    pub kie_webhook_hmac_key: Option<SecretString>,
    /// The User-Agent sent to KIE.
    pub kie_user_agent: String,
    pub free_credits: i64,
    pub max_photo_mb: u64,
    /// On SIGTERM, how long jobs in the middle of a send get to finish it.
    pub shutdown_grace: Duration,
    /// Photos and videos held in memory at once by a worker process.
    pub max_transfers: usize,
    /// A stable worker id: a process restarted under it resumes its own jobs at once.
    pub worker_id: Option<String>,
    /// How often a worker process proves it is alive.
    pub heartbeat_every: Duration,
    /// How often an idle worker looks at the queue (new orders of its own process wake it
    /// at once).
    pub queue_check_every: Duration,
    /// How long a video that certainly did not reach Telegram is tried again.
    pub delivery_patience: Duration,
    pub telegram: TelegramTimeouts,
    /// Messages a second the bot token may send overall (Telegram: about 30; more only with
    /// paid broadcasts). Every process that sends with the token shares it.
    pub telegram_per_second: usize,
    pub kie: KieLimits,
}

/// Webhook mode: Telegram posts each update to `url`, with `secret` in the
/// `X-Telegram-Bot-Api-Secret-Token` header.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: Url,
    pub secret: SecretString,
    /// How many connections Telegram opens to the webhook at once (1..=100).
    pub max_connections: u8,
}

/// How long requests to Telegram may take.
#[derive(Clone, Debug)]
pub struct TelegramTimeouts {
    /// Messages, answers and sends by URL or file id.
    pub request: Duration,
    /// A whole video uploaded from memory.
    pub upload: Duration,
    /// How long one `getUpdates` long poll waits for updates.
    pub long_poll: Duration,
}

/// How the worker paces and retries its KIE calls.
#[derive(Clone, Debug)]
pub struct KieLimits {
    /// Accepted createTask calls per account per `create_window` (KIE: 20 per 10 s).
    pub create_limit: u32,
    pub create_window: Duration,
    /// Status queries per key per second (KIE: 10).
    pub status_per_second: u32,
    /// The longest any one request to KIE may take.
    pub request_timeout: Duration,
    /// The first pause between two status queries of a young task.
    pub poll_first_interval: Duration,
    /// Attempts per video, the first included.
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles.
    pub retry_base_delay: Duration,
    /// How long a key rests after a 429 that named no `Retry-After`.
    pub rate_limit_rest: Duration,
}

/// The store's settings as a process with no variables set has them.
impl Default for StoreOptions {
    fn default() -> Self {
        Config::defaults().store
    }
}

/// `WEBHOOK_URL` with its `WEBHOOK_SECRET`, which is required: without it anyone who
/// learns the URL could post a made-up update, a payment included.
fn webhook(vars: &Reader<'_>) -> Result<Option<Webhook>, ConfigError> {
    let Some(url) = vars.optional_url("WEBHOOK_URL")? else {
        return Ok(None);
    };
    let secret = vars.text("WEBHOOK_SECRET").ok_or(ConfigError::Missing {
        name: "WEBHOOK_SECRET",
        expected: "1 to 256 letters, digits, _ or - (required with WEBHOOK_URL)",
    })?;
    if !valid_webhook_secret(&secret) {
        return Err(ConfigError::Invalid {
            name: "WEBHOOK_SECRET".into(),
            expected: "1 to 256 letters, digits, _ or -",
            // The value itself is a secret: only its shape is told.
            problem: format!("{} characters, some outside that set", secret.len()),
        });
    }
    let max_connections = vars.parse(
        "WEBHOOK_MAX_CONNECTIONS",
        40,
        "a whole number from 1 to 100",
        |s| s.parse::<u8>().ok().filter(|n| (1..=100).contains(n)),
    )?;
    Ok(Some(Webhook {
        url,
        secret: SecretString::from(secret),
        max_connections,
    }))
}

/// What Telegram accepts as a webhook's secret token.
pub fn valid_webhook_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where variables come from: the process environment in production, a map in tests.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Config {
    /// Reads `.env` (when present) into the environment, then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Config::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let vars = Reader(vars);
        let database_url = DatabaseUrl::parse(
            &vars
                .text("DATABASE_URL")
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
        )?;
        let store = StoreOptions {
            per_user_active_limit: vars.parse(
                "PER_USER_ACTIVE_LIMIT",
                5,
                "a whole number of jobs of at least 1",
                |s| s.parse::<u32>().ok().filter(|n| *n >= 1),
            )?,
            worker_dead_after: vars.duration("WORKER_DEAD_AFTER", Duration::from_secs(20))?,
            referral_bonus: vars.parse(
                "REFERRAL_BONUS",
                3,
                "a whole number of credits, 0 for no bonus",
                |s| s.parse::<i64>().ok().filter(|n| *n >= 0),
            )?,
            max_connections: vars.parse(
                "DATABASE_MAX_CONNECTIONS",
                16,
                "a whole number of connections between 2 and 1000",
                |s| s.parse::<u32>().ok().filter(|n| (2..=1000).contains(n)),
            )?,
        };
        Ok(Config {
            database_url,
            store,
            bot_token: vars.text("BOT_TOKEN").map(SecretString::from),
            kie_keys: kie_keys(&vars),
            admin_ids: vars.parse(
                "ADMIN_IDS",
                Vec::new(),
                "comma-separated Telegram user ids",
                |s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(|id| id.parse::<i64>().ok())
                        .collect()
                },
            )?,
            telegram_api_url: vars.url("TELEGRAM_API_URL", "https://api.telegram.org")?,
            kie_api_url: vars.url("KIE_API_URL", "https://api.kie.ai")?,
            kie_upload_url: vars.url("KIE_UPLOAD_URL", "https://kieai.redpandaai.co")?,
            worker_concurrency: vars.parse(
                "WORKER_CONCURRENCY",
                100,
                "a whole number of jobs of at least 1",
                |s| s.parse::<usize>().ok().filter(|n| *n >= 1),
            )?,
            poll_timeout: vars.duration("POLL_TIMEOUT", Duration::from_secs(30 * 60))?,
            poll_max_interval: vars.duration("POLL_MAX_INTERVAL", Duration::from_secs(30))?,
            http_addr: vars.parse(
                "HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "an address and port such as 127.0.0.1:8080",
                |s| s.parse().ok(),
            )?,
            worker_http_addr: vars.parse(
                "WORKER_HTTP_ADDR",
                None,
                "an address and port such as 127.0.0.1:9091",
                |s| s.parse().ok().map(Some),
            )?,
            public_url: vars.optional_url("PUBLIC_URL")?,
            webhook: webhook(&vars)?,
            templates_file: vars.text("TEMPLATES_FILE").map(PathBuf::from),
            models_file: vars.text("MODELS_FILE").map(PathBuf::from),
            packages_file: vars.text("PACKAGES_FILE").map(PathBuf::from),
            terms_file: vars.text("TERMS_FILE").map(PathBuf::from),
            support_contact: vars.text("SUPPORT_CONTACT"),
            reconcile_every: vars.duration("RECONCILE_EVERY", Duration::from_secs(3600))?,
            alert_every: vars.duration("ALERT_EVERY", Duration::from_secs(15 * 60))?,
            queue_alert_age: vars.duration("QUEUE_ALERT_AGE", Duration::from_secs(10 * 60))?,
            progress_every: vars.duration("PROGRESS_EVERY", Duration::from_secs(10))?,
            kie_low_credits: vars.parse(
                "KIE_LOW_CREDITS",
                500,
                "a whole number of KIE credits, 0 to turn the alert off",
                |s| s.parse::<i64>().ok().filter(|n| *n >= 0),
            )?,
            kie_credit_check_every: vars
                .duration("KIE_CREDIT_CHECK_EVERY", Duration::from_secs(10 * 60))?,
            failure_alert_percent: vars.parse(
                "FAILURE_ALERT_PERCENT",
                50,
                "a whole percentage from 0 (off) to 100",
                |s| {
                    s.trim_end_matches('%')
                        .parse::<u8>()
                        .ok()
                        .filter(|n| *n <= 100)
                },
            )?,
            kie_webhook_hmac_key: vars.text("KIE_WEBHOOK_HMAC_KEY").map(SecretString::from),
            kie_user_agent: vars
                .text("KIE_USER_AGENT")
                .unwrap_or_else(|| crate::kie::client::USER_AGENT.to_owned()),
            free_credits: vars.parse(
                "FREE_CREDITS",
                0,
                "a whole number of credits, 0 or more",
                |s| s.parse::<i64>().ok().filter(|n| *n >= 0),
            )?,
            shutdown_grace: vars.duration("SHUTDOWN_GRACE", Duration::from_secs(60))?,
            worker_id: vars.parse(
                "WORKER_ID",
                None,
                "1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', one per live process",
                |s| {
                    let ok = (1..=64).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                    ok.then(|| Some(s.to_owned()))
                },
            )?,
            heartbeat_every: vars.duration("HEARTBEAT_EVERY", Duration::from_secs(5))?,
            queue_check_every: vars.duration("QUEUE_CHECK_EVERY", Duration::from_secs(1))?,
            delivery_patience: vars.duration("DELIVERY_PATIENCE", Duration::from_secs(5 * 60))?,
            telegram: TelegramTimeouts {
                request: vars.duration("TELEGRAM_TIMEOUT", Duration::from_secs(30))?,
                upload: vars.duration("TELEGRAM_UPLOAD_TIMEOUT", Duration::from_secs(300))?,
                long_poll: vars.duration("TELEGRAM_LONG_POLL", Duration::from_secs(25))?,
            },
            telegram_per_second: vars.parse(
                "TELEGRAM_MESSAGES_PER_SECOND",
                30,
                "a whole number of messages of at least 1",
                |s| s.parse::<usize>().ok().filter(|n| *n >= 1),
            )?,
            max_transfers: vars.parse(
                "MAX_TRANSFERS",
                8,
                "a whole number of transfers of at least 1",
                |s| s.parse::<usize>().ok().filter(|n| *n >= 1),
            )?,
            max_photo_mb: vars.parse(
                "MAX_PHOTO_MB",
                10,
                "a whole number of megabytes between 1 and 20",
                |s| s.parse::<u64>().ok().filter(|n| (1..=20).contains(n)),
            )?,
            kie: KieLimits {
                create_limit: vars.parse(
                    "KIE_CREATE_LIMIT",
                    20,
                    "a whole number of creates of at least 1",
                    |s| s.parse::<u32>().ok().filter(|n| *n >= 1),
                )?,
                create_window: vars.duration("KIE_CREATE_WINDOW", Duration::from_secs(10))?,
                status_per_second: vars.parse(
                    "KIE_STATUS_PER_SECOND",
                    10,
                    "a whole number of queries of at least 1",
                    |s| s.parse::<u32>().ok().filter(|n| *n >= 1),
                )?,
                request_timeout: vars.duration("KIE_TIMEOUT", Duration::from_secs(60))?,
                poll_first_interval: vars
                    .duration("POLL_FIRST_INTERVAL", Duration::from_secs(3))?,
                max_attempts: vars.parse(
                    "MAX_ATTEMPTS",
                    3,
                    "a whole number of attempts between 1 and 10",
                    |s| s.parse::<u32>().ok().filter(|n| (1..=10).contains(n)),
                )?,
                retry_base_delay: vars.duration("RETRY_BASE_DELAY", Duration::from_secs(10))?,
                rate_limit_rest: vars.duration("KIE_RATE_LIMIT_REST", Duration::from_secs(30))?,
            },
        })
    }

    /// A configuration from `NAME = value` pairs, read as the environment would be: how the
    /// demo, the benches and the test rigs describe theirs.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Config, ConfigError>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        Config::from_vars(&vars)
    }

    /// Every setting at its default: what a process with no variables set runs with.
    pub fn defaults() -> Config {
        match Config::from_vars(&HashMap::new()) {
            Ok(config) => config,
            // The defaults are constants, checked by a unit test: this cannot happen.
            Err(err) => unreachable!("the built-in defaults do not parse: {err}"),
        }
    }

    /// The bot token, for the commands that talk to Telegram.
    pub fn require_bot_token(&self) -> Result<&SecretString, ConfigError> {
        self.bot_token.as_ref().ok_or(ConfigError::Missing {
            name: "BOT_TOKEN",
            expected: "the token @BotFather gave the bot",
        })
    }

    /// At least one KIE key, for the commands that talk to KIE.
    pub fn require_kie_keys(&self) -> Result<&[KieKey], ConfigError> {
        if self.kie_keys.is_empty() {
            return Err(ConfigError::Missing {
                name: "KIE_API_KEY",
                expected: "a KIE API key (or KIE_API_KEY_1, KIE_API_KEY_2, …)",
            });
        }
        Ok(&self.kie_keys)
    }
}

/// `KIE_API_KEY`, then `KIE_API_KEY_1`, `KIE_API_KEY_2`, … up to the first gap. Each key is
/// its own account unless `KIE_ACCOUNT_OF_KEY_n` (or `KIE_ACCOUNT_OF_KEY` for the single
/// key) names a shared one.
fn kie_keys(vars: &Reader<'_>) -> Vec<KieKey> {
    let key = |id: String, suffix: &str, secret: String| KieKey {
        account: vars
            .text(&format!("KIE_ACCOUNT_OF_KEY{suffix}"))
            .unwrap_or_else(|| id.clone()),
        id,
        secret: SecretString::from(secret),
    };
    let single = vars
        .text("KIE_API_KEY")
        .map(|secret| key("KIE_API_KEY".to_owned(), "", secret));
    let numbered = (1..)
        .map_while(|n| {
            vars.text(&format!("KIE_API_KEY_{n}"))
                .map(|secret| key(format!("KIE_API_KEY_{n}"), &format!("_{n}"), secret))
        })
        .collect::<Vec<_>>();
    single.into_iter().chain(numbered).collect()
}

/// Typed access to variables; an empty value counts as unset.
struct Reader<'a>(&'a dyn Vars);

impl Reader<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn parse<T>(
        &self,
        name: &'static str,
        default: T,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => parse(&raw).ok_or_else(|| ConfigError::Invalid {
                name: name.to_owned(),
                expected,
                problem: format!("got {raw:?}"),
            }),
        }
    }

    fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(
            name,
            default,
            "a positive duration such as 90s, 30m or 1h",
            |s| humantime::parse_duration(s).ok().filter(|d| !d.is_zero()),
        )
    }

    fn optional_url(&self, name: &'static str) -> Result<Option<Url>, ConfigError> {
        self.parse(name, None, "an http:// or https:// URL", |s| {
            parse_http_url(s).map(Some)
        })
    }

    fn url(&self, name: &'static str, default: &str) -> Result<Url, ConfigError> {
        match self.optional_url(name)? {
            Some(url) => Ok(url),
            None => parse_http_url(default).ok_or_else(|| ConfigError::Invalid {
                name: name.to_owned(),
                expected: "an http:// or https:// URL",
                problem: format!("the built-in default {default:?} does not parse"),
            }),
        }
    }
}

fn parse_http_url(raw: &str) -> Option<Url> {
    Url::parse(raw)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let config = Config::from_vars(&vars(&[])).expect("defaults parse");
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.database_url.engine(), Engine::Sqlite);
        assert_eq!(config.store.per_user_active_limit, 5);
        assert_eq!(config.store.worker_dead_after, Duration::from_secs(20));
        assert_eq!(config.heartbeat_every, Duration::from_secs(5));
        assert_eq!(config.worker_concurrency, 100);
        assert_eq!(config.poll_timeout, Duration::from_secs(1800));
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.free_credits, 0);
        assert_eq!(config.max_photo_mb, 10);
        assert!(config.admin_ids.is_empty() && config.kie_keys.is_empty());
        assert_eq!(
            config.telegram_api_url.as_str(),
            "https://api.telegram.org/"
        );
    }

    #[test]
    fn a_malformed_variable_is_named_with_what_it_expects() {
        let err = Config::from_vars(&vars(&[("WORKER_CONCURRENCY", "many")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("WORKER_CONCURRENCY"), "{text}");
        assert!(text.contains("whole number"), "{text}");

        let err = Config::from_vars(&vars(&[("POLL_TIMEOUT", "0s")])).unwrap_err();
        assert!(err.to_string().contains("POLL_TIMEOUT"));

        let err = Config::from_vars(&vars(&[("ADMIN_IDS", "12,abc")])).unwrap_err();
        assert!(err.to_string().contains("ADMIN_IDS"));

        let err = Config::from_vars(&vars(&[("KIE_API_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains("KIE_API_URL"));

        let err = Config::from_vars(&vars(&[("DATABASE_URL", "mysql://x/y")])).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn a_webhook_needs_a_secret_of_telegrams_alphabet_which_no_error_repeats() {
        let url = ("WEBHOOK_URL", "https://bot.example.com/telegram/hook");
        assert!(Config::from_vars(&vars(&[])).unwrap().webhook.is_none());
        let err = Config::from_vars(&vars(&[url])).unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
        let err =
            Config::from_vars(&vars(&[url, ("WEBHOOK_SECRET", "s3cret with spaces")])).unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let config = Config::from_vars(&vars(&[url, ("WEBHOOK_SECRET", "Abc_123-x")])).unwrap();
        let webhook = config.webhook.expect("webhook mode");
        assert_eq!(webhook.url.path(), "/telegram/hook");
        assert_eq!(webhook.secret.expose_secret(), "Abc_123-x");
        assert_eq!(webhook.max_connections, 40);
        assert!(!valid_webhook_secret(&"a".repeat(257)));
    }

    #[test]
    fn missing_secrets_are_errors_that_name_the_variable() {
        let config = Config::from_vars(&vars(&[])).expect("defaults parse");
        let err = config.require_bot_token().unwrap_err();
        assert!(err.to_string().contains("BOT_TOKEN"));
        let err = config.require_kie_keys().unwrap_err();
        assert!(err.to_string().contains("KIE_API_KEY"));
    }

    #[test]
    fn keys_are_read_from_the_single_and_the_numbered_variables() {
        let config = Config::from_vars(&vars(&[
            ("KIE_API_KEY", "k0"),
            ("KIE_API_KEY_1", "k1"),
            ("KIE_API_KEY_2", "k2"),
            ("KIE_API_KEY_4", "after-a-gap"),
            ("KIE_ACCOUNT_OF_KEY_1", "acme"),
            ("KIE_ACCOUNT_OF_KEY_2", "acme"),
        ]))
        .expect("parses");
        let ids: Vec<_> = config.kie_keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["KIE_API_KEY", "KIE_API_KEY_1", "KIE_API_KEY_2"]);
        let accounts: Vec<_> = config.kie_keys.iter().map(|k| k.account.as_str()).collect();
        assert_eq!(accounts, ["KIE_API_KEY", "acme", "acme"]);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_vars(&vars(&[
            ("BOT_TOKEN", "123:bot-secret"),
            ("KIE_API_KEY", "kie-secret"),
            (
                "DATABASE_URL",
                "postgres://app:db-secret@db.internal/neurocards",
            ),
        ]))
        .expect("parses");
        let shown = format!("{config:?}");
        for secret in ["bot-secret", "kie-secret", "db-secret"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("postgres://app:***@db.internal/neurocards"));
        assert_eq!(config.database_url.engine(), Engine::Postgres);
    }

    #[test]
    fn an_invalid_database_url_does_not_echo_its_password() {
        let err = DatabaseUrl::parse("mysql://app:db-secret@host/db").unwrap_err();
        assert!(!err.to_string().contains("db-secret"));
    }
}
