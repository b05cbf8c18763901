//! Telegram's flood limits as a ceiling: 300 users' orders of 3 videos are ready at about the
//! same moment, so 900 videos and 300 summaries wait to be sent at once, and Telegram (the
//! emulator, its limits enforced: 30 messages per second per bot, one per second per chat,
//! 429 beyond) is the only bound. Prints the send rate while the backlog lasts as a fraction
//! of 30/s, and the 429 answers. Asserts nothing about speed.
//!
//! Three deployments, one after the other: `neurocards run` on SQLite (the process keeps the
//! token's budget to itself), `neurocards run` on PostgreSQL, and one `neurocards bot` with
//! two `neurocards worker` processes on PostgreSQL (they send with one token, so they share
//! its budget through the database).
//!
//! `cargo bench --bench telegram` with `BENCH_USERS` (default 300), `BENCH_VIDEOS_EACH`
//! (default 3) and `BENCH_POSTGRES_URL` (a server and a user allowed to create roles and
//! databases; default the local server as `postgres`).

mod common;

use common::{env_number, machine, place_orders, process_env, spawn, sqlite_url, stop};

use std::time::{Duration, Instant};

use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::chaos::Scratch;
use neurocards::config::DatabaseUrl;
use neurocards::domain::JobStatus;
use neurocards::store::{Store, StoreOptions};

const KIE_KEYS: usize = 10;
/// What Telegram allows a bot overall.
const TELEGRAM_PER_SECOND: f64 = 30.0;

#[derive(Clone, Copy)]
enum Deployment {
    RunSqlite,
    RunPostgres,
    BotAndTwoWorkers,
}

impl Deployment {
    fn label(self) -> &'static str {
        match self {
            Deployment::RunSqlite => "`run`, SQLite",
            Deployment::RunPostgres => "`run`, PostgreSQL",
            Deployment::BotAndTwoWorkers => "`bot` + 2 × `worker`, PostgreSQL",
        }
    }
}

struct Measured {
    messages: usize,
    edits: usize,
    backlog_rate: f64,
    whole_rate: f64,
    rate_limited: usize,
    delivered: i64,
    videos: i64,
    breaches: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let users: i64 = env_number("BENCH_USERS", 300);
    let videos_each: i64 = env_number("BENCH_VIDEOS_EACH", 3);
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let mut rows = Vec::new();
    for deployment in [
        Deployment::RunSqlite,
        Deployment::RunPostgres,
        Deployment::BotAndTwoWorkers,
    ] {
        let measured = match deployment {
            Deployment::RunSqlite => {
                let dir = tempfile::tempdir()?;
                let url = sqlite_url(dir.path());
                measure(deployment, &url, users, videos_each).await?
            }
            Deployment::RunPostgres | Deployment::BotAndTwoWorkers => {
                let scratch = Scratch::create(&postgres).await?;
                let outcome =
                    measure(deployment, scratch.direct_url.as_str(), users, videos_each).await;
                scratch.drop_all().await?;
                outcome?
            }
        };
        rows.push((deployment, measured));
    }

    println!(
        "telegram benchmark: {users} users × {videos_each} videos ready at once, Telegram's \
         limits enforced (30 messages/s per bot, 1/s per chat); machine: {}",
        machine()
    );
    println!();
    println!(
        "| deployment | messages sent | edits | messages/s while the backlog lasts (middle 80 %) | \
         of 30/s | messages/s first to last | Telegram 429s | videos delivered | invariant breaches |"
    );
    println!("| --- | --: | --: | --: | --: | --: | --: | --: | --: |");
    for (deployment, m) in rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.2} | {} | {} of {} | {} |",
            deployment.label(),
            m.messages,
            m.edits,
            m.backlog_rate,
            m.backlog_rate / TELEGRAM_PER_SECOND,
            m.whole_rate,
            m.rate_limited,
            m.delivered,
            m.videos,
            m.breaches
        );
    }
    Ok(())
}

async fn measure(
    deployment: Deployment,
    database_url: &str,
    users: i64,
    videos_each: i64,
) -> anyhow::Result<Measured> {
    // Generation takes a moment and KIE's limits are lifted: every video is ready within a
    // few seconds, and from then on only Telegram bounds the sends.
    let kie_keys: Vec<String> = (0..KIE_KEYS)
        .map(|n| format!("telegram-bench-{n}"))
        .collect();
    let kie = KieEmulator::start(KieConfig {
        accounts: vec![KieAccount {
            name: "main".into(),
            keys: kie_keys.clone(),
            credits: 1_000_000_000,
        }],
        stage_delay: Duration::from_millis(200),
        create_limit: 1_000_000,
        status_limit_per_second: 1_000,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig {
        enforce_limits: true,
        ..TelegramConfig::default()
    })
    .await?;
    let url = DatabaseUrl::parse(database_url)?;
    let store = Store::connect(&url, StoreOptions::default()).await?;
    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));
    place_orders(&store, &photo, users, videos_each).await?;
    let videos = users * videos_each;

    let accounts: Vec<(String, String)> = kie_keys
        .iter()
        .map(|key| (key.clone(), "main".to_owned()))
        .collect();
    let env = process_env(
        url.expose(),
        &telegram,
        &kie,
        &accounts,
        &[
            ("TELEGRAM_LONG_POLL", "2s".to_owned()),
            ("KIE_CREATE_LIMIT", "1000000".to_owned()),
            ("KIE_STATUS_PER_SECOND", "100".to_owned()),
            ("WORKER_CONCURRENCY", videos.to_string()),
            ("POLL_FIRST_INTERVAL", "500ms".to_owned()),
            ("POLL_MAX_INTERVAL", "1s".to_owned()),
            ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ],
    );
    let logs = tempfile::tempdir()?;
    let mut processes = match deployment {
        Deployment::RunSqlite | Deployment::RunPostgres => {
            vec![spawn("run", &env, logs.path(), "run")?]
        }
        Deployment::BotAndTwoWorkers => vec![
            spawn("bot", &env, logs.path(), "bot")?,
            spawn("worker", &env, logs.path(), "worker-1")?,
            spawn("worker", &env, logs.path(), "worker-2")?,
        ],
    };

    // Done when every job has ended and nothing has been sent for a few seconds (the
    // summaries follow the last videos).
    let started = Instant::now();
    let mut last_count = 0;
    let mut quiet_since = Instant::now();
    loop {
        let stats = store.queue_stats().await?;
        let ended = stats.ended();
        // The bot's long polls go on; only what is sent counts.
        let count = telegram
            .calls()
            .iter()
            .filter(|call| call.method != "getUpdates")
            .count();
        if count != last_count {
            last_count = count;
            quiet_since = Instant::now();
        }
        let quiet = quiet_since.elapsed() > Duration::from_secs(5);
        if (ended == videos && quiet) || started.elapsed() > Duration::from_secs(900) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(&mut processes);

    let calls = telegram.calls();
    let mut sends: Vec<Instant> = calls
        .iter()
        .filter(|call| matches!(call.method.as_str(), "sendMessage" | "sendVideo"))
        .map(|call| call.at)
        .collect();
    sends.sort();
    let edits = calls
        .iter()
        .filter(|call| call.method.starts_with("editMessage"))
        .count();
    let stats = store.queue_stats().await?;
    let delivered = stats
        .by_status
        .iter()
        .filter(|(status, _)| *status == JobStatus::Delivered)
        .map(|(_, jobs)| *jobs)
        .sum();
    let breaches = store.check_invariants().await?.len();
    store.close().await;
    Ok(Measured {
        messages: sends.len(),
        edits,
        backlog_rate: rate_between(&sends, 0.1, 0.9),
        whole_rate: rate_between(&sends, 0.0, 1.0),
        rate_limited: telegram.rate_limited(),
        delivered,
        videos,
        breaches,
    })
}

/// Sends per second between the sends at fractions `from` and `to` of the run.
fn rate_between(sorted: &[Instant], from: f64, to: f64) -> f64 {
    if sorted.len() < 2 {
        return 0.0;
    }
    let last = sorted.len() - 1;
    let first = (last as f64 * from).round() as usize;
    let end = (last as f64 * to).round() as usize;
    let span = sorted[end].duration_since(sorted[first]).as_secs_f64();
    if span <= 0.0 {
        return 0.0;
    }
    (end - first) as f64 / span
}
