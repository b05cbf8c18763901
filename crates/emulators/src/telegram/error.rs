//! Bot API error answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `{"ok":false,"error_code":N,"description":"…","parameters":{"retry_after":N}?}`.
/// teloxide matches the description text to pick its `ApiError`, so the texts are Telegram's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TgError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u32>,
}

impl TgError {
    pub(crate) fn new(code: u16, description: impl Into<String>) -> TgError {
        TgError {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// `what` follows "Bad Request: ".
    pub(crate) fn bad_request(what: &str) -> TgError {
        TgError::new(400, format!("Bad Request: {what}"))
    }

    pub(crate) fn too_many_requests(retry_after: u32) -> TgError {
        TgError {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    pub(crate) fn unauthorized() -> TgError {
        TgError::new(401, "Unauthorized")
    }

    pub(crate) fn blocked() -> TgError {
        TgError::new(403, "Forbidden: bot was blocked by the user")
    }

    pub(crate) fn server_error() -> TgError {
        TgError::new(500, "Internal Server Error")
    }
}

impl IntoResponse for TgError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "ok": false,
            "error_code": self.code,
            "description": self.description,
        });
        if let Some(seconds) = self.retry_after {
            body["parameters"] = json!({"retry_after": seconds});
        }
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(body)).into_response()
    }
}
