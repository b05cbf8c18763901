//! Injected faults and Telegram's flood limits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::error::TgError;
use super::Fault;

/// Consumes the first one-shot fault aimed at `method` (case-insensitively).
pub(crate) fn take_method_fault(faults: &mut Vec<Fault>, method: &str) -> Option<TgError> {
    let position = faults.iter().position(|f| match f {
        Fault::TooManyRequests { method: m, .. } | Fault::ServerError { method: m } => {
            m.eq_ignore_ascii_case(method)
        }
        _ => false,
    })?;
    match faults.remove(position) {
        Fault::TooManyRequests { retry_after, .. } => Some(TgError::too_many_requests(retry_after)),
        _ => Some(TgError::server_error()),
    }
}

/// Consumes the first `LateAnswer` aimed at `method` (case-insensitively); returns its delay.
pub(crate) fn take_late_answer(faults: &mut Vec<Fault>, method: &str) -> Option<Duration> {
    let position = faults.iter().position(
        |f| matches!(f, Fault::LateAnswer { method: m, .. } if m.eq_ignore_ascii_case(method)),
    )?;
    match faults.remove(position) {
        Fault::LateAnswer { delay, .. } => Some(delay),
        _ => None,
    }
}

pub(crate) fn is_blocked(faults: &[Fault], chat_id: i64) -> bool {
    faults
        .iter()
        .any(|f| matches!(f, Fault::Blocked { chat_id: c } if *c == chat_id))
}

/// Consumes a pending `RefuseVideoUrl`.
pub(crate) fn take_refuse_video_url(faults: &mut Vec<Fault>) -> bool {
    match faults.iter().position(|f| *f == Fault::RefuseVideoUrl) {
        Some(position) => {
            faults.remove(position);
            true
        }
        None => false,
    }
}

const PER_CHAT_INTERVAL: Duration = Duration::from_secs(1);
const GLOBAL_PER_SECOND: usize = 30;

/// Telegram's documented flood limits for sends: one message per second per chat and
/// thirty per second overall. Only successful sends count.
#[derive(Debug, Default)]
pub(crate) struct SendLimiter {
    last_per_chat: HashMap<i64, Instant>,
    recent: VecDeque<Instant>,
}

impl SendLimiter {
    /// Whether a send to `chat_id` now is allowed; the error is the seconds to wait.
    pub(crate) fn check(&mut self, chat_id: i64, now: Instant) -> Result<(), u32> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        let chat_busy = self
            .last_per_chat
            .get(&chat_id)
            .is_some_and(|t| now.saturating_duration_since(*t) < PER_CHAT_INTERVAL);
        if chat_busy || self.recent.len() >= GLOBAL_PER_SECOND {
            return Err(1);
        }
        Ok(())
    }

    pub(crate) fn record(&mut self, chat_id: i64, now: Instant) {
        self.last_per_chat.insert(chat_id, now);
        self.recent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_fault_fires_once_and_ignores_case() {
        let mut faults = vec![Fault::TooManyRequests {
            method: "SendMessage".to_owned(),
            retry_after: 3,
        }];
        let error = take_method_fault(&mut faults, "sendMessage");
        assert_eq!(error.and_then(|e| e.retry_after), Some(3));
        assert!(take_method_fault(&mut faults, "sendMessage").is_none());
    }

    #[test]
    fn a_late_answer_fires_once_for_its_method_only() {
        let delay = Duration::from_millis(300);
        let mut faults = vec![
            Fault::ServerError {
                method: "sendVideo".to_owned(),
            },
            Fault::LateAnswer {
                method: "SendVideo".to_owned(),
                delay,
            },
        ];
        assert_eq!(take_late_answer(&mut faults, "sendMessage"), None);
        assert_eq!(take_late_answer(&mut faults, "sendVideo"), Some(delay));
        assert_eq!(take_late_answer(&mut faults, "sendVideo"), None);
        // The other fault on the same method is left for the method-fault path.
        assert_eq!(faults.len(), 1);
        assert!(take_method_fault(&mut faults, "sendVideo").is_some());
    }

    #[test]
    fn one_send_per_second_per_chat() {
        let mut limiter = SendLimiter::default();
        let t0 = Instant::now();
        assert!(limiter.check(1, t0).is_ok());
        limiter.record(1, t0);
        assert!(limiter.check(1, t0 + Duration::from_millis(500)).is_err());
        assert!(limiter.check(2, t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check(1, t0 + Duration::from_millis(1000)).is_ok());
    }

    #[test]
    fn thirty_sends_per_second_overall() {
        let mut limiter = SendLimiter::default();
        let t0 = Instant::now();
        for chat in 0..30 {
            assert!(limiter.check(chat, t0).is_ok());
            limiter.record(chat, t0);
        }
        assert!(limiter.check(99, t0).is_err());
    }
}
