//! Telegram's side of delivery: a refused URL, a user who blocked the bot.

use std::time::Duration;

use emulators::telegram::{Fault, SentKind, VideoSource};
use neurocards::domain::JobStatus;
use neurocards::store::Engine;

use emulators::telegram::TelegramConfig;
use neurocards::store::StoreOptions;

use super::rig::{fast_config, one_account, Rig};

crate::both_engines!(
    a_video_telegram_cannot_fetch_by_url_is_uploaded,
    a_user_who_blocked_the_bot_is_not_retried_and_not_refunded,
    deliveries_stay_within_telegrams_limits_or_wait_as_told,
);

async fn a_video_telegram_cannot_fetch_by_url_is_uploaded(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(701, 1, "en").await;
    rig.telegram.inject(Fault::RefuseVideoUrl);
    let order = rig.order(user, 1, "a kettle").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    let videos = rig.videos(user.0);
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert!(
        matches!(&videos[0].kind, SentKind::Video { source: VideoSource::Upload { bytes, .. }, .. } if *bytes > 0),
        "{videos:?}"
    );
    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered]
    );
    rig.assert_sound().await;
}

async fn a_user_who_blocked_the_bot_is_not_retried_and_not_refunded(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(702, 2, "en").await;
    rig.telegram.inject(Fault::Blocked { chat_id: user.0 });
    let order = rig.order(user, 2, "a kettle").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered; 2]
    );
    for job_id in &order.job_ids {
        let job = rig.store().job(*job_id).await.unwrap().unwrap();
        assert_eq!(
            job.tg_message_id, None,
            "recorded as undeliverable: {job:?}"
        );
    }
    let sends = rig
        .telegram
        .calls()
        .iter()
        .filter(|call| call.method == "sendVideo")
        .count();
    assert_eq!(sends, 2, "one try per video, no retry loop");
    assert!(
        rig.store().is_unreachable(user).await.unwrap(),
        "the user is marked unreachable"
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 0);
    rig.assert_sound().await;
}

async fn deliveries_stay_within_telegrams_limits_or_wait_as_told(engine: Engine) {
    // Telegram allows about one message a second per chat: five videos and their messages
    // to one user all arrive, none is dropped and nothing is refunded.
    let telegram = TelegramConfig {
        enforce_limits: true,
        ..TelegramConfig::default()
    };
    let mut rig = Rig::with_telegram(
        engine,
        one_account(),
        fast_config(),
        StoreOptions::default(),
        telegram,
    )
    .await;
    let user = rig.user(703, 5, "en").await;
    let order = rig.order(user, 5, "a lamp").await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(40))
        .await;

    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered; 5]
    );
    assert_eq!(rig.videos(user.0).len(), 5);
    assert_eq!(rig.summaries(user.0).len(), 1);
    assert_eq!(rig.store().balance(user).await.unwrap(), 0);
    rig.assert_sound().await;
}
