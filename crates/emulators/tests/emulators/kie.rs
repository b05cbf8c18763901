use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

pub(crate) const KEY: &str = "test-key";
pub(crate) const MODEL: &str = "kling-2.6/image-to-video";

/// A client as neurocards' is: with a User-Agent, or KIE's CDN refuses it (error 1010).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("neurocards/0.1.0")
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub(crate) fn config(stage_ms: u64) -> KieConfig {
    KieConfig {
        stage_delay: Duration::from_millis(stage_ms),
        ..KieConfig::default()
    }
}

/// A second account, to check that accounts are kept apart.
fn two_accounts(stage_ms: u64) -> KieConfig {
    let mut config = config(stage_ms);
    config.accounts.push(KieAccount {
        name: "other".to_owned(),
        keys: vec!["other-key".to_owned()],
        credits: 10,
    });
    config
}

/// A valid Kling 2.6 request, as neurocards sends it.
pub(crate) fn create_body(prompt: &str) -> Value {
    json!({
        "model": MODEL,
        "input": {
            "prompt": prompt,
            "image_urls": ["http://127.0.0.1/a.jpg"],
            "duration": "5",
            "sound": false,
        }
    })
}

pub(crate) async fn post_create(kie: &KieEmulator, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/api/v1/jobs/createTask", kie.base_url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Creates a task and returns its id.
pub(crate) async fn create(kie: &KieEmulator, prompt: &str) -> String {
    let response = post_create(kie, KEY, &create_body(prompt)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 200, "{body}");
    body["data"]["taskId"].as_str().unwrap().to_owned()
}

async fn record_raw(kie: &KieEmulator, key: &str, task_id: &str) -> (StatusCode, String) {
    let response = client()
        .get(format!("{}/api/v1/jobs/recordInfo", kie.base_url()))
        .query(&[("taskId", task_id)])
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn record(kie: &KieEmulator, task_id: &str) -> Value {
    let (status, body) = record_raw(kie, KEY, task_id).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_str(&body).unwrap()
}

/// Polls until the task is final (success or fail) and returns the recordInfo data.
async fn final_record(kie: &KieEmulator, task_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = record(kie, task_id).await;
        let state = body["data"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if state == "success" || state == "fail" {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "task {task_id} never finished");
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
}

#[tokio::test]
async fn a_task_goes_through_every_stage_and_its_video_is_an_mp4() {
    let kie = KieEmulator::start(KieConfig {
        status_limit_per_second: 1000,
        ..config(100)
    })
    .await
    .unwrap();
    let id = create(&kie, "a red sneaker rotating on a podium").await;

    let mut states: Vec<String> = Vec::new();
    let data = loop {
        let body = record(&kie, &id).await;
        assert_eq!(body["code"], 200);
        let state = body["data"]["state"].as_str().unwrap().to_owned();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "success" {
            break body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(states, ["waiting", "queuing", "generating", "success"]);

    assert_eq!(data["taskId"], id.as_str());
    assert_eq!(data["model"], MODEL);
    assert_eq!(data["failCode"], "");
    assert_eq!(data["failMsg"], "");
    assert!(data["costTime"].is_u64() && data["completeTime"].is_u64());
    let param: Value = serde_json::from_str(data["param"].as_str().unwrap()).unwrap();
    assert_eq!(param["model"], MODEL);
    assert_eq!(param["input"]["duration"], "5");
    assert_eq!(param["input"]["sound"], false);
    let result: Value = serde_json::from_str(data["resultJson"].as_str().unwrap()).unwrap();
    let url = result["resultUrls"][0].as_str().unwrap();
    assert_eq!(url, format!("{}/videos/{id}.mp4", kie.base_url()));
    assert!(result["resultWaterMarkUrls"][0].is_string());

    let video = client().get(url).send().await.unwrap();
    assert_eq!(video.status(), StatusCode::OK);
    assert_eq!(video.headers()["content-type"], "video/mp4");
    let bytes = video.bytes().await.unwrap();
    assert_eq!(&bytes[4..12], b"ftypisom");
    assert!(bytes.windows(4).any(|w| w == b"mdat"));

    let tasks = kie.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state, "success");
    assert_eq!(tasks[0].outcome, "success");
    assert_eq!(tasks[0].account, "main");
    assert_eq!(tasks[0].api, "market");
    assert_eq!(tasks[0].model, MODEL);
    assert_eq!(tasks[0].input["duration"], "5");
    assert_eq!(kie.credits("main"), 1_000_000 - 1);
}

#[tokio::test]
async fn a_running_task_reports_empty_results() {
    let kie = KieEmulator::start(config(5_000)).await.unwrap();
    let id = create(&kie, "slowly").await;
    let data = record(&kie, &id).await["data"].clone();
    assert_eq!(data["state"], "waiting");
    assert_eq!(data["resultJson"], "");
    assert_eq!(data["failCode"], "");
    assert!(data["completeTime"].is_null());
    assert_eq!(
        client()
            .get(format!("{}/videos/{id}.mp4", kie.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn markers_that_script_a_failure_end_the_task_as_documented() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let cases = [
        (
            "#violation",
            json!("422"),
            "Invalid prompt: prompt contains prohibited content",
        ),
        (
            "#people",
            json!(400),
            "We currently do not support uploads of images containing photorealistic people.",
        ),
        ("#temporary", json!("500"), "Internal server error"),
        ("#unknown", json!("999"), "Something unexpected happened"),
    ];
    for (marker, code, msg) in cases {
        let id = create(&kie, &format!("a shoe {marker}")).await;
        let data = final_record(&kie, &id).await;
        assert_eq!(data["state"], "fail", "{marker}");
        assert_eq!(data["failCode"], code, "{marker}");
        assert_eq!(data["failMsg"], msg, "{marker}");
    }

    let id = create(&kie, "a shoe #nourl").await;
    let data = final_record(&kie, &id).await;
    assert_eq!(data["state"], "success");
    assert_eq!(data["resultJson"], r#"{"resultUrls":[]}"#);

    let outcomes: Vec<String> = kie.tasks().into_iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        ["violation", "people", "temporary", "unknown", "nourl"]
    );
}

#[tokio::test]
async fn markers_that_refuse_the_create_create_nothing() {
    let kie = KieEmulator::start(config(10)).await.unwrap();

    let response = post_create(&kie, KEY, &create_body("#billing")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": 402, "msg": "The current credits are insufficient. Please top up.", "data": null})
    );

    let response = post_create(&kie, KEY, &create_body("#http500")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": 500, "msg": "Server error"}));

    let response = post_create(&kie, KEY, &create_body("#http429")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": 429, "msg": "Rate limit exceeded"}));

    let response = post_create(&kie, KEY, &create_body("#malformed")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "<html>upstream error</html>"
    );

    let hang = reqwest::Client::builder()
        .no_proxy()
        .user_agent("neurocards/0.1.0")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/api/v1/jobs/createTask", kie.base_url()))
        .bearer_auth(KEY)
        .json(&create_body("#hang"))
        .send()
        .await;
    assert!(hang.is_err_and(|e| e.is_timeout()));

    assert!(kie.tasks().is_empty());
    assert_eq!(kie.create_task_calls(), 5);
    assert_eq!(kie.rate_limited(), 1);
    assert_eq!(kie.credits("main"), 1_000_000);
    let statuses: Vec<u16> = kie.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 500, 429, 200, 0]);
}

#[tokio::test]
async fn statusmalformed_answers_every_status_query_with_non_json() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let id = create(&kie, "#statusmalformed").await;
    let (status, body) = record_raw(&kie, KEY, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "not json");
    assert_eq!(kie.tasks().len(), 1);
}

#[tokio::test]
async fn slow_stretches_the_stages_to_n_seconds_in_total() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let slow = create(&kie, "#slow=3").await;
    let normal = create(&kie, "plain").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(record(&kie, &normal).await["data"]["state"], "success");
    assert_eq!(record(&kie, &slow).await["data"]["state"], "waiting");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(record(&kie, &slow).await["data"]["state"], "queuing");
}

#[tokio::test]
async fn temporary_twice_fails_twice_then_succeeds() {
    let kie = KieEmulator::start(config(5)).await.unwrap();
    let mut states = Vec::new();
    for _ in 0..3 {
        let id = create(&kie, "a lamp #temporary*2").await;
        states.push(
            final_record(&kie, &id).await["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(states, ["fail", "fail", "success"]);
}

#[tokio::test]
async fn an_unknown_or_missing_key_gets_401() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let expected = json!({"code": 401, "msg": "You do not have access permissions"});

    let response = post_create(&kie, "wrong-key", &create_body("x")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap(), expected);

    let (status, body) = record_raw(&kie, "wrong-key", "task_x").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);

    let response = client()
        .get(format!("{}/api/v1/chat/credit", kie.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = client()
        .post(format!("{}/api/file-base64-upload", kie.base_url()))
        .bearer_auth("wrong-key")
        .json(&json!({"base64Data": "aGk=", "uploadPath": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"success": false, "code": 401, "msg": "Authentication failed: Invalid API Key"})
    );
    assert!(kie.tasks().is_empty());
    assert_eq!(kie.create_task_calls(), 1);
}

#[tokio::test]
async fn a_key_of_another_account_sees_record_info_is_null() {
    let kie = KieEmulator::start(two_accounts(10)).await.unwrap();
    let id = create(&kie, "mine").await;
    let (status, body) = record_raw(&kie, "other-key", &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": 422, "msg": "recordInfo is null", "data": null})
    );
    let (_, body) = record_raw(&kie, KEY, "task_never_created").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 422);
}

#[tokio::test]
async fn twenty_five_rapid_creates_accept_twenty_and_refuse_five() {
    let kie = KieEmulator::start(two_accounts(10)).await.unwrap();
    let mut statuses = Vec::new();
    for i in 0..25 {
        let response = post_create(&kie, KEY, &create_body(&format!("shoe {i}"))).await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, json!({"code": 429, "msg": "Rate limit exceeded"}));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5);
    assert_eq!(kie.tasks().len(), 20);
    assert_eq!(kie.create_task_calls(), 25);
    assert_eq!(kie.rate_limited(), 5);
    assert_eq!(kie.max_creates_in_window("main"), 20);
    assert_eq!(kie.credits("main"), 1_000_000 - 20);

    // Another account has its own limit.
    let response = post_create(&kie, "other-key", &create_body("theirs")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(kie.max_creates_in_window("other"), 1);
}

#[tokio::test]
async fn the_create_window_slides() {
    let kie = KieEmulator::start(KieConfig {
        create_limit: 2,
        create_window: Duration::from_secs(1),
        ..config(10)
    })
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            post_create(&kie, KEY, &create_body("a")).await.status(),
            200
        );
    }
    assert_eq!(
        post_create(&kie, KEY, &create_body("a")).await.status(),
        429
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(
        post_create(&kie, KEY, &create_body("a")).await.status(),
        200
    );
    assert_eq!(kie.max_creates_in_window("main"), 2);
}

#[tokio::test]
async fn more_than_ten_status_queries_a_second_on_one_key_get_429() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let id = create(&kie, "x").await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(record_raw(&kie, KEY, &id).await.0.as_u16());
    }
    // Fifteen local queries take milliseconds: the first ten pass, the rest are refused
    // (unless a very slow machine spread them over more than a second).
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 1, "{statuses:?}");
    assert_eq!(kie.rate_limited(), refused);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(record_raw(&kie, KEY, &id).await.0, StatusCode::OK);
}

#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

/// A receiver for callbacks: forwards what it gets to the test.
pub(crate) async fn callback_receiver() -> (String, mpsc::UnboundedReceiver<Callback>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/kie/callback",
            post(
                |State(tx): State<mpsc::UnboundedSender<Callback>>,
                 headers: HeaderMap,
                 body: String| async move {
                    let body = serde_json::from_str(&body).unwrap();
                    tx.send(Callback { headers, body }).unwrap();
                    axum::Json(json!({"code": 200, "msg": "success"}))
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/kie/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn a_signed_callback_reaches_the_receiver_and_verifies() {
    let kie = KieEmulator::start(KieConfig {
        callback_hmac_key: Some("webhook-secret".to_owned()),
        ..config(20)
    })
    .await
    .unwrap();
    let (url, mut received) = callback_receiver().await;
    let mut body = create_body("a mug");
    body["callBackUrl"] = json!(url);
    let response: Value = post_create(&kie, KEY, &body).await.json().await.unwrap();
    let id = response["data"]["taskId"].as_str().unwrap().to_owned();

    let callback = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(callback.body["code"], 200);
    assert_eq!(
        callback.body["msg"],
        "Playground task completed successfully."
    );
    assert_eq!(callback.body["data"]["taskId"], id.as_str());
    assert_eq!(callback.body["data"]["state"], "success");

    let timestamp = callback.headers["x-webhook-timestamp"].to_str().unwrap();
    let signature = callback.headers["x-webhook-signature"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"webhook-secret").unwrap();
    mac.update(format!("{id}.{timestamp}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(signature, expected);
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .abs_diff(timestamp.parse().unwrap());
    assert!(age < 60);
}

#[tokio::test]
async fn a_failed_task_calls_back_with_code_501_and_no_signature_when_unsigned() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let (url, mut received) = callback_receiver().await;
    let mut body = create_body("#violation");
    body["callBackUrl"] = json!(url);
    post_create(&kie, KEY, &body).await;
    let callback = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(callback.body["code"], 501);
    assert_eq!(callback.body["msg"], "Playground task failed.");
    assert_eq!(callback.body["data"]["state"], "fail");
    assert_eq!(callback.body["data"]["failCode"], "422");
    assert!(callback.headers.get("x-webhook-signature").is_none());
}

#[tokio::test]
async fn a_stream_upload_is_served_back_identically() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain((0..200u8).cycle().take(5000))
        .collect();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone()).file_name("photo.png"),
        )
        .text("uploadPath", "neurocards/in");
    let response = client()
        .post(format!("{}/api/file-stream-upload", kie.base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["code"], 200);
    assert_eq!(body["msg"], "File uploaded successfully");
    assert_eq!(body["data"]["mimeType"], "image/png");
    assert_eq!(body["data"]["fileSize"], png.len());
    let file_name = body["data"]["fileName"].as_str().unwrap();
    assert!(file_name.ends_with(".png"));
    let download_url = body["data"]["downloadUrl"].as_str().unwrap();
    assert_eq!(
        download_url,
        format!("{}/files/neurocards/in/{file_name}", kie.base_url())
    );

    let download = client().get(download_url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.bytes().await.unwrap().to_vec(), png);

    let recorded = &kie.requests()[0];
    assert_eq!(recorded.path, "/api/file-stream-upload");
    assert_eq!(
        recorded.body,
        format!(
            "file=photo.png ({} bytes); uploadPath=neurocards/in",
            png.len()
        )
    );
    assert_eq!(recorded.authorization.as_deref(), Some("Bearer test-key"));
}

#[tokio::test]
async fn base64_and_url_uploads_store_the_bytes_under_the_given_name() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    let encoded = base64::engine::general_purpose::STANDARD.encode(jpeg);
    let body: Value = client()
        .post(format!("{}/api/file-base64-upload", kie.base_url()))
        .bearer_auth(KEY)
        .json(&json!({
            "base64Data": format!("data:image/jpeg;base64,{encoded}"),
            "uploadPath": "neurocards",
            "fileName": "a.jpg",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["filePath"], "neurocards/a.jpg");
    assert_eq!(body["data"]["mimeType"], "image/jpeg");
    let first_url = body["data"]["downloadUrl"].as_str().unwrap().to_owned();

    let body: Value = client()
        .post(format!("{}/api/file-url-upload", kie.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"fileUrl": first_url, "uploadPath": "copies"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["success"], true, "{body}");
    let copy = client()
        .get(body["data"]["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(copy.headers()["content-type"], "image/jpeg");
    assert_eq!(copy.bytes().await.unwrap().as_ref(), jpeg);

    let response = client()
        .post(format!("{}/api/file-base64-upload", kie.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"base64Data": encoded, "uploadPath": "/neurocards/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"success": false, "code": 400, "msg": "uploadPath must not start or end with /"})
    );
}

#[tokio::test]
async fn missing_fields_answer_422_with_http_200() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let cases = [
        (json!({"input": {"prompt": "x"}}), "model is required"),
        (json!({"model": MODEL}), "input is required"),
        (
            json!({"model": MODEL, "input": {"image_urls": []}}),
            "input.prompt is required",
        ),
        (json!([1, 2]), "the body must be a JSON object"),
    ];
    for (body, why) in cases {
        let response = post_create(&kie, KEY, &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 422);
        let msg = body["msg"].as_str().unwrap();
        assert!(msg.starts_with("Parameter validation failed: "), "{msg}");
        assert!(msg.contains(why), "{msg}");
        assert!(body["data"].is_null());
    }
    assert!(kie.tasks().is_empty());
    assert_eq!(kie.create_task_calls(), 4);
}

#[tokio::test]
async fn credits_are_charged_reported_and_refused_when_short() {
    let kie = KieEmulator::start(KieConfig {
        cost_per_task: 30,
        ..config(10)
    })
    .await
    .unwrap();
    kie.set_credits("main", 40);
    create(&kie, "one").await;
    assert_eq!(kie.credits("main"), 10);

    let body: Value = client()
        .get(format!("{}/api/v1/chat/credit", kie.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"code": 200, "msg": "success", "data": 10}));

    let response = post_create(&kie, KEY, &create_body("two")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 402);
    assert_eq!(kie.tasks().len(), 1);

    // The control API, for a test that runs the emulator as a process.
    let response = client()
        .post(format!("{}/_control/accounts/main/credits", kie.base_url()))
        .json(&json!({"credits": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(kie.credits("main"), 500);
    let tasks: Value = client()
        .get(format!("{}/_control/tasks", kie.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    let requests: Value = client()
        .get(format!("{}/_control/requests", kie.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests.as_array().unwrap().len(), 3);
    assert_eq!(requests[0]["path"], "/api/v1/jobs/createTask");
}

#[tokio::test]
async fn download_url_returns_a_fresh_link() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let body: Value = client()
        .post(format!("{}/api/v1/common/download-url", kie.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"url": "http://127.0.0.1:1/videos/x.mp4"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"code": 200, "msg": "success", "data": "http://127.0.0.1:1/videos/x.mp4?fresh=1"})
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let base = kie.base_url();
    kie.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let result = client()
        .get(format!("{base}/api/v1/chat/credit"))
        .bearer_auth(KEY)
        .send()
        .await;
    assert!(result.is_err());
}
