//! `neurocards run` as a process: its parts live and die together.

use std::process::Stdio;
use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::store::{Engine, StoreOptions};

use crate::harness::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_with_an_error_when_its_http_server_cannot_start() {
    let db = TestDb::real_time(Engine::Sqlite, StoreOptions::default()).await;
    let telegram = TelegramEmulator::start(TelegramConfig::default())
        .await
        .expect("the Telegram emulator");
    let kie = KieEmulator::start(KieConfig::default())
        .await
        .expect("the KIE emulator");
    // Someone else has the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("an address");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .arg("run")
        .env("DATABASE_URL", db.url())
        .env("BOT_TOKEN", telegram.token())
        .env("TELEGRAM_API_URL", telegram.base_url())
        .env("KIE_API_KEY", "test-key")
        .env("KIE_API_URL", kie.base_url())
        .env("KIE_UPLOAD_URL", kie.base_url())
        .env("HTTP_ADDR", addr.to_string())
        .env("SHUTDOWN_GRACE", "2s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting neurocards run");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("the process's state").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("neurocards run went on although its HTTP server could not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = child.wait_with_output().expect("its output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "a failed part fails the process: {logs}"
    );
    assert!(
        logs.contains("http server failed") && logs.contains("HTTP_ADDR"),
        "the log says which part and why: {logs}"
    );
    assert!(!logs.contains(&telegram.token()), "the token stays secret");
    drop(taken);
}

/// SIGTERM while one video is being sent, one is being generated and one waits for a create
/// slot: the process finishes the send, hands the others back, creates nothing new and exits
/// 0; a second process finishes every job, with no second task and no refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_order_loses_and_doubles_nothing() {
    let db = TestDb::real_time(Engine::Sqlite, StoreOptions::default()).await;
    let telegram = TelegramEmulator::start(TelegramConfig::default())
        .await
        .expect("the Telegram emulator");
    let kie = KieEmulator::start(KieConfig {
        create_limit: 2,
        create_window: Duration::from_secs(10),
        stage_delay: Duration::from_millis(300),
        ..KieConfig::default()
    })
    .await
    .expect("the KIE emulator");
    let store = &db.store;
    let spec = crate::harness::default_spec();
    let photo = telegram.add_file(crate::worker::rig::JPEG.to_vec());
    let mut orders = Vec::new();
    for (user, prompt) in [(1, "a mug"), (2, "a teapot #slow=20"), (3, "a lamp")] {
        let id = neurocards::domain::UserId(user);
        store
            .register_user(id, None, "en", 1)
            .await
            .expect("a user");
        let placed = store
            .place_order(&neurocards::store::NewOrder {
                user_id: id,
                chat_id: neurocards::domain::ChatId(user),
                idempotency_key: None,
                video_count: 1,
                unit_price: 1,
                photo_file_id: photo.clone(),
                template_id: None,
                prompt: prompt.to_owned(),
                generation: spec.clone(),
                language: neurocards::domain::Lang::En,
            })
            .await
            .expect("an order");
        orders.push(placed);
    }
    // The first video's send is taken by Telegram but answered only after 6 s.
    telegram.inject(emulators::telegram::Fault::LateAnswer {
        method: "SendVideo".to_owned(),
        delay: Duration::from_secs(6),
    });
    let worker = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_neurocards"))
            .arg("worker")
            .env("DATABASE_URL", db.url())
            .env("BOT_TOKEN", telegram.token())
            .env("TELEGRAM_API_URL", telegram.base_url())
            .env("KIE_API_KEY", "test-key")
            .env("KIE_ACCOUNT_OF_KEY", "main")
            .env("KIE_API_URL", kie.base_url())
            .env("KIE_UPLOAD_URL", kie.base_url())
            .env("KIE_CREATE_LIMIT", "2")
            .env("KIE_CREATE_WINDOW", "10s")
            .env("POLL_FIRST_INTERVAL", "300ms")
            .env("POLL_MAX_INTERVAL", "1s")
            .env("SHUTDOWN_GRACE", "20s")
            .env("WORKER_ID", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting neurocards worker")
    };
    let mut first = worker("first");
    // Two tasks created, one video on its way (its answer late); the third job waits for
    // the account's window.
    let started = std::time::Instant::now();
    let sending = loop {
        let sending = (1..=3).find(|user| !telegram.sent(*user).is_empty());
        if let (Some(user), 2) = (sending, kie.create_task_calls()) {
            break user;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the jobs did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("sending SIGTERM");
    assert!(status.success());
    let stopping = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = first.try_wait().expect("the process's state") {
            break exit;
        }
        if stopping.elapsed() > Duration::from_secs(40) {
            let _ = first.kill();
            panic!("the worker did not stop within its bound");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    assert_eq!(kie.create_task_calls(), 2, "no new task after SIGTERM");
    let index = usize::try_from(sending - 1).expect("a user number");
    let first_job = store.job(orders[index].job_ids[0]).await.unwrap().unwrap();
    assert_eq!(
        first_job.status,
        neurocards::domain::JobStatus::Delivered,
        "the send in flight finished: {first_job:?}"
    );
    assert!(
        first_job.tg_message_id.is_some(),
        "and was confirmed: {first_job:?}"
    );

    let mut second = worker("second");
    let finishing = std::time::Instant::now();
    loop {
        let mut done = 0;
        for placed in &orders {
            let job = store.job(placed.job_ids[0]).await.unwrap().unwrap();
            if job.status.is_terminal() {
                done += 1;
            }
        }
        if done == orders.len() {
            break;
        }
        if finishing.elapsed() > Duration::from_secs(60) {
            let _ = second.kill();
            panic!("the second process did not finish the jobs");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let _ = second.wait();

    for placed in &orders {
        let job = store.job(placed.job_ids[0]).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            neurocards::domain::JobStatus::Delivered,
            "{job:?}"
        );
        assert!(job.ledger.is_empty(), "no refund: {job:?}");
    }
    assert_eq!(kie.create_task_calls(), 3, "one task per video");
    for user in 1..=3 {
        let videos = telegram
            .sent(user)
            .iter()
            .filter(|message| matches!(message.kind, emulators::telegram::SentKind::Video { .. }))
            .count();
        assert_eq!(videos, 1, "user {user} got the video once");
    }
    crate::harness::assert_invariants_hold(store).await;
}
