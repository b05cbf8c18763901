use std::time::Duration;

use neurocards::clock::{Clock, ManualClock, SystemClock};
use neurocards::domain::{ErrorClass, JobStatus};
use neurocards::store::{Delivery, Engine, LivenessClock, StoreError};

use crate::harness::{assert_invariants_hold, place, user_with, worker, TestDb};

crate::both_engines!(
    a_dead_workers_job_goes_to_a_live_one_with_its_task_id,
    a_worker_that_keeps_its_heartbeat_keeps_its_jobs,
    a_clean_stop_hands_the_jobs_back_at_once,
    the_queue_report_counts_jobs_workers_and_the_oldest_wait,
    hosts_whose_clocks_disagree_do_not_declare_each_other_dead,
    a_worker_judges_the_others_only_while_its_own_heartbeat_is_fresh,
    a_judge_learns_when_the_stalest_peer_is_due,
);

async fn a_dead_workers_job_goes_to_a_live_one_with_its_task_id(engine: Engine) {
    let options = neurocards::store::StoreOptions {
        worker_dead_after: Duration::from_secs(90),
        ..Default::default()
    };
    let db = TestDb::with_options(engine, options).await;
    let user = user_with(&db.store, 1, 1).await;
    let placed = place(&db.store, user, 1).await;
    let dying = worker(&db.store, "dying").await;
    let job = db.store.claim_jobs(&dying, 1).await.unwrap().remove(0);
    db.store.mark_submit_started(&job.lease).await.unwrap();
    db.store
        .record_task(&job.lease, "task-42", "KIE_API_KEY_3")
        .await
        .unwrap();

    // The dying worker stops beating; the live one keeps beating.
    db.clock.advance(Duration::from_secs(60));
    let live = worker(&db.store, "live").await;
    assert_eq!(
        db.store.requeue_jobs_of_dead_workers().await.unwrap(),
        0,
        "60 s is not dead yet"
    );
    db.clock.advance(Duration::from_secs(31));
    db.store.heartbeat(&live).await.unwrap();
    let taken_back = db.store.requeue_jobs_of_dead_workers().await.unwrap();
    let resumed = db.store.claim_jobs(&live, 5).await.unwrap();

    assert_eq!(taken_back, 1);
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].lease.job_id, placed.job_ids[0]);
    assert_eq!(resumed[0].status, JobStatus::Generating);
    assert_eq!(resumed[0].kie_task_id.as_deref(), Some("task-42"));
    assert_eq!(resumed[0].kie_key_id.as_deref(), Some("KIE_API_KEY_3"));

    // The old holder wakes up: every write it tries is refused, and it learns it was dead.
    let late = db
        .store
        .fail_job(&job.lease, ErrorClass::Unknown, "late")
        .await;
    assert!(matches!(late, Err(StoreError::StaleLease(_))), "{late:?}");
    let late = db
        .store
        .mark_delivering(&job.lease, "https://kie/v.mp4")
        .await;
    assert!(matches!(late, Err(StoreError::StaleLease(_))), "{late:?}");
    let beat = db.store.heartbeat(&dying).await;
    assert!(
        matches!(beat, Err(StoreError::WorkerPresumedDead(_))),
        "{beat:?}"
    );

    db.store
        .mark_delivering(&resumed[0].lease, "https://kie/v.mp4")
        .await
        .unwrap();
    db.store
        .mark_delivered(&resumed[0].lease, &Delivery::default())
        .await
        .unwrap();
    assert_eq!(db.store.balance(user).await.unwrap(), 0);
    assert_invariants_hold(&db.store).await;
}

async fn a_worker_judges_the_others_only_while_its_own_heartbeat_is_fresh(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dead_after = db.store.options().worker_dead_after;
    let user = user_with(&db.store, 1, 2).await;
    place(&db.store, user, 2).await;
    let stuck = worker(&db.store, "stuck").await;
    let other = worker(&db.store, "other").await;
    let stuck_job = db.store.claim_jobs(&stuck, 1).await.unwrap().remove(0);
    let other_job = db.store.claim_jobs(&other, 1).await.unwrap().remove(0);

    // The database was away for everyone; "stuck" runs its sweep before its own heartbeat
    // got through again: it is itself the stalest, and must take nothing, not even its own.
    db.clock.advance(dead_after + Duration::from_secs(5));
    assert_eq!(
        db.store
            .requeue_jobs_of_dead_workers_judged_by(&stuck)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.store.held_jobs(&stuck).await.unwrap(),
        std::slice::from_ref(&stuck_job.lease)
    );

    // "other" beats again first: "stuck" is silent beyond the window, its job goes back,
    // the judge's own job stays.
    db.store.heartbeat(&other).await.unwrap();
    assert_eq!(
        db.store
            .requeue_jobs_of_dead_workers_judged_by(&other)
            .await
            .unwrap(),
        1
    );
    assert!(db.store.held_jobs(&stuck).await.unwrap().is_empty());
    assert_eq!(
        db.store.held_jobs(&other).await.unwrap(),
        std::slice::from_ref(&other_job.lease)
    );
}

async fn a_worker_that_keeps_its_heartbeat_keeps_its_jobs(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 2).await;
    place(&db.store, user, 2).await;
    let steady = worker(&db.store, "steady").await;
    let jobs = db.store.claim_jobs(&steady, 2).await.unwrap();

    for _ in 0..10 {
        db.clock.advance(Duration::from_secs(30));
        db.store.heartbeat(&steady).await.unwrap();
        assert_eq!(db.store.requeue_jobs_of_dead_workers().await.unwrap(), 0);
    }

    for job in &jobs {
        db.store.mark_submit_started(&job.lease).await.unwrap();
    }
}

async fn a_clean_stop_hands_the_jobs_back_at_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 3).await;
    place(&db.store, user, 3).await;
    let stopping = worker(&db.store, "stopping").await;
    let other = worker(&db.store, "other").await;
    let held = db.store.claim_jobs(&stopping, 3).await.unwrap();
    assert!(db.store.claim_jobs(&other, 3).await.unwrap().is_empty());

    let handed_back = db.store.deregister_worker(&stopping).await.unwrap();

    assert_eq!(handed_back, 3);
    assert_eq!(db.store.claim_jobs(&other, 3).await.unwrap().len(), 3);
    let stale = db.store.mark_submit_started(&held[0].lease).await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))), "{stale:?}");
    assert!(db
        .store
        .queue_stats()
        .await
        .unwrap()
        .workers
        .iter()
        .all(|w| w.id != stopping));
}

async fn the_queue_report_counts_jobs_workers_and_the_oldest_wait(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    place(&db.store, user, 4).await;
    db.clock.advance(Duration::from_secs(120));
    let w = worker(&db.store, "w1").await;
    let jobs = db.store.claim_jobs(&w, 2).await.unwrap();
    db.store.mark_submit_started(&jobs[0].lease).await.unwrap();
    db.store
        .fail_job(&jobs[1].lease, ErrorClass::Billing, "insufficient")
        .await
        .unwrap();

    let stats = db.store.queue_stats().await.unwrap();

    let count = |status: JobStatus| {
        stats
            .by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, n)| *n)
            .unwrap()
    };
    assert_eq!(count(JobStatus::Queued), 2);
    assert_eq!(count(JobStatus::Submitting), 1);
    assert_eq!(count(JobStatus::Failed), 1);
    assert_eq!(count(JobStatus::Delivered), 0);
    assert_eq!((stats.held, stats.due), (1, 2));
    assert_eq!(stats.oldest_queued_age, Some(Duration::from_secs(120)));
    assert_eq!(stats.workers.len(), 1);
    assert_eq!(stats.workers[0].held_jobs, 1);
    assert!(stats.workers[0].alive);
}

/// Two worker hosts on one database, one of them with its wall clock two minutes behind (no
/// NTP, a paused VM). Heartbeats are stamped and judged with the database's clock, so the
/// late host is not mistaken for a dead one and keeps its job.
async fn hosts_whose_clocks_disagree_do_not_declare_each_other_dead(engine: Engine) {
    let db = TestDb::real_time(engine, neurocards::store::StoreOptions::default()).await;
    let behind = ManualClock::starting_at(SystemClock.now_millis() - 120_000);
    let late_host = db
        .store
        .clone()
        .with_clock(std::sync::Arc::new(behind))
        .with_liveness_clock(LivenessClock::Database);
    let user = user_with(&db.store, 1, 1).await;
    place(&late_host, user, 1).await;
    let late = worker(&late_host, "late-host").await;
    let job = late_host.claim_jobs(&late, 1).await.unwrap().remove(0);
    late_host.heartbeat(&late).await.unwrap();

    let punctual = worker(&db.store, "punctual-host").await;
    assert_eq!(
        db.store.requeue_jobs_of_dead_workers().await.unwrap(),
        0,
        "a live worker's job was taken because its host's clock is behind"
    );
    assert_eq!(db.store.live_workers().await.unwrap(), 2);
    assert!(db.store.claim_jobs(&punctual, 1).await.unwrap().is_empty());
    late_host.heartbeat(&late).await.unwrap();
    late_host
        .mark_submit_started(&job.lease)
        .await
        .expect("the late host still holds its lease");
}

async fn a_judge_learns_when_the_stalest_peer_is_due(engine: Engine) {
    let options = neurocards::store::StoreOptions {
        worker_dead_after: Duration::from_secs(20),
        ..Default::default()
    };
    let db = TestDb::with_options(engine, options).await;
    let judge = worker(&db.store, "judge").await;
    assert_eq!(
        db.store.until_next_worker_judgement(&judge).await.unwrap(),
        None,
        "alone: nobody to judge"
    );
    let stale = worker(&db.store, "stale").await;
    db.clock.advance(Duration::from_secs(3));
    let fresh = worker(&db.store, "fresh").await;
    db.clock.advance(Duration::from_secs(4));
    db.store.heartbeat(&judge).await.unwrap();
    // The stalest other worker beat 7 s ago: due in 13 s; the judge's own beat is not counted.
    assert_eq!(
        db.store.until_next_worker_judgement(&judge).await.unwrap(),
        Some(Duration::from_secs(13))
    );
    db.store.heartbeat(&stale).await.unwrap();
    assert_eq!(
        db.store.until_next_worker_judgement(&judge).await.unwrap(),
        Some(Duration::from_secs(16)),
        "the stale one beat again: the fresh one, 4 s ago, is next"
    );
    db.clock.advance(Duration::from_secs(30));
    assert_eq!(
        db.store.until_next_worker_judgement(&fresh).await.unwrap(),
        Some(Duration::ZERO),
        "already past due"
    );
}
