//! `/bot<token>/<method>` and `/file/bot<token>/<path>`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::TgError;
use super::params::Params;
use super::state::Shared;
use super::{faults, methods, RecordedCall};
use crate::media::sniff_mime;

/// Videos are uploaded up to 50 MB.
const BODY_LIMIT: usize = 100 * 1024 * 1024;

/// Telegram caps long polling at 50 seconds.
const MAX_POLL_SECONDS: u64 = 50;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/file/{bot}/{*path}", get(download))
        .route("/{bot}/{method}", any(api))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

fn token_matches(shared: &Shared, segment: &str) -> bool {
    segment.strip_prefix("bot") == Some(shared.config.token.as_str())
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    req: Request,
) -> Response {
    let token_ok = token_matches(&shared, &bot);
    let method = methods::canonical(&method);
    let parsed = Params::from_request(req).await;
    let recorded = parsed.as_ref().map_or_else(|_| json!({}), Params::recorded);
    let late = {
        let mut st = shared.lock();
        st.calls.push(RecordedCall {
            method: method.clone(),
            token_ok,
            params: recorded,
            at: std::time::Instant::now(),
        });
        faults::take_late_answer(&mut st.faults, &method)
    };
    let result = match parsed {
        Err(error) => Err(error),
        Ok(_) if !token_ok => Err(TgError::unauthorized()),
        Ok(params) => run(&shared, &method, &params).await,
    };
    if result.as_ref().is_err_and(|error| error.code == 429) {
        shared.lock().rate_limited += 1;
    }
    let response = match result {
        Ok(value) => Json(json!({"ok": true, "result": value})).into_response(),
        Err(error) => error.into_response(),
    };
    if let Some(delay) = late {
        // The call has taken effect; only its answer is held back. A client that gave up
        // meanwhile gets nothing more, and stopping the emulator must not wait for the delay.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.cancel.cancelled() => {}
        }
    }
    response
}

async fn run(shared: &Shared, method: &str, params: &Params) -> Result<Value, TgError> {
    if let Some(error) = faults::take_method_fault(&mut shared.lock().faults, method) {
        return Err(error);
    }
    if method == "getUpdates" {
        return get_updates(shared, params).await;
    }
    let result = methods::call(&mut shared.lock(), &shared.config, method, params);
    if result.is_ok() {
        shared.sent.notify_waiters();
    }
    result
}

/// Long polling: answers as soon as an update is queued, or after `timeout` seconds.
async fn get_updates(shared: &Shared, p: &Params) -> Result<Value, TgError> {
    if shared.lock().webhook.is_some() {
        return Err(TgError::new(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        ));
    }
    let offset = p.i64("offset");
    let limit = usize::try_from(p.i64("limit").unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let timeout = u64::try_from(p.i64("timeout").unwrap_or(0))
        .unwrap_or(0)
        .min(MAX_POLL_SECONDS);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = shared.updates.notified();
        tokio::pin!(notified);
        // Registered before looking, so an update queued in between still wakes this poll.
        notified.as_mut().enable();
        let batch = shared.lock().take_updates(offset, limit);
        if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Value::Array(batch));
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = shared.cancel.cancelled() => return Ok(json!([])),
        }
    }
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if !token_matches(&shared, &bot) {
        return TgError::unauthorized().into_response();
    }
    let file = shared.lock().file_by_path(&path).cloned();
    match file {
        Some(file) => {
            let mime = match sniff_mime(&file.bytes) {
                "application/octet-stream" if path.ends_with(".mp4") => "video/mp4",
                mime => mime,
            };
            ([(CONTENT_TYPE, mime)], file.bytes).into_response()
        }
        None => TgError::new(404, "Not Found").into_response(),
    }
}
