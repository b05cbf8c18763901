//! Records every request with the status it got, and counts 429 answers.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::Shared;
use super::RecordedRequest;

/// Uploads of a few tens of megabytes must pass; nothing legitimate is bigger.
pub(crate) const BODY_LIMIT: usize = 100 * 1024 * 1024;

/// The index of the request in `requests`, so that a handler can replace the recorded body
/// with a readable summary (multipart uploads).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestIndex(pub usize);

pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    // The control API is the test's own channel, not traffic of the code under test.
    if req.uri().path().starts_with("/_control") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let is_multipart = header(CONTENT_TYPE).is_some_and(|c| c.starts_with("multipart/"));
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: header(AUTHORIZATION),
        body: if is_multipart {
            format!("<multipart, {} bytes>", bytes.len())
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        },
        status: 0,
    };
    let index = {
        let mut state = shared.lock();
        state.requests.push(recorded);
        state.requests.len() - 1
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(RequestIndex(index));

    let response = next.run(req).await;

    let status = response.status();
    let mut state = shared.lock();
    if let Some(r) = state.requests.get_mut(index) {
        r.status = status.as_u16();
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        state.rate_limited += 1;
    }
    response
}

/// Replaces the recorded body of request `index`.
pub(crate) fn describe_body(shared: &Shared, index: RequestIndex, body: String) {
    if let Some(r) = shared.lock().requests.get_mut(index.0) {
        r.body = body;
    }
}
