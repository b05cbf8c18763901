use std::collections::HashSet;

use neurocards::domain::{JobStatus, UserId};
use neurocards::store::{Engine, StoreError};

use crate::harness::{assert_invariants_hold, ledger_rows, order_of, place, user_with, TestDb};

crate::both_engines!(
    placing_an_order_debits_and_creates_one_queued_job_per_video,
    a_short_balance_is_refused_and_writes_nothing,
    an_order_for_an_unknown_user_is_refused,
    the_same_idempotency_key_returns_the_first_order,
    two_concurrent_orders_with_one_key_make_one_order_and_one_debit,
    concurrent_orders_never_overdraw_a_balance,
    the_queue_position_counts_the_unfinished_jobs_ahead,
);

async fn placing_an_order_debits_and_creates_one_queued_job_per_video(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;

    let placed = db
        .store
        .place_order(&order_of(user, 3, Some("cb-1")))
        .await
        .unwrap();

    assert!(placed.newly_placed);
    assert_eq!(placed.job_ids.len(), 3);
    assert_eq!(placed.balance_after, 7);
    assert_eq!(db.store.balance(user).await.unwrap(), 7);
    for (seq, job_id) in placed.job_ids.iter().enumerate() {
        let job = db
            .store
            .job(*job_id)
            .await
            .unwrap()
            .expect("the job exists");
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.seq, seq as i64 + 1);
        assert_eq!(job.order_id, placed.order_id);
        assert!(job.locked_by.is_none());
    }
    assert_eq!(ledger_rows(&db.store, "order", placed.order_id).await, 1);
    assert_invariants_hold(&db.store).await;
}

async fn a_short_balance_is_refused_and_writes_nothing(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 2).await;

    let refused = db
        .store
        .place_order(&order_of(user, 3, Some("cb-short")))
        .await;

    assert!(
        matches!(
            refused,
            Err(StoreError::InsufficientCredits {
                balance: 2,
                needed: 3,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(db.store.balance(user).await.unwrap(), 2);
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!((orders, jobs), (0, 0));
    assert_eq!(
        db.store.ledger(user, 10).await.unwrap().len(),
        1,
        "only the grant"
    );

    // The refused key is not burnt: once the user can pay, the same press goes through.
    db.store.grant(user, 1, None).await.unwrap();
    let placed = db
        .store
        .place_order(&order_of(user, 3, Some("cb-short")))
        .await
        .unwrap();
    assert!(placed.newly_placed);
    assert_invariants_hold(&db.store).await;
}

async fn an_order_for_an_unknown_user_is_refused(engine: Engine) {
    let db = TestDb::new(engine).await;

    let refused = db.store.place_order(&order_of(UserId(77), 1, None)).await;

    assert!(
        matches!(refused, Err(StoreError::UnknownUser(UserId(77)))),
        "{refused:?}"
    );
}

async fn the_same_idempotency_key_returns_the_first_order(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;

    let first = db
        .store
        .place_order(&order_of(user, 3, Some("cb-twice")))
        .await
        .unwrap();
    let second = db
        .store
        .place_order(&order_of(user, 5, Some("cb-twice")))
        .await
        .unwrap();

    assert!(first.newly_placed && !second.newly_placed);
    assert_eq!(first.order_id, second.order_id);
    assert_eq!(first.job_ids, second.job_ids);
    assert_eq!(db.store.balance(user).await.unwrap(), 7);
    assert_eq!(second.balance_after, 7);
    assert_invariants_hold(&db.store).await;
}

async fn two_concurrent_orders_with_one_key_make_one_order_and_one_debit(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 100).await;

    // Many rounds, so the two calls really do overlap in some of them.
    for round in 0..20 {
        let key = format!("cb-race-{round}");
        let (a, b) = tokio::join!(
            tokio::spawn({
                let store = db.store.clone();
                let order = order_of(user, 1, Some(&key));
                async move { store.place_order(&order).await }
            }),
            tokio::spawn({
                let store = db.store.clone();
                let order = order_of(user, 1, Some(&key));
                async move { store.place_order(&order).await }
            }),
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert_eq!(a.order_id, b.order_id, "round {round}");
        assert!(
            a.newly_placed != b.newly_placed,
            "exactly one call placed it (round {round})"
        );
        assert_eq!(ledger_rows(&db.store, "order", a.order_id).await, 1);
    }
    assert_eq!(db.store.balance(user).await.unwrap(), 80);
    assert_invariants_hold(&db.store).await;
}

async fn concurrent_orders_never_overdraw_a_balance(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 5).await;

    let calls = (0..10).map(|i| {
        let store = db.store.clone();
        let order = order_of(user, 1, Some(&format!("cb-{i}")));
        tokio::spawn(async move { store.place_order(&order).await })
    });
    let mut placed = 0;
    let mut refused = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            Ok(_) => placed += 1,
            Err(StoreError::InsufficientCredits { .. }) => refused += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }

    assert_eq!((placed, refused), (5, 5));
    assert_eq!(db.store.balance(user).await.unwrap(), 0);
    assert_invariants_hold(&db.store).await;
}

async fn the_queue_position_counts_the_unfinished_jobs_ahead(engine: Engine) {
    let db = TestDb::new(engine).await;
    let first = user_with(&db.store, 1, 10).await;
    let second = user_with(&db.store, 2, 10).await;

    let earlier = place(&db.store, first, 3).await;
    let later = place(&db.store, second, 1).await;

    assert_eq!(db.store.jobs_ahead_of(earlier.order_id).await.unwrap(), 0);
    assert_eq!(db.store.jobs_ahead_of(later.order_id).await.unwrap(), 3);
    let distinct: HashSet<_> = earlier.job_ids.iter().chain(&later.job_ids).collect();
    assert_eq!(distinct.len(), 4);
}
