//! A fresh database per test, on either engine, with a clock the test moves.
//!
//! PostgreSQL tests create their own database on the server named by
//! `NEUROCARDS_TEST_POSTGRES_URL` (default: the local server as user `postgres`) and drop it
//! afterwards. A server that cannot be reached fails the test: it is never skipped.

use std::sync::Arc;

use neurocards::catalogue::Catalogue;
use neurocards::clock::ManualClock;
use neurocards::config::DatabaseUrl;
use neurocards::domain::generation::GenerationSpec;
use neurocards::domain::pricing::CREDITS_PER_VIDEO;
use neurocards::domain::{ChatId, Lang, OrderId, UserId};
use neurocards::store::{Engine, NewOrder, PlacedOrder, Store, StoreOptions, WorkerInfo};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// A fixed starting time, so tests never depend on the machine's clock.
pub const T0: i64 = 1_800_000_000_000;

pub struct TestDb {
    pub store: Store,
    pub clock: ManualClock,
    _cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        TestDb::with_options(engine, StoreOptions::default()).await
    }

    pub async fn with_options(engine: Engine, options: StoreOptions) -> TestDb {
        let db = TestDb::real_time(engine, options).await;
        let store = db.store.clone().with_clock(Arc::new(db.clock.clone()));
        TestDb { store, ..db }
    }

    /// A database whose store reads the real clock (for tests that run real servers).
    pub async fn real_time(engine: Engine, options: StoreOptions) -> TestDb {
        let (url, cleanup) = match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory for SQLite");
                let path = dir.path().join("test.db");
                (
                    format!("sqlite://{}", path.display()),
                    Cleanup::SqliteDir(dir),
                )
            }
            Engine::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("nc_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = connect_admin(&admin_url).await;
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("creating a test database");
                let _ = admin.close().await;
                let url = database_url_for(&admin_url, &name);
                (url, Cleanup::PostgresDatabase { admin_url, name })
            }
        };
        let database_url = DatabaseUrl::parse(&url).expect("a valid test database URL");
        let clock = ManualClock::starting_at(T0);
        let store = Store::connect(&database_url, options)
            .await
            .expect("opening the test database");
        TestDb {
            store,
            clock,
            _cleanup: cleanup,
        }
    }

    /// The database's URL, for another process to open it.
    pub fn url(&self) -> String {
        match &self._cleanup {
            Cleanup::SqliteDir(dir) => format!("sqlite://{}", dir.path().join("test.db").display()),
            Cleanup::PostgresDatabase { admin_url, name } => database_url_for(admin_url, name),
        }
    }

    /// A second store on the same database, as another process would open it.
    pub async fn reopen(&self) -> Store {
        let database_url = DatabaseUrl::parse(&self.url()).expect("a valid test database URL");
        Store::connect(&database_url, self.store.options().clone())
            .await
            .expect("reopening the test database")
            .with_clock(Arc::new(self.clock.clone()))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::PostgresDatabase { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot block on itself: a thread
            // with its own small runtime removes the database.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async {
                    if let Ok(mut admin) = AnyConnection::connect(&admin_url).await {
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut admin).await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

fn postgres_admin_url() -> String {
    std::env::var("NEUROCARDS_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

async fn connect_admin(admin_url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    match AnyConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL tests need a server: set NEUROCARDS_TEST_POSTGRES_URL to a URL of a user \
             allowed to create databases (tried {}): {err}",
            redact(admin_url)
        ),
    }
}

fn database_url_for(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("NEUROCARDS_TEST_POSTGRES_URL is a URL");
    url.set_path(name);
    url.to_string()
}

fn redact(url: &str) -> String {
    DatabaseUrl::parse(url)
        .map(|url| url.redacted())
        .unwrap_or_else(|_| "an unparsable URL".to_owned())
}

/// Runs each named test function once per engine: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_engines {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(neurocards::store::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(neurocards::store::Engine::Postgres).await;
                }
            )*
        }
    };
}

/// A registered user holding `credits`.
pub async fn user_with(store: &Store, id: i64, credits: i64) -> UserId {
    let user = UserId(id);
    store
        .register_user(user, Some("seller"), "ru", credits)
        .await
        .expect("registering a user");
    user
}

/// What an order gets when nobody chose: the built-in catalogue's default option.
pub fn default_spec() -> GenerationSpec {
    Catalogue::built_in()
        .ok()
        .and_then(|catalogue| catalogue.default_spec())
        .map(|(spec, _)| spec)
        .expect("the built-in catalogue has a default option")
}

pub fn order_of(user: UserId, count: i64, key: Option<&str>) -> NewOrder {
    NewOrder {
        user_id: user,
        chat_id: ChatId(user.0),
        idempotency_key: key.map(str::to_owned),
        video_count: count,
        unit_price: CREDITS_PER_VIDEO,
        photo_file_id: "photo-file-id".to_owned(),
        template_id: Some("showcase".to_owned()),
        prompt: "the product turns slowly on a white table".to_owned(),
        generation: default_spec(),
        language: Lang::Ru,
    }
}

pub async fn place(store: &Store, user: UserId, count: i64) -> PlacedOrder {
    store
        .place_order(&order_of(user, count, None))
        .await
        .expect("placing an order")
}

pub async fn worker(store: &Store, name: &str) -> String {
    let info = WorkerInfo {
        id: name.to_owned(),
        hostname: "test-host".to_owned(),
        pid: 1,
    };
    store
        .register_worker(&info)
        .await
        .expect("registering a worker");
    info.id
}

pub async fn held_by_user(store: &Store, user: UserId) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE user_id = $1 AND locked_by IS NOT NULL")
        .bind(user.0)
        .fetch_one(store.pool())
        .await
        .expect("counting held jobs")
}

pub async fn ledger_rows(store: &Store, kind: &str, order: OrderId) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE kind = $1 AND order_id = $2")
        .bind(kind)
        .bind(order.0)
        .fetch_one(store.pool())
        .await
        .expect("counting ledger rows")
}

pub async fn assert_invariants_hold(store: &Store) {
    let breaches = store.check_invariants().await.expect("checking invariants");
    assert!(breaches.is_empty(), "invariant breaches: {breaches:?}");
}
