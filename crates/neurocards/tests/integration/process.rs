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
