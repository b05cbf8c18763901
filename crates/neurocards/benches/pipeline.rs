//! The worker end to end: many videos in flight in one worker process against the emulators,
//! to show what a waiting job costs. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench --bench pipeline` (`BENCH_VIDEOS`, default 1000; `BENCH_STAGE_MS`, the time a
//! task spends in each of KIE's three stages, default 2000). Everything runs in this process
//! on 127.0.0.1: the resident memory printed includes both emulators.

mod common;

use common::{env_number, place_orders, sqlite_url};

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::app::{App, Overrides, Role};
use neurocards::config::{Config, DatabaseUrl};
use neurocards::store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

const KEYS: usize = 50;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: i64 = env_number("BENCH_VIDEOS", 1000);
    let stage = Duration::from_millis(env_number("BENCH_STAGE_MS", 2000));
    // Limits raised far beyond KIE's so that the worker, not the limiter, is measured.
    let kie = KieEmulator::start(KieConfig {
        accounts: vec![KieAccount {
            name: "main".into(),
            keys: (0..KEYS).map(|n| format!("key-{n}")).collect(),
            credits: 1_000_000_000,
        }],
        stage_delay: stage,
        create_limit: 1_000_000,
        status_limit_per_second: 1_000,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let url = DatabaseUrl::parse(&sqlite_url(dir.path()))?;
    let options = StoreOptions {
        per_user_active_limit: 5,
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, options).await?;

    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));
    let users = (videos / 5).max(1);
    place_orders(&store, &photo, users, 5).await?;
    let total = users * 5;

    // The worker as `neurocards worker` assembles it, from the variables an operator sets.
    let mut vars: Vec<(String, String)> = [
        ("DATABASE_URL", url.expose().to_owned()),
        ("BOT_TOKEN", telegram.token()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("KIE_API_URL", kie.base_url()),
        ("KIE_UPLOAD_URL", kie.base_url()),
        ("KIE_STATUS_PER_SECOND", "20".to_owned()),
        ("KIE_TIMEOUT", "30s".to_owned()),
        ("KIE_CREATE_LIMIT", "1000000".to_owned()),
        ("WORKER_CONCURRENCY", total.to_string()),
        ("POLL_FIRST_INTERVAL", "500ms".to_owned()),
        ("POLL_MAX_INTERVAL", "2s".to_owned()),
        ("HEARTBEAT_EVERY", "1s".to_owned()),
        ("QUEUE_CHECK_EVERY", "100ms".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for n in 0..KEYS {
        vars.push((format!("KIE_API_KEY_{}", n + 1), format!("key-{n}")));
        vars.push((format!("KIE_ACCOUNT_OF_KEY_{}", n + 1), "main".to_owned()));
    }
    let config = Config::from_pairs(vars)?;
    let overrides = Overrides {
        store: Some(store.clone()),
        ..Overrides::default()
    };
    let worker = App::build_with(&config, Role::Worker, overrides)
        .await?
        .take_worker()
        .context("a worker process has a worker")?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(Arc::clone(&worker).run(stop.clone()));

    let mut peak_held = 0;
    let mut peak_rss = 0;
    loop {
        let stats = store.queue_stats().await?;
        peak_held = peak_held.max(stats.held);
        peak_rss = peak_rss.max(resident_kib());
        let ended = stats.ended();
        if ended == total || started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    running.await??;

    let stats = store.queue_stats().await?;
    let breaches = store.check_invariants().await?;
    println!("pipeline benchmark: {total} videos, one worker process, {KEYS} keys, 3 × {stage:?} per task");
    println!(
        "  all ended in        {:.1} s ({:.0} videos/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!("  peak jobs in flight {peak_held}");
    println!(
        "  peak resident       {:.1} MiB (this process, emulators included)",
        peak_rss as f64 / 1024.0
    );
    println!("  createTask calls    {}", kie.create_task_calls());
    println!("  KIE 429 answers     {}", kie.rate_limited());
    println!("  outcome             {:?}", stats.by_status);
    println!("  invariant breaches  {}", breaches.len());
    Ok(())
}

/// This process's resident memory in KiB (Linux), 0 elsewhere.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
