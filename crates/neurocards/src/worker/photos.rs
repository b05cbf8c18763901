//! What the videos of one order share, made once per process: the fitted photo, and its
//! upload to KIE's file host under each key. The jobs of an order usually run at the same
//! moment (a per-user limit of 5 and an order of 5), so without this each would download the
//! photo from Telegram, fit it and upload it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Long enough for an order's retries, short enough to hold little memory.
const KEEP_FOR: Duration = Duration::from_secs(10 * 60);
const MAX_ENTRIES: usize = 64;

/// A slot, and when it was made.
type Entry<T> = (Instant, Arc<OnceCell<T>>);

pub(crate) struct OnceCache<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

impl<T> Default for OnceCache<T> {
    fn default() -> Self {
        OnceCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> OnceCache<T> {
    /// The slot of `key`: the first caller fills it, callers at the same time wait for it,
    /// and a failed fill leaves it empty for the next caller to try.
    pub(crate) fn slot(&self, key: String) -> Arc<OnceCell<T>> {
        let Ok(mut entries) = self.entries.lock() else {
            return Arc::new(OnceCell::new());
        };
        let now = Instant::now();
        entries.retain(|_, (at, _)| now.duration_since(*at) < KEEP_FOR);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries
            .entry(key)
            .or_insert_with(|| (now, Arc::new(OnceCell::new())))
            .1
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_fill_serves_every_caller_of_a_key() {
        let cache = OnceCache::<u8>::default();
        let first = cache.slot("photo|9:16".into());
        let second = cache.slot("photo|9:16".into());
        assert!(Arc::ptr_eq(&first, &second));
        let other = cache.slot("photo|16:9".into());
        assert!(!Arc::ptr_eq(&first, &other));
    }

    #[test]
    fn the_cache_stays_small() {
        let cache = OnceCache::<u8>::default();
        for n in 0..(MAX_ENTRIES * 2) {
            cache.slot(format!("photo-{n}"));
        }
        let held = cache
            .entries
            .lock()
            .map(|entries| entries.len())
            .unwrap_or(0);
        assert!(held <= MAX_ENTRIES, "{held}");
    }
}
