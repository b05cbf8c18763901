//! Random interleavings of grants, orders, work, crashes and late writes keep every
//! invariant, and every balance equals what a simple model of the rules predicts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use neurocards::domain::{ErrorClass, UserId};
use neurocards::store::{Delivery, Engine, Lease, Store, StoreError, WorkerInfo};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::{order_of, TestDb};

#[derive(Debug, Clone)]
enum Outcome {
    Deliver,
    Fail,
    Retry,
    Release,
    /// The worker crashes: it keeps its leases in memory but never finishes them.
    Crash,
}

#[derive(Debug, Clone)]
enum Op {
    Grant {
        user: usize,
        delta: i64,
    },
    Order {
        user: usize,
        count: i64,
        key: Option<u8>,
    },
    Work {
        worker: usize,
        max: usize,
        outcome: Outcome,
    },
    /// Time passes and the queue takes back what dead workers held.
    Reap {
        seconds: u64,
    },
    /// A crashed worker wakes up and tries to fail one of its old jobs.
    LateFail,
}

const USERS: usize = 3;
const WORKERS: usize = 2;

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Deliver),
        3 => Just(Outcome::Fail),
        2 => Just(Outcome::Retry),
        1 => Just(Outcome::Release),
        1 => Just(Outcome::Crash),
    ];
    prop_oneof![
        2 => (0..USERS, -3i64..8).prop_map(|(user, delta)| Op::Grant { user, delta }),
        4 => (0..USERS, 1i64..6, proptest::option::of(0u8..4))
            .prop_map(|(user, count, key)| Op::Order { user, count, key }),
        4 => (0..WORKERS, 1usize..6, outcome)
            .prop_map(|(worker, max, outcome)| Op::Work { worker, max, outcome }),
        1 => (0u64..200).prop_map(|seconds| Op::Reap { seconds }),
        1 => Just(Op::LateFail),
    ]
}

/// What the rules say each balance must be. It spans every case of a run, because the cases
/// share one database and a claim may pick up jobs an earlier case left behind.
#[derive(Default)]
struct Model {
    balances: HashMap<UserId, i64>,
    placed_keys: HashMap<String, ()>,
}

struct Case<'a> {
    store: &'a Store,
    db: &'a TestDb,
    users: Vec<UserId>,
    workers: Vec<String>,
    crashed: Vec<(Lease, UserId)>,
    model: &'a mut Model,
    case: i64,
}

impl Case<'_> {
    async fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Grant { user, delta } => {
                let user = self.users[*user];
                let balance = self.model.balances[&user];
                match self.store.grant(user, *delta, None).await {
                    Ok(_) => *self.model.balances.get_mut(&user).unwrap() += delta,
                    Err(StoreError::InsufficientCredits { .. }) if balance + delta < 0 => {}
                    Err(err) => return Err(format!("grant: {err}")),
                }
            }
            Op::Order { user, count, key } => {
                let user = self.users[*user];
                let key = key.map(|k| format!("case{}-key{k}", self.case));
                let balance = self.model.balances[&user];
                let order = order_of(user, *count, key.as_deref());
                let repeated = key
                    .as_ref()
                    .is_some_and(|k| self.model.placed_keys.contains_key(k));
                match self.store.place_order(&order).await {
                    Ok(placed) if repeated => {
                        if placed.newly_placed {
                            return Err("a repeated key placed a second order".into());
                        }
                    }
                    Ok(_) => {
                        *self.model.balances.get_mut(&user).unwrap() -= count;
                        if let Some(key) = key {
                            self.model.placed_keys.insert(key, ());
                        }
                    }
                    Err(StoreError::InsufficientCredits { .. })
                        if !repeated && balance < *count => {}
                    Err(err) => return Err(format!("order: {err}")),
                }
            }
            Op::Work {
                worker,
                max,
                outcome,
            } => {
                let me = self.workers[*worker].clone();
                if let Err(StoreError::WorkerPresumedDead(_)) = self.store.heartbeat(&me).await {
                    self.register(&me).await;
                }
                let jobs = self
                    .store
                    .claim_jobs(&me, *max)
                    .await
                    .map_err(|e| format!("claim: {e}"))?;
                for job in jobs {
                    let lease = &job.lease;
                    let result = match outcome {
                        Outcome::Deliver => self.deliver(lease).await,
                        Outcome::Fail => {
                            match self.store.fail_job(lease, ErrorClass::Unknown, "x").await {
                                Ok(_) => {
                                    *self.model.balances.get_mut(&job.user_id).unwrap() += 1;
                                    Ok(())
                                }
                                Err(err) => Err(err),
                            }
                        }
                        Outcome::Retry => {
                            self.store
                                .schedule_retry(lease, Duration::ZERO, ErrorClass::Temporary, "x")
                                .await
                        }
                        Outcome::Release => self.store.release_job(lease).await,
                        Outcome::Crash => {
                            self.crashed.push((lease.clone(), job.user_id));
                            Ok(())
                        }
                    };
                    result.map_err(|e| format!("{outcome:?}: {e}"))?;
                }
            }
            Op::Reap { seconds } => {
                self.db.clock.advance(Duration::from_secs(*seconds));
                self.store
                    .requeue_jobs_of_dead_workers()
                    .await
                    .map_err(|e| format!("reap: {e}"))?;
            }
            Op::LateFail => {
                if let Some((lease, user)) = self.crashed.pop() {
                    match self
                        .store
                        .fail_job(&lease, ErrorClass::Unknown, "late")
                        .await
                    {
                        // Its lease was never taken back: the write is legitimate.
                        Ok(_) => *self.model.balances.get_mut(&user).unwrap() += 1,
                        Err(StoreError::StaleLease(_)) => {}
                        Err(err) => return Err(format!("late fail: {err}")),
                    }
                }
            }
        }
        Ok(())
    }

    async fn deliver(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store.mark_submit_started(lease).await?;
        self.store.record_task(lease, "task", "key").await?;
        self.store
            .mark_delivering(lease, "https://kie/v.mp4")
            .await?;
        self.store.mark_delivered(lease, &Delivery::default()).await
    }

    async fn register(&self, id: &str) {
        let info = WorkerInfo {
            id: id.to_owned(),
            hostname: "prop".to_owned(),
            pid: 1,
        };
        self.store
            .register_worker(&info)
            .await
            .expect("registering a worker");
    }
}

async fn run_case(
    db: &TestDb,
    model: &mut Model,
    case: i64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let store = &db.store;
    let users: Vec<UserId> = (0..USERS as i64)
        .map(|n| UserId(case * 100 + n + 1))
        .collect();
    for user in &users {
        store
            .register_user(*user, None, "ru", 0)
            .await
            .expect("registering");
        model.balances.insert(*user, 0);
    }
    let workers: Vec<String> = (0..WORKERS).map(|n| format!("case{case}-w{n}")).collect();
    let mut run = Case {
        store,
        db,
        users: users.clone(),
        workers: workers.clone(),
        crashed: Vec::new(),
        model,
        case,
    };
    for worker in &workers {
        run.register(worker).await;
    }
    for op in ops {
        run.apply(op).await.map_err(TestCaseError::fail)?;
    }
    for (user, expected) in &run.model.balances {
        let balance = store.balance(*user).await.expect("reading a balance");
        prop_assert_eq!(balance, *expected, "balance of user {}", user);
    }
    let breaches = store.check_invariants().await.expect("checking invariants");
    prop_assert!(breaches.is_empty(), "breaches: {:?}", breaches);
    Ok(())
}

fn random_sequences_keep_the_invariants(engine: Engine) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let db = runtime.block_on(TestDb::new(engine));
    let cases = AtomicI64::new(0);
    let model = Mutex::new(Model::default());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let case = cases.fetch_add(1, Ordering::SeqCst) + 1;
        let mut model = model
            .lock()
            .map_err(|_| TestCaseError::fail("a poisoned model"))?;
        runtime.block_on(run_case(&db, &mut model, case, &ops))
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    drop(db);
}

#[test]
fn sqlite_random_sequences_keep_the_invariants() {
    random_sequences_keep_the_invariants(Engine::Sqlite);
}

#[test]
fn postgres_random_sequences_keep_the_invariants() {
    random_sequences_keep_the_invariants(Engine::Postgres);
}
