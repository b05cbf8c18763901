//! The KIE client against the KIE emulator: every endpoint, and failures reported as the facts
//! the classifier needs.

use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use neurocards::domain::generation::KieApi;
use neurocards::domain::retry::KeyVerdict;
use neurocards::domain::ErrorClass;
use neurocards::kie::wire::TaskState;
use neurocards::kie::KieClient;
use secrecy::SecretString;

use crate::harness::default_spec;
use crate::worker::rig::JPEG;

async fn emulator() -> (KieEmulator, KieClient) {
    let kie = KieEmulator::start(KieConfig {
        stage_delay: Duration::from_millis(50),
        ..KieConfig::default()
    })
    .await
    .expect("starting the KIE emulator");
    let url = url::Url::parse(&kie.base_url()).expect("emulator URL");
    let client = KieClient::new(url.clone(), url, Duration::from_secs(2)).expect("client");
    (kie, client)
}

#[tokio::test]
async fn a_photo_is_uploaded_a_task_created_followed_and_its_video_fetched() {
    let (kie, client) = emulator().await;
    let key = SecretString::from("test-key");

    let image = client
        .upload(&key, JPEG.to_vec(), "a1b2.jpg", "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        image,
        format!("{}/files/neurocards/a1b2.jpg", kie.base_url())
    );
    let body = default_spec().create_request("a mug", &image, None);
    let task = client.create_task(&key, &body).await.unwrap();
    let video = loop {
        match client
            .task_state(&key, KieApi::Market, &task)
            .await
            .unwrap()
        {
            TaskState::Succeeded { video_url } => break video_url,
            TaskState::Running(_) => tokio::time::sleep(Duration::from_millis(40)).await,
            other => panic!("unexpected state {other:?}"),
        }
    };
    assert!(video.ends_with(".mp4"), "{video}");
    let fresh = client.download_url(&key, &video).await.unwrap();
    assert!(fresh.starts_with(&video), "{fresh}");
    assert_eq!(client.credit(&key).await.unwrap(), 1_000_000 - 1);
    let requests = kie.requests();
    assert!(requests
        .iter()
        .all(|request| request.authorization.as_deref() == Some("Bearer test-key")));
}

#[tokio::test]
async fn failures_carry_what_the_classifier_needs() {
    let (_kie, client) = emulator().await;
    let wrong = SecretString::from("not-a-key");
    let key = SecretString::from("test-key");

    let unauthorized = client.credit(&wrong).await.unwrap_err();
    assert_eq!(unauthorized.http_status, Some(401));
    assert_eq!(unauthorized.verdict().class, ErrorClass::Billing);
    assert_eq!(unauthorized.verdict().key, KeyVerdict::Disable);

    let body = |prompt: &str| default_spec().create_request(prompt, "https://x/a.jpg", None);
    let limited = client
        .create_task(&key, &body("a #http429"))
        .await
        .unwrap_err();
    assert_eq!(limited.verdict().class, ErrorClass::RateLimit);
    assert_eq!(limited.retry_after, Some(Duration::from_secs(1)));
    assert!(!limited.verdict().task_may_exist);

    let hour = client
        .create_task(&key, &body("a #http429=3600"))
        .await
        .unwrap_err();
    assert_eq!(
        hour.retry_after,
        Some(neurocards::kie::client::MAX_RETRY_AFTER),
        "an hour-long Retry-After is capped"
    );

    let malformed = client
        .create_task(&key, &body("a #malformed"))
        .await
        .unwrap_err();
    assert!(!malformed.body_is_json);
    assert!(
        malformed.verdict().task_may_exist,
        "a create answered with junk may have made a task"
    );

    let hanging = client
        .create_task(&key, &body("a #hang"))
        .await
        .unwrap_err();
    assert!(hanging.verdict().task_may_exist, "{hanging}");
    assert_eq!(hanging.verdict().class, ErrorClass::Temporary);

    let unknown = client
        .task_state(&key, KieApi::Market, "task_unknown")
        .await
        .unwrap_err();
    assert_eq!(unknown.body_code, Some(422));
    assert_eq!(unknown.message, "recordInfo is null");
    // No failure text ever repeats a key.
    for failure in [unauthorized, limited, hour, malformed, hanging, unknown] {
        assert!(
            !failure.to_string().contains("test-key") && !failure.to_string().contains("not-a-key")
        );
    }
}
