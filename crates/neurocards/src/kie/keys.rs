//! The KIE keys: rotation over the healthy ones, cool-downs after 429, removal after
//! 401/402, and a status-query rate limit per key.
//!
//! Health lives in memory for speed and in the database so that `admin keys` (another
//! process) sees it and every worker process learns what one of them found: a key one
//! worker saw answer 402 is out for all. A process that starts marks its keys healthy again.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;

use crate::clock::Millis;
use crate::config::KieKey;
use crate::store::{KeyHealth, KeyState, Store, StoreError};

/// A key as a request needs it.
#[derive(Clone)]
pub struct KeyHandle {
    pub id: String,
    pub account: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHandle({} of account {})", self.id, self.account)
    }
}

struct Entry {
    key: KeyHandle,
    health: Mutex<KeyHealth>,
    status_limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
}

pub struct KeyPool {
    entries: Vec<Entry>,
    next: AtomicUsize,
    store: Store,
    status_per_second: u32,
    sharing_with: AtomicU32,
}

/// Evenly spaced, no bursts, and 10 % under the limit: KIE's own window, whatever its shape
/// and however the workers' clocks fall, never sees more than `per_second` queries of one key
/// in a second from all `workers` together.
fn status_limiter(per_second: u32, workers: u32) -> Arc<DefaultDirectRateLimiter> {
    let period = (Duration::from_secs(1) * workers.max(1) / per_second.max(1)).mul_f64(1.1);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
}

impl KeyPool {
    /// Registers the keys as healthy in the database (a restart re-enables them).
    pub async fn start(
        keys: &[KieKey],
        status_per_second: u32,
        store: Store,
    ) -> Result<Arc<KeyPool>, StoreError> {
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let health = KeyHealth::healthy(&key.id, &key.account);
            store.save_key_health(&health).await?;
            entries.push(Entry {
                key: KeyHandle {
                    id: key.id.clone(),
                    account: key.account.clone(),
                    secret: key.secret.clone(),
                },
                health: Mutex::new(health),
                status_limiter: Mutex::new(status_limiter(status_per_second, 1)),
            });
        }
        Ok(Arc::new(KeyPool {
            entries,
            next: AtomicUsize::new(0),
            store,
            status_per_second,
            sharing_with: AtomicU32::new(1),
        }))
    }

    /// Splits each key's status-query rate between `workers` live worker processes, so that
    /// together they stay within KIE's limit per key.
    pub fn share_status_rate(&self, workers: u32) {
        let workers = workers.max(1);
        if self.sharing_with.swap(workers, Ordering::Relaxed) == workers {
            return;
        }
        for entry in &self.entries {
            if let Ok(mut limiter) = entry.status_limiter.lock() {
                let fresh = status_limiter(self.status_per_second, workers);
                // A new limiter would grant at once, right after the old one may have: its
                // first slot counts as taken.
                let _ = fresh.check();
                *limiter = fresh;
            }
        }
    }

    /// The next usable key in rotation, skipping `avoid` when another one is usable.
    pub fn pick(&self, now: Millis, avoid: Option<&str>) -> Option<KeyHandle> {
        let count = self.entries.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable: Vec<&Entry> = (0..count)
            .map(|offset| &self.entries[(start + offset) % count])
            .filter(|entry| self.usable(entry, now))
            .collect();
        usable
            .iter()
            .find(|entry| Some(entry.key.id.as_str()) != avoid)
            .or_else(|| usable.first())
            .map(|entry| entry.key.clone())
    }

    /// When the first resting key becomes usable again; `None` when every key is
    /// disabled (or usable now).
    pub fn next_usable_at(&self, now: Millis) -> Option<Millis> {
        self.entries
            .iter()
            .filter_map(|entry| entry.health.lock().ok().map(|health| health.clone()))
            .filter(|health| health.state == KeyState::Cooling)
            .filter_map(|health| health.until)
            .filter(|until| *until > now)
            .min()
    }

    /// True when a usable key other than `id` exists.
    pub fn has_other_usable(&self, id: &str, now: Millis) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.key.id != id && self.usable(entry, now))
    }

    /// The key that created a task, whatever its health: a task is queried with its own key.
    pub fn by_id(&self, id: &str) -> Option<KeyHandle> {
        self.entries
            .iter()
            .find(|entry| entry.key.id == id)
            .map(|entry| entry.key.clone())
    }

    /// Waits for this key's turn under its status-query limit.
    pub async fn until_status_allowed(&self, id: &str) {
        if let Some(entry) = self.entries.iter().find(|entry| entry.key.id == id) {
            let limiter = entry
                .status_limiter
                .lock()
                .ok()
                .map(|limiter| Arc::clone(&limiter));
            if let Some(limiter) = limiter {
                // governor's own `until_ready` sleeps on futures-timer's global thread: every
                // wait then costs two more thread wake-ups than tokio's timer, and with ten
                // thousand tasks followed that was a sizeable part of a waiting worker's CPU
                // (`cargo bench --bench inflight`).
                while let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(limiter.clock().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    pub async fn cool_down(&self, id: &str, now: Millis, rest: Duration, reason: &str) {
        let until = now.saturating_add(crate::clock::millis_of(rest));
        self.change(id, now, |health| {
            if health.state != KeyState::Disabled {
                health.state = KeyState::Cooling;
                health.until = Some(until);
                health.reason = Some(reason.to_owned());
            }
        })
        .await;
    }

    pub async fn disable(&self, id: &str, now: Millis, reason: &str) {
        self.change(id, now, |health| {
            health.state = KeyState::Disabled;
            health.until = None;
            health.reason = Some(reason.to_owned());
        })
        .await;
    }

    /// Back in rotation: its account has credits again.
    pub async fn enable(&self, id: &str, now: Millis, reason: &str) {
        self.change(id, now, |health| {
            health.state = KeyState::Healthy;
            health.until = None;
            health.reason = Some(reason.to_owned());
        })
        .await;
    }

    /// Adopts what the database says (another worker's findings, an admin's re-enable).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let stored = self.store.key_health().await?;
        for entry in &self.entries {
            if let Some(row) = stored.iter().find(|row| row.key_id == entry.key.id) {
                if let Ok(mut health) = entry.health.lock() {
                    if row.updated_at >= health.updated_at {
                        *health = row.clone();
                    }
                }
            }
        }
        Ok(())
    }

    pub fn snapshot(&self) -> Vec<KeyHealth> {
        self.entries
            .iter()
            .filter_map(|entry| entry.health.lock().ok().map(|health| health.clone()))
            .collect()
    }

    fn usable(&self, entry: &Entry, now: Millis) -> bool {
        entry
            .health
            .lock()
            .map(|health| health.usable_at(now))
            .unwrap_or(false)
    }

    async fn change(&self, id: &str, now: Millis, apply: impl FnOnce(&mut KeyHealth)) {
        let Some(entry) = self.entries.iter().find(|entry| entry.key.id == id) else {
            return;
        };
        let updated = match entry.health.lock() {
            Ok(mut health) => {
                apply(&mut health);
                health.updated_at = now;
                health.clone()
            }
            Err(_) => return,
        };
        if let Err(err) = self.store.save_key_health(&updated).await {
            tracing::warn!(key = %id, error = %err, "could not record a key's health");
        }
    }
}
