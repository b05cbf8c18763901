//! The HTTP side of `neurocards run`: `/healthz` for load balancers and process managers,
//! `/metrics` for Prometheus, and
//! the KIE callback, which only wakes the job following the task.
//!
//! A callback is treated as a wake-up, never as a result: the job reads the task's state with
//! recordInfo, with the key that created it, before delivering or refunding anything. With
//! `KIE_WEBHOOK_HMAC_KEY` set, a callback must also be signed, recent and new
//! ([`callback_auth`]), or it is refused with 401 before it wakes anything.

pub mod callback_auth;
pub mod telegram_webhook;

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::Store;
use crate::worker::Wakeups;

use callback_auth::CallbackAuth;

#[derive(Clone)]
struct AppState {
    store: Store,
    wakeups: Wakeups,
    callback_auth: Option<Arc<CallbackAuth>>,
    metrics: Option<PrometheusHandle>,
}

/// `callback_auth`: verify KIE's callback signatures (when the operator set a webhook key);
/// `metrics`: what `/metrics` renders (404 without).
pub fn router(
    store: Store,
    wakeups: Wakeups,
    callback_auth: Option<CallbackAuth>,
    metrics: Option<PrometheusHandle>,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .route("/kie/callback", post(kie_callback))
        .with_state(AppState {
            store,
            wakeups,
            callback_auth: callback_auth.map(Arc::new),
            metrics,
        })
}

/// Prometheus' text format, rendered from memory: a scrape reads no table.
async fn render_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address: with port 0 the system picks one.
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "http server listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz(State(app): State<AppState>) -> (StatusCode, &'static str) {
    // Cheap on purpose: anyone can call it, load balancers call it often. The queue's
    // figures are in `admin queue`.
    match app.store.ping().await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(err) => {
            tracing::error!(error = %err, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn kie_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let task = body.as_ref().and_then(|Json(body)| {
        let data = body.get("data")?;
        data.get("taskId")
            .or_else(|| data.get("task_id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(auth) = &app.callback_auth {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            });
        let verdict = auth.verify(
            task.as_deref().unwrap_or_default(),
            header("x-webhook-timestamp"),
            header("x-webhook-signature"),
            now,
        );
        if let Err(refusal) = verdict {
            tracing::warn!(task = ?task, ?refusal, "KIE callback refused");
            let body = Json(json!({"code": 401, "msg": "invalid signature"}));
            return (StatusCode::UNAUTHORIZED, body).into_response();
        }
    }
    if let Some(task) = task {
        let woken = app.wakeups.wake(&task);
        tracing::debug!(%task, woken, "KIE callback");
        if !woken {
            // The job may run in another process (a `worker` behind this `bot`): it looks
            // for its tasks here. Noted beside the answer, so KIE is answered at once even
            // while the database is away; the note is tried again through a blip for as
            // long as it is worth more than the job's own polling. A note lost to a longer
            // outage, or to a stop, only leaves the job to its polling.
            let store = app.store.clone();
            tokio::spawn(note_for_the_workers(store, task));
        }
    }
    Json(json!({"code": 200, "msg": "success"})).into_response()
}

/// How long a callback's note for the workers is tried again: by then the job's own polling
/// (every 30 s at the longest) has found the task's end anyway.
const NOTE_TRIED_FOR: Duration = Duration::from_secs(30);

async fn note_for_the_workers(store: Store, task: String) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match store.note_kie_callback(&task).await {
            Ok(()) => return,
            Err(err) if err.is_transient() && started.elapsed() + pause < NOTE_TRIED_FOR => {
                tracing::debug!(%task, error = %err, ?pause, "noting a KIE callback failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            Err(err) => {
                tracing::warn!(%task, error = %err, "could not note a KIE callback for the workers; the job will find the task by polling");
                return;
            }
        }
    }
}
