//! Workers that die or stop in the middle of a job.

use std::time::Duration;

use neurocards::domain::JobStatus;
use neurocards::store::{Engine, StoreOptions};

use super::rig::{fast_config, one_account, Rig};

crate::both_engines!(
    a_crashed_workers_job_is_finished_by_another_without_a_second_task,
    a_stopped_worker_hands_its_jobs_back_at_once,
    a_worker_restarted_under_its_id_resumes_its_jobs_at_once,
);

async fn a_crashed_workers_job_is_finished_by_another_without_a_second_task(engine: Engine) {
    let options = StoreOptions {
        worker_dead_after: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let mut rig = Rig::with(engine, one_account(), fast_config(), options).await;
    rig.user(super::rig::ADMIN_ID, 0, "en").await;
    let user = rig.user(801, 1, "en").await;
    let order = rig.order(user, 1, "a teapot #slow=3").await;
    let first = rig.spawn_worker().await;
    wait_for_status(&rig, order.job_ids[0], JobStatus::Generating).await;

    rig.crash_worker(first);
    rig.spawn_worker().await;
    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;

    assert_eq!(
        rig.kie.create_task_calls(),
        1,
        "the second worker followed the stored task"
    );
    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered]
    );
    assert_eq!(rig.videos(user.0).len(), 1, "the video was sent once");
    assert_eq!(rig.summaries(user.0).len(), 1, "the summary was sent once");
    let alerts = rig.texts(super::rig::ADMIN_ID);
    assert!(
        alerts.iter().any(|text| text.contains("1 of its jobs")),
        "the admins hear of the lost worker: {alerts:?}"
    );
    rig.assert_sound().await;
}

async fn a_stopped_worker_hands_its_jobs_back_at_once(engine: Engine) {
    // Dead workers are noticed only after a minute here: the hand-back must not wait for it.
    let options = StoreOptions {
        worker_dead_after: Duration::from_secs(60),
        ..StoreOptions::default()
    };
    let mut rig = Rig::with(engine, one_account(), fast_config(), options).await;
    let user = rig.user(802, 1, "en").await;
    let order = rig.order(user, 1, "a teapot #slow=3").await;
    let first = rig.spawn_worker().await;
    wait_for_status(&rig, order.job_ids[0], JobStatus::Generating).await;

    rig.stop_worker(first).await;
    let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.locked_by, None, "handed back: {job:?}");
    assert_eq!(job.status, JobStatus::Generating);
    rig.spawn_worker().await;
    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    assert_eq!(rig.kie.create_task_calls(), 1);
    assert_eq!(rig.videos(user.0).len(), 1);
    rig.assert_sound().await;
}

async fn a_worker_restarted_under_its_id_resumes_its_jobs_at_once(engine: Engine) {
    // Peers would take a minute to presume it dead: the restart must not wait for that.
    let options = StoreOptions {
        worker_dead_after: Duration::from_secs(60),
        ..StoreOptions::default()
    };
    let settings = neurocards::config::Config {
        worker_id: Some("host-a-1".to_owned()),
        ..fast_config()
    };
    let mut rig = Rig::with(engine, one_account(), settings, options).await;
    let user = rig.user(803, 1, "en").await;
    let order = rig.order(user, 1, "a teapot #slow=3").await;
    let first = rig.spawn_worker().await;
    wait_for_status(&rig, order.job_ids[0], JobStatus::Generating).await;

    rig.crash_worker(first);
    rig.spawn_worker().await;
    // Well inside the minute after which a peer would take the job over.
    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;
    assert_eq!(
        rig.kie.create_task_calls(),
        1,
        "the stored task was followed"
    );
    assert_eq!(rig.videos(user.0).len(), 1);
    rig.assert_sound().await;
}

async fn wait_for_status(rig: &Rig, job: neurocards::domain::JobId, status: JobStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let current = rig.store().job(job).await.unwrap().unwrap().status;
        if current == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {job} stuck in {current}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
