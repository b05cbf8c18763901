//! Signed KIE callbacks through the real HTTP server: forged or stale ones are refused with
//! 401 before they wake anything, a replay is refused, and a genuine one delivers the video
//! long before the next poll, also when the job runs in a worker process other than the one
//! that receives the callback.

use std::time::{Duration, Instant};

use emulators::kie::{callback_signature, KieConfig};
use neurocards::http::callback_auth::CallbackAuth;
use neurocards::store::{Engine, StoreOptions};
use neurocards::worker::Wakeups;
use secrecy::SecretString;
use serde_json::json;

use super::rig::{fast_config, one_account, Rig};

crate::both_engines!(
    a_signed_callback_wakes_the_job_and_forgeries_change_nothing,
    a_callback_the_bot_receives_wakes_the_job_of_a_worker_process,
);

const WEBHOOK_KEY: &str = "webhook-hmac-key";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
}

/// A rig whose KIE calls back, signed, to `PUBLIC_URL` (the listener, not yet served), and
/// whose worker would poll only after half a minute: the listener and its base URL.
async fn rig_called_back(engine: Engine) -> (Rig, tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let mut settings = fast_config();
    settings.kie.poll_first_interval = Duration::from_secs(40);
    settings.poll_max_interval = Duration::from_secs(40);
    settings.poll_timeout = Duration::from_secs(120);
    settings.public_url = Some(url::Url::parse(&base).expect("a URL"));
    let kie = KieConfig {
        callback_hmac_key: Some(WEBHOOK_KEY.to_owned()),
        stage_delay: Duration::from_millis(400),
        ..one_account()
    };
    let rig = Rig::with(engine, kie, settings, StoreOptions::default()).await;
    (rig, listener, base)
}

fn status_queries(rig: &Rig) -> usize {
    rig.kie
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/recordInfo"))
        .count()
}

async fn a_signed_callback_wakes_the_job_and_forgeries_change_nothing(engine: Engine) {
    let (mut rig, listener, base) = rig_called_back(engine).await;
    let worker = rig.build_worker().await;
    let router = neurocards::http::router(
        rig.store().clone(),
        worker.wakeups(),
        Some(CallbackAuth::new(SecretString::from(WEBHOOK_KEY))),
        None,
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let user = rig.user(701, 5, "en").await;
    let placed = rig.order(user, 1, "a mug turns slowly").await;
    let started = Instant::now();
    rig.spawn_built(worker);

    let task = loop {
        if let Some(task) = rig.kie.tasks().pop() {
            break task.task_id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no task created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let callback_url = format!("{base}/kie/callback");
    let client = reqwest::Client::new();
    let post = |timestamp: i64, signature: String, id_field: &'static str| {
        let body = json!({"code": 200, "msg": "Playground task completed successfully.",
                          "data": {id_field: task, "state": "success"}});
        client
            .post(&callback_url)
            .header("X-Webhook-Timestamp", timestamp.to_string())
            .header("X-Webhook-Signature", signature)
            .json(&body)
            .send()
    };
    let now = unix_now();
    let forged = post(now, callback_signature("not-the-key", &task, now), "taskId")
        .await
        .expect("an answer");
    assert_eq!(forged.status(), 401);
    let stale_at = now - 10 * 60;
    let stale = post(
        stale_at,
        callback_signature(WEBHOOK_KEY, &task, stale_at),
        "task_id",
    )
    .await
    .expect("an answer");
    assert_eq!(stale.status(), 401);
    let unsigned = client
        .post(&callback_url)
        .json(&json!({"data": {"taskId": task}}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(unsigned.status(), 401);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(status_queries(&rig), 0, "a refused callback woke nothing");

    // The emulator's own signed callback when the task ends wakes the job at once.
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(15))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "delivered by the callback, before the first poll"
    );
    assert_eq!(rig.videos(user.0).len(), 1);

    // A genuine callback is taken once; the same one again is a replay.
    let at = unix_now();
    let signature = callback_signature(WEBHOOK_KEY, &task, at);
    let first = post(at, signature.clone(), "task_id")
        .await
        .expect("an answer");
    assert_eq!(first.status(), 200, "task_id is accepted as well as taskId");
    let replay = post(at, signature, "task_id").await.expect("an answer");
    assert_eq!(replay.status(), 401);
    server.abort();
    rig.assert_sound().await;
}

async fn a_callback_the_bot_receives_wakes_the_job_of_a_worker_process(engine: Engine) {
    let (mut rig, listener, _) = rig_called_back(engine).await;
    // The bot's HTTP server, with the wake-ups of a process that runs no job.
    let router = neurocards::http::router(
        rig.store().clone(),
        Wakeups::default(),
        Some(CallbackAuth::new(SecretString::from(WEBHOOK_KEY))),
        None,
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let user = rig.user(702, 5, "en").await;
    let placed = rig.order(user, 1, "a lamp lights up").await;
    let started = Instant::now();
    rig.spawn_worker().await;

    rig.wait_until_summarised(placed.order_id, Duration::from_secs(15))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "delivered through the noted callback, before the first poll"
    );
    assert_eq!(
        status_queries(&rig),
        1,
        "one query, the one the callback woke"
    );
    assert_eq!(rig.videos(user.0).len(), 1);
    server.abort();
    rig.assert_sound().await;
}
