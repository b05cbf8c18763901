//! `admin migrate-to`: a deployment's data copied into an empty PostgreSQL database, money
//! and queue intact, sequences continuing after the copied ids. The source is each engine in
//! turn (SQLite is the real case); the target is always PostgreSQL.

use std::process::Command;

use neurocards::domain::{ErrorClass, UserId};
use neurocards::store::{Delivery, Engine, NewPayment, StoreError, COPIED_TABLES, SKIPPED_TABLES};

use crate::harness::{assert_invariants_hold, place, user_with, worker, TestDb};

crate::both_engines!(a_deployment_is_copied_whole_into_an_empty_postgresql_database);

async fn a_deployment_is_copied_whole_into_an_empty_postgresql_database(engine: Engine) {
    let source = TestDb::new(engine).await;
    let store = &source.store;
    let alice = user_with(store, 1, 6).await;
    let bob = user_with(store, 2, 0).await;
    store
        .record_payment(&NewPayment {
            charge_id: "charge-1",
            user: bob,
            package_id: "start",
            stars: 100,
            credits: 5,
        })
        .await
        .unwrap();
    let order = place(store, alice, 3).await;
    let w = worker(store, "w").await;
    let jobs = store.claim_jobs(&w, 3).await.unwrap();
    store.mark_submit_started(&jobs[0].lease).await.unwrap();
    store
        .record_task(&jobs[0].lease, "task-1", "KIE_API_KEY")
        .await
        .unwrap();
    store
        .mark_delivering(&jobs[0].lease, "https://kie/v.mp4")
        .await
        .unwrap();
    store
        .mark_delivered(&jobs[0].lease, &Delivery::default())
        .await
        .unwrap();
    store
        .fail_job(&jobs[1].lease, ErrorClass::Unknown, "gone")
        .await
        .unwrap();
    store
        .inbox_put(77, Some(1), r#"{"update_id":77}"#)
        .await
        .unwrap();

    let target = TestDb::new(Engine::Postgres).await;
    // Every table of the schema is either copied or deliberately left out.
    let mut named: Vec<&str> = COPIED_TABLES
        .iter()
        .chain(SKIPPED_TABLES)
        .copied()
        .collect();
    named.sort_unstable();
    let tables = target.store.table_names().await.unwrap();
    assert_eq!(tables, named, "a table the copy does not know about");

    // As an operator runs it.
    let output = Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .args(["admin", "migrate-to", &target.url()])
        .env("DATABASE_URL", source.url())
        .env_remove("RUST_LOG")
        .output()
        .expect("running the neurocards binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Users: 2, credits held: 9, ledger sum: 9."),
        "{stdout}"
    );
    assert!(stdout.contains("All invariants hold"), "{stdout}");

    let copy = &target.store;
    assert_eq!(copy.balance(alice).await.unwrap(), 4, "6 - 3 + 1 refunded");
    assert_eq!(copy.balance(bob).await.unwrap(), 5);
    assert_eq!(copy.payment("charge-1").await.unwrap().unwrap().stars, 100);
    assert_eq!(
        copy.ledger(alice, 10).await.unwrap(),
        store.ledger(alice, 10).await.unwrap()
    );
    let copied_job = copy.job(jobs[0].lease.job_id).await.unwrap().unwrap();
    assert_eq!(copied_job.kie_task_id.as_deref(), Some("task-1"));
    assert_eq!(copy.inbox_backlog().await.unwrap(), 1);
    // The third job is still queued there; no worker registration came along, so nobody
    // holds it once it is taken back.
    copy.requeue_jobs_of_dead_workers().await.unwrap();
    let next = worker(copy, "new").await;
    let resumed = copy.claim_jobs(&next, 5).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].lease.job_id, jobs[2].lease.job_id);
    // New rows get ids after the copied ones.
    let later = place(copy, bob, 1).await;
    assert!(later.order_id.0 > order.order_id.0);
    assert_invariants_hold(copy).await;

    // A second copy into a database that is no longer empty is refused.
    let again = store.copy_into(copy).await;
    assert!(matches!(again, Err(StoreError::Corrupt(_))), "{again:?}");
    assert_eq!(copy.balance(UserId(2)).await.unwrap(), 4);
}
