//! Queue throughput on both engines: how fast orders are placed and how fast a pool of
//! claimers drains them. Prints numbers; asserts nothing about speed.
//!
//! `cargo bench --bench queue` (PostgreSQL from NEUROCARDS_TEST_POSTGRES_URL, default the
//! local server; `BENCH_JOBS` and `BENCH_CLAIMERS` change the load).

mod common;

use common::env_number;

use std::time::{Duration, Instant};

use neurocards::catalogue::Catalogue;
use neurocards::config::DatabaseUrl;
use neurocards::domain::ErrorClass;
use neurocards::domain::{ChatId, Lang, UserId};
use neurocards::store::{Delivery, Engine, NewOrder, Store, StoreOptions, WorkerInfo};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let jobs: i64 = env_number("BENCH_JOBS", 2_000);
    let claimers: usize = env_number("BENCH_CLAIMERS", 8);
    println!("queue benchmark: {jobs} jobs in orders of 5, {claimers} concurrent claimers");
    println!(
        "{:<10} {:>16} {:>20} {:>16}",
        "engine", "orders/s", "jobs drained/s", "claim p50 (ms)"
    );
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let (url, cleanup) = scratch_database(engine).await?;
        let store = Store::connect(&DatabaseUrl::parse(&url)?, StoreOptions::default()).await?;
        let result = run(&store, jobs, claimers).await;
        store.close().await;
        cleanup.await?;
        let (orders_per_s, jobs_per_s, claim_p50) = result?;
        let name = match engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        };
        println!(
            "{name:<10} {orders_per_s:>16.0} {jobs_per_s:>20.0} {:>16.2}",
            claim_p50.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

async fn run(store: &Store, jobs: i64, claimers: usize) -> anyhow::Result<(f64, f64, Duration)> {
    let users = (jobs / 5).max(1);
    for id in 1..=users {
        store.register_user(UserId(id), None, "ru", 5).await?;
    }
    let started = Instant::now();
    for id in 1..=users {
        store.place_order(&order(UserId(id))).await?;
    }
    let orders_per_s = users as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let tasks = (0..claimers).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let me = WorkerInfo {
                id: format!("bench-{n}"),
                hostname: "bench".into(),
                pid: 0,
            };
            store.register_worker(&me).await?;
            let mut claim_times = Vec::new();
            loop {
                let claim_started = Instant::now();
                let batch = store.claim_jobs(&me.id, 10).await?;
                claim_times.push(claim_started.elapsed());
                if batch.is_empty() {
                    return anyhow::Ok(claim_times);
                }
                for (i, job) in batch.iter().enumerate() {
                    // Nine in ten delivered through every phase, one in ten failed and refunded.
                    if i % 10 == 9 {
                        store
                            .fail_job(&job.lease, ErrorClass::Temporary, "bench")
                            .await?;
                    } else {
                        store.mark_submit_started(&job.lease).await?;
                        store.record_task(&job.lease, "task", "key").await?;
                        store
                            .mark_delivering(&job.lease, "https://kie/v.mp4")
                            .await?;
                        store
                            .mark_delivered(&job.lease, &Delivery::default())
                            .await?;
                    }
                }
            }
        })
    });
    let mut claim_times = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        claim_times.extend(task.await??);
    }
    let jobs_per_s = jobs as f64 / started.elapsed().as_secs_f64();
    claim_times.sort();
    let p50 = claim_times
        .get(claim_times.len() / 2)
        .copied()
        .unwrap_or_default();
    let breaches = store.check_invariants().await?;
    anyhow::ensure!(breaches.is_empty(), "invariants broken: {breaches:?}");
    Ok((orders_per_s, jobs_per_s, p50))
}

fn order(user: UserId) -> NewOrder {
    NewOrder {
        user_id: user,
        chat_id: ChatId(user.0),
        idempotency_key: Some(format!("bench-{user}")),
        video_count: 5,
        unit_price: 1,
        photo_file_id: "photo".into(),
        template_id: None,
        prompt: "bench".into(),
        generation: Catalogue::built_in()
            .ok()
            .and_then(|catalogue| catalogue.default_spec())
            .map(|(spec, _)| spec)
            .expect("the built-in catalogue has a default option"),
        language: Lang::Ru,
    }
}

type Cleanup = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

async fn scratch_database(engine: Engine) -> anyhow::Result<(String, Cleanup)> {
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            Ok((url, Box::pin(async move { Ok(dir.close()?) })))
        }
        Engine::Postgres => {
            sqlx::any::install_default_drivers();
            let admin_url = std::env::var("NEUROCARDS_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            let name = format!("nc_bench_{}", std::process::id());
            let mut admin = AnyConnection::connect(&admin_url).await?;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut admin)
                .await?;
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            let mut url = url::Url::parse(&admin_url)?;
            url.set_path(&name);
            let cleanup = Box::pin(async move {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(AssertSqlSafe(drop))
                    .execute(&mut admin)
                    .await?;
                Ok(())
            });
            Ok((url.to_string(), cleanup))
        }
    }
}
