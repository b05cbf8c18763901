//! Telegram's webhook: each update is checked against the secret token, stored in the
//! inbox, and only then acknowledged. A crash after the 200 loses nothing (the update is in
//! the database) and a repeated delivery is stored once (the inbox is unique on
//! `update_id`). Processing happens elsewhere ([`crate::bot::inbox`]), so a slow handler
//! never holds Telegram's connection.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use teloxide::types::Update;
use tokio::sync::Notify;

use crate::store::Store;

/// The header Telegram puts the webhook's secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

#[derive(Clone)]
struct Inbox {
    store: Store,
    /// SHA-256 of the secret: what a request's token is compared with.
    secret_digest: [u8; 32],
    arrived: Arc<Notify>,
}

/// The webhook at `path` (the path of `WEBHOOK_URL`); `arrived` is woken for each update
/// stored.
pub fn router(path: &str, store: Store, secret: &SecretString, arrived: Arc<Notify>) -> Router {
    Router::new().route(path, post(receive)).with_state(Inbox {
        store,
        secret_digest: digest(secret.expose_secret().as_bytes()),
        arrived,
    })
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compared as digests, in constant time: neither the secret's bytes nor its length can be
/// learnt from how long a refusal takes.
fn secret_matches(inbox: &Inbox, given: Option<&[u8]>) -> bool {
    given.is_some_and(|given| bool::from(digest(given).ct_eq(&inbox.secret_digest)))
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers.get(SECRET_HEADER).map(|value| value.as_bytes());
    if !secret_matches(&inbox, given) {
        tracing::warn!(
            with_token = given.is_some(),
            "a webhook request without the right secret token refused"
        );
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let update: Update = match serde_json::from_str(text) {
        Ok(update) => update,
        Err(err) => {
            tracing::warn!(error = %err, "a webhook request that is not an update refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    let update_id = i64::from(update.id.0);
    match inbox
        .store
        .inbox_put(update_id, crate::bot::inbox::chat_of(&update), text)
        .await
    {
        Ok(stored) => {
            if stored {
                inbox.arrived.notify_waiters();
            } else {
                tracing::debug!(update = update_id, "an update delivered again; kept once");
            }
            StatusCode::OK
        }
        Err(err) => {
            // Not acknowledged: Telegram delivers it again later.
            tracing::error!(update = update_id, error = %err, "storing an update failed");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::inbox::chat_of;
    use serde_json::json;
    use teloxide::types::UpdateKind;

    /// As the webhook parses it: from the body's text.
    fn parse(value: serde_json::Value) -> Update {
        serde_json::from_str(&value.to_string()).expect("an update")
    }

    fn user(id: i64) -> serde_json::Value {
        json!({"id": id, "is_bot": false, "first_name": "U"})
    }

    #[test]
    fn a_message_and_a_button_press_belong_to_the_chat_a_checkout_to_none() {
        let message = parse(json!({"update_id": 1, "message": {
            "message_id": 5, "date": 1_700_000_000, "chat": {"id": 42, "type": "private", "first_name": "U"},
            "from": user(42), "text": "hi"}}));
        assert!(
            !matches!(message.kind, UpdateKind::Error(_)),
            "{:?}",
            message.kind
        );
        assert_eq!(chat_of(&message), Some(42));
        let press = parse(json!({"update_id": 2, "callback_query": {
            "id": "q", "from": user(42), "chat_instance": "c", "data": "x",
            "message": {"message_id": 6, "date": 1_700_000_000,
                        "chat": {"id": 42, "type": "private", "first_name": "U"}, "text": "t"}}}));
        assert_eq!(chat_of(&press), Some(42));
        let checkout = parse(json!({"update_id": 3, "pre_checkout_query": {
            "id": "p", "from": user(42), "currency": "XTR", "total_amount": 100,
            "invoice_payload": "buy:start:42"}}));
        assert_eq!(chat_of(&checkout), None);
    }
}
