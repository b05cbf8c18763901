//! What a failed attempt leads to: another attempt (and when), or the end of the job with a
//! refund. Pure; the classifier produces the verdict, the worker applies the decision.

use std::time::Duration;

use super::ErrorClass;

/// What to do with the key that made the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVerdict {
    Keep,
    /// 429: rest the key for a while.
    CoolDown,
    /// 401/402/433: out of rotation until an admin re-enables it or the process restarts.
    Disable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub class: ErrorClass,
    /// A createTask may have created a (billed) task: replaying it could make a second one.
    pub task_may_exist: bool,
    pub key: KeyVerdict,
    /// The model itself is switched off or gone: no key helps; operators must act.
    pub model_unavailable: bool,
    /// Worth exactly one more try (a fetch of our image that failed), then give up.
    pub retry_once: bool,
    /// What the operator must change, when the failure is theirs to fix.
    pub operator_hint: Option<&'static str>,
}

impl Verdict {
    /// A verdict of `class` with no other finding.
    pub fn of(class: ErrorClass) -> Verdict {
        Verdict {
            class,
            task_may_exist: false,
            key: KeyVerdict::Keep,
            model_unavailable: false,
            retry_once: false,
            operator_hint: None,
        }
    }

    pub fn key(mut self, key: KeyVerdict) -> Verdict {
        self.key = key;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; each later one doubles (10 s, 20 s, 40 s by default).
    pub base_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry { delay: Duration },
    Refund,
}

/// `failed_before` counts the attempts that already failed and were retried; `jitter` is a
/// number in [0, 1) that spreads retries of many jobs (±25 %).
pub fn decide(
    policy: &RetryPolicy,
    verdict: &Verdict,
    failed_before: u32,
    another_key_available: bool,
    jitter: f64,
) -> Decision {
    let attempts_left = failed_before.saturating_add(1) < policy.max_attempts;
    if verdict.task_may_exist || !attempts_left {
        return Decision::Refund;
    }
    let backoff = || Decision::Retry {
        delay: backoff(policy.base_delay, failed_before, jitter),
    };
    match verdict.class {
        ErrorClass::UserViolation
        | ErrorClass::Unknown
        | ErrorClass::ModelUnavailable
        | ErrorClass::Cancelled => Decision::Refund,
        ErrorClass::Billing if verdict.model_unavailable || !another_key_available => {
            Decision::Refund
        }
        ErrorClass::Billing => Decision::Retry {
            delay: Duration::ZERO,
        },
        ErrorClass::Temporary if verdict.retry_once && failed_before >= 1 => Decision::Refund,
        ErrorClass::RateLimit | ErrorClass::Temporary => backoff(),
    }
}

/// `base × 2^n`, spread by ±25 % of jitter.
pub fn backoff(base: Duration, failed_before: u32, jitter: f64) -> Duration {
    let factor = 2f64.powi(i32::try_from(failed_before.min(16)).unwrap_or(16));
    let spread = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
    base.mul_f64(factor * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_secs(10),
    };

    fn verdict(class: ErrorClass) -> Verdict {
        Verdict::of(class)
    }

    #[test]
    fn temporary_failures_back_off_10_then_20_seconds_then_refund() {
        let v = verdict(ErrorClass::Temporary);
        assert_eq!(
            decide(&POLICY, &v, 0, true, 0.5),
            Decision::Retry {
                delay: Duration::from_secs(10)
            }
        );
        assert_eq!(
            decide(&POLICY, &v, 1, true, 0.5),
            Decision::Retry {
                delay: Duration::from_secs(20)
            }
        );
        assert_eq!(decide(&POLICY, &v, 2, true, 0.5), Decision::Refund);
    }

    #[test]
    fn jitter_spreads_a_delay_by_a_quarter_either_way() {
        assert_eq!(
            backoff(Duration::from_secs(40), 0, 0.0),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(Duration::from_secs(40), 0, 1.0),
            Duration::from_secs(50)
        );
        assert_eq!(
            backoff(Duration::from_secs(10), 2, 0.5),
            Duration::from_secs(40)
        );
    }

    #[test]
    fn violations_and_unknown_failures_are_refunded_at_once() {
        for class in [ErrorClass::UserViolation, ErrorClass::Unknown] {
            assert_eq!(
                decide(&POLICY, &verdict(class), 0, true, 0.5),
                Decision::Refund
            );
        }
    }

    #[test]
    fn billing_moves_to_another_key_at_once_or_refunds_when_none_is_left() {
        let billing = verdict(ErrorClass::Billing).key(KeyVerdict::Disable);
        assert_eq!(
            decide(&POLICY, &billing, 0, true, 0.5),
            Decision::Retry {
                delay: Duration::ZERO
            }
        );
        assert_eq!(decide(&POLICY, &billing, 0, false, 0.5), Decision::Refund);
        let model_gone = Verdict {
            model_unavailable: true,
            ..verdict(ErrorClass::ModelUnavailable)
        };
        assert_eq!(decide(&POLICY, &model_gone, 0, true, 0.5), Decision::Refund);
    }

    #[test]
    fn a_create_that_may_have_made_a_task_is_never_replayed() {
        let ambiguous = Verdict {
            task_may_exist: true,
            ..verdict(ErrorClass::Temporary)
        };
        assert_eq!(decide(&POLICY, &ambiguous, 0, true, 0.5), Decision::Refund);
    }

    #[test]
    fn an_image_fetch_failure_gets_one_retry_only() {
        let fetch = Verdict {
            retry_once: true,
            ..verdict(ErrorClass::Temporary)
        };
        assert!(matches!(
            decide(&POLICY, &fetch, 0, true, 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(decide(&POLICY, &fetch, 1, true, 0.5), Decision::Refund);
    }

    #[test]
    fn rate_limits_back_off_and_give_up_after_the_attempts() {
        let limited = verdict(ErrorClass::RateLimit).key(KeyVerdict::CoolDown);
        assert!(matches!(
            decide(&POLICY, &limited, 0, false, 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(decide(&POLICY, &limited, 2, true, 0.5), Decision::Refund);
    }
}
