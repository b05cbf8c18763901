//! KIE's JSON as it really arrives: `msg` or `message`, errors inside HTTP 200, `failCode` as
//! a string, a number or null, JSON inside strings, unknown states and unknown fields.
//! Pure parsing, no I/O.

use serde::Deserialize;
use serde_json::Value;

/// Every KIE answer: `{"code": 200, "msg": "success", "data": …}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub code: Option<i64>,
    #[serde(alias = "message")]
    pub msg: Option<String>,
    #[serde(default)]
    pub data: Value,
}

impl Envelope {
    pub fn parse(body: &str) -> Option<Envelope> {
        serde_json::from_str(body).ok()
    }

    pub fn is_ok(&self) -> bool {
        self.code == Some(200)
    }

    pub fn message(&self) -> &str {
        self.msg.as_deref().unwrap_or_default()
    }
}

/// Where a task stands, as far as the worker cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// `waiting`, `queuing`, `generating`, or a state we do not know: keep waiting.
    Running(String),
    Succeeded {
        video_url: String,
    },
    /// `success` without a URL is a failure, not a success.
    SucceededWithoutResult,
    Failed {
        fail_code: Option<String>,
        fail_msg: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordData {
    state: Option<String>,
    result_json: Option<Value>,
    fail_code: Option<Value>,
    fail_msg: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultJson {
    #[serde(default)]
    result_urls: Vec<String>,
}

/// Reads `data` of a recordInfo answer (or a callback) whose envelope code was 200.
pub fn task_state(data: &Value) -> Option<TaskState> {
    // Read from the tree in place: a clone of the whole record for every status query was
    // a share of the waiting worker's allocations.
    let record = RecordData::deserialize(data).ok()?;
    let state = record.state.unwrap_or_default();
    Some(match state.as_str() {
        "success" => match first_result_url(record.result_json.as_ref()) {
            Some(video_url) => TaskState::Succeeded { video_url },
            None => TaskState::SucceededWithoutResult,
        },
        "fail" => TaskState::Failed {
            fail_code: text_of(record.fail_code.as_ref()),
            fail_msg: text_of(record.fail_msg.as_ref()),
        },
        _ => TaskState::Running(state),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VeoRecordData {
    success_flag: Option<Value>,
    response: Option<Value>,
    error_code: Option<Value>,
    error_message: Option<Value>,
}

/// Reads `data` of Veo's record-info answer: `successFlag` 0 while generating, 1 done (the
/// URLs in `response.resultUrls`), 2 or 3 failed (`errorCode`, `errorMessage`).
pub fn veo_task_state(data: &Value) -> Option<TaskState> {
    let record = VeoRecordData::deserialize(data).ok()?;
    let flag = match record.success_flag {
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    };
    Some(match flag {
        Some(1) => match first_result_url(record.response.as_ref()) {
            Some(video_url) => TaskState::Succeeded { video_url },
            None => TaskState::SucceededWithoutResult,
        },
        Some(2 | 3) => TaskState::Failed {
            fail_code: text_of(record.error_code.as_ref()),
            fail_msg: text_of(record.error_message.as_ref()),
        },
        other => TaskState::Running(format!("successFlag {}", other.unwrap_or(0))),
    })
}

/// `resultJson` is JSON inside a string (sometimes an object, empty or null).
fn first_result_url(result_json: Option<&Value>) -> Option<String> {
    let parsed: ResultJson = match result_json? {
        Value::String(inner) if !inner.trim().is_empty() => serde_json::from_str(inner).ok()?,
        object @ Value::Object(_) => ResultJson::deserialize(object).ok()?,
        _ => return None,
    };
    parsed
        .result_urls
        .into_iter()
        .find(|url| !url.trim().is_empty())
}

/// A string, a number or null, as text; empty means none.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The task id of a createTask answer.
pub fn task_id(data: &Value) -> Option<String> {
    data.get("taskId")
        .or_else(|| data.get("task_id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// The public URL of an uploaded file: `data.downloadUrl`, else `data.fileUrl`.
pub fn uploaded_url(data: &Value) -> Option<String> {
    data.get("downloadUrl")
        .or_else(|| data.get("fileUrl"))
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veo_records_are_read_by_their_success_flag() {
        let running = serde_json::json!({"taskId": "t", "successFlag": 0, "response": null});
        assert!(matches!(
            veo_task_state(&running),
            Some(TaskState::Running(_))
        ));
        let done = serde_json::json!({"taskId": "t", "successFlag": 1,
            "response": {"taskId": "t", "resultUrls": ["https://r/v.mp4"]}});
        assert_eq!(
            veo_task_state(&done),
            Some(TaskState::Succeeded {
                video_url: "https://r/v.mp4".into()
            })
        );
        let empty = serde_json::json!({"successFlag": 1, "response": {"resultUrls": []}});
        assert_eq!(
            veo_task_state(&empty),
            Some(TaskState::SucceededWithoutResult)
        );
        let failed = serde_json::json!({"successFlag": 2, "errorCode": 400,
            "errorMessage": "Your prompt was flagged by Website as violating content policies"});
        assert_eq!(
            veo_task_state(&failed),
            Some(TaskState::Failed {
                fail_code: Some("400".into()),
                fail_msg: Some(
                    "Your prompt was flagged by Website as violating content policies".into()
                ),
            })
        );
    }

    fn fixture(name: &str) -> Envelope {
        let body = match name {
            "record_success" => include_str!("../../fixtures/kie/record_success.json"),
            "record_success_no_url" => {
                include_str!("../../fixtures/kie/record_success_no_url.json")
            }
            "record_fail_people" => {
                include_str!("../../fixtures/kie/record_fail_people.json")
            }
            "record_fail_policy" => {
                include_str!("../../fixtures/kie/record_fail_policy.json")
            }
            "record_queuing" => {
                include_str!("../../fixtures/kie/record_queuing_message_spelling.json")
            }
            "record_waiting" => include_str!("../../fixtures/kie/record_waiting.json"),
            "record_generating" => {
                include_str!("../../fixtures/kie/record_generating.json")
            }
            "record_unknown" => {
                include_str!("../../fixtures/kie/record_unknown_task.json")
            }
            "callback_fail" => include_str!("../../fixtures/kie/callback_fail.json"),
            "callback_success" => {
                include_str!("../../fixtures/kie/callback_success.json")
            }
            "create_ok" => include_str!("../../fixtures/kie/create_task_ok.json"),
            "upload_ok" => include_str!("../../fixtures/kie/upload_ok.json"),
            other => panic!("no fixture {other}"),
        };
        Envelope::parse(body).expect("fixtures are JSON")
    }

    #[test]
    fn a_success_yields_the_first_result_url_parsed_from_the_string() {
        let answer = fixture("record_success");
        assert!(answer.is_ok());
        assert_eq!(
            task_state(&answer.data),
            Some(TaskState::Succeeded {
                video_url: "https://tempfile.aiquickdraw.com/v/5f0c1e-generated-video.mp4".into()
            })
        );
        let callback = fixture("callback_success");
        assert!(matches!(
            task_state(&callback.data),
            Some(TaskState::Succeeded { .. })
        ));
    }

    #[test]
    fn a_success_without_a_url_is_not_a_success() {
        let answer = fixture("record_success_no_url");
        assert_eq!(
            task_state(&answer.data),
            Some(TaskState::SucceededWithoutResult)
        );
    }

    #[test]
    fn fail_codes_come_as_strings_numbers_or_null() {
        assert_eq!(
            task_state(&fixture("record_fail_people").data),
            Some(TaskState::Failed {
                fail_code: Some("400".into()),
                fail_msg: Some(
                    "We currently do not support uploads of images containing photorealistic people."
                        .into()
                ),
            })
        );
        assert_eq!(
            task_state(&fixture("record_fail_policy").data),
            Some(TaskState::Failed {
                fail_code: Some("422".into()),
                fail_msg: Some("Invalid prompt: prompt contains prohibited content".into()),
            })
        );
        let callback = fixture("callback_fail");
        assert_eq!(callback.code, Some(501));
        assert!(matches!(
            task_state(&callback.data),
            Some(TaskState::Failed { .. })
        ));
    }

    #[test]
    fn running_states_and_unknown_states_mean_keep_waiting() {
        for name in ["record_waiting", "record_queuing", "record_generating"] {
            assert!(
                matches!(task_state(&fixture(name).data), Some(TaskState::Running(_))),
                "{name}"
            );
        }
        let odd = serde_json::json!({"state": "rendering", "resultJson": null});
        assert_eq!(
            task_state(&odd),
            Some(TaskState::Running("rendering".into()))
        );
    }

    #[test]
    fn the_message_spelling_is_accepted_and_unknown_tasks_have_no_data() {
        assert_eq!(fixture("record_queuing").message(), "success");
        let unknown = fixture("record_unknown");
        assert_eq!(unknown.code, Some(422));
        assert_eq!(unknown.message(), "recordInfo is null");
        assert_eq!(task_state(&unknown.data), None);
    }

    #[test]
    fn task_ids_and_upload_urls_are_read_from_either_spelling() {
        assert_eq!(
            task_id(&fixture("create_ok").data).as_deref(),
            Some("task_sora-2-image-to-video_1765184045509")
        );
        assert_eq!(
            task_id(&serde_json::json!({"task_id": "abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(
            uploaded_url(&fixture("upload_ok").data).as_deref(),
            Some("https://tempfile.redpandaai.co/xxx/neurocards/a1b2c3d4.jpg")
        );
        assert_eq!(
            uploaded_url(&serde_json::json!({"fileUrl": "https://x/y.png"})).as_deref(),
            Some("https://x/y.png")
        );
        assert!(Envelope::parse("error code: 1010").is_none());
    }
}
