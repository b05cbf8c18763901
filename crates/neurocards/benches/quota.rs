//! KIE's create limit as a ceiling: a burst of videos over two KIE accounts (20 creates per
//! 10 s each, as documented), made by two worker processes that share the accounts through
//! the database. Prints how close the achieved create rate comes to what the limit allows,
//! and KIE's 429 answers. Asserts nothing about speed.
//!
//! `cargo bench --bench quota` with `BENCH_VIDEOS` (default 1000) and `BENCH_POSTGRES_URL`
//! (a server and a user allowed to create roles and databases; default the local server as
//! `postgres`): a scratch database is made there and dropped afterwards. The workers are
//! `neurocards worker` processes; the emulators run in this process, their limits enforced.

mod common;

use common::{accounts_of_one_key, env_number, machine, place_orders, process_env, spawn, stop};

use std::time::{Duration, Instant};

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::chaos::Scratch;
use neurocards::config::DatabaseUrl;
use neurocards::store::{Store, StoreOptions};

const ACCOUNTS: usize = 2;
const WORKERS: usize = 2;
const CREATE_LIMIT: usize = 20;
const CREATE_WINDOW: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: i64 = env_number("BENCH_VIDEOS", 1000);
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let (accounts, keys) = accounts_of_one_key("quota", ACCOUNTS);
    let kie = KieEmulator::start(KieConfig {
        accounts,
        stage_delay: Duration::from_millis(200),
        create_limit: CREATE_LIMIT as u32,
        create_window: CREATE_WINDOW,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let scratch = Scratch::create(&postgres).await?;
    let outcome = measure(videos, &scratch, &kie, &telegram, &keys).await;
    scratch.drop_all().await?;
    outcome
}

async fn measure(
    videos: i64,
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
    let total = (users * 5) as usize;

    let logs = tempfile::tempdir()?;
    let env = process_env(
        url.expose(),
        telegram,
        kie,
        keys,
        &[
            ("WORKER_CONCURRENCY", total.to_string()),
            ("POLL_FIRST_INTERVAL", "500ms".to_owned()),
            ("POLL_MAX_INTERVAL", "1s".to_owned()),
            ("PER_USER_ACTIVE_LIMIT", "5".to_owned()),
        ],
    );
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        workers.push(spawn("worker", &env, logs.path(), &format!("worker-{n}"))?);
    }

    // The create count over time: the rate is taken between the first and the last create.
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last_count = 0;
    let mut last_at = started;
    while last_count < total && started.elapsed() < Duration::from_secs(1800) {
        let count = kie.create_task_calls();
        if count > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if count != last_count {
            last_count = count;
            last_at = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(&mut workers);
    let breaches = store.check_invariants().await?;
    store.close().await;

    let span = last_at - first.unwrap_or(started);
    let per_window = ACCOUNTS * CREATE_LIMIT;
    // What a perfect pacer needs for the same creates: a full window's worth at once, then
    // one more window's worth every window.
    let ideal = CREATE_WINDOW * u32::try_from(total.div_ceil(per_window).saturating_sub(1))?;
    let achieved = last_count as f64 / span.as_secs_f64().max(0.001);
    let allowed = per_window as f64 / CREATE_WINDOW.as_secs_f64();
    println!(
        "quota benchmark: {total} videos, {WORKERS} worker processes, {ACCOUNTS} KIE accounts × \
         {CREATE_LIMIT} creates per {CREATE_WINDOW:?}, PostgreSQL; machine: {}",
        machine()
    );
    println!();
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| createTask accepted | {last_count} of {total} |");
    println!(
        "| first to last create | {:.1} s (a perfect pacer: {:.1} s) |",
        span.as_secs_f64(),
        ideal.as_secs_f64()
    );
    println!(
        "| achieved create rate | {achieved:.2}/s (the limit's long-run rate: {allowed:.2}/s) |"
    );
    println!(
        "| achieved / allowed (perfect pacer's time / time taken) | {:.3} |",
        ideal.as_secs_f64() / span.as_secs_f64().max(0.001)
    );
    for n in 0..ACCOUNTS {
        println!(
            "| most creates of account-{n} in any {CREATE_WINDOW:?} | {} (limit {CREATE_LIMIT}) |",
            kie.max_creates_in_window(&format!("account-{n}"))
        );
    }
    println!("| 429 answers from KIE | {} |", kie.rate_limited());
    println!("| invariant breaches | {} |", breaches.len());
    Ok(())
}
