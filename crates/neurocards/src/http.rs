//! The HTTP side of `neurocards run`: `/healthz` for load balancers and process managers, and
//! the KIE callback, which only wakes the job following the task.
//!
//! A callback is treated as a wake-up, never as a result: the job reads the task's state with
//! recordInfo, with the key that created it, before delivering or refunding anything. A forged
//! callback can therefore cost one status query at most, which is why it needs no signature.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::worker::Wakeups;

#[derive(Clone)]
struct AppState {
    store: Store,
    wakeups: Wakeups,
}

pub fn router(store: Store, wakeups: Wakeups) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/kie/callback", post(kie_callback))
        .with_state(AppState { store, wakeups })
}

pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "http server listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz(State(app): State<AppState>) -> (StatusCode, &'static str) {
    match app.store.queue_stats().await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(err) => {
            tracing::error!(error = %err, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn kie_callback(State(app): State<AppState>, body: Option<Json<Value>>) -> Json<Value> {
    let task = body.as_ref().and_then(|Json(body)| {
        let data = body.get("data")?;
        data.get("taskId")
            .or_else(|| data.get("task_id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(task) = task {
        let woken = app.wakeups.wake(&task);
        tracing::debug!(%task, woken, "KIE callback");
    }
    Json(json!({"code": 200, "msg": "success"}))
}
