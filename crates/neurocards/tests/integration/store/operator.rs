//! `admin requeue` and `admin user` as the store does them.

use neurocards::domain::{ErrorClass, JobStatus};
use neurocards::store::{Delivery, Engine, Requeue, StoreError};

use crate::harness::{assert_invariants_hold, place, user_with, worker, TestDb};

crate::both_engines!(
    a_job_is_requeued_only_where_that_cannot_make_a_second_task_or_a_second_video,
    a_users_orders_are_listed_newest_first_with_their_videos,
    cancel_refunds_exactly_the_videos_not_yet_at_kie,
);

async fn a_job_is_requeued_only_where_that_cannot_make_a_second_task_or_a_second_video(
    engine: Engine,
) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 5).await;
    let placed = place(&db.store, user, 5).await;
    let stuck = worker(&db.store, "stuck").await;
    let jobs = db.store.claim_jobs(&stuck, 5).await.unwrap();
    let [queued, generating, submitting, delivering, failed] = jobs.as_slice() else {
        panic!("five jobs: {jobs:?}");
    };
    for job in [generating, submitting, delivering, failed] {
        db.store.mark_submit_started(&job.lease).await.unwrap();
    }
    for job in [generating, delivering] {
        db.store
            .record_task(
                &job.lease,
                &format!("task-{}", job.lease.job_id),
                "KIE_API_KEY",
            )
            .await
            .unwrap();
    }
    db.store
        .mark_delivering(&delivering.lease, "https://kie/v.mp4")
        .await
        .unwrap();
    db.store
        .fail_job(&failed.lease, ErrorClass::Unknown, "gone")
        .await
        .unwrap();

    let requeue = |job: &neurocards::store::ClaimedJob| db.store.requeue_job(job.lease.job_id);
    assert_eq!(
        requeue(queued).await.unwrap(),
        Requeue::Requeued(JobStatus::Queued)
    );
    assert_eq!(
        requeue(generating).await.unwrap(),
        Requeue::Requeued(JobStatus::Generating)
    );
    assert_eq!(
        requeue(submitting).await.unwrap(),
        Requeue::Refused(JobStatus::Submitting)
    );
    assert_eq!(
        requeue(delivering).await.unwrap(),
        Requeue::Refused(JobStatus::Delivering)
    );
    assert_eq!(
        requeue(failed).await.unwrap(),
        Requeue::Refused(JobStatus::Failed)
    );
    let unknown = db.store.requeue_job(neurocards::domain::JobId(9_999)).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownJob(_))),
        "{unknown:?}"
    );

    // The old holder's lease on the requeued jobs is void; another worker takes them with
    // their task.
    let late = db.store.mark_submit_started(&queued.lease).await;
    assert!(matches!(late, Err(StoreError::StaleLease(_))), "{late:?}");
    let fresh = worker(&db.store, "fresh").await;
    let taken = db.store.claim_jobs(&fresh, 5).await.unwrap();
    let mut ids: Vec<_> = taken.iter().map(|job| job.lease.job_id).collect();
    ids.sort();
    assert_eq!(ids, [queued.lease.job_id, generating.lease.job_id]);
    let resumed = taken
        .iter()
        .find(|job| job.lease.job_id == generating.lease.job_id)
        .unwrap();
    assert_eq!(
        resumed.kie_task_id.as_deref(),
        Some(format!("task-{}", generating.lease.job_id).as_str())
    );
    // The refused ones are untouched: still held by their worker.
    assert_eq!(db.store.held_jobs(&stuck).await.unwrap().len(), 2);
    db.store
        .mark_delivered(&delivering.lease, &Delivery::default())
        .await
        .unwrap();
    assert_eq!(placed.job_ids.len(), 5);
    assert_invariants_hold(&db.store).await;
}

async fn a_users_orders_are_listed_newest_first_with_their_videos(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 4).await;
    let first = place(&db.store, user, 1).await;
    let second = place(&db.store, user, 3).await;
    let w = worker(&db.store, "w").await;
    let jobs = db.store.claim_jobs(&w, 4).await.unwrap();
    let job = jobs
        .iter()
        .find(|job| job.lease.job_id == second.job_ids[0])
        .unwrap();
    db.store
        .fail_job(&job.lease, ErrorClass::Unknown, "gone")
        .await
        .unwrap();

    let orders = db.store.orders_of(user, 0, 10).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].id, second.order_id);
    assert_eq!(
        (orders[0].videos, orders[0].delivered, orders[0].failed),
        (3, 0, 1)
    );
    assert_eq!(orders[1].id, first.order_id);
    assert_eq!(
        (orders[1].videos, orders[1].delivered, orders[1].failed),
        (1, 0, 0)
    );
    let user = db.store.user(user).await.unwrap().unwrap();
    assert_eq!(user.unreachable_at, None);
}

async fn cancel_refunds_exactly_the_videos_not_yet_at_kie(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 4).await;
    let placed = place(&db.store, user, 4).await;
    let w = worker(&db.store, "w").await;
    let jobs = db.store.claim_jobs(&w, 2).await.unwrap();
    // The first is at KIE; the second is held but its createTask has not begun.
    db.store.mark_submit_started(&jobs[0].lease).await.unwrap();

    let stranger = user_with(&db.store, 2, 0).await;
    let none = db
        .store
        .cancel_pending(placed.order_id, stranger)
        .await
        .unwrap();
    assert!(none.seqs.is_empty(), "not theirs");

    let cancelled = db
        .store
        .cancel_pending(placed.order_id, user)
        .await
        .unwrap();
    assert_eq!(cancelled.seqs, [2, 3, 4]);
    assert_eq!((cancelled.credits, cancelled.balance), (3, 3));
    // The holder of the second finds its lease gone before it could create a task.
    let late = db.store.mark_submit_started(&jobs[1].lease).await;
    assert!(matches!(late, Err(StoreError::StaleLease(_))), "{late:?}");
    // Cancelling again cancels nothing more.
    let again = db
        .store
        .cancel_pending(placed.order_id, user)
        .await
        .unwrap();
    assert!(again.seqs.is_empty());
    assert_eq!(again.balance, 3);
    let details = db.store.job(placed.job_ids[3]).await.unwrap().unwrap();
    assert_eq!(details.status, JobStatus::Failed);
    assert_eq!(details.error_class, Some(ErrorClass::Cancelled));
    assert_invariants_hold(&db.store).await;
}
