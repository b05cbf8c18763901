//! The KIE API routes: Market and Veo tasks, credits, download links, videos.

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
use serde_json::{json, Map, Value};

use super::markers::{self, CreateFault};
use super::models;
use super::record::{self, BODY_LIMIT};
use super::state::{unix_millis, Refusal, Shared};
use super::task::{Api, Outcome, Task};
use super::{callbacks, control, upload};
use crate::media;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/jobs/createTask", post(create_task))
        .route("/api/v1/jobs/recordInfo", get(record_info))
        .route("/api/v1/veo/generate", post(veo_generate))
        .route("/api/v1/veo/record-info", get(veo_record_info))
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

/// A create request that passed validation.
struct NewTask {
    api: Api,
    model: String,
    prompt: String,
    input: Value,
    request: Value,
    callback_url: Option<String>,
}

/// Why a create request creates nothing, before any account is charged.
enum Refused {
    /// `Parameter validation failed: <what>`.
    Invalid(String),
    /// A model KIE has switched off.
    Paused,
    /// A model KIE does not list.
    Unpublished,
}

impl Refused {
    fn answer(self) -> Response {
        match self {
            Refused::Invalid(what) => validation(&what),
            Refused::Paused => envelope(500, "This interface is temporarily paused", Value::Null),
            Refused::Unpublished => envelope(
                422,
                "The page does not exist or is not published",
                Value::Null,
            ),
        }
    }
}

/// Sora went first (mid-2026); any model can follow, through `pause_model`.
fn is_paused(shared: &Shared, model: &str) -> bool {
    model.starts_with("sora-") || shared.lock().is_paused(model)
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Refused> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Refused::Invalid(
            "the body must be a JSON object".to_owned(),
        )),
    }
}

fn callback_url(fields: &Map<String, Value>) -> Option<String> {
    fields
        .get("callBackUrl")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
}

/// Checks a createTask body as KIE does: the model first (paused, unpublished), then `input`
/// against the model's schema.
fn parse_market(shared: &Shared, body: &[u8]) -> Result<NewTask, Refused> {
    let request = json_object(body)?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| Refused::Invalid("model is required".to_owned()))?
        .to_owned();
    if is_paused(shared, &model) {
        return Err(Refused::Paused);
    }
    let schema = models::market_model(&model).ok_or(Refused::Unpublished)?;
    let input = request
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| Refused::Invalid("input is required and must be an object".to_owned()))?;
    models::validate(schema, input, "input.").map_err(Refused::Invalid)?;
    Ok(NewTask {
        api: Api::Market,
        prompt: text_field(input, "prompt"),
        input: Value::Object(input.clone()),
        callback_url: callback_url(&request),
        request: Value::Object(request),
        model,
    })
}

/// Checks a veo/generate body: its fields are top-level, and `model` defaults to veo3_fast.
fn parse_veo(shared: &Shared, body: &[u8]) -> Result<NewTask, Refused> {
    let request = json_object(body)?;
    models::validate(&models::VEO, &request, "").map_err(Refused::Invalid)?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(models::VEO_DEFAULT_MODEL)
        .to_owned();
    if is_paused(shared, &model) {
        return Err(Refused::Paused);
    }
    Ok(NewTask {
        api: Api::Veo,
        prompt: text_field(&request, "prompt"),
        input: Value::Object(request.clone()),
        callback_url: callback_url(&request),
        request: Value::Object(request),
        model,
    })
}

fn text_field(fields: &Map<String, Value>, name: &str) -> String {
    fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
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
    match parse_market(&shared, &body) {
        Ok(new) => submit(&shared, account, key, new).await,
        Err(refused) => refused.answer(),
    }
}

async fn veo_generate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().create_task_calls += 1;
    let Some((account, key)) = authorize(&shared, &headers) else {
        return unauthorized();
    };
    match parse_veo(&shared, &body) {
        Ok(new) => submit(&shared, account, key, new).await,
        Err(refused) => refused.answer(),
    }
}

/// What both create endpoints share once the request is valid: the scripted faults, the
/// account's limits and credits, the task and its callback.
async fn submit(shared: &Arc<Shared>, account: String, key: String, new: NewTask) -> Response {
    let script = markers::parse(&new.prompt);
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
        Some(CreateFault::Http429 { retry_after }) => {
            let mut response = rate_limited();
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from(retry_after));
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
        let previous_uses = state.use_prompt(&new.prompt);
        let scripted = if state.refuse_next > 0 {
            state.refuse_next -= 1;
            markers::Scripted::Violation { first: None }
        } else {
            script.outcome
        };
        let stage = script
            .slow
            .map_or(shared.config.stage_delay, |total| total / 3);
        let id = match new.api {
            Api::Market => state.next_task_id(&new.model),
            Api::Veo => state.next_veo_task_id(),
        };
        let task = Task {
            id,
            api: new.api,
            account,
            key,
            model: new.model,
            prompt: new.prompt,
            input: new.input,
            request: new.request,
            callback_url: new.callback_url,
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
            Arc::clone(shared),
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
    status(&shared, &headers, query.task_id.as_deref(), Api::Market)
}

async fn veo_record_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<RecordQuery>,
) -> Response {
    status(&shared, &headers, query.task_id.as_deref(), Api::Veo)
}

/// Both status endpoints: one per-key rate limit, each showing only its own API's tasks.
fn status(shared: &Shared, headers: &HeaderMap, task_id: Option<&str>, api: Api) -> Response {
    let Some((account, key)) = authorize(shared, headers) else {
        return unauthorized();
    };
    let now = Instant::now();
    let mut state = shared.lock();
    if !state.admit_status(&key, shared.config.status_limit_per_second, now) {
        return rate_limited();
    }
    // A task of another account is as unknown to this key as a task that never existed.
    let task = task_id
        .and_then(|id| state.task(id))
        .filter(|t| t.account == account && t.api == api);
    match task {
        None => envelope(422, "recordInfo is null", Value::Null),
        Some(t) if t.status_malformed => {
            (StatusCode::OK, [(CONTENT_TYPE, "text/plain")], "not json").into_response()
        }
        Some(t) => {
            let data = match api {
                Api::Market => t.record(now, &shared.base_url),
                Api::Veo => t.veo_record(now, &shared.base_url),
            };
            envelope(200, "success", data)
        }
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
