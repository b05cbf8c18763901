//! Faults of KIE's answers that must not cost the user twice or lose a paid video: a success
//! without a URL, a task that finished while no worker looked, an hour-long Retry-After.

use std::time::Duration;

use neurocards::domain::generation::KieApi;
use neurocards::domain::{ErrorClass, JobStatus};
use neurocards::kie::KieClient;
use neurocards::store::Engine;
use secrecy::SecretString;

use super::rig::{Rig, JPEG};
use crate::harness::default_spec;

crate::both_engines!(
    a_success_without_a_url_is_refunded_without_a_second_task,
    a_job_resumed_after_its_deadline_asks_kie_and_delivers,
    telegram_refusing_connections_delays_the_video_but_delivers_it_once,
    a_job_interrupted_while_delivering_is_kept_unconfirmed_not_refunded,
    a_stopped_worker_creates_no_new_task_and_the_next_one_finishes_the_order,
);

async fn a_success_without_a_url_is_refunded_without_a_second_task(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(801, 3, "en").await;
    let placed = rig.order(user, 1, "a mug #nourl").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    let job = rig.store().job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_class, Some(ErrorClass::Unknown));
    assert_eq!(
        rig.kie.create_task_calls(),
        1,
        "KIE charged for the first task: no second one"
    );
    let reads = rig
        .kie
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/recordInfo"))
        .count();
    assert!(
        reads >= 3,
        "the record was read again before giving up: {reads}"
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 3, "refunded");
    rig.assert_sound().await;
}

async fn a_job_resumed_after_its_deadline_asks_kie_and_delivers(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(802, 3, "en").await;
    let placed = rig.order(user, 1, "a mug").await;

    // The task was created by a worker that died; it finished while nobody followed it.
    let url = url::Url::parse(&rig.kie.base_url()).expect("emulator URL");
    let client = KieClient::new(url.clone(), url, Duration::from_secs(2)).expect("client");
    let key = SecretString::from("test-key");
    let image = client
        .upload(&key, JPEG.to_vec(), "a.jpg", "image/jpeg")
        .await
        .expect("upload");
    let request = default_spec().create_request("a mug", &image, None);
    let task = client.create_task(&key, &request).await.expect("a task");
    loop {
        let state = client
            .task_state(&key, KieApi::Market, &task)
            .await
            .expect("a state");
        if matches!(state, neurocards::kie::wire::TaskState::Succeeded { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let two_hours_ago = rig.store().clock().now_millis() - 2 * 3600 * 1000;
    sqlx::query(
        "UPDATE jobs SET status = 'generating', kie_task_id = $2, kie_key_id = 'key-test-key',
                         submit_started_at = $3 WHERE id = $1",
    )
    .bind(placed.job_ids[0].0)
    .bind(task.as_str())
    .bind(two_hours_ago)
    .execute(rig.store().pool())
    .await
    .expect("rewinding the job");

    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    assert_eq!(
        rig.job_statuses(placed.order_id).await,
        [JobStatus::Delivered],
        "past its deadline, KIE was asked once more"
    );
    assert_eq!(rig.videos(user.0).len(), 1);
    assert_eq!(rig.kie.create_task_calls(), 1, "no second task");
    assert_eq!(
        rig.store().balance(user).await.unwrap(),
        2,
        "charged, not refunded"
    );
    rig.assert_sound().await;
}

async fn telegram_refusing_connections_delays_the_video_but_delivers_it_once(engine: Engine) {
    let kie = emulators::kie::KieConfig {
        stage_delay: Duration::from_millis(700),
        ..super::rig::one_account()
    };
    let mut rig = Rig::with(
        engine,
        kie,
        super::rig::fast_config(),
        neurocards::store::StoreOptions::default(),
    )
    .await;
    let user = rig.user(804, 3, "en").await;
    let placed = rig.order(user, 1, "a mug").await;
    rig.spawn_worker().await;
    // Once the task runs, Telegram goes away for a while: the finished video meets it down.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while rig.kie.tasks().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no task was created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Longer than three quick tries: the old policy gave up and refunded after 6 s.
    rig.telegram.refuse_connections_for(Duration::from_secs(10));
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(40))
        .await;
    let job = rig.store().job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Delivered);
    assert!(
        job.tg_message_id.is_some(),
        "confirmed once Telegram was back: {job:?}"
    );
    assert_eq!(rig.videos(user.0).len(), 1, "delivered exactly once");
    assert_eq!(rig.store().balance(user).await.unwrap(), 2);
    rig.assert_sound().await;
}

async fn a_job_interrupted_while_delivering_is_kept_unconfirmed_not_refunded(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(805, 3, "en").await;
    let placed = rig.order(user, 1, "a mug").await;
    // A worker got as far as sending, then stopped (a deploy, a crash): whether the user
    // has the video is unknown.
    let gone = crate::harness::worker(rig.store(), "gone-worker").await;
    let job = rig.store().claim_jobs(&gone, 1).await.unwrap().remove(0);
    rig.store().mark_submit_started(&job.lease).await.unwrap();
    rig.store()
        .record_task(&job.lease, "task_gone", "key-test-key")
        .await
        .unwrap();
    rig.store()
        .mark_delivering(&job.lease, "https://kie.example/v.mp4")
        .await
        .unwrap();
    rig.store().release_job(&job.lease).await.unwrap();

    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    let details = rig.store().job(placed.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(
        details.status,
        JobStatus::Delivered,
        "never refunded: {details:?}"
    );
    assert!(
        details.ledger.is_empty(),
        "no refund row: {:?}",
        details.ledger
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 2);
    assert!(
        rig.videos(user.0).is_empty(),
        "not sent a second time on its own"
    );
    let summary = rig.summaries(user.0).pop().expect("a summary");
    assert!(
        summary
            .text
            .as_deref()
            .is_some_and(|text| text.contains("did not confirm the delivery of video 1")),
        "{summary:?}"
    );
    assert!(
        summary
            .buttons()
            .iter()
            .any(|(_, data)| data == &format!("again:{}", placed.job_ids[0])),
        "{summary:?}"
    );
    rig.assert_sound().await;
}

async fn a_stopped_worker_creates_no_new_task_and_the_next_one_finishes_the_order(engine: Engine) {
    // One create per 3 s: when the worker is stopped, two videos still wait for a slot.
    let kie = emulators::kie::KieConfig {
        create_limit: 1,
        create_window: Duration::from_secs(3),
        stage_delay: Duration::from_millis(300),
        ..super::rig::one_account()
    };
    let mut settings = super::rig::fast_config();
    settings.kie.create_limit = 1;
    settings.kie.create_window = Duration::from_secs(3);
    let mut rig = Rig::with(
        engine,
        kie,
        settings,
        neurocards::store::StoreOptions::default(),
    )
    .await;
    let user = rig.user(806, 3, "en").await;
    let placed = rig.order(user, 3, "a mug").await;
    let first = rig.spawn_worker().await;
    let started = std::time::Instant::now();
    while rig.kie.create_task_calls() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no task was created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.stop_worker(first).await;
    let creates_at_stop = rig.kie.create_task_calls();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        rig.kie.create_task_calls(),
        creates_at_stop,
        "no createTask after the stop"
    );

    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(40))
        .await;
    assert_eq!(
        rig.job_statuses(placed.order_id).await,
        [JobStatus::Delivered; 3]
    );
    assert_eq!(
        rig.kie.create_task_calls(),
        3,
        "one task per video, none twice"
    );
    assert_eq!(rig.videos(user.0).len(), 3);
    assert_eq!(rig.store().balance(user).await.unwrap(), 0);
    rig.assert_sound().await;
}
