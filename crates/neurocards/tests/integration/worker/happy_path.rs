use std::time::Duration;

use emulators::telegram::{SentKind, VideoSource};
use neurocards::domain::JobStatus;
use neurocards::store::Engine;

use super::rig::Rig;

crate::both_engines!(
    three_videos_are_made_delivered_and_summarised_once,
    a_summary_offers_to_top_up_when_no_video_is_affordable,
    the_admins_hear_of_a_stuck_queue_once_per_period
);

async fn three_videos_are_made_delivered_and_summarised_once(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(501, 5, "en").await;
    let order = rig
        .order(user, 3, "a red sneaker turns on a white podium")
        .await;
    rig.spawn_worker().await;

    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;

    assert_eq!(
        rig.job_statuses(order.order_id).await,
        [JobStatus::Delivered; 3]
    );
    let videos = rig.videos(user.0);
    assert_eq!(videos.len(), 3, "each video sent once");
    let mut captions: Vec<_> = videos
        .iter()
        .filter_map(|video| video.text.clone())
        .collect();
    captions.sort();
    assert_eq!(captions, ["Video 1 of 3", "Video 2 of 3", "Video 3 of 3"]);
    for video in &videos {
        let SentKind::Video {
            source: VideoSource::Url(url),
            ..
        } = &video.kind
        else {
            panic!("sent by URL: {video:?}");
        };
        assert!(url.starts_with(&rig.kie.base_url()), "{url}");
    }
    let summaries = rig.summaries(user.0);
    assert_eq!(summaries.len(), 1, "one summary");
    assert_eq!(
        summaries[0].text.as_deref(),
        Some("Videos made: 3 of 3.\nBalance: 2 credits.")
    );
    let markup = summaries[0]
        .reply_markup
        .as_ref()
        .expect("buttons")
        .to_string();
    assert!(
        markup.contains(&format!("more:{}", order.order_id)),
        "{markup}"
    );
    assert!(markup.contains("Main menu"), "{markup}");
    assert!(!markup.contains("m:buy"), "2 credits buy a video: {markup}");
    assert_eq!(rig.kie.create_task_calls(), 3, "one task per video");
    assert_eq!(rig.store().balance(user).await.unwrap(), 2);

    for job_id in &order.job_ids {
        let job = rig.store().job(*job_id).await.unwrap().unwrap();
        assert!(job.kie_task_id.is_some() && job.kie_key_id.as_deref() == Some("key-test-key"));
        assert!(
            job.tg_message_id.is_some() && job.tg_file_id.is_some(),
            "{job:?}"
        );
    }
    // The photo went to KIE's file host under a random name, never as a Telegram URL.
    let tasks = rig.kie.tasks();
    for task in &tasks {
        let image = task.input["image_urls"][0].as_str().expect("an image URL");
        assert!(
            image.starts_with(&format!("{}/files/neurocards/", rig.kie.base_url())),
            "{image}"
        );
        // Kling 2.6 takes exactly these fields; the video's shape is the photo's.
        assert_eq!(task.model, "kling-2.6/image-to-video");
        assert_eq!(task.input["duration"], "5");
        assert_eq!(task.input["sound"], false);
        assert!(task.input.get("aspect_ratio").is_none());
    }
    rig.assert_sound().await;
}

async fn a_summary_offers_to_top_up_when_no_video_is_affordable(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(502, 1, "en").await;
    let order = rig.order(user, 1, "a teapot").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(order.order_id, Duration::from_secs(20))
        .await;
    let summaries = rig.summaries(user.0);
    let markup = summaries[0]
        .reply_markup
        .as_ref()
        .expect("buttons")
        .to_string();
    assert!(
        markup.contains("Top up") && markup.contains("m:buy"),
        "{markup}"
    );
}

async fn the_admins_hear_of_a_stuck_queue_once_per_period(engine: Engine) {
    let mut config = super::rig::fast_config();
    config.worker_concurrency = 1;
    config.queue_alert_age = Duration::from_millis(500);
    let mut rig = Rig::with(
        engine,
        super::rig::one_account(),
        config,
        neurocards::store::StoreOptions::default(),
    )
    .await;
    // The admin has talked to the bot in English: alerts come in their language.
    rig.user(super::rig::ADMIN_ID, 0, "en").await;
    // One slow video holds the only slot; the next order waits in the queue.
    let first = rig.user(503, 1, "en").await;
    let slow = rig.order(first, 1, "a slow teapot #slow=4").await;
    let second = rig.user(504, 1, "en").await;
    let waiting = rig.order(second, 1, "a teapot").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(waiting.order_id, Duration::from_secs(30))
        .await;
    rig.wait_until_summarised(slow.order_id, Duration::from_secs(30))
        .await;
    let stuck: Vec<String> = rig
        .texts(super::rig::ADMIN_ID)
        .into_iter()
        .filter(|text| text.contains("waited"))
        .collect();
    // ALERT_EVERY (15 min) allows one, however many heartbeats saw the queue stuck.
    assert_eq!(stuck.len(), 1, "{stuck:?}");
}
