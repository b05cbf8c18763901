//! An accepted task: its timeline and its recordInfo / callback views.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::markers::Scripted;
use super::EmulatedTask;

/// How a task ends, fixed when it is created.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Success,
    NoUrl,
    Fail {
        kind: &'static str,
        code: Value,
        msg: &'static str,
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
        };
        let violation = Outcome::Fail {
            kind: "violation",
            code: json!("422"),
            msg: "Invalid prompt: prompt contains prohibited content",
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
            },
            Scripted::Temporary { first: None } => temporary,
            Scripted::Temporary { first: Some(n) } if previous_uses < n => temporary,
            Scripted::Temporary { .. } => Outcome::Success,
            Scripted::Unknown => Outcome::Fail {
                kind: "unknown",
                code: json!("999"),
                msg: "Something unexpected happened",
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
    pub account: String,
    pub key: String,
    pub model: String,
    pub prompt: String,
    pub input: Value,
    /// The create request as received, for `param`.
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
        let param = serde_json::to_string(&self.request).unwrap_or_default();
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

    /// The callback body, in the shape of fixtures/kie/callback_*.json.
    pub(crate) fn callback(&self, now: Instant, base_url: &str) -> Value {
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
        let stem = stem.strip_suffix("-watermark").unwrap_or(stem);
        stem == self.id && self.outcome == Outcome::Success && self.stages_elapsed(now) >= 3
    }

    pub(crate) fn public(&self, now: Instant) -> EmulatedTask {
        EmulatedTask {
            task_id: self.id.clone(),
            account: self.account.clone(),
            key: self.key.clone(),
            model: self.model.clone(),
            prompt: self.prompt.clone(),
            input: self.input.clone(),
            callback_url: self.callback_url.clone(),
            state: self.state(now).to_owned(),
            outcome: self.outcome.name().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(outcome: Outcome) -> Task {
        Task {
            id: "task_m_1".to_owned(),
            account: "main".to_owned(),
            key: "k".to_owned(),
            model: "m".to_owned(),
            prompt: "p".to_owned(),
            input: json!({"prompt": "p"}),
            request: json!({"model": "m", "input": {"prompt": "p"}}),
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
        assert_eq!(result["resultUrls"][0], "http://h/videos/task_m_1.mp4");
        assert_eq!(done["completeTime"], 31_000);
        assert_eq!(done["costTime"], 30_000);
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
