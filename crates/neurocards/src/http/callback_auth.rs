//! KIE callback signatures: `X-Webhook-Signature` is base64(HMAC-SHA256(`taskId + "." +
//! X-Webhook-Timestamp`)) under the account's webhook key. The signature covers neither the
//! state nor the result, so even a genuine callback is only a wake-up; checking it keeps
//! strangers from making the worker spend status queries, and a replay window keeps one
//! captured callback from being played again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How far a callback's timestamp may be from now, either way.
pub const MAX_AGE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingHeaders,
    BadSignature,
    Stale,
    Replayed,
}

pub struct CallbackAuth {
    key: SecretString,
    /// Signatures accepted within the window, with their timestamps: a second arrival is a
    /// replay.
    seen: Mutex<HashMap<String, i64>>,
}

impl CallbackAuth {
    pub fn new(key: SecretString) -> CallbackAuth {
        CallbackAuth {
            key,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Checks one callback at `now` (unix seconds).
    pub fn verify(
        &self,
        task_id: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        now: i64,
    ) -> Result<(), Refusal> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(Refusal::MissingHeaders);
        };
        let signed_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Refusal::BadSignature)?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Refusal::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .map_err(|_| Refusal::BadSignature)?;
        mac.update(format!("{task_id}.{}", timestamp.trim()).as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| Refusal::BadSignature)?;
        let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX);
        if now.abs_diff(signed_at) > max_age.unsigned_abs() {
            return Err(Refusal::Stale);
        }
        let mut seen = self.seen.lock().map_err(|_| Refusal::Replayed)?;
        seen.retain(|_, at| now.abs_diff(*at) <= max_age.unsigned_abs());
        if seen
            .insert(signature.trim().to_owned(), signed_at)
            .is_some()
        {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }
}

/// The signature KIE sends, for tests and tools.
pub fn sign(key: &str, task_id: &str, timestamp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn auth() -> CallbackAuth {
        CallbackAuth::new(SecretString::from("webhook-key"))
    }

    #[test]
    fn a_good_signature_passes_once() {
        let auth = auth();
        let signature = sign("webhook-key", "task_1", NOW - 10);
        let ts = (NOW - 10).to_string();
        assert_eq!(
            auth.verify("task_1", Some(&ts), Some(&signature), NOW),
            Ok(())
        );
        assert_eq!(
            auth.verify("task_1", Some(&ts), Some(&signature), NOW + 1),
            Err(Refusal::Replayed)
        );
    }

    #[test]
    fn forged_stale_or_unsigned_callbacks_are_refused() {
        let auth = auth();
        let ts = NOW.to_string();
        let forged = sign("another-key", "task_1", NOW);
        assert_eq!(
            auth.verify("task_1", Some(&ts), Some(&forged), NOW),
            Err(Refusal::BadSignature)
        );
        let other_task = sign("webhook-key", "task_2", NOW);
        assert_eq!(
            auth.verify("task_1", Some(&ts), Some(&other_task), NOW),
            Err(Refusal::BadSignature)
        );
        let old = NOW - 301;
        let stale = sign("webhook-key", "task_1", old);
        assert_eq!(
            auth.verify("task_1", Some(&old.to_string()), Some(&stale), NOW),
            Err(Refusal::Stale)
        );
        assert_eq!(
            auth.verify("task_1", None, Some(&forged), NOW),
            Err(Refusal::MissingHeaders)
        );
        assert_eq!(
            auth.verify("task_1", Some(&ts), Some("not base64!"), NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn our_signature_matches_the_documented_recipe() {
        // base64(HMAC-SHA256("task_1.1800000000", "webhook-key")), computed independently.
        let signature = sign("webhook-key", "task_1", NOW);
        assert_eq!(signature.len(), 44);
        assert_eq!(
            sign("webhook-key", "task_1", NOW),
            emulators_free_reference("webhook-key", "task_1.1800000000")
        );
    }

    fn emulators_free_reference(key: &str, message: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(message.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}
