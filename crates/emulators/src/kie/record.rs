//! Records every request with the status it got, counts 429 answers, and plays KIE's CDN,
//! which refuses some clients before the API sees them.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
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
    let user_agent = header(USER_AGENT);
    let refused = parts.uri.path().starts_with("/api/")
        && refused_client(user_agent.as_deref(), &shared.config.refused_user_agents);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: header(AUTHORIZATION),
        user_agent,
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

    let response = if refused {
        cdn_refusal()
    } else {
        next.run(req).await
    };

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

/// Whether KIE's CDN turns the client away: no User-Agent at all, or one containing a refused
/// fragment (compared without regard to case, as a CDN rule would).
fn refused_client(user_agent: Option<&str>, refused: &[String]) -> bool {
    let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return true;
    };
    let agent = agent.to_ascii_lowercase();
    refused
        .iter()
        .filter(|fragment| !fragment.is_empty())
        .any(|fragment| agent.contains(&fragment.to_ascii_lowercase()))
}

/// Cloudflare's "browser signature banned" page, as clients see it: no JSON at all.
fn cdn_refusal() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "error code: 1010",
    )
        .into_response()
}

/// Replaces the recorded body of request `index`.
pub(crate) fn describe_body(shared: &Shared, index: RequestIndex, body: String) {
    if let Some(r) = shared.lock().requests.get_mut(index.0) {
        r.body = body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_blank_or_listed_user_agent_is_refused() {
        let refused = vec!["python-requests".to_owned(), String::new()];
        assert!(refused_client(None, &refused));
        assert!(refused_client(Some("  "), &refused));
        assert!(refused_client(Some("Python-Requests/2.31"), &refused));
        assert!(!refused_client(Some("neurocards/0.1.0"), &refused));
        assert!(!refused_client(Some("curl/8.0"), &[]));
    }
}
