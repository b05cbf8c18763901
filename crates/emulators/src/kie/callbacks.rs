//! Delivers the completion callback of a task, signed when the config asks for it.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::state::Shared;

/// `base64(HMAC-SHA256(taskId + "." + timestamp, key))`, as KIE signs its callbacks
/// (the `X-Webhook-Signature` header; the timestamp is `X-Webhook-Timestamp`, unix seconds).
pub fn callback_signature(key: &str, task_id: &str, timestamp: i64) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only make the
    // signature check of the receiver fail, which is what a test would notice.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Posts the callback of `task_id` to `url` once the task is final. Delivery failures are
/// logged and dropped: KIE documents no retry, and polling is the receiver's fallback.
pub(crate) fn spawn(shared: Arc<Shared>, task_id: String, url: String, finished_at: Instant) {
    tokio::spawn(async move {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep_until(finished_at.into()) => {}
        }
        let mut payload = {
            let state = shared.lock();
            match state.task(&task_id) {
                Some(task) => task.callback(Instant::now(), &shared.base_url),
                None => return,
            }
        };
        if shared.config.callback_task_id_snake_case {
            snake_case_task_id(&mut payload);
        }
        let mut request = shared.http.post(&url).json(&payload);
        if let Some(key) = &shared.config.callback_hmac_key {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            request = request
                .header("X-Webhook-Timestamp", timestamp.to_string())
                .header(
                    "X-Webhook-Signature",
                    callback_signature(key, &task_id, timestamp),
                );
        }
        match request.send().await {
            Ok(response) => {
                tracing::debug!(task_id, status = %response.status(), "KIE callback delivered");
            }
            Err(error) => {
                tracing::warn!(task_id, error = %error.without_url(), "KIE callback not delivered");
            }
        }
    });
}

/// KIE's docs disagree on the spelling (`taskId` in the text, `task_id` in a sample): a
/// receiver must cope with both, and this lets a test send the other one.
fn snake_case_task_id(payload: &mut Value) {
    if let Some(data) = payload.get_mut("data").and_then(Value::as_object_mut) {
        if let Some(id) = data.remove("taskId") {
            data.insert("task_id".to_owned(), id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_case_renames_only_the_task_id_of_data() {
        let mut payload = json!({"code": 200, "data": {"taskId": "t", "state": "success"}});
        snake_case_task_id(&mut payload);
        assert_eq!(
            payload,
            json!({"code": 200, "data": {"task_id": "t", "state": "success"}})
        );
    }

    #[test]
    fn the_signature_is_the_base64_hmac_of_id_dot_timestamp() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"task_1.1700000000");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(
            callback_signature("secret", "task_1", 1_700_000_000),
            expected
        );
    }
}
