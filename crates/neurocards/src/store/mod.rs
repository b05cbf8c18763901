//! The database: users and their credit ledger, orders, the job queue, worker liveness and
//! dialog state, on SQLite (the embedded default) or PostgreSQL (production, scale-out).
//!
//! Both engines run the same runtime queries through sqlx's `Any` driver; where they differ
//! (claiming jobs, write locks) the engine picks its own statement. Each engine has its own
//! migrations. Every public operation is atomic: it commits whole or changes nothing.

mod alerts;
mod audit;
mod bot;
mod broadcasts;
mod callbacks;
mod dialogs;
mod error;
mod inbox;
mod jobs;
mod keys;
mod models;
mod operator;
mod orders;
mod payments;
mod progress;
mod promo;
mod referrals;
mod sends;
mod stats;
mod transfer;
mod users;
mod workers;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Transaction};

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::DatabaseUrl;

pub use alerts::RecentOutcomes;
pub use audit::Audit;
pub use broadcasts::{Broadcast, BroadcastStatus, Segment};
pub use error::StoreError;
pub use inbox::InboxUpdate;
pub use jobs::{ClaimedJob, Delivery, JobDetails, Lease, Refund};
pub use keys::{CreateSlot, CreateSlots, KeyHealth, KeyState};
pub use models::ModelState;
pub use operator::{Cancelled, OrderLine, RepeatSource, Requeue};
pub use orders::{NewOrder, OrderSummary, PlacedOrder, Resend};
pub use payments::{NewPayment, Payment, PaymentCredit, PaymentRefund, PaymentTotals};
pub use progress::OrderProgress;
pub use promo::{PromoCode, Redemption};
pub use referrals::{ReferralBonus, ReferralStats};
pub use stats::{Breach, QueueStats, WorkerStats};
pub use transfer::{TransferReport, COPIED_TABLES, SKIPPED_TABLES};
pub use users::{LedgerEntry, User};
pub use workers::WorkerInfo;

pub(crate) use error::ResultExt;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Queue rules that operators tune.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// At most this many jobs of one user are held by workers at once, so one user's large
    /// order does not starve everyone else.
    pub per_user_active_limit: u32,
    /// A worker whose last heartbeat is older than this is presumed dead and loses its jobs.
    pub worker_dead_after: Duration,
    /// Connections this process opens to PostgreSQL at most (SQLite uses 4).
    pub max_connections: u32,
    /// Credits the inviter and the invited user each get when the invited user's first
    /// payment lands (`REFERRAL_BONUS`; 0: none).
    pub referral_bonus: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    options: StoreOptions,
    clock: Arc<dyn Clock>,
    liveness_clock: LivenessClock,
    /// When this process last cleared each account's past create slots.
    slots_cleared_at: Arc<std::sync::Mutex<std::collections::HashMap<String, Millis>>>,
}

/// Which clock stamps heartbeats and judges them. Worker processes on several hosts compare
/// one another's heartbeats: with each host's own clock, a host a minute ahead makes its
/// peers look dead. The database's clock is the one clock they all share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessClock {
    Database,
    /// The store's clock (tests that move time by hand).
    Store,
}

impl Store {
    /// Opens the database (creating an SQLite file when missing) and brings its schema up to
    /// date.
    pub async fn connect(url: &DatabaseUrl, options: StoreOptions) -> Result<Store, StoreError> {
        let store = Store::open(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// `connect` for a process that is starting: a database that cannot be reached yet (a
    /// server still starting, a network blip, a failover) is waited for, up to `patience`,
    /// so a worker restarted during an outage does not exit for it. A refusal by the server
    /// itself (wrong password, no such database) fails at once.
    pub async fn connect_patiently(
        url: &DatabaseUrl,
        options: StoreOptions,
        patience: Duration,
    ) -> Result<Store, StoreError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = Duration::from_millis(250);
        loop {
            match Store::connect(url, options.clone()).await {
                Err(StoreError::Connect { source, .. })
                    if is_transient(&source) && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::warn!(error = %source, retry_in = ?pause, "the database cannot be reached yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
                other => return other,
            }
        }
    }

    /// Opens the database without touching its schema.
    pub async fn open(url: &DatabaseUrl, options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = url.engine();
        let connect_options = AnyConnectOptions::from_str(&driver_url(url)).map_err(|source| {
            StoreError::Connect {
                target: url.redacted(),
                source,
            }
        })?;
        // One direct connection first: a pool that cannot connect only says it timed out,
        // while this says why (refused, unknown database, bad password).
        let probe = AnyConnection::connect_with(&connect_options)
            .await
            .map_err(|source| StoreError::Connect {
                target: url.redacted(),
                source,
            })?;
        let _ = probe.close().await;
        let pool_options = match engine {
            // Writers queue on SQLite's single write lock (BEGIN IMMEDIATE + busy timeout);
            // a few connections let reads go on beside them.
            Engine::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                sqlx::query(*pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
            }
            Engine::Postgres => AnyPoolOptions::new().max_connections(options.max_connections),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(connect_options)
            .await
            .map_err(|source| StoreError::Connect {
                target: url.redacted(),
                source,
            })?;
        Ok(Store {
            pool,
            engine,
            options,
            clock: Arc::new(SystemClock),
            liveness_clock: LivenessClock::Database,
            slots_cleared_at: Arc::default(),
        })
    }

    /// Replaces the clock (tests move time instead of sleeping); heartbeats follow it too.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self.liveness_clock = LivenessClock::Store;
        self
    }

    pub fn with_liveness_clock(mut self, liveness_clock: LivenessClock) -> Store {
        self.liveness_clock = liveness_clock;
        self
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// The clock the store stamps times with; the worker measures with the same one.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// One round trip to the database: what a health check needs.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("checking the database")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The raw pool, for tests that must break the rules on purpose to prove the schema
    /// refuses it.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn now(&self) -> Millis {
        self.clock.now_millis()
    }

    /// Now, as heartbeats are stamped and judged: see [`LivenessClock`].
    async fn liveness_now(&self) -> Result<Millis, StoreError> {
        if self.liveness_clock == LivenessClock::Store {
            return Ok(self.now());
        }
        let query = match self.engine {
            Engine::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
            Engine::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        };
        sqlx::query_scalar(query)
            .fetch_one(&self.pool)
            .await
            .context("reading the database's clock")
    }

    /// A transaction that will write. SQLite takes its write lock up front: a deferred
    /// transaction that reads, then writes, fails with SQLITE_BUSY instead of waiting when
    /// another writer got there first.
    async fn begin_write(
        &self,
        context: &'static str,
    ) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
        .context(context)
    }

    /// A write transaction for pacing records (create slots, Telegram sends) that serialise
    /// on one row, locked by `lock` with `key` on PostgreSQL: `SELECT set_config(
    /// 'synchronous_commit', 'off', true) FROM … FOR UPDATE` (SQLite's write lock already
    /// serialises). Its commit does not wait for the disk: the flush would be
    /// paid inside the lock by every taker in turn, and a server crash can lose only the
    /// last moment of these records, which at worst lets a few requests out early that the
    /// API answers with "slow down", which every caller obeys. Money and jobs never go
    /// through here. Returns whether the row was found and locked (never on SQLite, which
    /// locks the whole database instead).
    async fn begin_pacing(
        &self,
        context: &'static str,
        lock: &'static str,
        key: &str,
    ) -> Result<(Transaction<'static, sqlx::Any>, bool), StoreError> {
        let mut tx = self.begin_write(context).await?;
        let found = match self.engine {
            // One round trip for both: the locked part is as short as it can be.
            Engine::Postgres => sqlx::query(lock)
                .bind(key.to_owned())
                .fetch_optional(&mut *tx)
                .await
                .context(context)?
                .is_some(),
            Engine::Sqlite => false,
        };
        Ok((tx, found))
    }
}

const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
];

/// The URL handed to the driver: an SQLite file is created when missing unless the URL
/// says otherwise.
fn driver_url(url: &DatabaseUrl) -> String {
    let raw = url.expose();
    if url.engine() == Engine::Sqlite && !raw.contains("mode=") {
        let separator = if raw.contains('?') { '&' } else { '?' };
        format!("{raw}{separator}mode=rwc")
    } else {
        raw.to_owned()
    }
}

/// A failure to reach the server, as opposed to the server refusing us.
fn is_transient(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_file_is_created_unless_the_url_chooses_a_mode() {
        let url = |raw: &str| DatabaseUrl::parse(raw).expect("valid url");
        assert_eq!(
            driver_url(&url("sqlite://neurocards.db")),
            "sqlite://neurocards.db?mode=rwc"
        );
        assert_eq!(
            driver_url(&url("sqlite://a.db?cache=shared")),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            driver_url(&url("sqlite://a.db?mode=ro")),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(driver_url(&url("postgres://u@h/db")), "postgres://u@h/db");
    }
}
