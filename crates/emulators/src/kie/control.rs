//! `/_control`: what the handle offers, over HTTP, for a test that runs the emulator as a process.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::listed_models;
use super::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control/requests", get(requests))
        .route("/_control/tasks", get(tasks))
        .route(
            "/_control/accounts/{name}/credits",
            get(credits).post(set_credits),
        )
        .route("/_control/models", get(models))
        // A model id holds a slash, so the id and the action share one wildcard.
        .route("/_control/models/{*rest}", post(model_action))
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let models: Vec<_> = listed_models()
        .into_iter()
        .map(|model| json!({"model": model, "paused": state.is_paused(model)}))
        .collect();
    Json(models).into_response()
}

/// `POST /_control/models/{model}/pause`: retires the model as `KieEmulator::pause_model`
/// does. Any id is accepted, listed or not, Veo's model names included.
async fn model_action(State(shared): State<Arc<Shared>>, Path(rest): Path<String>) -> Response {
    match rest
        .strip_suffix("/pause")
        .filter(|model| !model.is_empty())
    {
        Some(model) => {
            shared.lock().pause_model(model);
            Json(json!({"model": model, "paused": true})).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "use POST /_control/models/{model}/pause"})),
        )
            .into_response(),
    }
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
