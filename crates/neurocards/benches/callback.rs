//! From KIE's success to the video's send: how long a finished video waits before
//! `sendVideo` reaches Telegram, when KIE's callbacks wake the job and when the worker only
//! polls (no `PUBLIC_URL`, as behind a firewall). Videos finish one by one (KIE's create limit
//! spreads their starts), so neither Telegram's limits nor a queue stand in between. Prints
//! p50/p99/max per mode. Asserts nothing about speed.
//!
//! `cargo bench --bench callback` with `BENCH_VIDEOS` (default 60), `BENCH_STAGE_SECONDS`
//! (each of KIE's three stages, default 10: a 30 s generation) and `BENCH_POSTGRES_URL` (for
//! the split deployment's scratch database; default the local server as `postgres`). One
//! `neurocards run` process on SQLite, with the default polling intervals
//! (`POLL_FIRST_INTERVAL` 3 s, growing to `POLL_MAX_INTERVAL` 30 s); then a `neurocards bot`
//! that receives the callbacks and a `neurocards worker` that runs the jobs, on PostgreSQL.

mod common;

use common::{
    env_number, free_port, machine, percentile, place_orders, process_env, spawn, sqlite_url, stop,
};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::chaos::Scratch;
use neurocards::config::DatabaseUrl;
use neurocards::store::{Store, StoreOptions};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Callbacks,
    PollingOnly,
    /// A `bot` receives the callbacks; the jobs run in a `worker` process.
    SplitCallbacks,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: i64 = env_number("BENCH_VIDEOS", 60);
    let stage = Duration::from_secs(env_number("BENCH_STAGE_SECONDS", 10));
    let mut rows = Vec::new();
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    for mode in [Mode::Callbacks, Mode::PollingOnly, Mode::SplitCallbacks] {
        rows.push((mode, measure(mode, videos, stage, &postgres).await?));
    }
    println!(
        "callback latency benchmark: {videos} videos of one video each, one KIE account \
         (20 creates per 10 s), 3 × {stage:?} per video; machine: {}",
        machine()
    );
    println!();
    println!("| mode | videos sent | success → sendVideo p50 | p90 | p99 | max |");
    println!("| --- | --: | --: | --: | --: | --: |");
    for (mode, waits) in rows {
        let label = match mode {
            Mode::Callbacks => "`run` on SQLite, KIE callbacks (`PUBLIC_URL` set)",
            Mode::PollingOnly => "`run` on SQLite, polling only",
            Mode::SplitCallbacks => "`bot` + `worker` on PostgreSQL, callbacks to the bot",
        };
        println!(
            "| {label} | {} | {} ms | {} ms | {} ms | {} ms |",
            waits.len(),
            percentile(&waits, 0.50),
            percentile(&waits, 0.90),
            percentile(&waits, 0.99),
            percentile(&waits, 1.0)
        );
    }
    Ok(())
}

/// The wait of every sent video, sorted.
async fn measure(
    mode: Mode,
    videos: i64,
    stage: Duration,
    postgres: &str,
) -> anyhow::Result<Vec<Duration>> {
    let scratch = match mode {
        Mode::SplitCallbacks => Some(Scratch::create(postgres).await?),
        Mode::Callbacks | Mode::PollingOnly => None,
    };
    let dir = tempfile::tempdir()?;
    let url = match &scratch {
        Some(scratch) => DatabaseUrl::parse(scratch.direct_url.as_str())?,
        None => DatabaseUrl::parse(&sqlite_url(dir.path()))?,
    };
    let waits = measure_on(mode, videos, stage, &url, dir.path()).await;
    if let Some(scratch) = scratch {
        scratch.drop_all().await?;
    }
    waits
}

async fn measure_on(
    mode: Mode,
    videos: i64,
    stage: Duration,
    url: &DatabaseUrl,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<Duration>> {
    let kie = KieEmulator::start(KieConfig {
        stage_delay: stage,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let store = Store::connect(url, StoreOptions::default()).await?;
    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));
    place_orders(&store, &photo, videos, 1).await?;

    let port = free_port()?;
    let mut settings = vec![("HTTP_ADDR", format!("127.0.0.1:{port}"))];
    if mode != Mode::PollingOnly {
        settings.push(("PUBLIC_URL", format!("http://127.0.0.1:{port}")));
    }
    let env = process_env(
        url.expose(),
        &telegram,
        &kie,
        &[("test-key".to_owned(), "main".to_owned())],
        &settings,
    );
    let mut run = match mode {
        Mode::SplitCallbacks => vec![
            spawn("bot", &env, dir, "bot")?,
            spawn("worker", &env, dir, "worker")?,
        ],
        Mode::Callbacks | Mode::PollingOnly => vec![spawn("run", &env, dir, "run")?],
    };

    let started = Instant::now();
    loop {
        let sent = telegram
            .calls()
            .iter()
            .filter(|call| call.method == "sendVideo")
            .count();
        if sent >= usize::try_from(videos)? || started.elapsed() > Duration::from_secs(900) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(&mut run);

    // Which chat each KIE task's video went to.
    let chat_of_task: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT j.kie_task_id, o.chat_id FROM jobs j JOIN orders o ON o.id = j.order_id
         WHERE j.kie_task_id IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await?
    .into_iter()
    .collect();
    store.close().await;
    let mut first_send: HashMap<i64, Instant> = HashMap::new();
    for call in telegram.calls() {
        if call.method != "sendVideo" {
            continue;
        }
        let chat = &call.params["chat_id"];
        // A JSON request carries a number; an upload's form, a string.
        let chat = chat
            .as_i64()
            .or_else(|| chat.as_str().and_then(|text| text.parse().ok()));
        if let Some(chat) = chat {
            first_send.entry(chat).or_insert(call.at);
        }
    }
    let mut waits: Vec<Duration> = kie
        .tasks()
        .iter()
        .filter_map(|task| {
            let chat = chat_of_task.get(&task.task_id)?;
            let sent = first_send.get(chat)?;
            Some(sent.saturating_duration_since(task.finished_at))
        })
        .collect();
    waits.sort();
    Ok(waits)
}
