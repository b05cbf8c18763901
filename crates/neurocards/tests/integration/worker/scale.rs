//! A burst of orders stays inside KIE's limits by itself.

use std::time::Duration;

use emulators::kie::KieConfig;
use neurocards::domain::JobStatus;
use neurocards::store::{Engine, StoreOptions};

use super::rig::{fast_config, one_account, Rig};

crate::both_engines!(a_burst_of_100_videos_on_one_account_never_hits_a_rate_limit);

/// Two workers stand for two processes: the account's limit is shared through the database,
/// not doubled.
async fn a_burst_of_100_videos_on_one_account_never_hits_a_rate_limit(engine: Engine) {
    // KIE's 20 creates per 10 s, compressed to 20 per second so the test takes seconds.
    let kie = KieConfig {
        create_window: Duration::from_secs(1),
        stage_delay: Duration::from_millis(100),
        ..one_account()
    };
    let mut settings = fast_config();
    settings.kie.create_window = Duration::from_secs(1);
    let mut rig = Rig::with(engine, kie, settings, StoreOptions::default()).await;
    let mut orders = Vec::new();
    for id in 0..20 {
        let user = rig.user(900 + id, 5, "en").await;
        orders.push(rig.order(user, 5, "a bottle").await);
    }
    rig.spawn_worker().await;
    rig.spawn_worker().await;

    for order in &orders {
        rig.wait_until_summarised(order.order_id, Duration::from_secs(60))
            .await;
    }

    for order in &orders {
        assert_eq!(
            rig.job_statuses(order.order_id).await,
            [JobStatus::Delivered; 5]
        );
    }
    assert_eq!(rig.kie.create_task_calls(), 100);
    assert_eq!(rig.kie.rate_limited(), 0, "no 429 from KIE");
    let peak = rig.kie.max_creates_in_window("main");
    assert!(peak <= 20, "at most 20 creates in any window, saw {peak}");
    rig.assert_sound().await;
}
