use std::time::Duration;

use neurocards::domain::ErrorClass;
use neurocards::store::{Delivery, Engine};

use crate::harness::{place, user_with, worker, TestDb};

crate::both_engines!(
    the_summary_is_claimed_once_and_only_after_every_job_ended,
    a_summary_claimed_by_a_dead_worker_counts_as_sent_and_is_not_sent_again,
    a_summary_claimed_before_a_restart_under_the_same_id_is_not_sent_again,
);

async fn the_summary_is_claimed_once_and_only_after_every_job_ended(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 3).await;
    let placed = place(&db.store, user, 3).await;
    let w = worker(&db.store, "w1").await;
    let jobs = db.store.claim_jobs(&w, 3).await.unwrap();
    for job in &jobs[..2] {
        db.store.mark_submit_started(&job.lease).await.unwrap();
        db.store
            .record_task(&job.lease, "task", "key")
            .await
            .unwrap();
        db.store
            .mark_delivering(&job.lease, "https://kie/v.mp4")
            .await
            .unwrap();
        db.store
            .mark_delivered(&job.lease, &Delivery::default())
            .await
            .unwrap();
    }
    assert!(!db.store.order_finished(placed.order_id).await.unwrap());
    assert_eq!(
        db.store.claim_summary(placed.order_id, &w).await.unwrap(),
        None
    );
    assert!(db
        .store
        .orders_awaiting_summary(10)
        .await
        .unwrap()
        .is_empty());

    db.store
        .fail_job(
            &jobs[2].lease,
            ErrorClass::UserViolation,
            "Image contains faces.",
        )
        .await
        .unwrap();
    assert!(db.store.order_finished(placed.order_id).await.unwrap());
    assert_eq!(
        db.store.orders_awaiting_summary(10).await.unwrap(),
        [placed.order_id]
    );
    let claims = (0..4).map(|n| {
        let store = db.store.clone();
        let order = placed.order_id;
        tokio::spawn(async move { store.claim_summary(order, &format!("claimer-{n}")).await })
    });
    let mut summaries = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        if let Some(summary) = claim.await.unwrap().unwrap() {
            summaries.push(summary);
        }
    }

    assert_eq!(
        summaries.len(),
        1,
        "exactly one claimer may send the summary"
    );
    let summary = &summaries[0];
    assert_eq!(
        (summary.delivered, summary.failed, summary.refunded_credits),
        (2, 1, 1)
    );
    assert_eq!(summary.failures, [(ErrorClass::UserViolation, 1)]);
    assert_eq!(
        (summary.chat_id, summary.video_count),
        (neurocards::domain::ChatId(1), 3)
    );
    assert!(db
        .store
        .orders_awaiting_summary(10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_summary_claimed_by_a_dead_worker_counts_as_sent_and_is_not_sent_again(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 1).await;
    let placed = place(&db.store, user, 1).await;
    let dying = worker(&db.store, "dying").await;
    let job = db.store.claim_jobs(&dying, 1).await.unwrap().remove(0);
    db.store
        .fail_job(&job.lease, ErrorClass::Temporary, "HTTP 500")
        .await
        .unwrap();
    assert!(db
        .store
        .claim_summary(placed.order_id, &dying)
        .await
        .unwrap()
        .is_some());

    // The dying worker may have sent it before it died: nobody sends it again.
    db.clock.advance(Duration::from_secs(91));
    let live = worker(&db.store, "live").await;
    db.store.requeue_jobs_of_dead_workers().await.unwrap();

    assert!(db
        .store
        .orders_awaiting_summary(10)
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .store
        .claim_summary(placed.order_id, &live)
        .await
        .unwrap()
        .is_none());
    assert!(!db
        .store
        .mark_summary_sent(placed.order_id, &dying, Some(1))
        .await
        .unwrap());
    assert!(db.store.audit().await.unwrap().open_orders.is_empty());
}

async fn a_summary_claimed_before_a_restart_under_the_same_id_is_not_sent_again(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 1).await;
    let placed = place(&db.store, user, 1).await;
    let first = worker(&db.store, "stable").await;
    let job = db.store.claim_jobs(&first, 1).await.unwrap().remove(0);
    db.store
        .fail_job(&job.lease, ErrorClass::Temporary, "HTTP 500")
        .await
        .unwrap();
    assert!(db
        .store
        .claim_summary(placed.order_id, &first)
        .await
        .unwrap()
        .is_some());

    let again = worker(&db.store, "stable").await;
    assert!(db
        .store
        .orders_awaiting_summary(10)
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .store
        .claim_summary(placed.order_id, &again)
        .await
        .unwrap()
        .is_none());
}
