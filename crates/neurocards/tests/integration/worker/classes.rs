//! Each error class ends with its action: a refund and the user told why, in their language.

use std::time::Duration;

use emulators::kie::{KieAccount, KieConfig};
use neurocards::domain::{ErrorClass, JobStatus};
use neurocards::store::{Engine, KeyState, StoreOptions};

use super::rig::{fast_config, one_account, Rig};

crate::both_engines!(
    a_content_violation_is_refunded_at_once_with_its_reason,
    every_class_ends_in_one_refund_and_its_own_message,
    a_temporary_failure_twice_succeeds_on_the_third_attempt,
    exhausted_retries_refund_exactly_once,
    a_402_on_one_key_moves_the_video_to_another_key,
    when_every_key_is_out_of_credit_the_video_is_refunded,
    a_create_that_may_have_reached_kie_is_never_replayed,
    a_task_that_never_ends_is_refunded_after_the_poll_timeout,
    a_file_that_is_not_an_image_is_refunded_with_a_hint,
    the_summary_comes_after_every_video_and_every_failure_notice,
);

async fn a_content_violation_is_refunded_at_once_with_its_reason(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(601, 1, "ru").await;
    let order = rig.order(user, 1, "a mug #violation").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    assert_eq!(rig.job_statuses(order.order_id).await, [JobStatus::Failed]);
    assert_eq!(
        rig.store().balance(user).await.unwrap(),
        1,
        "the credit came back"
    );
    let texts = rig.texts(user.0);
    assert!(
        texts[0].starts_with("Видео 1 из 1 не создано: сервис отклонил фото или описание"),
        "{texts:?}"
    );
    assert!(texts[1].contains("Возвращено кредитов: 1."), "{texts:?}");
    assert!(texts[1].contains("отклонено модерацией: 1"), "{texts:?}");
    assert_eq!(rig.kie.create_task_calls(), 1, "a violation is not retried");
    assert!(rig.videos(user.0).is_empty());
    rig.assert_sound().await;
}

async fn every_class_ends_in_one_refund_and_its_own_message(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let cases = [
        (
            611,
            "#people",
            ErrorClass::UserViolation,
            "the service refused the photo",
        ),
        (
            613,
            "#http429",
            ErrorClass::RateLimit,
            "overloaded right now",
        ),
        (
            614,
            "#temporary",
            ErrorClass::Temporary,
            "temporary service error",
        ),
        (615, "#unknown", ErrorClass::Unknown, "unexpected error"),
    ];
    let mut orders = Vec::new();
    for (id, marker, class, _) in &cases {
        let user = rig.user(*id, 1, "en").await;
        orders.push((
            user,
            rig.order(user, 1, &format!("a lamp {marker}")).await,
            *class,
        ));
    }
    rig.spawn_worker().await;

    for ((user, order, class), (_, marker, _, message)) in orders.iter().zip(&cases) {
        rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
            .await;
        let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed, "{marker}");
        assert_eq!(job.error_class, Some(*class), "{marker}: {job:?}");
        assert_eq!(
            job.ledger.iter().filter(|entry| entry.delta == 1).count(),
            1,
            "{marker}"
        );
        assert_eq!(rig.store().balance(*user).await.unwrap(), 1, "{marker}");
        let texts = rig.texts(user.0);
        assert_eq!(
            texts.len(),
            2,
            "one failure message and one summary for {marker}: {texts:?}"
        );
        assert!(texts[0].contains(message), "{marker}: {texts:?}");
    }
    rig.assert_sound().await;
}

async fn a_temporary_failure_twice_succeeds_on_the_third_attempt(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(621, 1, "en").await;
    let order = rig.order(user, 1, "a vase #temporary*2").await;
    let started = std::time::Instant::now();
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;

    let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Delivered);
    assert_eq!(
        job.attempts, 2,
        "two failed attempts before the third succeeded"
    );
    assert_eq!(rig.kie.create_task_calls(), 3);
    assert_eq!(rig.videos(user.0).len(), 1);
    assert_eq!(
        rig.store().balance(user).await.unwrap(),
        0,
        "nothing refunded"
    );
    // The retries waited their backoff, 200 ms then 400 ms, each at least 75 % of it.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rig.kie.tasks().len(), 3);
    assert_eq!(
        rig.texts(user.0),
        ["Videos made: 1 of 1.\nBalance: 0 credits."]
    );
    rig.assert_sound().await;
}

async fn exhausted_retries_refund_exactly_once(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(631, 2, "en").await;
    let order = rig.order(user, 2, "a chair #http500").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;

    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Failed; 2]
    );
    assert_eq!(
        rig.kie.create_task_calls(),
        6,
        "3 attempts for each of 2 videos"
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 2);
    let refunds: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'")
        .fetch_one(rig.store().pool())
        .await
        .unwrap();
    assert_eq!(refunds, 2);
    assert_eq!(rig.summaries(user.0).len(), 1);
    rig.assert_sound().await;
}

async fn a_402_on_one_key_moves_the_video_to_another_key(engine: Engine) {
    let kie = KieConfig {
        accounts: vec![
            KieAccount {
                name: "empty".into(),
                keys: vec!["a".into()],
                credits: 0,
            },
            KieAccount {
                name: "full".into(),
                keys: vec!["b".into()],
                credits: 100,
            },
        ],
        ..one_account()
    };
    let mut rig = Rig::with(engine, kie, fast_config(), StoreOptions::default()).await;
    let user = rig.user(641, 2, "en").await;
    let order = rig.order(user, 2, "a backpack").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;

    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered; 2]
    );
    for job_id in &order.job_ids {
        let job = rig.store().job(*job_id).await.unwrap().unwrap();
        assert_eq!(job.kie_key_id.as_deref(), Some("key-b"), "{job:?}");
    }
    let health = rig.store().key_health().await.unwrap();
    let a = health
        .iter()
        .find(|key| key.key_id == "key-a")
        .expect("key a");
    assert_eq!(a.state, KeyState::Disabled, "{a:?}");
    assert!(
        a.reason.as_deref().unwrap_or_default().contains("402"),
        "{a:?}"
    );
    let b = health
        .iter()
        .find(|key| key.key_id == "key-b")
        .expect("key b");
    assert_eq!(b.state, KeyState::Healthy);
    assert_eq!(rig.store().balance(user).await.unwrap(), 0);
    rig.assert_sound().await;
}

async fn when_every_key_is_out_of_credit_the_video_is_refunded(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(645, 1, "en").await;
    let order = rig.order(user, 1, "a scarf #billing").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_class, Some(ErrorClass::Billing));
    let texts = rig.texts(user.0);
    assert!(texts[0].contains("please contact support"), "{texts:?}");
    assert_eq!(rig.store().balance(user).await.unwrap(), 1);
    let health = rig.store().key_health().await.unwrap();
    assert_eq!(health[0].state, KeyState::Disabled, "{health:?}");
    rig.assert_sound().await;
}

async fn a_create_that_may_have_reached_kie_is_never_replayed(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let hanging = rig.user(651, 1, "en").await;
    let malformed = rig.user(652, 1, "en").await;
    let first = rig.order(hanging, 1, "a clock #hang").await;
    let second = rig.order(malformed, 1, "a clock #malformed").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(first.order_id, Duration::from_secs(30))
        .await;
    rig.wait_until_summarised(second.order_id, Duration::from_secs(30))
        .await;

    assert_eq!(
        rig.kie.create_task_calls(),
        2,
        "each ambiguous create was sent once"
    );
    for (user, order) in [(hanging, &first), (malformed, &second)] {
        let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        assert_eq!(job.attempts, 0, "not retried: {job:?}");
        assert_eq!(rig.store().balance(user).await.unwrap(), 1);
    }
    rig.assert_sound().await;
}

async fn a_task_that_never_ends_is_refunded_after_the_poll_timeout(engine: Engine) {
    let settings = neurocards::config::Config {
        poll_timeout: Duration::from_secs(2),
        ..fast_config()
    };
    let mut rig = Rig::with(engine, one_account(), settings, StoreOptions::default()).await;
    let user = rig.user(661, 1, "en").await;
    let order = rig.order(user, 1, "a hat #slow=600").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    let job = rig.store().job(order.job_ids[0]).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_class, Some(ErrorClass::Unknown));
    assert!(job
        .error_message
        .unwrap_or_default()
        .contains("no result within 2s"));
    assert_eq!(rig.store().balance(user).await.unwrap(), 1);
    assert_eq!(rig.kie.create_task_calls(), 1);
    rig.assert_sound().await;
}

async fn a_file_that_is_not_an_image_is_refunded_with_a_hint(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(671, 1, "en").await;
    let order = rig
        .order_with_photo(user, 1, "a pen", b"%PDF-1.7 not an image".to_vec())
        .await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    assert_eq!(rig.job_statuses(order.order_id).await, [JobStatus::Failed]);
    let texts = rig.texts(user.0);
    assert!(
        texts[0].contains("the photo could not be read"),
        "{texts:?}"
    );
    assert!(texts[0].contains("10 MB"), "{texts:?}");
    assert_eq!(rig.kie.create_task_calls(), 0);
    assert_eq!(rig.store().balance(user).await.unwrap(), 1);
    rig.assert_sound().await;
}

async fn the_summary_comes_after_every_video_and_every_failure_notice(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(611, 9, "en").await;
    rig.spawn_worker().await;
    // The first task is refused, the others are made: the refusal and the last video race
    // to finish the order, whose summary must still be its last message.
    for prompt in [
        "a mug #violation*1",
        "a cup #violation*1",
        "a vase #violation*1",
    ] {
        let order = rig.order(user, 3, prompt).await;
        rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
            .await;
        // Anything still on its way would arrive within this pause.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = rig.telegram.sent(user.0);
        let last = sent.last().expect("messages");
        assert!(
            last.buttons()
                .iter()
                .any(|(_, data)| *data == format!("more:{}", order.order_id)),
            "the summary is not the last message: {sent:#?}"
        );
        let texts: Vec<String> = sent.iter().filter_map(|m| m.text.clone()).collect();
        assert!(
            texts.iter().any(|text| text.contains(" of 3 was not made")),
            "{texts:?}"
        );
    }
}
