//! The alerts the workers raise from what they read: the share of failed videos, and a KIE
//! account running out of credits (and a key taken out for want of credits coming back once
//! the account is topped up).

use std::time::Duration;

use neurocards::store::{Engine, KeyState, StoreOptions};

use super::rig::{fast_config, one_account, Rig, ADMIN_ID};

crate::both_engines!(
    the_admins_hear_once_when_most_videos_fail_and_refused_photos_do_not_count,
    the_admins_hear_of_low_kie_credits_and_a_key_comes_back_after_a_top_up,
);

/// Waits until `enough` holds for the admin's messages; returns them.
async fn admin_texts(rig: &Rig, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let texts = rig.texts(ADMIN_ID);
        if enough(&texts) {
            return texts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin never got it: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_admins_hear_once_when_most_videos_fail_and_refused_photos_do_not_count(
    engine: Engine,
) {
    let mut rig = Rig::with(
        engine,
        one_account(),
        fast_config(),
        StoreOptions::default(),
    )
    .await;
    rig.user(ADMIN_ID, 0, "en").await;
    let user = rig.user(601, 15, "en").await;
    // Five photos the provider refuses first: finished, not failed, and no alert.
    let refused = rig.order(user, 5, "a mug #violation").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(refused.order_id, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!rig
        .texts(ADMIN_ID)
        .iter()
        .any(|text| text.contains("videos failed")));

    for prompt in ["a mug #unknown", "a cup #unknown"] {
        let order = rig.order(user, 5, prompt).await;
        rig.wait_until_summarised(order.order_id, Duration::from_secs(60))
            .await;
    }
    let texts = admin_texts(&rig, |texts| {
        texts.iter().any(|text| text.contains("videos failed"))
    })
    .await;
    let told = texts
        .iter()
        .find(|text| text.contains("videos failed"))
        .expect("the alert");
    // Told as soon as more than half of at least ten failed: "N of the last M videos",
    // where the five refused photos are among the M and not among the N.
    let numbers: Vec<i64> = told
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    let (failed, finished) = (numbers[0], numbers[1]);
    assert_eq!(finished - failed, 5, "{told}");
    assert!(failed * 2 > finished && finished >= 10, "{told}");
    // More heartbeats see the same share: ALERT_EVERY (15 min) lets one out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let told = rig
        .texts(ADMIN_ID)
        .into_iter()
        .filter(|text| text.contains("videos failed"))
        .count();
    assert_eq!(told, 1);
    assert_eq!(rig.store().balance(user).await.unwrap(), 15, "all refunded");
}

async fn the_admins_hear_of_low_kie_credits_and_a_key_comes_back_after_a_top_up(engine: Engine) {
    let mut config = fast_config();
    config.kie_low_credits = 500;
    config.kie_credit_check_every = Duration::from_millis(200);
    let mut rig = Rig::with(engine, one_account(), config, StoreOptions::default()).await;
    rig.user(ADMIN_ID, 0, "en").await;
    rig.kie.set_credits("main", 120);
    rig.spawn_worker().await;
    admin_texts(&rig, |texts| {
        texts
            .iter()
            .any(|text| text.contains("KIE account main has 120 credits left"))
    })
    .await;

    // The account runs dry: KIE answers 402 and the key leaves the rotation.
    let user = rig.user(602, 1, "en").await;
    let order = rig.order(user, 1, "a vase #billing").await;
    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;
    let disabled = |health: &[neurocards::store::KeyHealth]| {
        health.iter().all(|key| key.state == KeyState::Disabled)
    };
    assert!(disabled(&rig.store().key_health().await.unwrap()));
    // Still below the alert level: it stays out, however often the credits are read.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(disabled(&rig.store().key_health().await.unwrap()));
    assert!(rig.store().generation_paused().await.unwrap());

    rig.kie.set_credits("main", 10_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while disabled(&rig.store().key_health().await.unwrap()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!rig.store().generation_paused().await.unwrap());
    let low = rig
        .texts(ADMIN_ID)
        .into_iter()
        .filter(|text| text.contains("credits left"))
        .count();
    assert_eq!(low, 1, "once per ALERT_EVERY");
}
