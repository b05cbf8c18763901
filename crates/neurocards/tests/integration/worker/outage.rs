//! The database goes away for 30 s while an order's three tasks generate (PostgreSQL: every
//! connection cut and new ones refused; SQLite: another process holds the write lock). When it
//! is back, every video arrives exactly once, nothing is created twice, the balance is down by
//! exactly the order, one summary is sent, and the worker was never declared dead.

use std::time::Duration;

use neurocards::config::DatabaseUrl;
use neurocards::domain::JobStatus;
use neurocards::store::{Engine, Store, StoreOptions};
use sqlx::{AnyConnection, Connection, Executor};

use super::rig::{fast_config, one_account, Rig};
use emulators::netcut::TcpProxy;

crate::both_engines!(
    a_thirty_second_database_outage_loses_and_doubles_nothing,
    kie_is_answered_at_once_while_the_database_is_away,
);

const OUTAGE: Duration = Duration::from_secs(30);

async fn a_thirty_second_database_outage_loses_and_doubles_nothing(engine: Engine) {
    let kie = emulators::kie::KieConfig {
        // The tasks finish while the database is away.
        stage_delay: Duration::from_secs(2),
        ..one_account()
    };
    // Far shorter than the outage: a worker silenced by the outage must still not be judged
    // dead for it.
    let options = StoreOptions {
        worker_dead_after: Duration::from_secs(10),
        ..StoreOptions::default()
    };
    let mut rig = Rig::with(engine, kie, fast_config(), options.clone()).await;
    let user = rig.user(901, 5, "en").await;
    let placed = rig.order(user, 3, "a mug on a table").await;

    let proxy = match engine {
        Engine::Postgres => Some(proxied(&rig, options).await),
        Engine::Sqlite => None,
    };
    let worker = match &proxy {
        Some((_, store)) => rig.build_worker_on(store.clone()).await,
        None => rig.build_worker().await,
    };
    rig.spawn_built(worker);
    wait_for_tasks(&rig, 3).await;

    let outage_started = rig.store().clock().now_millis();
    match &proxy {
        Some((proxy, _)) => proxy.cut_for(OUTAGE),
        None => hold_sqlite_write_lock(&rig.db.url(), OUTAGE).await,
    }
    if proxy.is_some() {
        tokio::time::sleep(OUTAGE).await;
    }

    rig.wait_until_summarised(placed.order_id, Duration::from_secs(60))
        .await;
    assert_eq!(
        rig.job_statuses(placed.order_id).await,
        [JobStatus::Delivered; 3]
    );
    assert_eq!(rig.videos(user.0).len(), 3, "each video exactly once");
    assert_eq!(rig.kie.create_task_calls(), 3, "no second task");
    assert_eq!(
        rig.store().balance(user).await.unwrap(),
        2,
        "down by exactly 3"
    );
    assert_eq!(rig.summaries(user.0).len(), 1, "one summary");
    assert_eq!(
        rig.store().live_workers().await.unwrap(),
        1,
        "the worker was never declared dead"
    );
    for job in &placed.job_ids {
        let details = rig.store().job(*job).await.unwrap().unwrap();
        assert!(details.tg_message_id.is_some(), "confirmed: {details:?}");
        assert_eq!(details.attempts, 0, "never retried: {details:?}");
        assert!(
            details.claimed_at.is_some_and(|at| at < outage_started),
            "never taken back from its worker: {details:?}"
        );
    }
    rig.assert_sound().await;
}

/// Two workers cut off for twice `WORKER_DEAD_AFTER`; the one holding the jobs gets the
/// database back two seconds after the other. The first back finds the holder's heartbeat
/// long stale, yet must not take its jobs: a worker judges only after beating for a while
/// itself, time in which a live peer beats too. (Judging at the first beat after the outage
/// takes them; that is what this test catches.) Cutting one worker longer than the other
/// needs a network between them and the database: PostgreSQL only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_back_from_an_outage_first_does_not_take_the_jobs_of_one_back_later() {
    let options = StoreOptions {
        worker_dead_after: Duration::from_secs(10),
        ..StoreOptions::default()
    };
    let outage = Duration::from_secs(20);
    let config = neurocards::config::Config {
        poll_timeout: Duration::from_secs(120),
        ..fast_config()
    };
    let mut rig = Rig::with(Engine::Postgres, one_account(), config, options.clone()).await;
    let user = rig.user(902, 5, "en").await;
    // Still generating when the judges may judge again after the outage.
    let placed = rig.order(user, 4, "a lamp on a desk #slow=40").await;
    let (holder_cut, holder_store) = proxied(&rig, options.clone()).await;
    let holder = rig.build_worker_on(holder_store).await;
    let holder_id = holder.id().to_owned();
    rig.spawn_built(holder);
    wait_for_tasks(&rig, 4).await;
    let held = vec![Some(holder_id); 4];
    assert_eq!(holders_of(&rig, &placed.job_ids).await, held);
    let (judge_cut, judge_store) = proxied(&rig, options).await;
    let judge = rig.build_worker_on(judge_store).await;
    rig.spawn_built(judge);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let outage_started = rig.store().clock().now_millis();
    judge_cut.cut_for(outage);
    holder_cut.cut_for(outage + Duration::from_secs(2));
    // Past the time the judge waits after the outage, while the tasks still generate.
    tokio::time::sleep(outage + Duration::from_secs(8)).await;
    assert_eq!(
        holders_of(&rig, &placed.job_ids).await,
        held,
        "every job still with the worker that held it before the outage"
    );
    assert_eq!(rig.store().live_workers().await.unwrap(), 2);

    rig.wait_until_summarised(placed.order_id, Duration::from_secs(90))
        .await;
    assert_eq!(rig.kie.create_task_calls(), 4, "no second task");
    assert_eq!(rig.videos(user.0).len(), 4, "each video exactly once");
    for job in &placed.job_ids {
        let details = rig.store().job(*job).await.unwrap().unwrap();
        assert_eq!(details.attempts, 0, "never retried: {details:?}");
        assert!(
            details.claimed_at.is_some_and(|at| at < outage_started),
            "never taken back from its worker: {details:?}"
        );
    }
    rig.assert_sound().await;
}

async fn wait_for_tasks(rig: &Rig, count: usize) {
    let started = std::time::Instant::now();
    while rig.kie.tasks().len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the tasks were not created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn holders_of(rig: &Rig, jobs: &[neurocards::domain::JobId]) -> Vec<Option<String>> {
    let mut holders = Vec::new();
    for job in jobs {
        let details = rig.store().job(*job).await.unwrap().unwrap();
        holders.push(details.locked_by);
    }
    holders
}

/// A store that reaches PostgreSQL through a proxy the test can cut.
async fn proxied(rig: &Rig, options: StoreOptions) -> (TcpProxy, Store) {
    let direct = url::Url::parse(&rig.db.url()).expect("a database URL");
    let host = direct.host_str().unwrap_or("127.0.0.1");
    let port = direct.port().unwrap_or(5432);
    let target = tokio::net::lookup_host((host, port))
        .await
        .expect("the database's address")
        .next()
        .expect("an address");
    let proxy = TcpProxy::start(target).await.expect("the proxy");
    let mut through = direct.clone();
    through.set_host(Some("127.0.0.1")).expect("a host");
    through.set_port(Some(proxy.addr().port())).expect("a port");
    let url = DatabaseUrl::parse(through.as_str()).expect("a valid URL");
    let store = Store::connect(&url, options)
        .await
        .expect("connecting through the proxy");
    (proxy, store)
}

/// Another process takes SQLite's write lock and keeps it for `duration`.
async fn hold_sqlite_write_lock(url: &str, duration: Duration) {
    let mut conn = AnyConnection::connect(url)
        .await
        .expect("a second connection");
    conn.execute("BEGIN IMMEDIATE")
        .await
        .expect("taking the write lock");
    tokio::time::sleep(duration).await;
    conn.execute("ROLLBACK")
        .await
        .expect("releasing the write lock");
    let _ = conn.close().await;
}

/// A process started while the database is away waits for it instead of exiting; a server
/// that refuses us (no such database) is reported at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_process_starting_during_an_outage_waits_for_the_database() {
    let rig = Rig::with(
        Engine::Postgres,
        one_account(),
        fast_config(),
        StoreOptions::default(),
    )
    .await;
    let (proxy, store) = proxied(&rig, StoreOptions::default()).await;
    store.close().await;
    let direct = url::Url::parse(&rig.db.url()).expect("a database URL");
    let mut through = direct.clone();
    through.set_host(Some("127.0.0.1")).expect("a host");
    through.set_port(Some(proxy.addr().port())).expect("a port");
    let url = DatabaseUrl::parse(through.as_str()).expect("a valid URL");

    proxy.cut_for(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let store = Store::connect_patiently(&url, StoreOptions::default(), Duration::from_secs(30))
        .await
        .expect("connected once the database was back");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it could not have connected during the cut"
    );
    assert!(store.queue_stats().await.is_ok());
    store.close().await;

    let mut missing = through.clone();
    missing.set_path("nc_no_such_database");
    let missing = DatabaseUrl::parse(missing.as_str()).expect("a valid URL");
    let started = std::time::Instant::now();
    assert!(
        Store::connect_patiently(&missing, StoreOptions::default(), Duration::from_secs(30))
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refusal by the server is not waited out"
    );
}

/// A callback no job of the receiving process follows is noted for the workers. KIE is
/// answered at once while the database is away (the note would wait for it up to the pool's
/// 15 s, and KIE would give up and call again); the note waits on its own and lands once the
/// database is back.
async fn kie_is_answered_at_once_while_the_database_is_away(engine: Engine) {
    const KEY: &str = "webhook-hmac-key";
    const AWAY: Duration = Duration::from_secs(5);
    let rig = Rig::with(
        engine,
        one_account(),
        fast_config(),
        StoreOptions::default(),
    )
    .await;
    let (proxy, store) = match engine {
        Engine::Postgres => {
            let (proxy, store) = proxied(&rig, StoreOptions::default()).await;
            (Some(proxy), store)
        }
        Engine::Sqlite => (None, rig.store().clone()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let callback_url = format!(
        "http://{}/kie/callback",
        listener.local_addr().expect("an address")
    );
    let router = neurocards::http::router(
        store.clone(),
        neurocards::worker::Wakeups::default(),
        Some(neurocards::http::callback_auth::CallbackAuth::new(
            secrecy::SecretString::from(KEY),
        )),
        None,
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let since = store.clock().now_millis();

    let away = match &proxy {
        Some(proxy) => {
            proxy.cut_for(AWAY);
            None
        }
        None => {
            let url = rig.db.url();
            Some(tokio::spawn(async move {
                hold_sqlite_write_lock(&url, AWAY).await
            }))
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let task = "task-while-away";
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0));
    let post = reqwest::Client::new()
        .post(&callback_url)
        .header("X-Webhook-Timestamp", at.to_string())
        .header(
            "X-Webhook-Signature",
            emulators::kie::callback_signature(KEY, task, at),
        )
        .json(&serde_json::json!({"code": 200, "msg": "done",
                                  "data": {"taskId": task, "state": "success"}}))
        .send();
    // Well inside the outage: an answer that waited for the database would come after it.
    let answer = tokio::time::timeout(Duration::from_secs(3), post)
        .await
        .expect("answered while the database was away")
        .expect("an answer");
    assert_eq!(answer.status(), 200);

    if let Some(holder) = away {
        holder.await.expect("the lock holder");
    }
    let started = std::time::Instant::now();
    loop {
        if let Ok((tasks, _)) = store.kie_callbacks_since(since).await {
            if tasks.iter().any(|noted| noted == task) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the note never landed once the database was back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.abort();
}
