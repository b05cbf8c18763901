//! Webhook delivery, as Telegram does it: once setWebhook names a URL, queued updates are
//! posted to it one at a time, oldest first, with the secret token in the
//! `X-Telegram-Bot-Api-Secret-Token` header. An update leaves the queue only when the
//! answer is a 2xx; otherwise it is posted again after a pause, and the failure shows in
//! getWebhookInfo. Only loopback URLs are accepted: the emulator never reaches out further.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::error::TgError;
use super::params::Params;
use super::state::{Shared, TgState, WebhookReg};

/// The pause before a failed delivery is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// setWebhook's parameters; `None` for an empty URL (which removes the webhook).
pub(crate) fn registration(p: &Params) -> Result<Option<WebhookReg>, TgError> {
    let Some(url) = p.str("url").filter(|url| !url.is_empty()) else {
        return Ok(None);
    };
    let parsed =
        url::Url::parse(&url).map_err(|_| TgError::bad_request("bad webhook: invalid URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !loopback {
        return Err(TgError::bad_request(
            "bad webhook: the emulator posts only to 127.0.0.1",
        ));
    }
    let secret_token = p.str("secret_token").filter(|token| !token.is_empty());
    if let Some(token) = &secret_token {
        let allowed = token.len() <= 256
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !allowed {
            return Err(TgError::bad_request(
                "secret token contains unallowed characters",
            ));
        }
    }
    let allowed_updates = p.json("allowed_updates").and_then(|value| {
        let kinds: Vec<String> = value
            .as_array()?
            .iter()
            .filter_map(|kind| kind.as_str().map(str::to_owned))
            .collect();
        (!kinds.is_empty()).then_some(kinds)
    });
    Ok(Some(WebhookReg {
        url,
        secret_token,
        max_connections: p.i64("max_connections").unwrap_or(40).clamp(1, 100),
        allowed_updates,
    }))
}

/// getWebhookInfo.
pub(crate) fn info(st: &TgState) -> Value {
    let mut info = json!({
        "url": st.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": st.pending_updates(),
    });
    if let Some(webhook) = &st.webhook {
        info["max_connections"] = json!(webhook.max_connections);
        if let Some(kinds) = &webhook.allowed_updates {
            info["allowed_updates"] = json!(kinds);
        }
    }
    if let Some((at, message)) = &st.webhook_last_error {
        info["last_error_date"] = json!(at);
        info["last_error_message"] = json!(message);
    }
    info
}

/// Posts queued updates while a webhook is set, until the emulator stops.
pub(crate) fn spawn(shared: Arc<Shared>, http: reqwest::Client) {
    tokio::spawn(async move {
        loop {
            let queued = shared.updates.notified();
            tokio::pin!(queued);
            // Registered before looking, so an update queued in between still wakes us.
            queued.as_mut().enable();
            let next = {
                let st = shared.lock();
                st.webhook
                    .clone()
                    .and_then(|webhook| Some((webhook, st.peek_update()?)))
            };
            let Some((webhook, (id, update))) = next else {
                tokio::select! {
                    () = shared.cancel.cancelled() => return,
                    () = &mut queued => {}
                    // setWebhook does not queue anything: look again now and then.
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
                continue;
            };
            if !wanted(&webhook, &update) {
                shared.lock().confirm_update(id);
                continue;
            }
            let mut request = http.post(&webhook.url).json(&update);
            if let Some(token) = &webhook.secret_token {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", token);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!(
                    "Wrong response from the webhook: {}",
                    response.status()
                )),
                Err(err) => Some(format!("Connection failed: {err}")),
            };
            match failure {
                None => {
                    let mut st = shared.lock();
                    st.confirm_update(id);
                    st.webhook_delivered.push(update);
                }
                Some(message) => {
                    shared.lock().webhook_last_error = Some((unix_now(), message));
                    tokio::select! {
                        () = shared.cancel.cancelled() => return,
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
            }
        }
    });
}

/// Whether the webhook asked for this kind of update.
fn wanted(webhook: &WebhookReg, update: &Value) -> bool {
    let Some(kinds) = &webhook.allowed_updates else {
        return true;
    };
    update
        .as_object()
        .into_iter()
        .flat_map(|fields| fields.keys())
        .any(|key| key != "update_id" && kinds.iter().any(|kind| kind == key))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
