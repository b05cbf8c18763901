//! What stands around the KIE API: the CDN that refuses some clients (error 1010) and the
//! spelling of the task id in callbacks.

use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::kie::{callback_receiver, client, config, create, create_body, post_create, KEY};

fn client_with(user_agent: Option<&str>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10));
    match user_agent {
        Some(agent) => builder.user_agent(agent),
        None => builder,
    }
    .build()
    .unwrap()
}

/// Asserts the CDN's answer: 403, plain text, no JSON.
async fn assert_1010(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "error code: 1010");
}

#[tokio::test]
async fn no_user_agent_gets_1010_on_every_api_and_upload_route() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let bare = client_with(None);
    let base = kie.base_url();
    assert_1010(
        bare.post(format!("{base}/api/v1/jobs/createTask"))
            .bearer_auth(KEY)
            .json(&create_body("a mug"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_1010(
        bare.get(format!("{base}/api/v1/jobs/recordInfo?taskId=x"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_1010(
        bare.post(format!("{base}/api/v1/veo/generate"))
            .bearer_auth(KEY)
            .json(&json!({"prompt": "a mug"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_1010(
        bare.get(format!("{base}/api/v1/chat/credit"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_1010(
        bare.post(format!("{base}/api/file-base64-upload"))
            .bearer_auth(KEY)
            .json(&json!({"base64Data": "aGk=", "uploadPath": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A blank User-Agent is no User-Agent.
    assert_1010(
        client_with(Some(""))
            .get(format!("{base}/api/v1/chat/credit"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Nothing reached the API: no task, no create counted, no upload stored.
    assert!(kie.tasks().is_empty());
    assert_eq!(kie.create_task_calls(), 0);
    // Every refusal is recorded, with its status.
    let requests = kie.requests();
    assert_eq!(requests.len(), 6);
    assert!(requests.iter().all(|r| r.status == 403));
    assert_eq!(requests[0].path, "/api/v1/jobs/createTask");
    assert_eq!(requests[0].user_agent, None);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer test-key")
    );

    // The control API, served files and videos are not behind the CDN.
    let response = bare
        .get(format!("{base}/_control/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = bare
        .get(format!("{base}/videos/unknown.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_user_agent_gets_1010_and_others_pass() {
    let kie = KieEmulator::start(KieConfig {
        refused_user_agents: vec!["python-requests".to_owned(), "Go-http-client".to_owned()],
        ..config(10)
    })
    .await
    .unwrap();
    let credit = |agent: &'static str| {
        let url = format!("{}/api/v1/chat/credit", kie.base_url());
        async move {
            client_with(Some(agent))
                .get(url)
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
        }
    };
    assert_1010(credit("python-requests/2.32.3").await).await;
    assert_1010(credit("go-http-client/1.1").await).await;
    let response = credit("neurocards/0.1.0").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 200);

    let response = client_with(Some("python-requests/2.32.3"))
        .post(format!("{}/api/v1/jobs/createTask", kie.base_url()))
        .bearer_auth(KEY)
        .json(&create_body("a mug"))
        .send()
        .await
        .unwrap();
    assert_1010(response).await;
    assert!(kie.tasks().is_empty());
    create(&kie, "a mug").await;
    assert_eq!(kie.tasks().len(), 1);
    let agents: Vec<Option<String>> = kie.requests().into_iter().map(|r| r.user_agent).collect();
    assert_eq!(agents[2].as_deref(), Some("neurocards/0.1.0"));
}

#[tokio::test]
async fn snake_case_callbacks_carry_task_id_for_both_apis() {
    let kie = KieEmulator::start(KieConfig {
        callback_task_id_snake_case: true,
        callback_hmac_key: Some("k".to_owned()),
        ..config(10)
    })
    .await
    .unwrap();
    let (url, mut received) = callback_receiver().await;
    let mut market = create_body("a mug");
    market["callBackUrl"] = json!(url);
    let answer: Value = post_create(&kie, KEY, &market).await.json().await.unwrap();
    // The create answer keeps KIE's documented spelling: only callbacks change.
    let market_id = answer["data"]["taskId"].as_str().unwrap().to_owned();
    let veo: Value = client()
        .post(format!("{}/api/v1/veo/generate", kie.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"prompt": "a mug", "callBackUrl": url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let veo_id = veo["data"]["taskId"].as_str().unwrap().to_owned();

    let mut ids = Vec::new();
    for _ in 0..2 {
        let callback = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .unwrap()
            .unwrap();
        let data = &callback.body["data"];
        assert!(data.get("taskId").is_none(), "{data}");
        let id = data["task_id"].as_str().unwrap().to_owned();
        // The signature still covers the id, whatever its spelling.
        let timestamp: i64 = callback.headers["x-webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            callback.headers["x-webhook-signature"].to_str().unwrap(),
            emulators::kie::callback_signature("k", &id, timestamp)
        );
        ids.push(id);
    }
    ids.sort();
    let mut expected = vec![market_id, veo_id];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn callbacks_spell_task_id_in_camel_case_by_default() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let (url, mut received) = callback_receiver().await;
    let mut body = create_body("a mug");
    body["callBackUrl"] = json!(url);
    post_create(&kie, KEY, &body).await;
    let callback = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(callback.body["data"]["taskId"].is_string());
    assert!(callback.body["data"].get("task_id").is_none());
}
