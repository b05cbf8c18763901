//! Telling the admins (`ADMIN_IDS`) in Telegram about what only an operator can fix, in each
//! admin's language. Each kind of problem is told at most once per `ALERT_EVERY` across all
//! processes (the gate is in the database; a process that cannot reach it uses its own); the
//! next message says how many were held back meanwhile, so a flood of failures is one
//! message, not a thousand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{Lang, UserId};
use crate::store::Store;
use crate::telegram::Telegram;
use crate::texts::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A KIE key was taken out of rotation: out of credits (402) or refused (401).
    KeyDisabled,
    /// KIE's CDN refuses the client (403 "error code: 1010").
    ClientRefused,
    /// KIE no longer serves a model.
    ModelRetired,
    /// The oldest queued job has waited longer than `QUEUE_ALERT_AGE`.
    QueueStuck,
    /// A worker process stopped beating and its jobs were taken over.
    WorkerGone,
    /// A KIE account's credits fell below `KIE_LOW_CREDITS`.
    LowCredits,
    /// More than `FAILURE_ALERT_SHARE` of the videos of the last minutes failed.
    FailureShare,
    /// A Stars payment was refunded.
    PaymentRefunded,
}

impl AlertKind {
    fn text_key(self) -> &'static str {
        match self {
            AlertKind::KeyDisabled => "alert.key_disabled",
            AlertKind::ClientRefused => "alert.client_refused",
            AlertKind::ModelRetired => "alert.model_retired",
            AlertKind::QueueStuck => "alert.queue_stuck",
            AlertKind::WorkerGone => "alert.worker_gone",
            AlertKind::LowCredits => "alert.low_credits",
            AlertKind::FailureShare => "alert.failure_share",
            AlertKind::PaymentRefunded => "alert.payment_refunded",
        }
    }

    /// The kind's name in the shared gate.
    fn gate_key(self) -> &'static str {
        self.text_key()
    }
}

/// Whether an alert of a kind goes out now. Pure: the caller gives the time.
#[derive(Debug)]
pub struct Gate {
    every: Duration,
    /// Per kind: when it was last sent, and how many were held back since.
    sent: HashMap<AlertKind, (Instant, u64)>,
}

impl Gate {
    pub fn new(every: Duration) -> Gate {
        Gate {
            every,
            sent: HashMap::new(),
        }
    }

    /// `Some(held back since the last one)` when the alert goes out; `None` when it is held
    /// back (and counted).
    pub fn admit(&mut self, kind: AlertKind, now: Instant) -> Option<u64> {
        match self.sent.get_mut(&kind) {
            Some((last, held)) if now.duration_since(*last) < self.every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let since = *held;
                *last = now;
                *held = 0;
                Some(since)
            }
            None => {
                self.sent.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[derive(Clone)]
pub struct Alerts {
    telegram: Telegram,
    store: Store,
    admin_ids: Vec<i64>,
    every: Duration,
    /// Used while the database's gate cannot be reached.
    gate: Arc<Mutex<Gate>>,
}

impl Alerts {
    pub fn new(telegram: Telegram, store: Store, admin_ids: Vec<i64>, every: Duration) -> Alerts {
        Alerts {
            telegram,
            store,
            admin_ids,
            every,
            gate: Arc::new(Mutex::new(Gate::new(every))),
        }
    }

    /// Tells the admins, unless this kind was told less than `ALERT_EVERY` ago. The problem
    /// is logged either way.
    pub async fn raise(&self, kind: AlertKind, args: &[(&str, &(dyn std::fmt::Display + Sync))]) {
        tracing::error!(alert = ?kind, text = %text(Lang::En, kind.text_key(), args), "an operator must act");
        if self.admin_ids.is_empty() {
            return;
        }
        let admitted = match self.store.admit_alert(kind.gate_key(), self.every).await {
            Ok(admitted) => admitted,
            Err(err) => {
                tracing::warn!(error = %err, "the shared alert gate is out of reach: using this process's own");
                match self.gate.lock() {
                    Ok(mut gate) => gate.admit(kind, Instant::now()),
                    Err(_) => None,
                }
            }
        };
        let Some(held_back) = admitted else {
            return;
        };
        for admin in &self.admin_ids {
            let lang = self.store.language_of(UserId(*admin)).await;
            let mut message = text(lang, kind.text_key(), args);
            if held_back > 0 {
                message.push_str("\n\n");
                message.push_str(&text(lang, "alert.held_back", &[("count", &held_back)]));
            }
            if let Err(err) = self.telegram.send_text(*admin, &message, None).await {
                tracing::warn!(admin, error = %err, "could not alert an admin");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_told_once_per_period_and_then_says_how_many_were_held_back() {
        let start = Instant::now();
        let every = Duration::from_secs(900);
        let mut gate = Gate::new(every);
        assert_eq!(gate.admit(AlertKind::QueueStuck, start), Some(0));
        for minute in 1..=3 {
            let at = start + Duration::from_secs(60 * minute);
            assert_eq!(gate.admit(AlertKind::QueueStuck, at), None);
        }
        // Another kind is not held back by this one.
        assert_eq!(
            gate.admit(AlertKind::WorkerGone, start + Duration::from_secs(60)),
            Some(0)
        );
        assert_eq!(
            gate.admit(AlertKind::QueueStuck, start + every),
            Some(3),
            "three held back"
        );
        assert_eq!(
            gate.admit(
                AlertKind::QueueStuck,
                start + every + Duration::from_secs(1)
            ),
            None
        );
    }
}
