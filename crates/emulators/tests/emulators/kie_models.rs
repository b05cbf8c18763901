//! The model table of the KIE emulator: each listed Market model's schema, Sora's pause, the
//! unpublished models and the models retired at run time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use emulators::kie::{listed_models, KieEmulator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::kie::{client, config, create_body, post_create, KEY, MODEL};

const URL: &str = "https://127.0.0.1/a.jpg";

/// A model, an input KIE accepts, and four ways to break it, each naming the field the
/// refusal must name.
struct Case {
    model: &'static str,
    valid: Value,
    wrong_type: (&'static str, Value),
    missing: &'static str,
    not_allowed: (&'static str, Value),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            model: "kling-2.6/image-to-video",
            valid: json!({"prompt": "a mug", "image_urls": [URL], "duration": "5", "sound": false}),
            wrong_type: ("duration", json!(5)),
            missing: "sound",
            not_allowed: ("duration", json!("8")),
        },
        Case {
            model: "kling-3.0/video",
            valid: json!({
                "prompt": "a mug",
                "image_urls": [URL, URL],
                "duration": "8",
                "aspect_ratio": "9:16",
                "mode": "pro",
                "sound": true,
                "multi_shots": false,
            }),
            wrong_type: ("multi_shots", json!("no")),
            missing: "mode",
            not_allowed: ("aspect_ratio", json!("4:3")),
        },
        Case {
            model: "bytedance/seedance-1.5-pro",
            valid: json!({
                "prompt": "a mug",
                "input_urls": [URL],
                "aspect_ratio": "9:16",
                "resolution": "720p",
                "duration": 8,
                "generate_audio": false,
                "fixed_lens": true,
            }),
            wrong_type: ("duration", json!("8")),
            missing: "aspect_ratio",
            not_allowed: ("resolution", json!("4k")),
        },
        Case {
            model: "bytedance/seedance-2",
            valid: json!({
                "prompt": "a mug",
                "first_frame_url": URL,
                "last_frame_url": URL,
                "duration": 15,
                "aspect_ratio": "adaptive",
                "resolution": "1080p",
                "generate_audio": true,
            }),
            wrong_type: ("first_frame_url", json!([URL])),
            missing: "prompt",
            not_allowed: ("duration", json!(3)),
        },
        Case {
            model: "bytedance/seedance-2-fast",
            valid: json!({
                "prompt": "a mug",
                "first_frame_url": URL,
                "duration": 4,
                "aspect_ratio": "9:16",
                "resolution": "480p",
                "generate_audio": false,
            }),
            wrong_type: ("generate_audio", json!("true")),
            missing: "prompt",
            not_allowed: ("aspect_ratio", json!("2:1")),
        },
        Case {
            model: "hailuo/2-3-image-to-video-standard",
            valid: json!({
                "prompt": "a mug",
                "image_url": URL,
                "duration": "10",
                "resolution": "768P",
            }),
            // A single URL, not a list, for Hailuo.
            wrong_type: ("image_url", json!([URL])),
            missing: "image_url",
            not_allowed: ("resolution", json!("720p")),
        },
        Case {
            model: "hailuo/2-3-image-to-video-pro",
            valid: json!({
                "prompt": "a mug",
                "image_url": URL,
                "duration": "6",
                "resolution": "1080P",
                "prompt_optimizer": true,
            }),
            wrong_type: ("duration", json!(6)),
            missing: "image_url",
            // Ten seconds exist, but not at 1080P.
            not_allowed: ("duration", json!("10")),
        },
        Case {
            model: "wan/2-6-image-to-video",
            valid: json!({
                "prompt": "a mug",
                "image_urls": [URL],
                "duration": "15",
                "resolution": "1080p",
            }),
            wrong_type: ("duration", json!(15)),
            missing: "image_urls",
            not_allowed: ("duration", json!("8")),
        },
        Case {
            model: "wan/2-7-image-to-video",
            valid: json!({
                "prompt": "a mug",
                "negative_prompt": "blur",
                "first_frame_url": URL,
                "duration": 10,
                "resolution": "720p",
            }),
            wrong_type: ("duration", json!("10")),
            missing: "first_frame_url",
            not_allowed: ("duration", json!(16)),
        },
        Case {
            model: "grok-imagine/image-to-video",
            valid: json!({
                "prompt": "a mug",
                "image_urls": [URL],
                "duration": 30,
                "resolution": "720p",
                "mode": "normal",
            }),
            wrong_type: ("duration", json!("6")),
            missing: "prompt",
            not_allowed: ("mode", json!("wild")),
        },
    ]
}

fn body(model: &str, input: &Value) -> Value {
    json!({"model": model, "input": input})
}

/// Posts a create and returns the JSON envelope, which KIE sends with HTTP 200 either way.
async fn envelope(kie: &KieEmulator, body: &Value) -> Value {
    let response = post_create(kie, KEY, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_cases_cover_every_listed_model() {
    let listed: BTreeSet<&str> = listed_models().into_iter().collect();
    let tested: BTreeSet<&str> = cases().iter().map(|c| c.model).collect();
    assert_eq!(listed, tested);
    assert!(listed.contains(MODEL));
    assert!(!listed.iter().any(|m| m.starts_with("sora")));
}

#[tokio::test]
async fn every_listed_model_accepts_its_valid_input_and_stores_it_as_sent() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    for case in cases() {
        let answer = envelope(&kie, &body(case.model, &case.valid)).await;
        assert_eq!(answer["code"], 200, "{}: {answer}", case.model);
        assert_eq!(answer["msg"], "success");
        let id = answer["data"]["taskId"].as_str().unwrap();
        let task = kie.tasks().into_iter().find(|t| t.task_id == id).unwrap();
        assert_eq!(task.model, case.model);
        assert_eq!(task.api, "market");
        assert_eq!(task.input, case.valid, "{}", case.model);
    }
    assert_eq!(kie.tasks().len(), cases().len());
}

#[tokio::test]
async fn every_listed_model_refuses_bad_input_with_422_naming_the_field() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    for case in cases() {
        let mut wrong_type = case.valid.clone();
        wrong_type[case.wrong_type.0] = case.wrong_type.1.clone();
        let mut missing = case.valid.clone();
        missing.as_object_mut().unwrap().remove(case.missing);
        let mut unknown = case.valid.clone();
        unknown["colour"] = json!("red");
        let mut not_allowed = case.valid.clone();
        not_allowed[case.not_allowed.0] = case.not_allowed.1.clone();

        let broken = [
            ("wrong type", wrong_type, case.wrong_type.0, "must be "),
            ("missing", missing, case.missing, "is required"),
            ("unknown", unknown, "colour", "is not a parameter of"),
            ("not allowed", not_allowed, case.not_allowed.0, ""),
        ];
        for (what, input, field, why) in broken {
            let answer = envelope(&kie, &body(case.model, &input)).await;
            let context = format!("{} / {what}: {answer}", case.model);
            assert_eq!(answer["code"], 422, "{context}");
            assert!(answer["data"].is_null(), "{context}");
            let msg = answer["msg"].as_str().unwrap();
            let expected = format!("Parameter validation failed: input.{field} ");
            assert!(msg.starts_with(&expected), "{context}");
            assert!(msg.contains(why), "{context}");
        }
    }
    assert!(kie.tasks().is_empty());
    assert_eq!(kie.credits("main"), 1_000_000);
}

#[tokio::test]
async fn the_refusal_says_what_was_wrong() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let mut kling = create_body("a mug");
    kling["input"]["duration"] = json!(5);
    assert_eq!(
        envelope(&kie, &kling).await,
        json!({
            "code": 422,
            "msg": "Parameter validation failed: input.duration must be a string (got the number 5)",
            "data": null,
        })
    );
    let seedance = body(
        "bytedance/seedance-1.5-pro",
        &json!({"prompt": "p", "aspect_ratio": "9:16", "duration": "8"}),
    );
    assert_eq!(
        envelope(&kie, &seedance).await["msg"],
        "Parameter validation failed: input.duration must be an integer (got the string \"8\")"
    );
    let mut long = create_body(&"x".repeat(1001));
    assert_eq!(
        envelope(&kie, &long).await["msg"],
        "Parameter validation failed: input.prompt must be at most 1000 characters (got 1001)"
    );
    long["input"]["prompt"] = json!("x".repeat(1000));
    assert_eq!(envelope(&kie, &long).await["code"], 200);
}

#[tokio::test]
async fn every_sora_model_is_temporarily_paused_and_creates_nothing() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let legacy_input = json!({
        "prompt": "a mug",
        "image_urls": [URL],
        "aspect_ratio": "portrait",
        "n_frames": "10",
    });
    for model in [
        "sora-2-image-to-video",
        "sora-2-pro-image-to-video",
        "sora-2-text-to-video",
    ] {
        assert_eq!(
            envelope(&kie, &body(model, &legacy_input)).await,
            json!({"code": 500, "msg": "This interface is temporarily paused", "data": null}),
            "{model}"
        );
    }
    assert!(kie.tasks().is_empty());
    assert_eq!(kie.create_task_calls(), 3);
    assert_eq!(kie.credits("main"), 1_000_000);
}

#[tokio::test]
async fn an_unknown_model_does_not_exist_or_is_not_published() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    for model in [
        "m",
        "kling-2.6/text-to-video",
        "veo3_fast",
        "Kling-2.6/image-to-video",
    ] {
        let input = create_body("a mug")["input"].clone();
        assert_eq!(
            envelope(&kie, &body(model, &input)).await,
            json!({"code": 422, "msg": "The page does not exist or is not published", "data": null}),
            "{model}"
        );
    }
    assert!(kie.tasks().is_empty());
}

#[tokio::test]
async fn a_paused_model_answers_like_sora_while_the_others_go_on() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    let before = super::kie::create(&kie, "before the pause").await;
    kie.pause_model(MODEL);
    assert_eq!(
        envelope(&kie, &create_body("after the pause")).await,
        json!({"code": 500, "msg": "This interface is temporarily paused", "data": null})
    );
    // The task created before the pause still ends as it would have.
    let deadline = Instant::now() + Duration::from_secs(5);
    while kie.tasks()[0].state != "success" {
        assert!(Instant::now() < deadline, "{before} never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wan = body(
        "wan/2-6-image-to-video",
        &json!({"prompt": "a mug", "image_urls": [URL]}),
    );
    assert_eq!(envelope(&kie, &wan).await["code"], 200);
    assert_eq!(kie.tasks().len(), 2);

    // Over the control API, with the slash of the id as is.
    let response = client()
        .post(format!(
            "{}/_control/models/wan/2-6-image-to-video/pause",
            kie.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"model": "wan/2-6-image-to-video", "paused": true})
    );
    assert_eq!(envelope(&kie, &wan).await["code"], 500);
    assert_eq!(kie.tasks().len(), 2);

    let models: Value = client()
        .get(format!("{}/_control/models", kie.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paused: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["paused"] == true)
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(paused, [MODEL, "wan/2-6-image-to-video"]);

    let response = client()
        .post(format!(
            "{}/_control/models/wan/2-6-image-to-video",
            kie.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn markers_script_the_tasks_of_every_listed_model() {
    let kie = KieEmulator::start(config(10)).await.unwrap();
    for case in cases() {
        let mut input = case.valid.clone();
        input["prompt"] = json!("a mug #violation");
        let answer = envelope(&kie, &body(case.model, &input)).await;
        assert_eq!(answer["code"], 200, "{}: {answer}", case.model);

        input["prompt"] = json!("a mug #billing");
        let answer = envelope(&kie, &body(case.model, &input)).await;
        assert_eq!(answer["code"], 402, "{}", case.model);
    }
    let outcomes: BTreeSet<String> = kie.tasks().into_iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes, BTreeSet::from(["violation".to_owned()]));
    assert_eq!(kie.tasks().len(), cases().len());
}
