//! An accepted task: its timeline and its status / callback views, in the Market shape
//! (recordInfo) or in Veo 3.1's (record-info).

use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{json, Value};

use super::markers::Scripted;
use super::EmulatedTask;

/// The API a task was created through; each has its own status endpoint and shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo`.
    Market,
    /// `POST /api/v1/veo/generate`, `GET /api/v1/veo/record-info`.
    Veo,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Market => "market",
            Api::Veo => "veo",
        }
    }
}

/// How Veo reports a failure: `successFlag`, `errorCode`, `errorMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VeoFailure {
    /// 2: failed before generating (refused); 3: the generation itself failed.
    pub flag: u8,
    pub code: u16,
    pub message: &'static str,
}

/// How a task ends, fixed when it is created.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Success,
    NoUrl,
    Fail {
        kind: &'static str,
        code: Value,
        msg: &'static str,
        veo: VeoFailure,
    },
}

impl Outcome {
    /// `previous_uses` is how many tasks were created before with the same prompt: it decides
    /// `#temporary*N`.
    pub(crate) fn from_script(scripted: Scripted, previous_uses: u32) -> Outcome {
        let temporary = Outcome::Fail {
            kind: "temporary",
            code: json!("500"),
            msg: "Internal server error",
            veo: VeoFailure {
                flag: 3,
                code: 500,
                message: "Internal Error, Please try again later.",
            },
        };
        let violation = Outcome::Fail {
            kind: "violation",
            code: json!("422"),
            msg: "Invalid prompt: prompt contains prohibited content",
            veo: VeoFailure {
                flag: 2,
                code: 400,
                message: "Your prompt was flagged by Website as violating content policies.",
            },
        };
        match scripted {
            Scripted::Success => Outcome::Success,
            Scripted::NoUrl => Outcome::NoUrl,
            Scripted::Violation { first: None } => violation,
            Scripted::Violation { first: Some(n) } if previous_uses < n => violation,
            Scripted::Violation { .. } => Outcome::Success,
            // KIE sends this one's code as a JSON number: clients must cope.
            Scripted::People => Outcome::Fail {
                kind: "people",
                code: json!(400),
                msg: "We currently do not support uploads of images containing photorealistic people.",
                veo: VeoFailure {
                    flag: 2,
                    code: 400,
                    message: "Public error: unsafe image upload",
                },
            },
            Scripted::Temporary { first: None } => temporary,
            Scripted::Temporary { first: Some(n) } if previous_uses < n => temporary,
            Scripted::Temporary { .. } => Outcome::Success,
            Scripted::Unknown => Outcome::Fail {
                kind: "unknown",
                code: json!("999"),
                msg: "Something unexpected happened",
                veo: VeoFailure {
                    flag: 3,
                    code: 501,
                    message: "Something unexpected happened",
                },
            },
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::NoUrl => "nourl",
            Outcome::Fail { kind, .. } => kind,
        }
    }

    fn is_success(&self) -> bool {
        !matches!(self, Outcome::Fail { .. })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub id: String,
    pub api: Api,
    pub account: String,
    pub key: String,
    pub model: String,
    pub prompt: String,
    /// The Market `input`, or the whole Veo request.
    pub input: Value,
    /// The create request as received, for `param` / `paramJson`.
    pub request: Value,
    pub callback_url: Option<String>,
    pub created: Instant,
    pub create_ms: u64,
    pub stage: Duration,
    pub outcome: Outcome,
    pub status_malformed: bool,
    pub cost: i64,
}

const STAGES: [&str; 3] = ["waiting", "queuing", "generating"];

impl Task {
    /// When the task reaches its final state.
    pub(crate) fn finished_at(&self) -> Instant {
        self.created + self.stage * 3
    }

    /// Whole stages elapsed, at most 3 (= finished).
    fn stages_elapsed(&self, now: Instant) -> u32 {
        if self.stage.is_zero() {
            return 3;
        }
        let elapsed = now.saturating_duration_since(self.created).as_nanos();
        let stages = elapsed / self.stage.as_nanos();
        u32::try_from(stages.min(3)).unwrap_or(3)
    }

    pub(crate) fn state(&self, now: Instant) -> &'static str {
        match STAGES.get(self.stages_elapsed(now) as usize) {
            Some(running) => running,
            None if self.outcome.is_success() => "success",
            None => "fail",
        }
    }

    fn millis_after_create(&self, stages: u32) -> u64 {
        let offset = u64::try_from((self.stage * stages).as_millis()).unwrap_or(u64::MAX);
        self.create_ms.saturating_add(offset)
    }

    /// The `data` of recordInfo, in the shape of fixtures/kie/record_*.json.
    pub(crate) fn record(&self, now: Instant, base_url: &str) -> Value {
        let stages = self.stages_elapsed(now);
        let finished = stages >= 3;
        let param = self.param();
        let (result_json, fail_code, fail_msg) = match (&self.outcome, finished) {
            (_, false) => (String::new(), json!(""), ""),
            (Outcome::Success, true) => (self.result_json(base_url), json!(""), ""),
            (Outcome::NoUrl, true) => (r#"{"resultUrls":[]}"#.to_owned(), json!(""), ""),
            (Outcome::Fail { code, msg, .. }, true) => (String::new(), code.clone(), *msg),
        };
        let complete_ms = finished.then(|| self.millis_after_create(3));
        let cost_ms = finished.then(|| self.millis_after_create(3) - self.create_ms);
        json!({
            "taskId": self.id,
            "model": self.model,
            "state": self.state(now),
            "param": param,
            "resultJson": result_json,
            "failCode": fail_code,
            "failMsg": fail_msg,
            "costTime": cost_ms,
            "createTime": self.create_ms,
            "completeTime": complete_ms,
            "updateTime": self.millis_after_create(stages),
        })
    }

    /// The callback body of the task's API.
    pub(crate) fn callback(&self, now: Instant, base_url: &str) -> Value {
        match self.api {
            Api::Market => self.market_callback(now, base_url),
            Api::Veo => self.veo_callback(base_url),
        }
    }

    /// The callback body, in the shape of fixtures/kie/callback_*.json.
    fn market_callback(&self, now: Instant, base_url: &str) -> Value {
        let mut data = self.record(now, base_url);
        let consumed = if self.outcome.is_success() {
            self.cost
        } else {
            0
        };
        data["creditsConsumed"] = json!(consumed);
        if self.outcome.is_success() {
            json!({"code": 200, "msg": "Playground task completed successfully.", "data": data})
        } else {
            json!({"code": 501, "msg": "Playground task failed.", "data": data})
        }
    }

    /// The `data` of Veo's record-info, in the shape of docs.kie.ai's "Get Veo3.1 Video
    /// Details": `successFlag` 0 while running, `response` only on success, and
    /// `errorCode` / `errorMessage` on failure.
    pub(crate) fn veo_record(&self, now: Instant, base_url: &str) -> Value {
        let finished = self.stages_elapsed(now) >= 3;
        let (flag, response, error_code, error_message) = match (&self.outcome, finished) {
            (_, false) => (0, Value::Null, Value::Null, ""),
            (Outcome::Success | Outcome::NoUrl, true) => {
                let mut response = self.veo_info(base_url);
                response["taskId"] = json!(self.id);
                (1, response, Value::Null, "")
            }
            (Outcome::Fail { veo, .. }, true) => {
                (veo.flag, Value::Null, json!(veo.code), veo.message)
            }
        };
        json!({
            "taskId": self.id,
            "paramJson": self.param(),
            "completeTime": finished.then(|| veo_time(self.millis_after_create(3))),
            "response": response,
            "successFlag": flag,
            "errorCode": error_code,
            "errorMessage": error_message,
            "createTime": veo_time(self.create_ms),
            "fallbackFlag": false,
        })
    }

    /// The Veo callback, in the shape of docs.kie.ai's "Veo3.1 Video Generation Callbacks":
    /// on failure `code` and `msg` are the error, and `data` holds only the id.
    fn veo_callback(&self, base_url: &str) -> Value {
        match &self.outcome {
            Outcome::Fail { veo, .. } => json!({
                "code": veo.code,
                "msg": veo.message,
                "data": {"taskId": self.id, "fallbackFlag": false},
            }),
            Outcome::Success | Outcome::NoUrl => json!({
                "code": 200,
                "msg": "Veo3.1 video generated successfully.",
                "data": {
                    "taskId": self.id,
                    "promptJson": self.param(),
                    "info": self.veo_info(base_url),
                    "fallbackFlag": false,
                },
            }),
        }
    }

    /// `resultUrls` (a JSON array, unlike the Market's `resultJson` string), and `originUrls`,
    /// which KIE fills only for a shape other than 16:9.
    fn veo_info(&self, base_url: &str) -> Value {
        if self.outcome == Outcome::NoUrl {
            return json!({"resultUrls": [], "originUrls": [], "resolution": "720p"});
        }
        let widescreen = self
            .request
            .get("aspect_ratio")
            .and_then(Value::as_str)
            .is_none_or(|ratio| ratio == "16:9");
        let origin: Vec<String> = if widescreen {
            Vec::new()
        } else {
            vec![format!("{base_url}/videos/{}-origin.mp4", self.id)]
        };
        json!({
            "resultUrls": [format!("{base_url}/videos/{}.mp4", self.id)],
            "originUrls": origin,
            "resolution": "720p",
        })
    }

    fn param(&self) -> String {
        serde_json::to_string(&self.request).unwrap_or_default()
    }

    fn result_json(&self, base_url: &str) -> String {
        json!({
            "resultUrls": [format!("{base_url}/videos/{}.mp4", self.id)],
            "resultWaterMarkUrls": [format!("{base_url}/videos/{}-watermark.mp4", self.id)],
        })
        .to_string()
    }

    /// Whether `/videos/<name>` serves a video of this task.
    pub(crate) fn has_video(&self, name: &str, now: Instant) -> bool {
        let Some(stem) = name.strip_suffix(".mp4") else {
            return false;
        };
        let stem = stem
            .strip_suffix("-watermark")
            .or_else(|| stem.strip_suffix("-origin"))
            .unwrap_or(stem);
        stem == self.id && self.outcome == Outcome::Success && self.stages_elapsed(now) >= 3
    }

    pub(crate) fn public(&self, now: Instant) -> EmulatedTask {
        EmulatedTask {
            task_id: self.id.clone(),
            api: self.api.name().to_owned(),
            account: self.account.clone(),
            key: self.key.clone(),
            model: self.model.clone(),
            prompt: self.prompt.clone(),
            input: self.input.clone(),
            callback_url: self.callback_url.clone(),
            state: self.state(now).to_owned(),
            outcome: self.outcome.name().to_owned(),
            finished_at: self.finished_at(),
        }
    }
}

/// Veo's time format, as its docs show it: `2025-06-06 10:30:00` (UTC).
fn veo_time(unix_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(unix_ms);
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(outcome: Outcome) -> Task {
        let input = json!({
            "prompt": "p",
            "image_urls": ["http://h/a.jpg"],
            "duration": "5",
            "sound": false,
        });
        Task {
            id: "task_kling-2.6-image-to-video_1".to_owned(),
            api: Api::Market,
            account: "main".to_owned(),
            key: "k".to_owned(),
            model: "kling-2.6/image-to-video".to_owned(),
            prompt: "p".to_owned(),
            request: json!({"model": "kling-2.6/image-to-video", "input": input}),
            input,
            callback_url: None,
            created: Instant::now(),
            create_ms: 1_000,
            stage: Duration::from_secs(10),
            outcome,
            status_malformed: false,
            cost: 1,
        }
    }

    #[test]
    fn the_state_follows_the_elapsed_stages() {
        let t = task(Outcome::Success);
        let at = |secs| t.created + Duration::from_secs(secs);
        assert_eq!(t.state(at(0)), "waiting");
        assert_eq!(t.state(at(11)), "queuing");
        assert_eq!(t.state(at(25)), "generating");
        assert_eq!(t.state(at(30)), "success");
    }

    #[test]
    fn a_running_task_has_empty_results_and_a_finished_one_its_urls() {
        let t = task(Outcome::Success);
        let running = t.record(t.created, "http://h");
        assert_eq!(running["resultJson"], "");
        assert_eq!(running["failCode"], "");
        assert!(running["completeTime"].is_null());
        let done = t.record(t.created + Duration::from_secs(31), "http://h");
        let result: Value = serde_json::from_str(done["resultJson"].as_str().unwrap()).unwrap();
        assert_eq!(
            result["resultUrls"][0],
            "http://h/videos/task_kling-2.6-image-to-video_1.mp4"
        );
        assert_eq!(done["completeTime"], 31_000);
        assert_eq!(done["costTime"], 30_000);
    }

    fn veo_task(outcome: Outcome, aspect_ratio: &str) -> Task {
        let request = json!({
            "prompt": "p",
            "model": "veo3_fast",
            "imageUrls": ["http://h/a.jpg"],
            "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
            "aspect_ratio": aspect_ratio,
        });
        Task {
            id: "veo_task_1".to_owned(),
            api: Api::Veo,
            model: "veo3_fast".to_owned(),
            input: request.clone(),
            request,
            ..task(outcome)
        }
    }

    #[test]
    fn veo_record_info_has_success_flag_0_then_1_and_a_result_url_array() {
        let t = veo_task(Outcome::Success, "9:16");
        let running = t.veo_record(t.created, "http://h");
        assert_eq!(running["successFlag"], 0);
        assert!(running["response"].is_null());
        assert!(running["completeTime"].is_null());
        assert!(running["errorCode"].is_null());
        assert_eq!(running["errorMessage"], "");

        let done = t.veo_record(t.created + Duration::from_secs(31), "http://h");
        assert_eq!(done["successFlag"], 1);
        assert_eq!(done["taskId"], "veo_task_1");
        assert_eq!(done["response"]["taskId"], "veo_task_1");
        assert_eq!(
            done["response"]["resultUrls"],
            json!(["http://h/videos/veo_task_1.mp4"])
        );
        assert_eq!(
            done["response"]["originUrls"],
            json!(["http://h/videos/veo_task_1-origin.mp4"])
        );
        let param: Value = serde_json::from_str(done["paramJson"].as_str().unwrap()).unwrap();
        assert_eq!(param["aspect_ratio"], "9:16");
        assert_eq!(done["createTime"], "1970-01-01 00:00:01");
        assert_eq!(done["completeTime"], "1970-01-01 00:00:31");
        assert!(t.has_video("veo_task_1-origin.mp4", t.created + Duration::from_secs(31)));
    }

    #[test]
    fn a_failed_veo_task_reports_its_flag_code_and_message() {
        let outcome = Outcome::from_script(Scripted::Violation { first: None }, 0);
        let t = veo_task(outcome, "16:9");
        let done = t.veo_record(t.created + Duration::from_secs(31), "http://h");
        assert_eq!(done["successFlag"], 2);
        assert_eq!(done["errorCode"], 400);
        assert_eq!(
            done["errorMessage"],
            "Your prompt was flagged by Website as violating content policies."
        );
        assert!(done["response"].is_null());
        assert_eq!(
            t.callback(t.created, "http://h"),
            json!({
                "code": 400,
                "msg": "Your prompt was flagged by Website as violating content policies.",
                "data": {"taskId": "veo_task_1", "fallbackFlag": false},
            })
        );
        let temporary = Outcome::from_script(Scripted::Temporary { first: None }, 0);
        let done = veo_task(temporary, "16:9").veo_record(t.created + Duration::from_secs(31), "h");
        assert_eq!(done["successFlag"], 3);
        assert_eq!(done["errorCode"], 500);
    }

    #[test]
    fn a_veo_success_callback_carries_info_and_no_origin_at_16_9() {
        let t = veo_task(Outcome::Success, "16:9");
        let callback = t.callback(t.created + Duration::from_secs(31), "http://h");
        assert_eq!(callback["code"], 200);
        assert_eq!(callback["msg"], "Veo3.1 video generated successfully.");
        assert_eq!(callback["data"]["taskId"], "veo_task_1");
        assert_eq!(
            callback["data"]["info"]["resultUrls"],
            json!(["http://h/videos/veo_task_1.mp4"])
        );
        assert_eq!(callback["data"]["info"]["originUrls"], json!([]));
        assert_eq!(callback["data"]["fallbackFlag"], false);
        assert!(callback["data"]["promptJson"].is_string());
    }

    #[test]
    fn violation_n_refuses_only_the_first_n() {
        let scripted = Scripted::Violation { first: Some(1) };
        assert_eq!(Outcome::from_script(scripted, 0).name(), "violation");
        assert_eq!(Outcome::from_script(scripted, 1).name(), "success");
    }

    #[test]
    fn temporary_n_fails_only_the_first_n() {
        let scripted = Scripted::Temporary { first: Some(2) };
        assert_ne!(Outcome::from_script(scripted, 1), Outcome::Success);
        assert_eq!(Outcome::from_script(scripted, 2), Outcome::Success);
    }
}
