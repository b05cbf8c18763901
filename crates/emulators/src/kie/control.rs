//! `/_control`: what the handle offers, over HTTP, for a test that runs the emulator as a process.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control/requests", get(requests))
        .route("/_control/tasks", get(tasks))
        .route(
            "/_control/accounts/{name}/credits",
            get(credits).post(set_credits),
        )
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().requests.clone()).into_response()
}

async fn tasks(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().public_tasks(Instant::now())).into_response()
}

async fn credits(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared.lock().credits(&name) {
        Some(credits) => Json(json!({"account": name, "credits": credits})).into_response(),
        None => unknown_account(&name),
    }
}

#[derive(Deserialize)]
struct SetCredits {
    credits: i64,
}

async fn set_credits(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Json(body): Json<SetCredits>,
) -> Response {
    if shared.lock().set_credits(&name, body.credits) {
        Json(json!({"account": name, "credits": body.credits})).into_response()
    } else {
        unknown_account(&name)
    }
}

fn unknown_account(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no account named {name}")})),
    )
        .into_response()
}
