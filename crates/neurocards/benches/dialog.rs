//! How fast the dialog answers a person while videos are being delivered: users go through
//! the dialog at a person's pace (start, photo, template, three videos), staggered so that
//! the first users' videos and summaries are delivered while later users are still choosing.
//! Telegram's flood limits are enforced by the emulator (1 message per second per chat, 30
//! per second overall). Prints numbers; asserts nothing about speed.
//!
//! `cargo bench --bench dialog` with `BENCH_USERS` (default 100), `BENCH_PACE_MS` (the pause
//! between a person's actions, default 1500), `BENCH_SPREAD_MS` (over how long the users
//! arrive, default 15000) and `BENCH_DATABASE_URL` (default: SQLite in a temporary
//! directory; give an empty PostgreSQL database to measure that engine). For a burst of users
//! measured without Telegram's limits (the bot's own work alone): `BENCH_ENFORCE_LIMITS=0`
//! (the emulator answers no 429) and `BENCH_TELEGRAM_RATE` (the bot's
//! `TELEGRAM_MESSAGES_PER_SECOND`, default 30).
//!
//! The answer time of an action is from the moment the update is queued at the emulator to
//! the moment the bot's answer (a new message or an edit in that chat) reaches it.

mod common;

use common::{env_number, machine, percentile, sqlite_url};

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{RecordedCall, SentKind, TelegramConfig, TelegramEmulator, TestUser};
use neurocards::app::{App, Role};
use neurocards::config::Config;

const VIDEOS_PER_USER: usize = 3;

/// What the bot sends or edits in a chat in answer to an action.
const ANSWERS: [&str; 4] = [
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "sendPhoto",
];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let users: i64 = env_number("BENCH_USERS", 100);
    let pace = Duration::from_millis(env_number("BENCH_PACE_MS", 1500));
    let spread = Duration::from_millis(env_number("BENCH_SPREAD_MS", 15_000));
    let enforce_limits = env_number("BENCH_ENFORCE_LIMITS", 1) != 0;
    let rate: usize = env_number("BENCH_TELEGRAM_RATE", 30);
    let kie = KieEmulator::start(KieConfig {
        accounts: vec![KieAccount {
            name: "main".into(),
            keys: vec!["bench-key".into()],
            credits: 1_000_000_000,
        }],
        stage_delay: Duration::from_millis(300),
        create_limit: 1_000_000,
        status_limit_per_second: 1_000,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig {
        enforce_limits,
        ..TelegramConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let database = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| sqlite_url(dir.path()));
    let config = bench_config(&database, &telegram, &kie, users, rate)?;
    let engine = config.database_url.engine();
    let app = App::build(&config, Role::All).await?;
    let store = app.store().clone();
    let stop = app.shutdown();
    let running = tokio::spawn(app.run());

    let photo = neurocards::sample_photo::product_jpeg(480, 320);
    let started = Instant::now();
    let people = (0..users).map(|n| {
        let telegram = &telegram;
        let photo = photo.clone();
        let arrival = spread.mul_f64(n as f64 / users.max(1) as f64);
        async move {
            tokio::time::sleep(arrival).await;
            person(telegram, TestUser::new(10_000 + n, "en"), photo, pace).await
        }
    });
    let actions: Vec<(i64, Instant)> = futures::future::try_join_all(people)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let dialogs_done = started.elapsed();

    let expected = users as usize * VIDEOS_PER_USER;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stats = store.queue_stats().await?;
        let ended = stats.ended();
        if ended as usize >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_done = started.elapsed();
    stop.cancel();
    running.await??;

    let calls = telegram.calls();
    let mut waits: Vec<Duration> = actions
        .iter()
        .map(|(chat, at)| answer_time(&calls, *chat, *at))
        .collect::<Option<Vec<_>>>()
        .context("an action got no answer")?;
    waits.sort();
    let videos: usize = (0..users)
        .map(|n| {
            telegram
                .sent(10_000 + n)
                .iter()
                .filter(|message| matches!(message.kind, SentKind::Video { .. }))
                .count()
        })
        .sum();
    let breaches = store.check_invariants().await?;
    println!(
        "dialog benchmark: {users} users at a person's pace ({pace:?} between actions), arriving over {spread:?}, {VIDEOS_PER_USER} videos each, {engine:?}, Telegram's limits {}, the bot's budget {rate} messages/s",
        if enforce_limits { "enforced" } else { "lifted" }
    );
    println!("  machine             {}", machine());
    println!(
        "  answer time         p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} actions)",
        percentile(&waits, 0.50),
        percentile(&waits, 0.90),
        percentile(&waits, 0.99),
        waits.last().map_or(0, Duration::as_millis),
        waits.len()
    );
    println!("  dialogs done after  {:.1} s", dialogs_done.as_secs_f64());
    println!(
        "  videos delivered    {videos} of {expected}, all done after {:.1} s",
        all_done.as_secs_f64()
    );
    println!("  Telegram 429s       {}", telegram.rate_limited());
    println!("  invariant breaches  {}", breaches.len());
    Ok(())
}

/// One person: /start, a photo, the first template, three videos. Returns when each action
/// was queued, with the chat it belongs to.
async fn person(
    telegram: &TelegramEmulator,
    user: TestUser,
    photo: Vec<u8>,
    pace: Duration,
) -> anyhow::Result<Vec<(i64, Instant)>> {
    let mut actions = Vec::new();
    let mut seen = 0;
    actions.push((user.id, Instant::now()));
    telegram.send_text(&user, "/start");
    seen = wait_for_reply(telegram, &user, seen).await?;
    tokio::time::sleep(pace).await;

    actions.push((user.id, Instant::now()));
    telegram.send_photo(&user, photo);
    seen = wait_for_reply(telegram, &user, seen).await?;
    tokio::time::sleep(pace).await;

    let (message, data) = last_button(telegram, &user, |_| true)?;
    actions.push((user.id, Instant::now()));
    telegram.press_button(&user, message, &data);
    seen = wait_for_reply(telegram, &user, seen).await?;
    tokio::time::sleep(pace).await;

    // The count buttons carry `c:<nonce>:<count>`.
    let count = format!(":{VIDEOS_PER_USER}");
    let (message, data) = last_button(telegram, &user, |data| {
        data.starts_with("c:") && data.ends_with(&count)
    })?;
    actions.push((user.id, Instant::now()));
    telegram.press_button(&user, message, &data);
    wait_for_reply(telegram, &user, seen).await?;
    Ok(actions)
}

async fn wait_for_reply(
    telegram: &TelegramEmulator,
    user: &TestUser,
    seen: usize,
) -> anyhow::Result<usize> {
    let sent = telegram
        .wait_for_sent(user.id, seen + 1, Duration::from_secs(60))
        .await;
    if sent.len() <= seen {
        bail!("user {} got no answer within a minute", user.id);
    }
    Ok(sent.len())
}

/// The newest message of the bot with a button whose data `wanted` accepts.
fn last_button(
    telegram: &TelegramEmulator,
    user: &TestUser,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<(i64, String)> {
    telegram
        .sent(user.id)
        .iter()
        .rev()
        .find_map(|message| {
            message
                .buttons()
                .into_iter()
                .find(|(_, data)| wanted(data))
                .map(|(_, data)| (message.message_id, data))
        })
        .with_context(|| {
            let shown: Vec<_> = telegram
                .sent(user.id)
                .iter()
                .map(|message| message.text.clone().unwrap_or_default())
                .collect();
            format!("user {} was shown no button to press: {shown:?}", user.id)
        })
}

/// From an action to the first answer in its chat.
fn answer_time(calls: &[RecordedCall], chat: i64, action: Instant) -> Option<Duration> {
    calls
        .iter()
        .filter(|call| call.at >= action && ANSWERS.contains(&call.method.as_str()))
        .find(|call| call.params["chat_id"].as_i64() == Some(chat))
        .map(|call| call.at.saturating_duration_since(action))
}

fn bench_config(
    database: &str,
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
    users: i64,
    telegram_rate: usize,
) -> anyhow::Result<Config> {
    Ok(Config::from_pairs([
        ("DATABASE_URL", database.to_owned()),
        ("BOT_TOKEN", telegram.token()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("KIE_API_URL", kie.base_url()),
        ("KIE_UPLOAD_URL", kie.base_url()),
        ("KIE_API_KEY", "bench-key".to_owned()),
        ("KIE_CREATE_LIMIT", "1000000".to_owned()),
        ("KIE_STATUS_PER_SECOND", "100".to_owned()),
        ("FREE_CREDITS", VIDEOS_PER_USER.to_string()),
        ("WORKER_CONCURRENCY", (users * 3).max(10).to_string()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("POLL_FIRST_INTERVAL", "300ms".to_owned()),
        ("POLL_MAX_INTERVAL", "1s".to_owned()),
        ("HEARTBEAT_EVERY", "1s".to_owned()),
        ("QUEUE_CHECK_EVERY", "100ms".to_owned()),
        ("TELEGRAM_LONG_POLL", "1s".to_owned()),
        ("TELEGRAM_MESSAGES_PER_SECOND", telegram_rate.to_string()),
    ])?)
}
