//! `neurocards chaos`: a soak under faults. One bot process and several worker processes on
//! PostgreSQL, against the emulators, while KIE fails in every way it can, Telegram throttles,
//! errs and answers late, users block the bot, a model is retired, the database is cut and a
//! worker is SIGKILLed every few seconds. Then every order must end, and the database,
//! Telegram and KIE must agree that no credit, video or summary was lost or doubled.

mod fleet;
mod plan;
mod report;
mod scratch;
pub use scratch::Scratch;
mod storm;
mod users;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::netcut::TcpProxy;
use emulators::telegram::{SentKind, TelegramConfig, TelegramEmulator};
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseUrl;
use crate::store::{Store, StoreOptions};
use fleet::Fleet;
use report::{ChatSeen, Gathered, TaskSeen, Verdict};

/// The model the storm retires halfway (offered beside Kling for the soak).
const RETIRED_OPTION: &str = "price = 2\noffered = false\ninput = { duration = \"6\" }";
const RETIRED_KIE_MODEL: &str = "hailuo/2-3-image-to-video-standard";

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Videos the users order in all (the CI form: 300; the long form: 5000).
    #[arg(long, default_value_t = 300)]
    pub videos: i64,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// A PostgreSQL server and a user allowed to create roles and databases: the soak makes
    /// its own there and drops them afterwards.
    #[arg(
        long,
        env = "CHAOS_POSTGRES_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
    /// A worker process is SIGKILLed and replaced this often.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub kill_every: Duration,
    /// How long each database cut lasts.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub db_cut: Duration,
    #[arg(long, default_value_t = 2)]
    pub db_cuts: u32,
    /// Users per KIE fault class, in percent (12 classes and late results).
    #[arg(long, default_value_t = 2.0)]
    pub fault_percent: f64,
    /// Users arrive over this time (default: a second per 8 videos, at least 30 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub arrive_over: Option<Duration>,
    /// Every order must have ended this long after the last user arrived.
    #[arg(long, default_value = "4m", value_parser = humantime::parse_duration)]
    pub settle_within: Duration,
    /// KIE accounts, 20 creates per 10 s each (default: one per 100 videos, at least 3).
    #[arg(long)]
    pub kie_accounts: Option<usize>,
    /// Draws the same users again.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the processes' logs (kept anyway when an invariant breaks).
    #[arg(long)]
    pub keep_logs: bool,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let plans = plan::users(args.videos, args.fault_percent, seed);
    let arrive_over = args
        .arrive_over
        .unwrap_or_else(|| Duration::from_secs((args.videos / 8).max(30) as u64));
    let accounts = args
        .kie_accounts
        .unwrap_or_else(|| (args.videos / 100).max(3) as usize);
    let dir = tempfile::Builder::new()
        .prefix("neurocards-chaos-")
        .tempdir()
        .context("creating the soak's directory")?;
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).context("creating the logs directory")?;

    let tag = uuid::Uuid::new_v4().simple().to_string();
    let bot_token = format!("7000001:CHAOS-{}", &tag[..20]);
    let kie_keys: Vec<String> = (0..accounts)
        .map(|n| format!("kie-chaos-{}-{n}", &tag[20..]))
        .collect();
    let telegram = TelegramEmulator::start(TelegramConfig {
        token: bot_token.clone(),
        enforce_limits: true,
        ..TelegramConfig::default()
    })
    .await
    .context("starting the Telegram emulator")?;
    let kie = Arc::new(
        KieEmulator::start(KieConfig {
            accounts: kie_keys
                .iter()
                .enumerate()
                .map(|(n, key)| KieAccount {
                    name: format!("account-{n}"),
                    keys: vec![key.clone()],
                    credits: 1_000_000_000,
                })
                .collect(),
            stage_delay: Duration::from_millis(1000),
            ..KieConfig::default()
        })
        .await
        .context("starting the KIE emulator")?,
    );

    let scratch = Scratch::create(&args.postgres).await?;
    let outcome = soak(SoakSetup {
        args: &args,
        seed,
        plans: &plans,
        arrive_over,
        logs: &logs,
        telegram: &telegram,
        kie: &kie,
        kie_keys: &kie_keys,
        scratch: &scratch,
    })
    .await;
    let dropped = scratch.drop_all().await;
    let passed = matches!(outcome, Ok(true));
    if !passed || args.keep_logs {
        let kept = dir.keep();
        println!("Logs of the processes: {}", kept.join("logs").display());
    }
    outcome?;
    dropped?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct SoakSetup<'a> {
    args: &'a ChaosArgs,
    seed: u64,
    plans: &'a [plan::UserPlan],
    arrive_over: Duration,
    logs: &'a std::path::Path,
    telegram: &'a TelegramEmulator,
    kie: &'a Arc<KieEmulator>,
    kie_keys: &'a [String],
    scratch: &'a Scratch,
}

/// The soak on a made database; whether every invariant held.
async fn soak(setup: SoakSetup<'_>) -> anyhow::Result<bool> {
    let SoakSetup {
        args,
        seed,
        plans,
        arrive_over,
        logs,
        telegram,
        kie,
        kie_keys,
        scratch,
    } = setup;
    let started = Instant::now();
    let direct = DatabaseUrl::parse(scratch.direct_url.as_str())?;
    // The soak's own reads go straight to the server (it must see through the cuts).
    let store = Store::connect(&direct, StoreOptions::default())
        .await
        .context("migrating the soak's database")?;
    let target = tokio::net::lookup_host((
        scratch.direct_url.host_str().unwrap_or("127.0.0.1"),
        scratch.direct_url.port().unwrap_or(5432),
    ))
    .await
    .context("resolving the PostgreSQL server")?
    .next()
    .context("the PostgreSQL server has no address")?;
    let proxy = Arc::new(TcpProxy::start(target).await.context("starting the cut")?);

    let models = crate::catalogue::BUILT_IN.replacen(
        RETIRED_OPTION,
        "price = 2\ninput = { duration = \"6\" }",
        1,
    );
    anyhow::ensure!(
        models != crate::catalogue::BUILT_IN,
        "the built-in catalogue no longer has the Hailuo option the soak offers"
    );
    let models_file = logs.with_file_name("models.toml");
    std::fs::write(&models_file, models).context("writing the soak's model catalogue")?;

    let mut env = process_env(
        &scratch.url_through(proxy.addr().port())?,
        telegram,
        kie,
        kie_keys,
        &models_file,
    );
    // KIE calls the bot back; the jobs run in the workers, which learn of the callbacks
    // through the database (polling goes on beside, every 2 s here).
    let bot_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")
            .context("finding a free port for the bot's HTTP server")?;
        probe.local_addr().context("reading the free port")?
    };
    env.push(("HTTP_ADDR".to_owned(), bot_addr.to_string()));
    env.push(("PUBLIC_URL".to_owned(), format!("http://{bot_addr}")));
    println!(
        "neurocards chaos: {} users ordering {} videos over {:.0} s; 1 bot and {} worker processes \
         on PostgreSQL; a worker SIGKILLed every {:?}; the database cut {} × {:?}; seed {seed}",
        plans.len(),
        plans.iter().map(plan::UserPlan::videos).sum::<i64>(),
        arrive_over.as_secs_f64(),
        args.workers,
        args.kill_every,
        args.db_cuts,
        args.db_cut,
    );
    let fleet = Fleet::start(env, logs, args.workers)?;

    let calm = CancellationToken::new();
    let storm = storm::Storm::start(storm::StormSetup {
        fleet,
        store: store.clone(),
        proxy: Arc::clone(&proxy),
        telegram,
        kie: Arc::clone(kie),
        kill_every: args.kill_every,
        db_cuts: cut_times(arrive_over, args.db_cuts, args.db_cut),
        db_cut: args.db_cut,
        retire_model_after: arrive_over / 2,
        retired_model: RETIRED_KIE_MODEL,
        dry_account: "account-0".to_owned(),
        dry_after: arrive_over.mul_f64(0.4),
        dry_for: Duration::from_secs(20),
        calm: calm.clone(),
        seed,
    });

    let photo = crate::sample_photo::product_jpeg(480, 320);
    let patience = arrive_over + args.settle_within;
    let tally = users::Tally::new(plans.len());
    let players = plans.iter().enumerate().map(|(index, plan)| {
        let delay = arrive_over.mul_f64(index as f64 / plans.len().max(1) as f64);
        let (photo, tally) = (&photo, &tally);
        async move {
            tokio::time::sleep(delay).await;
            users::play(telegram, plan, photo, patience, tally).await;
        }
    });
    let players = futures::future::join_all(players);
    tokio::pin!(players);
    // The storm lasts while users place orders; then the fleet runs on without faults until
    // every order has ended. Users still waiting then (for a summary that went out
    // unconfirmed and never arrived, say) stop waiting.
    let mut quiet_checks = 0;
    loop {
        tokio::select! {
            _ = &mut players => break,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        if started.elapsed() > patience {
            break;
        }
        if tally.placing() > 0 {
            continue;
        }
        calm.cancel();
        let settled =
            telegram.pending_updates() == 0 && store.audit().await?.open_orders.is_empty();
        quiet_checks = if settled { quiet_checks + 1 } else { 0 };
        if quiet_checks >= 3 {
            break;
        }
    }
    let played = tally.played();
    let arrived = started.elapsed();
    calm.cancel();
    let (fleet, faults, takeovers) = storm.finish().await?;

    // Every order must end: the fleet runs on without faults until then.
    let settle_deadline = Instant::now() + args.settle_within;
    let mut audit = store.audit().await?;
    while !audit.open_orders.is_empty() && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        audit = store.audit().await?;
    }
    let ended = started.elapsed();
    fleet.stop();
    let audit = store.audit().await?;
    let breaches = store.check_invariants().await?;

    let mut secrets = vec![
        ("the bot token".to_owned(), telegram.token()),
        ("the database password".to_owned(), scratch.password.clone()),
    ];
    secrets.extend(
        kie_keys
            .iter()
            .map(|key| ("a KIE key".to_owned(), key.clone())),
    );
    let gathered = Gathered {
        audit,
        breaches,
        chats: chats_seen(telegram, plans, &played),
        tasks: kie
            .tasks()
            .into_iter()
            .map(|task| TaskSeen {
                task_id: task.task_id,
                outcome: task.outcome,
                prompt: task.prompt,
            })
            .collect(),
        confirms: played.iter().map(|p| (p.user, p.confirms)).collect(),
        takeovers,
        secrets: secrets_found(logs, kie, telegram, &secrets)?,
    };
    let verdict = Verdict::of(&gathered);
    store.close().await;

    println!(
        "\nMachine: {}. Date: {}.",
        machine(),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    println!(
        "Users done or still waiting after {:.0} s; every order ended {:.0} s after the start.",
        arrived.as_secs_f64(),
        ended.as_secs_f64()
    );
    let gave_up: Vec<String> = played
        .iter()
        .filter_map(|p| p.gave_up_at.map(|step| format!("{} at {step}", p.user)))
        .collect();
    println!(
        "Users: {} ({} paid with Stars, {} blocked the bot, {} gave up waiting: {})",
        played.len(),
        played.iter().filter(|p| p.paid).count(),
        played.iter().filter(|p| p.blocked).count(),
        gave_up.len(),
        gave_up.join(", ")
    );
    println!("Faults: {faults}");
    println!(
        "KIE answered 429 {} times (scripted ones included); Telegram {} times.\n",
        kie.rate_limited(),
        telegram.rate_limited()
    );
    print!("{}", report::render(&gathered, &verdict));
    let mut slowest = gathered.audit.order_times.clone();
    slowest.sort_by_key(|(_, took, _)| std::cmp::Reverse(*took));
    for (order, took, prompt) in slowest.iter().take(5) {
        println!("slow order {order}: {:.0} s ({prompt})", took.as_secs_f64());
    }
    for duplicate in &verdict.duplicate_tasks {
        println!("duplicate task: {duplicate}");
    }
    for secret in &gathered.secrets {
        println!("secret found: {secret}");
    }
    let broken = verdict.broken();
    if broken.is_empty() {
        println!("\nEvery invariant held.");
        Ok(true)
    } else {
        println!("\nINVARIANTS BROKEN: {}", broken.join("; "));
        if !gathered.audit.open_orders.is_empty() {
            println!("orders not terminal: {:?}", gathered.audit.open_orders);
        }
        Ok(false)
    }
}

/// When each cut begins: spread over the users' arrival, each at least 10 s after the
/// previous one ended, so that two cuts never merge into one long outage.
fn cut_times(arrive_over: Duration, cuts: u32, cut: Duration) -> Vec<Duration> {
    let mut times: Vec<Duration> = Vec::new();
    for n in 1..=cuts {
        let spread = arrive_over.mul_f64(f64::from(n) / f64::from(cuts + 1));
        let after_previous = times
            .last()
            .map_or(Duration::ZERO, |last| *last + cut + Duration::from_secs(10));
        times.push(spread.max(after_previous));
    }
    times
}

/// What an operator would set, pointed at the emulators and the cut, with the waits that
/// would make a soak take hours shortened.
fn process_env(
    database_url: &str,
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
    kie_keys: &[String],
    models_file: &std::path::Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.to_owned()),
        ("BOT_TOKEN", telegram.token()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("KIE_API_URL", kie.base_url()),
        ("KIE_UPLOAD_URL", kie.base_url()),
        ("MODELS_FILE", models_file.display().to_string()),
        ("FREE_CREDITS", "20".to_owned()),
        // Four processes, and CI runs the test suite on the same server meanwhile.
        ("DATABASE_MAX_CONNECTIONS", "8".to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("KIE_TIMEOUT", "5s".to_owned()),
        ("TELEGRAM_TIMEOUT", "5s".to_owned()),
        ("TELEGRAM_LONG_POLL", "2s".to_owned()),
        ("POLL_FIRST_INTERVAL", "1s".to_owned()),
        ("POLL_MAX_INTERVAL", "2s".to_owned()),
        ("POLL_TIMEOUT", "30s".to_owned()),
        ("RETRY_BASE_DELAY", "1s".to_owned()),
        ("KIE_RATE_LIMIT_REST", "3s".to_owned()),
        ("KIE_CREDIT_CHECK_EVERY", "5s".to_owned()),
        ("DELIVERY_PATIENCE", "60s".to_owned()),
        ("PROGRESS_EVERY", "2s".to_owned()),
        ("SHUTDOWN_GRACE", "5s".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (n, key) in kie_keys.iter().enumerate() {
        env.push((format!("KIE_API_KEY_{}", n + 1), key.clone()));
        env.push((
            format!("KIE_ACCOUNT_OF_KEY_{}", n + 1),
            format!("account-{n}"),
        ));
    }
    env
}

fn chats_seen(
    telegram: &TelegramEmulator,
    plans: &[plan::UserPlan],
    played: &[users::Played],
) -> Vec<ChatSeen> {
    plans
        .iter()
        .map(|plan| {
            let sent = telegram.sent(plan.id);
            ChatSeen {
                chat: plan.id,
                videos: sent
                    .iter()
                    .filter(|m| matches!(m.kind, SentKind::Video { .. }))
                    .count() as i64,
                summaries: sent
                    .iter()
                    .filter_map(|m| {
                        m.buttons()
                            .into_iter()
                            .find_map(|(_, data)| data.strip_prefix("more:")?.parse().ok())
                    })
                    .collect(),
                blocked: played.iter().any(|p| p.user == plan.id && p.blocked),
            }
        })
        .collect()
}

/// Secrets in the processes' logs, in what was sent to KIE (its key belongs only in the
/// Authorization header), and in what was sent to Telegram besides its own token.
fn secrets_found(
    logs: &std::path::Path,
    kie: &KieEmulator,
    telegram: &TelegramEmulator,
    secrets: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(logs).context("reading the logs")? {
        let path = entry.context("reading the logs")?.path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for what in report::secrets_in(&text, secrets) {
            found.push(format!("{what} in {}", path.display()));
        }
    }
    for request in kie.requests() {
        let sent = format!(
            "{} {} {}",
            request.path,
            request.query.unwrap_or_default(),
            request.body
        );
        for what in report::secrets_in(&sent, secrets) {
            found.push(format!("{what} in a request to KIE ({})", request.path));
        }
    }
    let not_the_token: Vec<(String, String)> = secrets
        .iter()
        .filter(|(_, value)| *value != telegram.token())
        .cloned()
        .collect();
    for call in telegram.calls() {
        for what in report::secrets_in(&call.params.to_string(), &not_the_token) {
            found.push(format!("{what} in a call to Telegram ({})", call.method));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// "N cores, M GiB": printed with every soak report and benchmark table.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0),
        );
    format!("{cores} cores, {memory}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_cuts_are_spread_and_never_merge() {
        let times = cut_times(Duration::from_secs(37), 2, Duration::from_secs(20));
        assert_eq!(times.len(), 2);
        assert!(times[1] >= times[0] + Duration::from_secs(30), "{times:?}");
        let spread = cut_times(Duration::from_secs(600), 2, Duration::from_secs(20));
        assert_eq!(spread, [Duration::from_secs(200), Duration::from_secs(400)]);
    }
}
