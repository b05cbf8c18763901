use std::collections::HashSet;
use std::time::Duration;

use neurocards::domain::{ErrorClass, JobId, JobStatus};
use neurocards::store::{Delivery, Engine, Lease, StoreError, StoreOptions};

use crate::harness::{assert_invariants_hold, held_by_user, place, user_with, worker, TestDb};

crate::both_engines!(
    claims_take_due_jobs_in_creation_order_under_one_fresh_token,
    a_retried_job_is_not_claimed_before_its_time,
    eight_concurrent_claimers_claim_each_of_1000_jobs_exactly_once,
    the_per_user_limit_holds_while_other_users_are_served,
    the_per_user_limit_holds_under_concurrent_claimers,
    a_user_with_a_long_queue_holds_the_others_back_only_until_their_limit,
    a_job_moves_only_forward_through_its_phases,
    a_retry_requeues_the_job_without_its_old_task,
    failing_a_job_refunds_its_credit_once,
    a_concurrent_double_refund_makes_exactly_one_ledger_row,
    the_schema_refuses_a_second_refund_of_a_job,
    a_released_job_comes_back_as_it_stands,
    writes_with_a_forged_token_change_nothing,
    a_move_tried_again_after_its_answer_was_lost_counts_as_made,
);

async fn claims_take_due_jobs_in_creation_order_under_one_fresh_token(engine: Engine) {
    let db = TestDb::new(engine).await;
    let first = user_with(&db.store, 1, 10).await;
    let second = user_with(&db.store, 2, 10).await;
    let a = place(&db.store, first, 2).await;
    let b = place(&db.store, second, 2).await;
    let w = worker(&db.store, "w1").await;

    let claimed = db.store.claim_jobs(&w, 3).await.unwrap();
    let again = db.store.claim_jobs(&w, 3).await.unwrap();

    let ids: Vec<JobId> = claimed.iter().map(|job| job.lease.job_id).collect();
    assert_eq!(ids, [a.job_ids[0], a.job_ids[1], b.job_ids[0]]);
    assert_eq!(claimed[0].status, JobStatus::Queued);
    assert_eq!(claimed[0].chat_id, neurocards::domain::ChatId(1));
    assert_eq!(
        claimed[0].prompt,
        "the product turns slowly on a white table"
    );
    assert!(claimed[0].kie_task_id.is_none());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].lease.job_id, b.job_ids[1]);
    assert_ne!(
        again[0].lease.token, claimed[0].lease.token,
        "every claim has a new token"
    );
    assert!(db.store.claim_jobs(&w, 3).await.unwrap().is_empty());
}

async fn a_retried_job_is_not_claimed_before_its_time(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);

    db.store
        .schedule_retry(
            &job.lease,
            Duration::from_secs(10),
            ErrorClass::Temporary,
            "HTTP 503",
        )
        .await
        .unwrap();

    assert!(db.store.claim_jobs(&w, 1).await.unwrap().is_empty());
    db.clock.advance(Duration::from_secs(9));
    assert!(db.store.claim_jobs(&w, 1).await.unwrap().is_empty());
    db.clock.advance(Duration::from_secs(1));
    let retried = db.store.claim_jobs(&w, 1).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
}

async fn eight_concurrent_claimers_claim_each_of_1000_jobs_exactly_once(engine: Engine) {
    let options = StoreOptions {
        per_user_active_limit: 1000,
        ..StoreOptions::default()
    };
    let db = TestDb::with_options(engine, options).await;
    for id in 1..=20 {
        let user = user_with(&db.store, id, 50).await;
        place(&db.store, user, 50).await;
    }

    let claimers = (0..8).map(|n| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let me = worker(&store, &format!("claimer-{n}")).await;
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_jobs(&me, 25).await.expect("claiming");
                if batch.is_empty() {
                    return mine;
                }
                for job in batch {
                    // Ending the job (not releasing it) keeps it from being claimed again.
                    store
                        .fail_job(&job.lease, ErrorClass::Temporary, "test")
                        .await
                        .expect("ending a claimed job");
                    mine.push(job.lease.job_id);
                }
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers.collect::<Vec<_>>() {
        all.extend(claimer.await.unwrap());
    }

    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len(), 1000, "every job claimed");
    assert_eq!(distinct.len(), 1000, "no job claimed twice");
    let stats = db.store.queue_stats().await.unwrap();
    assert_eq!(stats.due, 0);
    assert_invariants_hold(&db.store).await;
}

async fn the_per_user_limit_holds_while_other_users_are_served(engine: Engine) {
    let db = TestDb::new(engine).await; // limit 5
    let heavy = user_with(&db.store, 1, 20).await;
    let light = user_with(&db.store, 2, 20).await;
    let big = place(&db.store, heavy, 20).await;
    let small = place(&db.store, light, 3).await;
    let w = worker(&db.store, "w1").await;

    let first = db.store.claim_jobs(&w, 10).await.unwrap();

    let ids: HashSet<JobId> = first.iter().map(|job| job.lease.job_id).collect();
    assert_eq!(
        first.len(),
        8,
        "5 of the heavy user, then the light user's 3"
    );
    assert!(small.job_ids.iter().all(|id| ids.contains(id)));
    assert_eq!(held_by_user(&db.store, heavy).await, 5);

    // Two of the heavy user's jobs end: exactly two more of theirs may be claimed.
    for job in first.iter().filter(|job| job.user_id == heavy).take(2) {
        db.store
            .fail_job(&job.lease, ErrorClass::Temporary, "test")
            .await
            .unwrap();
    }
    let second = db.store.claim_jobs(&w, 10).await.unwrap();
    let second_ids: Vec<JobId> = second.iter().map(|job| job.lease.job_id).collect();
    assert_eq!(second_ids, [big.job_ids[5], big.job_ids[6]]);
    assert_eq!(held_by_user(&db.store, heavy).await, 5);
}

async fn a_user_with_a_long_queue_holds_the_others_back_only_until_their_limit(engine: Engine) {
    let db = TestDb::new(engine).await; // limit 5
    let heavy = user_with(&db.store, 1, 600).await;
    let light = user_with(&db.store, 2, 40).await;
    // More due jobs than a claim looks at (it reads a window of the oldest 500).
    place(&db.store, heavy, 520).await;
    let small = place(&db.store, light, 1).await;
    let w = worker(&db.store, "w1").await;

    let mut claimed = Vec::new();
    for _ in 0..4 {
        claimed.extend(db.store.claim_jobs(&w, 2).await.unwrap());
    }

    let light_claimed = claimed
        .iter()
        .any(|job| job.lease.job_id == small.job_ids[0]);
    assert!(
        light_claimed,
        "the light user is served once the heavy one is at the limit"
    );
    assert_eq!(held_by_user(&db.store, heavy).await, 5);
    assert_eq!(claimed.len(), 6);
    assert_invariants_hold(&db.store).await;
}

async fn the_per_user_limit_holds_under_concurrent_claimers(engine: Engine) {
    let db = TestDb::new(engine).await; // limit 5
    let heavy = user_with(&db.store, 1, 20).await;
    let light = user_with(&db.store, 2, 20).await;
    place(&db.store, heavy, 20).await;
    place(&db.store, light, 3).await;

    let claimers = (0..6).map(|n| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let me = worker(&store, &format!("w{n}")).await;
            let mut claimed = 0;
            for _ in 0..5 {
                claimed += store.claim_jobs(&me, 2).await.expect("claiming").len();
            }
            claimed
        })
    });
    let mut total = 0;
    for claimer in claimers.collect::<Vec<_>>() {
        total += claimer.await.unwrap();
    }

    assert_eq!(held_by_user(&db.store, heavy).await, 5);
    assert_eq!(held_by_user(&db.store, light).await, 3);
    assert_eq!(total, 8);
}

async fn a_job_moves_only_forward_through_its_phases(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    let placed = place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);
    let lease = &job.lease;

    let early = db.store.record_task(lease, "task-1", "KIE_API_KEY").await;
    assert!(
        matches!(
            early,
            Err(StoreError::IllegalTransition {
                from: JobStatus::Queued,
                to: JobStatus::Generating,
                ..
            })
        ),
        "a task is recorded only after its submission: {early:?}"
    );

    db.store.mark_submit_started(lease).await.unwrap();
    db.store
        .record_task(lease, "task-1", "KIE_API_KEY")
        .await
        .unwrap();
    db.store
        .mark_delivering(lease, "https://kie/v.mp4")
        .await
        .unwrap();
    let retry = db
        .store
        .schedule_retry(lease, Duration::ZERO, ErrorClass::Temporary, "late")
        .await;
    assert!(
        matches!(
            retry,
            Err(StoreError::IllegalTransition {
                from: JobStatus::Delivering,
                ..
            })
        ),
        "a video that may have been sent is never generated again: {retry:?}"
    );
    let delivery = Delivery {
        message_id: Some(555),
        file_id: Some("video-file-id".to_owned()),
        unconfirmed: false,
    };
    db.store.mark_delivered(lease, &delivery).await.unwrap();

    let stored = db.store.job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Delivered);
    assert_eq!(stored.kie_task_id.as_deref(), Some("task-1"));
    assert_eq!(stored.kie_key_id.as_deref(), Some("KIE_API_KEY"));
    assert_eq!(stored.tg_message_id, Some(555));
    assert_eq!(stored.tg_file_id.as_deref(), Some("video-file-id"));
    assert!(stored.locked_by.is_none() && stored.finished_at.is_some());
    let after = db
        .store
        .fail_job(lease, ErrorClass::Unknown, "too late")
        .await;
    assert!(matches!(after, Err(StoreError::StaleLease(_))), "{after:?}");
    assert_eq!(
        db.store.balance(user).await.unwrap(),
        9,
        "a delivered video is not refunded"
    );
    assert_invariants_hold(&db.store).await;
}

async fn a_retry_requeues_the_job_without_its_old_task(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    let placed = place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);
    db.store.mark_submit_started(&job.lease).await.unwrap();
    db.store
        .record_task(&job.lease, "task-1", "KIE_API_KEY_1")
        .await
        .unwrap();

    db.store
        .schedule_retry(
            &job.lease,
            Duration::ZERO,
            ErrorClass::Temporary,
            "Internal server error",
        )
        .await
        .unwrap();

    let stored = db.store.job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Queued);
    assert_eq!(stored.attempts, 1);
    assert!(stored.kie_task_id.is_none() && stored.submit_started_at.is_none());
    assert_eq!(stored.error_class, Some(ErrorClass::Temporary));
    assert_eq!(
        stored.error_message.as_deref(),
        Some("Internal server error")
    );
    assert!(stored.locked_by.is_none());
    let stale = db.store.mark_submit_started(&job.lease).await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))), "{stale:?}");
    assert_eq!(
        db.store.balance(user).await.unwrap(),
        9,
        "a retry refunds nothing"
    );
    assert_invariants_hold(&db.store).await;
}

async fn failing_a_job_refunds_its_credit_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 3).await;
    let placed = place(&db.store, user, 3).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);

    let refund = db
        .store
        .fail_job(
            &job.lease,
            ErrorClass::UserViolation,
            "This image contains photorealistic people.",
        )
        .await
        .unwrap();
    let again = db
        .store
        .fail_job(&job.lease, ErrorClass::UserViolation, "again")
        .await;

    assert_eq!((refund.credits, refund.balance_after), (1, 1));
    assert!(matches!(again, Err(StoreError::StaleLease(_))), "{again:?}");
    assert_eq!(db.store.balance(user).await.unwrap(), 1);
    let stored = db.store.job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(stored.ledger.len(), 1);
    assert_eq!(stored.ledger[0].delta, 1);
    assert_eq!(stored.ledger[0].reason.as_deref(), Some("USER_VIOLATION"));
    assert_invariants_hold(&db.store).await;
}

async fn a_concurrent_double_refund_makes_exactly_one_ledger_row(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    place(&db.store, user, 10).await;
    let w = worker(&db.store, "w1").await;
    let jobs = db.store.claim_jobs(&w, 5).await.unwrap();

    for job in &jobs {
        let calls = (0..4).map(|_| {
            let store = db.store.clone();
            let lease = job.lease.clone();
            tokio::spawn(async move { store.fail_job(&lease, ErrorClass::Unknown, "twice").await })
        });
        let mut refunded = 0;
        for call in calls.collect::<Vec<_>>() {
            match call.await.unwrap() {
                Ok(_) => refunded += 1,
                Err(StoreError::StaleLease(_)) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(refunded, 1, "job {}", job.lease.job_id);
    }

    let refunds: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(refunds, 5);
    assert_eq!(db.store.balance(user).await.unwrap(), 5);
    assert_invariants_hold(&db.store).await;
}

async fn the_schema_refuses_a_second_refund_of_a_job(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 1).await;
    let placed = place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);
    db.store
        .fail_job(&job.lease, ErrorClass::Unknown, "x")
        .await
        .unwrap();

    // A buggy caller that bypasses the store's fencing still cannot pay twice.
    let second = sqlx::query(
        "INSERT INTO ledger (user_id, delta, kind, order_id, job_id, created_at)
         VALUES ($1, 1, 'refund', $2, $3, 0)",
    )
    .bind(user.0)
    .bind(placed.order_id.0)
    .bind(placed.job_ids[0].0)
    .execute(db.store.pool())
    .await;

    let err = second.expect_err("a second refund row must be refused");
    let db_err = err.as_database_error().expect("a database error");
    assert!(db_err.is_unique_violation(), "{db_err}");
}

async fn a_released_job_comes_back_as_it_stands(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 1).await;
    place(&db.store, user, 1).await;
    let w1 = worker(&db.store, "w1").await;
    let w2 = worker(&db.store, "w2").await;
    let job = db.store.claim_jobs(&w1, 1).await.unwrap().remove(0);
    db.store.mark_submit_started(&job.lease).await.unwrap();
    db.store
        .record_task(&job.lease, "task-9", "KIE_API_KEY_2")
        .await
        .unwrap();

    db.store.release_job(&job.lease).await.unwrap();
    let resumed = db.store.claim_jobs(&w2, 1).await.unwrap().remove(0);

    assert_eq!(resumed.lease.job_id, job.lease.job_id);
    assert_eq!(resumed.status, JobStatus::Generating);
    assert_eq!(resumed.kie_task_id.as_deref(), Some("task-9"));
    assert_eq!(resumed.kie_key_id.as_deref(), Some("KIE_API_KEY_2"));
    let stale = db.store.release_job(&job.lease).await;
    assert!(matches!(stale, Err(StoreError::StaleLease(_))), "{stale:?}");
}

async fn writes_with_a_forged_token_change_nothing(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 1).await;
    let placed = place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    db.store.claim_jobs(&w, 1).await.unwrap();
    let forged = Lease {
        job_id: placed.job_ids[0],
        token: "not-the-token".to_owned(),
    };
    let missing = Lease {
        job_id: JobId(9_999),
        token: "whatever".to_owned(),
    };

    assert!(matches!(
        db.store.mark_submit_started(&forged).await,
        Err(StoreError::StaleLease(_))
    ));
    assert!(matches!(
        db.store.fail_job(&forged, ErrorClass::Unknown, "x").await,
        Err(StoreError::StaleLease(_))
    ));
    assert!(matches!(
        db.store.release_job(&forged).await,
        Err(StoreError::StaleLease(_))
    ));
    assert!(matches!(
        db.store.mark_submit_started(&missing).await,
        Err(StoreError::UnknownJob(_))
    ));
    assert!(matches!(
        db.store.release_job(&missing).await,
        Err(StoreError::UnknownJob(_))
    ));
    let stored = db.store.job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Queued);
    assert_eq!(stored.locked_by.as_deref(), Some("w1"));
    assert_eq!(db.store.balance(user).await.unwrap(), 0);
}

/// A write that committed while its answer was lost is tried again by its holder: finding
/// the move made under its own lease, it goes on instead of giving the job up. Only the
/// same move counts: another task id, or a move the job cannot make, is still refused.
async fn a_move_tried_again_after_its_answer_was_lost_counts_as_made(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 10).await;
    let placed = place(&db.store, user, 1).await;
    let w = worker(&db.store, "w1").await;
    let job = db.store.claim_jobs(&w, 1).await.unwrap().remove(0);
    let lease = &job.lease;

    db.store.mark_submit_started(lease).await.unwrap();
    db.store.mark_submit_started(lease).await.unwrap();
    db.store.record_task(lease, "task-1", "KEY").await.unwrap();
    db.store.record_task(lease, "task-1", "KEY").await.unwrap();
    let other_task = db.store.record_task(lease, "task-2", "KEY").await;
    assert!(
        matches!(
            other_task,
            Err(StoreError::IllegalTransition {
                from: JobStatus::Generating,
                to: JobStatus::Generating,
                ..
            })
        ),
        "a second task is never recorded over the first: {other_task:?}"
    );
    let backwards = db.store.mark_submit_started(lease).await;
    assert!(
        matches!(
            backwards,
            Err(StoreError::IllegalTransition {
                from: JobStatus::Generating,
                to: JobStatus::Submitting,
                ..
            })
        ),
        "{backwards:?}"
    );
    db.store
        .mark_delivering(lease, "https://kie/v.mp4")
        .await
        .unwrap();
    db.store
        .mark_delivering(lease, "https://kie/v.mp4")
        .await
        .unwrap();

    let stored = db.store.job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Delivering);
    assert_eq!(stored.kie_task_id.as_deref(), Some("task-1"));
    assert_eq!(stored.locked_by.as_deref(), Some("w1"));
    let forged = Lease {
        token: "not-the-token".to_owned(),
        ..lease.clone()
    };
    assert!(matches!(
        db.store.mark_delivering(&forged, "https://kie/v.mp4").await,
        Err(StoreError::StaleLease(_))
    ));
}
