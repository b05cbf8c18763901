//! The whole pipeline at full speed: generation instant and every limit lifted, 20,000 videos
//! from the order to the summary (order, claim, photo, upload, create, status, download,
//! delivery, summary) through `neurocards worker` processes on PostgreSQL, against the
//! emulators in this process. Prints the videos per second, and beside it what the same
//! server does with `pgbench -N` (8 clients, 20 s), the ratio of the two, where the time goes
//! (each step's time from the workers' `/metrics`, and the CPU each process used). Asserts
//! nothing about speed.
//!
//! `cargo bench --bench pipeline` with `BENCH_VIDEOS` (default 20000), `BENCH_VIDEOS_EACH`
//! (videos per order, default 1), `BENCH_WORKERS` (worker processes, default 1),
//! `BENCH_CONCURRENCY` (each worker's `WORKER_CONCURRENCY`, default 1000), `BENCH_PGBENCH`
//! (0 skips pgbench) and `BENCH_POSTGRES_URL` (a server and a user allowed to create roles and
//! databases; default the local server as `postgres`).

mod common;

use common::{
    bench_order, default_spec, env_number, free_port, machine, percentile, process_env, spawn, stop,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};
use neurocards::chaos::Scratch;
use neurocards::config::DatabaseUrl;
use neurocards::domain::UserId;
use neurocards::store::{Store, StoreOptions};

const KEYS: usize = 20;
/// Orders are placed by this many tasks at once, as many people ordering at the same time.
const ORDER_PLACERS: usize = 16;
const PGBENCH_CLIENTS: u32 = 8;
const PGBENCH_SECONDS: u32 = 20;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: i64 = env_number("BENCH_VIDEOS", 20_000);
    let each: i64 = env_number::<i64>("BENCH_VIDEOS_EACH", 1).clamp(1, 5);
    let workers: usize = env_number("BENCH_WORKERS", 1);
    let concurrency: usize = env_number("BENCH_CONCURRENCY", 1000);
    let with_pgbench = env_number("BENCH_PGBENCH", 1) != 0;
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());

    let kie = KieEmulator::start(KieConfig {
        accounts: vec![KieAccount {
            name: "main".into(),
            keys: (0..KEYS).map(|n| format!("pipeline-key-{n}")).collect(),
            credits: 1_000_000_000,
        }],
        stage_delay: Duration::ZERO,
        create_limit: 100_000_000,
        status_limit_per_second: 1_000_000,
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let keys: Vec<(String, String)> = (0..KEYS)
        .map(|n| (format!("pipeline-key-{n}"), "main".to_owned()))
        .collect();

    let scratch = Scratch::create(&postgres).await?;
    let run = Run {
        orders: (videos / each).max(1),
        each,
        workers,
        concurrency,
    };
    let measured = measure(&run, &scratch, &kie, &telegram, &keys).await;
    scratch.drop_all().await?;
    let measured = measured?;
    let pgbench = if with_pgbench {
        let scratch = Scratch::create(&postgres).await?;
        let tps = pgbench(&scratch).await;
        scratch.drop_all().await?;
        Some(tps?)
    } else {
        None
    };
    report(&run, &measured, pgbench);
    Ok(())
}

struct Run {
    orders: i64,
    each: i64,
    workers: usize,
    concurrency: usize,
}

impl Run {
    fn videos(&self) -> i64 {
        self.orders * self.each
    }
}

struct Measured {
    elapsed: Duration,
    orders_placed_in: Duration,
    order_times: Vec<Duration>,
    steps: BTreeMap<String, Step>,
    cpu: Vec<(String, f64)>,
    by_status: Vec<(String, i64)>,
    summaries_missing: i64,
    breaches: usize,
    create_calls: usize,
    kie_429: usize,
    telegram_429: usize,
}

#[derive(Default)]
struct Step {
    count: f64,
    seconds: f64,
    p99: f64,
}

async fn measure(
    run: &Run,
    scratch: &Scratch,
    kie: &KieEmulator,
    telegram: &TelegramEmulator,
    keys: &[(String, String)],
) -> anyhow::Result<Measured> {
    let url = DatabaseUrl::parse(scratch.direct_url.as_str())?;
    let store = Store::connect(
        &url,
        StoreOptions {
            max_connections: u32::try_from(ORDER_PLACERS)?,
            ..StoreOptions::default()
        },
    )
    .await?;
    let photo = telegram.add_file(neurocards::sample_photo::product_jpeg(480, 320));

    let logs = tempfile::tempdir()?;
    let mut children = Vec::new();
    let mut metrics_urls = Vec::new();
    for n in 0..run.workers {
        let port = free_port()?;
        metrics_urls.push(format!("http://127.0.0.1:{port}/metrics"));
        let env = process_env(
            url.expose(),
            telegram,
            kie,
            keys,
            &[
                ("WORKER_CONCURRENCY", run.concurrency.to_string()),
                ("WORKER_HTTP_ADDR", format!("127.0.0.1:{port}")),
                ("PER_USER_ACTIVE_LIMIT", "5".to_owned()),
                (
                    "DATABASE_MAX_CONNECTIONS",
                    std::env::var("BENCH_POOL").unwrap_or("16".into()),
                ),
                ("TELEGRAM_MESSAGES_PER_SECOND", "1000000".to_owned()),
                ("KIE_CREATE_LIMIT", "100000000".to_owned()),
                ("KIE_STATUS_PER_SECOND", "1000000".to_owned()),
                // Generation is instant: the first look at a task comes soon after its
                // creation, as a callback would wake it.
                ("POLL_FIRST_INTERVAL", "50ms".to_owned()),
                ("POLL_MAX_INTERVAL", "1s".to_owned()),
                ("QUEUE_CHECK_EVERY", "50ms".to_owned()),
                // The videos are small here: memory is not what is measured.
                ("MAX_TRANSFERS", "64".to_owned()),
            ],
        );
        children.push(spawn("worker", &env, logs.path(), &format!("worker-{n}"))?);
    }
    let pids: Vec<u32> = children.iter().map(|child| child.id()).collect();
    let cpu_before = cpu_now(&pids);
    let started = Instant::now();

    let placed = place_orders_at_once(store.clone(), photo.clone(), run.orders, run.each);
    let mut placed = tokio::spawn(placed);
    let mut order_times = None;
    let mut orders_placed_in = Duration::ZERO;
    let total = run.videos();
    loop {
        if order_times.is_none() && placed.is_finished() {
            order_times = Some((&mut placed).await??);
            orders_placed_in = started.elapsed();
        }
        let ended = store.queue_stats().await?.ended();
        let missing = summaries_missing(&store).await?;
        if order_times.is_some() && ended == total && missing == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            anyhow::bail!("not done after 30 minutes: {ended} of {total} videos ended");
        }
        // Not more often: these counts are the bench's own load on the server.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_now(&pids);

    let mut steps: BTreeMap<String, Step> = BTreeMap::new();
    let http = reqwest::Client::new();
    for url in &metrics_urls {
        let text = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        for (name, step) in parse_steps(&text) {
            let total = steps.entry(name).or_default();
            total.count += step.count;
            total.seconds += step.seconds;
            total.p99 = total.p99.max(step.p99);
        }
    }
    stop(&mut children);

    let stats = store.queue_stats().await?;
    let breaches = store.check_invariants().await?.len();
    let summaries_missing = summaries_missing(&store).await?;
    store.close().await;
    let cpu = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|((name, after), (_, before))| {
            (name.clone(), (after - before) / elapsed.as_secs_f64())
        })
        .collect();
    Ok(Measured {
        elapsed,
        orders_placed_in,
        order_times: order_times.unwrap_or_default(),
        steps,
        cpu,
        by_status: stats
            .by_status
            .iter()
            .map(|(status, n)| (status.as_str().to_owned(), *n))
            .collect(),
        summaries_missing,
        breaches,
        create_calls: kie.create_task_calls(),
        kie_429: kie.rate_limited(),
        telegram_429: telegram.rate_limited(),
    })
}

/// `orders` orders of `each` videos, one user each, placed by [`ORDER_PLACERS`] tasks at once;
/// returns the time each placement took (registering the user and placing the order).
async fn place_orders_at_once(
    store: Store,
    photo: String,
    orders: i64,
    each: i64,
) -> anyhow::Result<Vec<Duration>> {
    let spec = default_spec()?;
    let next = Arc::new(std::sync::atomic::AtomicI64::new(1));
    let mut placers = tokio::task::JoinSet::new();
    for _ in 0..ORDER_PLACERS {
        let (store, photo, spec, next) = (store.clone(), photo.clone(), spec.clone(), next.clone());
        placers.spawn(async move {
            let mut times = Vec::new();
            loop {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if id > orders {
                    return anyhow::Ok(times);
                }
                let started = Instant::now();
                store.register_user(UserId(id), None, "en", each).await?;
                store
                    .place_order(&bench_order(id, &photo, each, &spec))
                    .await?;
                times.push(started.elapsed());
            }
        });
    }
    let mut times = Vec::new();
    while let Some(placed) = placers.join_next().await {
        times.extend(placed??);
    }
    Ok(times)
}

async fn summaries_missing(store: &Store) -> anyhow::Result<i64> {
    let missing: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE summary_sent_at IS NULL")
            .fetch_one(store.pool())
            .await?;
    Ok(missing)
}

/// `neurocards_step_seconds` from a `/metrics` page: each step's count, total seconds and
/// 99th percentile.
fn parse_steps(text: &str) -> BTreeMap<String, Step> {
    let mut steps: BTreeMap<String, Step> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("neurocards_step_seconds") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some(step) = label(labels, "step") else {
            continue;
        };
        let entry = steps.entry(step.to_owned()).or_default();
        if labels.starts_with("_sum") {
            entry.seconds = value;
        } else if labels.starts_with("_count") {
            entry.count = value;
        } else if label(labels, "quantile") == Some("0.99") {
            entry.p99 = value;
        }
    }
    steps
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

/// CPU seconds used so far by each worker process, by PostgreSQL (every `postgres` process on
/// the machine) and by this process (the emulators and the order placing).
fn cpu_now(workers: &[u32]) -> Vec<(String, f64)> {
    let mut cpu: Vec<(String, f64)> = workers
        .iter()
        .enumerate()
        .map(|(n, pid)| (format!("worker {n}"), cpu_seconds(&pid.to_string())))
        .collect();
    let postgres: f64 = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    std::fs::read_to_string(entry.path().join("comm"))
                        .is_ok_and(|comm| comm.trim() == "postgres")
                })
                .map(|entry| cpu_seconds(&entry.file_name().to_string_lossy()))
                .sum()
        })
        .unwrap_or(0.0);
    cpu.push(("PostgreSQL".to_owned(), postgres));
    cpu.push((
        "emulators + orders (this process)".to_owned(),
        cpu_seconds("self"),
    ));
    cpu
}

/// utime + stime of `/proc/<pid>`, in seconds; 0 when unreadable.
fn cpu_seconds(pid: &str) -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some((user + system) as f64 / TICKS_PER_SECOND)
        })
        .unwrap_or(0.0)
}

/// `pgbench -N` with 8 clients for 20 s on the scratch database: its transactions per second.
async fn pgbench(scratch: &Scratch) -> anyhow::Result<f64> {
    let url = &scratch.direct_url;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432).to_string();
    let connection = [
        "-h".to_owned(),
        host,
        "-p".to_owned(),
        port,
        "-U".to_owned(),
        scratch.name.clone(),
    ];
    let run = |args: Vec<String>| {
        let password = scratch.password.clone();
        async move {
            let command = args.clone();
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("pgbench")
                    .args(&command)
                    .env("PGPASSWORD", password)
                    .output()
            })
            .await?
            .context("running pgbench (it comes with PostgreSQL's client programs)")?;
            if !output.status.success() {
                anyhow::bail!(
                    "pgbench {:?} failed: {}",
                    args.first(),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            anyhow::Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
    };
    let mut init = vec![
        "-i".to_owned(),
        "-s".to_owned(),
        "10".to_owned(),
        "-q".to_owned(),
    ];
    init.extend(connection.iter().cloned());
    init.push(scratch.name.clone());
    run(init).await?;
    let mut bench = vec![
        "-N".to_owned(),
        "-c".to_owned(),
        PGBENCH_CLIENTS.to_string(),
        "-j".to_owned(),
        "2".to_owned(),
        "-T".to_owned(),
        PGBENCH_SECONDS.to_string(),
    ];
    bench.extend(connection.iter().cloned());
    bench.push(scratch.name.clone());
    let output = run(bench).await?;
    output
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|tps| tps.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {output}"))
}

fn report(run: &Run, measured: &Measured, pgbench: Option<f64>) {
    let videos = run.videos();
    let seconds = measured.elapsed.as_secs_f64();
    let rate = videos as f64 / seconds;
    println!(
        "pipeline benchmark: {videos} videos ({} orders of {}), generation instant, every limit \
         lifted, {} `neurocards worker` process(es) with WORKER_CONCURRENCY={}, PostgreSQL; \
         machine: {}",
        run.orders,
        run.each,
        run.workers,
        run.concurrency,
        machine()
    );
    println!();
    println!("| measure | value |");
    println!("| --- | ---: |");
    println!("| first order to last summary | {seconds:.1} s |");
    println!("| videos per second | {rate:.1} |");
    if let Some(tps) = pgbench {
        println!("| `pgbench -N`, {PGBENCH_CLIENTS} clients, {PGBENCH_SECONDS} s | {tps:.0} tps |");
        println!("| ratio (videos/s ÷ pgbench tps) | {:.3} |", rate / tps);
    }
    println!(
        "| all orders placed in | {:.1} s |",
        measured.orders_placed_in.as_secs_f64()
    );
    println!("| createTask calls | {} |", measured.create_calls);
    println!(
        "| KIE 429s / Telegram 429s | {} / {} |",
        measured.kie_429, measured.telegram_429
    );
    println!("| jobs by status | {:?} |", measured.by_status);
    println!("| summaries not sent | {} |", measured.summaries_missing);
    println!("| invariant breaches | {} |", measured.breaches);
    println!();
    println!("CPU used, as a share of one core over the run:");
    println!();
    println!("| process | CPU |");
    println!("| --- | ---: |");
    for (name, share) in &measured.cpu {
        println!("| {name} | {:.0} % |", share * 100.0);
    }
    println!();
    println!("Where a video's time goes (each step's calls, mean and the slowest worker's p99):");
    println!();
    println!("| step | calls | mean ms | p99 ms | total s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut times = measured.order_times.clone();
    times.sort();
    let order_total: f64 = times.iter().map(Duration::as_secs_f64).sum();
    println!(
        "| order (register + place_order) | {} | {:.1} | {} | {:.0} |",
        times.len(),
        order_total * 1000.0 / times.len().max(1) as f64,
        percentile(&times, 0.99),
        order_total
    );
    let mut steps: Vec<(&String, &Step)> = measured.steps.iter().collect();
    steps.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
    for (name, step) in steps {
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} | {:.0} |",
            step.count,
            step.seconds * 1000.0 / step.count.max(1.0),
            step.p99 * 1000.0,
            step.seconds
        );
    }
}
