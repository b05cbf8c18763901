//! Veo 3.1's own API in the KIE emulator: veo/generate, veo/record-info and its callbacks.

use std::time::{Duration, Instant};

use emulators::kie::{KieConfig, KieEmulator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::kie::{callback_receiver, client, config, create, KEY};

fn veo_body(prompt: &str) -> Value {
    json!({
        "prompt": prompt,
        "model": "veo3_fast",
        "imageUrls": ["http://127.0.0.1/a.jpg"],
        "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
        "aspect_ratio": "9:16",
    })
}

async fn post_generate(kie: &KieEmulator, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/api/v1/veo/generate", kie.base_url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn generate(kie: &KieEmulator, body: &Value) -> String {
    let response = post_generate(kie, KEY, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], 200, "{answer}");
    assert_eq!(answer["msg"], "success");
    answer["data"]["taskId"].as_str().unwrap().to_owned()
}

async fn veo_record(kie: &KieEmulator, task_id: &str) -> (StatusCode, String) {
    let response = client()
        .get(format!("{}/api/v1/veo/record-info", kie.base_url()))
        .query(&[("taskId", task_id)])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Polls record-info until `successFlag` leaves 0; returns every flag seen and the last data.
async fn final_veo_record(kie: &KieEmulator, task_id: &str) -> (Vec<i64>, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut flags = Vec::new();
    loop {
        let (status, body) = veo_record(kie, task_id).await;
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], 200, "{body}");
        let flag = body["data"]["successFlag"].as_i64().unwrap();
        if flags.last() != Some(&flag) {
            flags.push(flag);
        }
        if flag != 0 {
            return (flags, body["data"].clone());
        }
        assert!(Instant::now() < deadline, "{task_id} never finished");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn a_veo_task_generates_then_succeeds_with_a_result_url_array() {
    let kie = KieEmulator::start(config(60)).await.unwrap();
    let body = veo_body("a mug on a table");
    let id = generate(&kie, &body).await;
    assert!(id.starts_with("veo_task_"), "{id}");

    let (flags, data) = final_veo_record(&kie, &id).await;
    assert_eq!(flags, [0, 1]);
    assert_eq!(data["taskId"], id.as_str());
    assert!(data["errorCode"].is_null());
    assert_eq!(data["errorMessage"], "");
    assert_eq!(data["fallbackFlag"], false);
    assert!(data["createTime"].is_string() && data["completeTime"].is_string());
    let param: Value = serde_json::from_str(data["paramJson"].as_str().unwrap()).unwrap();
    assert_eq!(param, body);
    let urls = data["response"]["resultUrls"].as_array().unwrap();
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str().unwrap();
    assert_eq!(url, format!("{}/videos/{id}.mp4", kie.base_url()));
    // 9:16 is not 16:9, so KIE gives the original too.
    assert_eq!(data["response"]["originUrls"].as_array().unwrap().len(), 1);

    let video = client().get(url).send().await.unwrap();
    assert_eq!(video.status(), StatusCode::OK);
    assert_eq!(video.headers()["content-type"], "video/mp4");
    assert_eq!(&video.bytes().await.unwrap()[4..12], b"ftypisom");

    let tasks = kie.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].api, "veo");
    assert_eq!(tasks[0].model, "veo3_fast");
    assert_eq!(tasks[0].prompt, "a mug on a table");
    assert_eq!(tasks[0].input, body);
    assert_eq!(tasks[0].state, "success");
    assert_eq!(kie.credits("main"), 1_000_000 - 1);
    assert_eq!(kie.create_task_calls(), 1);
}

#[tokio::test]
async fn a_veo_violation_fails_with_flag_2_and_the_documented_error() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let id = generate(&kie, &veo_body("a mug #violation")).await;
    let (_, data) = final_veo_record(&kie, &id).await;
    assert_eq!(data["successFlag"], 2);
    assert_eq!(data["errorCode"], 400);
    assert_eq!(
        data["errorMessage"],
        "Your prompt was flagged by Website as violating content policies."
    );
    assert!(data["response"].is_null());
    assert_eq!(kie.tasks()[0].outcome, "violation");

    let id = generate(&kie, &veo_body("a mug #temporary")).await;
    let (_, data) = final_veo_record(&kie, &id).await;
    assert_eq!(data["successFlag"], 3);
    assert_eq!(data["errorCode"], 500);

    let id = generate(&kie, &veo_body("a mug #nourl")).await;
    let (_, data) = final_veo_record(&kie, &id).await;
    assert_eq!(data["successFlag"], 1);
    assert_eq!(data["response"]["resultUrls"], json!([]));
}

#[tokio::test]
async fn veo_callbacks_follow_the_documented_shapes_and_are_signed() {
    let kie = KieEmulator::start(KieConfig {
        callback_hmac_key: Some("webhook-secret".to_owned()),
        ..config(10)
    })
    .await
    .unwrap();
    let (url, mut received) = callback_receiver().await;
    let mut ok = veo_body("a mug");
    ok["aspect_ratio"] = json!("16:9");
    ok["callBackUrl"] = json!(url);
    let ok_id = generate(&kie, &ok).await;
    let mut refused = veo_body("a mug #violation");
    refused["callBackUrl"] = json!(url);
    let refused_id = generate(&kie, &refused).await;

    let mut callbacks = Vec::new();
    for _ in 0..2 {
        callbacks.push(
            tokio::time::timeout(Duration::from_secs(5), received.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let by_id = |id: &str| {
        callbacks
            .iter()
            .find(|c| c.body["data"]["taskId"] == id)
            .unwrap()
    };

    let success = by_id(&ok_id);
    assert_eq!(success.body["code"], 200);
    assert_eq!(success.body["msg"], "Veo3.1 video generated successfully.");
    assert_eq!(
        success.body["data"]["info"]["resultUrls"],
        json!([format!("{}/videos/{ok_id}.mp4", kie.base_url())])
    );
    assert_eq!(success.body["data"]["info"]["originUrls"], json!([]));
    assert_eq!(success.body["data"]["fallbackFlag"], false);
    let prompt: Value =
        serde_json::from_str(success.body["data"]["promptJson"].as_str().unwrap()).unwrap();
    assert_eq!(prompt, ok);
    let timestamp: i64 = success.headers["x-webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        success.headers["x-webhook-signature"].to_str().unwrap(),
        emulators::kie::callback_signature("webhook-secret", &ok_id, timestamp)
    );

    let failure = by_id(&refused_id);
    assert_eq!(
        failure.body,
        json!({
            "code": 400,
            "msg": "Your prompt was flagged by Website as violating content policies.",
            "data": {"taskId": refused_id, "fallbackFlag": false},
        })
    );
}

#[tokio::test]
async fn veo_requests_are_validated_like_kie_does() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let with = |field: &str, value: Value| {
        let mut body = veo_body("a mug");
        body[field] = value;
        body
    };
    let mut no_prompt = veo_body("x");
    no_prompt.as_object_mut().unwrap().remove("prompt");
    let cases = [
        (
            with("aspect_ratio", json!("1:1")),
            "aspect_ratio must be one of",
        ),
        (
            with("aspect_ratio", json!("4:3")),
            "aspect_ratio must be one of",
        ),
        (with("model", json!("veo2")), "model must be one of"),
        (
            with("imageUrls", json!("http://127.0.0.1/a.jpg")),
            "imageUrls must be a list of strings",
        ),
        (with("seeds", json!("12345")), "seeds must be an integer"),
        (
            with("aspectRatio", json!("16:9")),
            "aspectRatio is not a parameter",
        ),
        (
            with("generationType", json!("IMAGE_2_VIDEO")),
            "generationType must be one of",
        ),
        (
            with("imageUrls", json!([])),
            "imageUrls must hold 1 to 3 URLs",
        ),
        (no_prompt, "prompt is required"),
    ];
    for (body, why) in cases {
        let response = post_generate(&kie, KEY, &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], 422, "{body}: {answer}");
        assert!(answer["data"].is_null());
        let msg = answer["msg"].as_str().unwrap();
        assert!(msg.starts_with("Parameter validation failed: "), "{msg}");
        assert!(msg.contains(why), "{msg} does not say {why}");
    }
    assert!(kie.tasks().is_empty());

    // Auto and the other generation types are accepted; the model defaults to veo3_fast.
    for body in [
        with("aspect_ratio", json!("Auto")),
        json!({"prompt": "a mug", "generationType": "TEXT_2_VIDEO"}),
        json!({
            "prompt": "a mug",
            "model": "veo3_fast",
            "imageUrls": ["http://127.0.0.1/a.jpg", "http://127.0.0.1/b.jpg", "http://127.0.0.1/c.jpg"],
            "generationType": "REFERENCE_2_VIDEO",
            "aspect_ratio": "16:9",
        }),
        with("model", json!("veo3_lite")),
    ] {
        generate(&kie, &body).await;
    }
    let models: Vec<String> = kie.tasks().into_iter().map(|t| t.model).collect();
    assert_eq!(models, ["veo3_fast", "veo3_fast", "veo3_fast", "veo3_lite"]);
}

#[tokio::test]
async fn veo_shares_keys_credits_limits_and_create_markers_with_the_market() {
    let kie = KieEmulator::start(KieConfig {
        create_limit: 3,
        ..config(10)
    })
    .await
    .unwrap();

    let response = post_generate(&kie, "wrong-key", &veo_body("a mug")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let answer: Value = post_generate(&kie, KEY, &veo_body("#billing"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], 402);
    let response = post_generate(&kie, KEY, &veo_body("#http429")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let response = post_generate(&kie, KEY, &veo_body("#http500")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // One account, one create window, whichever API the creates come through.
    create(&kie, "market one").await;
    generate(&kie, &veo_body("veo one")).await;
    create(&kie, "market two").await;
    let response = post_generate(&kie, KEY, &veo_body("veo two")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(kie.tasks().len(), 3);
    assert_eq!(kie.credits("main"), 1_000_000 - 3);

    kie.pause_model("veo3_fast");
    let answer: Value = post_generate(&kie, KEY, &veo_body("paused"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"code": 500, "msg": "This interface is temporarily paused", "data": null})
    );
}

#[tokio::test]
async fn each_status_endpoint_sees_only_its_own_api() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let veo = generate(&kie, &veo_body("a mug")).await;
    let market = create(&kie, "a mug").await;
    let null = json!({"code": 422, "msg": "recordInfo is null", "data": null});

    let (status, body) = veo_record(&kie, &market).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), null);

    let body: Value = client()
        .get(format!("{}/api/v1/jobs/recordInfo", kie.base_url()))
        .query(&[("taskId", veo.as_str())])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, null);

    let id = generate(&kie, &veo_body("#statusmalformed")).await;
    assert_eq!(
        veo_record(&kie, &id).await,
        (StatusCode::OK, "not json".to_owned())
    );

    let tasks: Value = client()
        .get(format!("{}/_control/tasks", kie.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let apis: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["api"].as_str().unwrap())
        .collect();
    assert_eq!(apis, ["veo", "market", "veo"]);
    assert_eq!(
        tasks[0]["input"]["generationType"],
        "FIRST_AND_LAST_FRAMES_2_VIDEO"
    );
}
