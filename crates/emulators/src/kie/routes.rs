//! The KIE API routes: tasks, credits, download links, videos.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::markers::{self, CreateFault};
use super::record::{self, BODY_LIMIT};
use super::state::{unix_millis, Refusal, Shared};
use super::task::{Outcome, Task};
use super::{callbacks, control, upload};
use crate::media;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/jobs/createTask", post(create_task))
        .route("/api/v1/jobs/recordInfo", get(record_info))
        .route("/api/v1/chat/credit", get(credit))
        .route("/api/v1/common/download-url", post(download_url))
        .route("/api/file-stream-upload", post(upload::stream))
        .route("/api/file-base64-upload", post(upload::base64))
        .route("/api/file-url-upload", post(upload::url))
        .route("/videos/{name}", get(video))
        .route("/files/{*path}", get(upload::serve))
        .merge(control::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            record::record,
        ))
        .with_state(shared)
}

/// The key of the `Authorization: Bearer` header and its account, if the key is known.
pub(crate) fn authorize(shared: &Shared, headers: &HeaderMap) -> Option<(String, String)> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let account = shared.lock().account_of_key(key)?;
    Some((account, key.to_owned()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 401, "msg": "You do not have access permissions"})),
    )
        .into_response()
}

fn envelope(code: u16, msg: &str, data: Value) -> Response {
    Json(json!({"code": code, "msg": msg, "data": data})).into_response()
}

fn rate_limited() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"code": 429, "msg": "Rate limit exceeded"})),
    )
        .into_response()
}

fn insufficient_credits() -> Response {
    envelope(
        402,
        "The current credits are insufficient. Please top up.",
        Value::Null,
    )
}

fn validation(what: &str) -> Response {
    envelope(
        422,
        &format!("Parameter validation failed: {what}"),
        Value::Null,
    )
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": 404, "msg": "Not Found"})),
    )
        .into_response()
}

/// The parts of a create request the emulator needs, validated as KIE does.
struct CreateRequest {
    request: Value,
    model: String,
    input: Value,
    prompt: String,
    callback_url: Option<String>,
}

/// The error is what failed validation.
fn parse_create(body: &[u8]) -> Result<CreateRequest, &'static str> {
    let request: Value =
        serde_json::from_slice(body).map_err(|_| "the body must be a JSON object")?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .ok_or("model is required")?
        .to_owned();
    let input = request
        .get("input")
        .filter(|i| i.is_object())
        .ok_or("input is required")?
        .clone();
    let prompt = input
        .get("prompt")
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .ok_or("input.prompt is required")?
        .to_owned();
    if prompt.chars().count() > 10_000 {
        return Err("input.prompt must be at most 10000 characters");
    }
    let callback_url = request
        .get("callBackUrl")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    Ok(CreateRequest {
        request,
        model,
        input,
        prompt,
        callback_url,
    })
}

async fn create_task(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().create_task_calls += 1;
    let Some((account, key)) = authorize(&shared, &headers) else {
        return unauthorized();
    };
    let create = match parse_create(&body) {
        Ok(create) => create,
        Err(what) => return validation(what),
    };
    let script = markers::parse(&create.prompt);
    match script.create_fault {
        Some(CreateFault::Hang) => {
            shared.cancel.cancelled().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(CreateFault::Http500) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"code": 500, "msg": "Server error"})),
            )
                .into_response()
        }
        Some(CreateFault::Http429) => {
            let mut response = rate_limited();
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            return response;
        }
        Some(CreateFault::Malformed) => {
            return (
                StatusCode::OK,
                [(CONTENT_TYPE, "text/html")],
                "<html>upstream error</html>",
            )
                .into_response()
        }
        Some(CreateFault::Billing) => return insufficient_credits(),
        None => {}
    }

    let now = Instant::now();
    let task = {
        let mut state = shared.lock();
        match state.admit_create(&account, &shared.config, now) {
            Ok(()) => {}
            Err(Refusal::RateLimited) => return rate_limited(),
            Err(Refusal::InsufficientCredits) => return insufficient_credits(),
        }
        let previous_uses = state.use_prompt(&create.prompt);
        let scripted = if state.refuse_next > 0 {
            state.refuse_next -= 1;
            markers::Scripted::Violation { first: None }
        } else {
            script.outcome
        };
        let stage = script
            .slow
            .map_or(shared.config.stage_delay, |total| total / 3);
        let task = Task {
            id: state.next_task_id(&create.model),
            account,
            key,
            model: create.model,
            prompt: create.prompt,
            input: create.input,
            request: create.request,
            callback_url: create.callback_url,
            created: now,
            create_ms: unix_millis(),
            stage,
            outcome: Outcome::from_script(scripted, previous_uses),
            status_malformed: script.status_malformed,
            cost: shared.config.cost_per_task,
        };
        state.insert_task(task.clone());
        task
    };
    if let Some(url) = &task.callback_url {
        callbacks::spawn(
            Arc::clone(&shared),
            task.id.clone(),
            url.clone(),
            task.finished_at(),
        );
    }
    envelope(200, "success", json!({"taskId": task.id}))
}

#[derive(Deserialize)]
struct RecordQuery {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

async fn record_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<RecordQuery>,
) -> Response {
    let Some((account, key)) = authorize(&shared, &headers) else {
        return unauthorized();
    };
    let now = Instant::now();
    let mut state = shared.lock();
    if !state.admit_status(&key, shared.config.status_limit_per_second, now) {
        return rate_limited();
    }
    // A task of another account is as unknown to this key as a task that never existed.
    let task = query
        .task_id
        .as_deref()
        .and_then(|id| state.task(id))
        .filter(|t| t.account == account);
    match task {
        None => envelope(422, "recordInfo is null", Value::Null),
        Some(t) if t.status_malformed => {
            (StatusCode::OK, [(CONTENT_TYPE, "text/plain")], "not json").into_response()
        }
        Some(t) => envelope(200, "success", t.record(now, &shared.base_url)),
    }
}

async fn credit(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some((account, _)) = authorize(&shared, &headers) else {
        return unauthorized();
    };
    let credits = shared.lock().credits(&account).unwrap_or(0);
    envelope(200, "success", json!(credits))
}

async fn download_url(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if authorize(&shared, &headers).is_none() {
        return unauthorized();
    }
    let url = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("url").and_then(Value::as_str).map(str::to_owned));
    match url {
        Some(url) if !url.is_empty() => {
            let separator = if url.contains('?') { '&' } else { '?' };
            envelope(200, "success", json!(format!("{url}{separator}fresh=1")))
        }
        _ => validation("url is required"),
    }
}

async fn video(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let now = Instant::now();
    let known = shared
        .lock()
        .tasks()
        .iter()
        .any(|t| t.has_video(&name, now));
    if !known {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([(CONTENT_TYPE, "video/mp4")], media::tiny_mp4()).into_response()
}
