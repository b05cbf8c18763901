//! Ten thousand videos in flight at once in one worker process: every task created within
//! KIE's create limit, then followed while KIE takes 10 minutes to generate each. Prints the
//! worker process's peak resident memory (the emulators run in this process, not in the
//! worker's), the CPU it uses while it only waits, and its status queries per second per key
//! against KIE's 10 per second. Asserts nothing about speed. The bench stops the worker once
//! the waiting is measured: delivering 10,000 videos is Telegram's limit, measured by
//! `--bench telegram`.
//!
//! `cargo bench --bench inflight` with `BENCH_VIDEOS` (default 10000), `BENCH_SETTLE` (seconds
//! from the last create to the measured waiting, default 150: by then every task is past the
//! 2 minutes after which the worker asks least often), `BENCH_WAIT_WINDOW` (seconds of waiting
//! measured, default 60) and `BENCH_POSTGRES_URL` (a server and a user allowed to create roles
//! and databases; default the local server as `postgres`).

mod common;

use common::{accounts_of_one_key, env_number, machine, place_orders, process_env, spawn, stop};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::chaos::Scratch;
use neurocards::config::DatabaseUrl;
use neurocards::store::{Store, StoreOptions};

/// One key per account: 100 × 20 creates per 10 s submit 10,000 videos in under a minute.
const ACCOUNTS: usize = 100;
const CREATE_LIMIT: u32 = 20;
const STATUS_LIMIT: u32 = 10;
/// Three stages of 200 s: ten minutes per video.
const STAGE: Duration = Duration::from_secs(200);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: i64 = env_number("BENCH_VIDEOS", 10_000);
    let settle = Duration::from_secs(env_number("BENCH_SETTLE", 150));
    let window = Duration::from_secs(env_number("BENCH_WAIT_WINDOW", 60));
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let (accounts, keys) = accounts_of_one_key("inflight", ACCOUNTS);
    let kie = KieEmulator::start(KieConfig {
        accounts,
        stage_delay: STAGE,
        create_limit: CREATE_LIMIT,
        status_limit_per_second: STATUS_LIMIT,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let scratch = Scratch::create(&postgres).await?;
    let outcome = measure(videos, settle, window, &scratch, &kie, &telegram, &keys).await;
    scratch.drop_all().await?;
    outcome
}

async fn measure(
    videos: i64,
    settle: Duration,
    window: Duration,
    scratch: &Scratch,
    kie: &KieEmulator,
    telegram: &TelegramEmulator,
    keys: &[(String, String)],
) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(scratch.direct_url.as_str())?;
    let store = Store::connect(&url, StoreOptions::default()).await?;
    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));
    let users = (videos / 5).max(1);
    place_orders(&store, &photo, users, 5).await?;
    let total = users * 5;

    let env = process_env(
        url.expose(),
        telegram,
        kie,
        keys,
        &[
            ("WORKER_CONCURRENCY", total.to_string()),
            ("PER_USER_ACTIVE_LIMIT", "5".to_owned()),
        ],
    );
    let logs = tempfile::tempdir()?;
    let mut worker = vec![spawn("worker", &env, logs.path(), "worker")?];
    let pid = worker[0].id();

    // Submission: until every video has its KIE task.
    let started = Instant::now();
    let mut peak_held = 0;
    let mut peak_rss_kib = 0;
    while kie.create_task_calls() < usize::try_from(total)?
        && started.elapsed() < Duration::from_secs(1200)
    {
        peak_held = peak_held.max(store.queue_stats().await?.held);
        peak_rss_kib = peak_rss_kib.max(proc_status(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let submitted_in = started.elapsed();
    let created = kie.create_task_calls();
    tokio::time::sleep(settle).await;

    // Waiting: nothing to do but follow the tasks.
    let cpu_before = cpu_ticks(pid);
    let queries_before = status_queries_per_key(kie);
    let window_started = Instant::now();
    while window_started.elapsed() < window {
        peak_held = peak_held.max(store.queue_stats().await?.held);
        peak_rss_kib = peak_rss_kib.max(proc_status(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let waited = window_started.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks(pid);
    let queries_after = status_queries_per_key(kie);
    let peak_hwm_kib = proc_status(pid, "VmHWM:");
    stop(&mut worker);
    let breaches = store.check_invariants().await?;
    store.close().await;

    let cpu_share = (cpu_after.saturating_sub(cpu_before)) as f64 / TICKS_PER_SECOND / waited;
    let per_key: Vec<f64> = keys
        .iter()
        .map(|(key, _)| {
            let before = queries_before.get(key).copied().unwrap_or(0);
            let after = queries_after.get(key).copied().unwrap_or(0);
            after.saturating_sub(before) as f64 / waited
        })
        .collect();
    let all_queries: f64 = per_key.iter().sum();
    let busiest = per_key.iter().copied().fold(0.0, f64::max);

    println!(
        "in-flight benchmark: {total} videos, one `neurocards worker` process \
         (WORKER_CONCURRENCY={total}), {ACCOUNTS} KIE accounts of one key ({CREATE_LIMIT} creates \
         per 10 s, {STATUS_LIMIT} status queries per second each), 3 × {STAGE:?} per video, \
         PostgreSQL; machine: {}",
        machine()
    );
    println!();
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| tasks created | {created} of {total} |");
    println!(
        "| all created in | {:.1} s (the limit allows {:.0} per second) |",
        submitted_in.as_secs_f64(),
        (ACCOUNTS as f64) * f64::from(CREATE_LIMIT) / 10.0
    );
    println!("| most jobs held at once | {peak_held} |");
    println!(
        "| worker's peak resident memory | {:.1} MiB (VmHWM {:.1} MiB) |",
        peak_rss_kib as f64 / 1024.0,
        peak_hwm_kib as f64 / 1024.0
    );
    println!(
        "| worker's CPU while waiting ({waited:.0} s, from {:.0} s after the last create) | {:.2} % of a core |",
        settle.as_secs_f64(),
        cpu_share * 100.0
    );
    println!("| status queries while waiting | {all_queries:.1}/s over {ACCOUNTS} keys |");
    println!("| busiest key | {busiest:.2} queries/s (limit {STATUS_LIMIT}) |");
    println!("| 429 answers from KIE | {} |", kie.rate_limited());
    println!("| invariant breaches | {} |", breaches.len());
    Ok(())
}

/// recordInfo queries so far, by the key that made them.
fn status_queries_per_key(kie: &KieEmulator) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in kie.requests() {
        if !(request.path.contains("recordInfo") || request.path.contains("record-info")) {
            continue;
        }
        let key = request
            .authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// A field of `/proc/<pid>/status` in KiB (Linux), 0 when unreadable.
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// User and system time of the process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces; the fields after it are plain. utime and stime are
    // the 14th and 15th fields, the 12th and 13th after the name.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Linux's USER_HZ: 100 on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;
