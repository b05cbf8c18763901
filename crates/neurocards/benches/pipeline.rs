//! The worker end to end: many videos in flight in one worker process against the emulators,
//! to show what a waiting job costs. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench --bench pipeline` (`BENCH_VIDEOS`, default 1000; `BENCH_STAGE_MS`, the time a
//! task spends in each of KIE's three stages, default 2000). Everything runs in this process
//! on 127.0.0.1: the resident memory printed includes both emulators.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::catalogue::Catalogue;
use neurocards::config::{DatabaseUrl, KieKey};
use neurocards::domain::{ChatId, Lang, UserId};
use neurocards::kie::{KeyPool, KieClient};
use neurocards::store::{NewOrder, Store, StoreOptions};
use neurocards::telegram::Telegram;
use neurocards::worker::{PollSchedule, Worker, WorkerSettings};
use secrecy::SecretString;
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
    let url = DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))?;
    let options = StoreOptions {
        per_user_active_limit: 5,
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, options).await?;

    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));
    let (spec, _) = Catalogue::built_in()?
        .default_spec()
        .context("the built-in catalogue has a default option")?;
    let users = (videos / 5).max(1);
    for id in 1..=users {
        let user = UserId(id);
        store.register_user(user, None, "en", 5).await?;
        store
            .place_order(&NewOrder {
                user_id: user,
                chat_id: ChatId(id),
                idempotency_key: None,
                video_count: 5,
                unit_price: 1,
                photo_file_id: photo.clone(),
                template_id: None,
                prompt: "a mug".into(),
                generation: spec.clone(),
                language: Lang::En,
            })
            .await?;
    }
    let total = users * 5;

    let keys: Vec<KieKey> = (0..KEYS)
        .map(|n| KieKey {
            id: format!("key-{n}"),
            account: "main".into(),
            secret: SecretString::from(format!("key-{n}")),
        })
        .collect();
    let pool = KeyPool::start(&keys, 20, store.clone()).await?;
    let kie_url = url::Url::parse(&kie.base_url())?;
    let client = KieClient::new(kie_url.clone(), kie_url, Duration::from_secs(30))?;
    let sender = Telegram::new(
        &SecretString::from(telegram.token()),
        &url::Url::parse(&telegram.base_url())?,
    )?;
    let settings = WorkerSettings {
        concurrency: usize::try_from(total).unwrap_or(1000),
        create_limit: 1_000_000,
        poll: PollSchedule {
            first: Duration::from_millis(500),
            max: Duration::from_secs(2),
        },
        heartbeat_every: Duration::from_secs(1),
        idle_wait: Duration::from_millis(100),
        ..WorkerSettings::default()
    };
    let worker = Worker::new(store.clone(), client, pool, sender, settings)?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(Arc::clone(&worker).run(stop.clone()));

    let mut peak_held = 0;
    let mut peak_rss = 0;
    loop {
        let stats = store.queue_stats().await?;
        peak_held = peak_held.max(stats.held);
        peak_rss = peak_rss.max(resident_kib());
        let ended: i64 = stats
            .by_status
            .iter()
            .filter(|(status, _)| status.is_terminal())
            .map(|(_, jobs)| jobs)
            .sum();
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

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
