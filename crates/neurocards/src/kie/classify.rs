//! Sorting whatever came back from KIE into the five error classes, and saying whether a
//! task may exist after a failed create. Pure: unit-tested against every message in the
//! table of docs/kie.md.

use crate::domain::retry::{KeyVerdict, Verdict};
use crate::domain::ErrorClass;

/// Which request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Upload,
    Create,
    Status,
    /// The task ran and KIE reported it failed (`failCode` / `failMsg`).
    Task,
}

/// A failure below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The connection was never made: the request did not leave.
    Connect,
    /// No answer in time: the request may have been received.
    Timeout,
    /// Anything else after sending (reset, broken body).
    Other,
}

/// What was observed, in KIE's own terms.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    pub stage: Option<Stage>,
    pub transport: Option<Transport>,
    pub http_status: Option<u16>,
    /// The envelope's `code` (errors often come with HTTP 200).
    pub body_code: Option<i64>,
    /// False when the body was not JSON.
    pub body_is_json: bool,
    /// The envelope's `msg` / `message`.
    pub message: Option<&'a str>,
    pub fail_code: Option<&'a str>,
    pub fail_msg: Option<&'a str>,
}

const VIOLATION_TEXTS: &[&str] = &[
    "prohibited content",
    "photorealistic people",
    "contains faces",
    "violating content",
    "content policy",
    "content policies",
    "unsafe image",
    "moderation",
    "nsfw",
    "sensitive content",
];
const NO_CREDIT_TEXTS: &[&str] = &[
    "credits are insufficient",
    "insufficient credits",
    "insufficient balance",
    "please top up",
];
const BAD_KEY_TEXTS: &[&str] = &[
    "access permissions",
    "unauthorized",
    "invalid api key",
    "authentication failed",
];
const MODEL_GONE_TEXTS: &[&str] = &[
    "does not exist or is not published",
    "feature disabled",
    "temporarily paused",
    "model not available",
    "model is not available",
    "model not found",
    "model does not exist",
];
/// The CDN in front of KIE refuses some HTTP clients by their User-Agent with a bare 403
/// "error code: 1010". It looks like a bad key but is not; only the operator can fix it.
const CLIENT_REFUSED_TEXT: &str = "error code: 1010";
pub const CLIENT_REFUSED_HINT: &str = "KIE's CDN refused this client (HTTP 403, error code 1010): \
     set KIE_USER_AGENT to another value (for example a browser's User-Agent) and restart";
const RATE_TEXTS: &[&str] = &["rate limit", "too many requests"];
const TEMPORARY_TEXTS: &[&str] = &[
    "heavy load",
    "not responding",
    "timed out",
    "timeout",
    "try again later",
    "internal server error",
    "server error",
    "maintenance",
    "service unavailable",
    "bad gateway",
];
const IMAGE_FETCH_TEXTS: &[&str] = &["failed to fetch the image"];

pub fn classify(observed: &Observed<'_>) -> Verdict {
    let create = observed.stage == Some(Stage::Create);
    if let Some(transport) = observed.transport {
        return Verdict {
            task_may_exist: create && transport != Transport::Connect,
            ..Verdict::of(ErrorClass::Temporary)
        };
    }

    let text = [observed.message, observed.fail_msg]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let says = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    let codes: Vec<i64> = [
        observed.body_code.filter(|code| *code != 200),
        observed.fail_code.and_then(|code| code.trim().parse().ok()),
        observed
            .http_status
            .map(i64::from)
            .filter(|status| *status >= 400),
    ]
    .into_iter()
    .flatten()
    .collect();
    let has = |code: i64| codes.contains(&code);

    // The text decides first: the same message has come with different codes.
    let verdict = if observed.http_status == Some(403) && text.contains(CLIENT_REFUSED_TEXT) {
        Verdict {
            operator_hint: Some(CLIENT_REFUSED_HINT),
            ..Verdict::of(ErrorClass::Billing).key(KeyVerdict::Disable)
        }
    } else if says(VIOLATION_TEXTS) {
        Verdict::of(ErrorClass::UserViolation)
    } else if says(NO_CREDIT_TEXTS) || says(BAD_KEY_TEXTS) {
        Verdict::of(ErrorClass::Billing).key(KeyVerdict::Disable)
    } else if says(MODEL_GONE_TEXTS) || has(505) {
        Verdict {
            model_unavailable: true,
            ..Verdict::of(ErrorClass::ModelUnavailable)
        }
    } else if says(RATE_TEXTS) {
        Verdict::of(ErrorClass::RateLimit).key(KeyVerdict::CoolDown)
    } else if says(IMAGE_FETCH_TEXTS) {
        Verdict {
            retry_once: true,
            ..Verdict::of(ErrorClass::Temporary)
        }
    } else if says(TEMPORARY_TEXTS) {
        Verdict::of(ErrorClass::Temporary)
    } else if has(401) || has(402) || has(433) {
        Verdict::of(ErrorClass::Billing).key(KeyVerdict::Disable)
    } else if has(429) {
        Verdict::of(ErrorClass::RateLimit).key(KeyVerdict::CoolDown)
    } else if codes
        .iter()
        .any(|code| *code == 455 || (500..600).contains(code))
    {
        Verdict::of(ErrorClass::Temporary)
    } else if !observed.body_is_json {
        // A body that is not JSON (a proxy's page, the CDN's "error code: 1010") is transient.
        Verdict::of(ErrorClass::Temporary)
    } else {
        Verdict::of(ErrorClass::Unknown)
    };

    // Only an answer that says nothing was created makes a failed create safe to repeat.
    let said_not_created = observed.body_is_json
        || matches!(observed.http_status, Some(401 | 402 | 429 | 455))
        || verdict.operator_hint.is_some();
    Verdict {
        task_may_exist: create && !said_not_created,
        ..verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_failure(fail_code: Option<&'static str>, fail_msg: &'static str) -> Verdict {
        classify(&Observed {
            stage: Some(Stage::Task),
            http_status: Some(200),
            body_code: Some(200),
            body_is_json: true,
            message: Some("success"),
            fail_code,
            fail_msg: Some(fail_msg),
            ..Observed::default()
        })
    }

    fn create_answer(http_status: u16, body_code: Option<i64>, message: &'static str) -> Verdict {
        classify(&Observed {
            stage: Some(Stage::Create),
            http_status: Some(http_status),
            body_code,
            body_is_json: body_code.is_some(),
            message: Some(message),
            ..Observed::default()
        })
    }

    #[test]
    fn every_failure_message_of_the_api_notes_lands_in_its_class() {
        use ErrorClass::*;
        let table: &[(Option<&'static str>, &'static str, ErrorClass)] = &[
            (Some("422"), "Invalid prompt: prompt contains prohibited content", UserViolation),
            (Some("400"), "We currently do not support uploads of images containing photorealistic people.", UserViolation),
            (None, "This image contains photorealistic people.", UserViolation),
            (None, "Image contains faces.", UserViolation),
            (None, "Your prompt was flagged by Website as violating content policies", UserViolation),
            (None, "Public error: unsafe image upload", UserViolation),
            (Some("402"), "The current credits are insufficient. Please top up.", Billing),
            (Some("429"), "The current credits are insufficient. Please top up.", Billing),
            (Some("401"), "You do not have access permissions", Billing),
            (Some("429"), "Rate limit exceeded", RateLimit),
            (Some("500"), "Internal server error", Temporary),
            (None, "Sora official service is currently under heavy load and not responding", Temporary),
            (None, "The request timed out", Temporary),
            (None, "Upstream timeout", Temporary),
            (None, "Busy, please try again later", Temporary),
            (Some("422"), "The page does not exist or is not published", ModelUnavailable),
            (Some("500"), "This interface is temporarily paused", ModelUnavailable),
            (None, "Failed to fetch the image. Kindly verify any access limits set by you or your service provider.", Temporary),
            (Some("999"), "Something unexpected happened", Unknown),
        ];
        for (fail_code, message, class) in table {
            assert_eq!(task_failure(*fail_code, message).class, *class, "{message}");
        }
    }

    #[test]
    fn keys_are_rested_on_429_and_taken_out_on_401_402_and_433() {
        assert_eq!(
            create_answer(429, Some(429), "Rate limit exceeded").key,
            KeyVerdict::CoolDown
        );
        assert_eq!(create_answer(200, Some(402), "").key, KeyVerdict::Disable);
        assert_eq!(create_answer(401, Some(401), "").key, KeyVerdict::Disable);
        assert_eq!(
            create_answer(200, Some(433), "usage cap").key,
            KeyVerdict::Disable
        );
        assert_eq!(create_answer(200, Some(500), "oops").key, KeyVerdict::Keep);
    }

    #[test]
    fn a_model_that_is_gone_is_an_operator_problem_no_key_can_fix() {
        let gone = create_answer(
            200,
            Some(422),
            "The page does not exist or is not published",
        );
        assert!(gone.model_unavailable);
        assert_eq!(gone.key, KeyVerdict::Keep);
        assert!(create_answer(200, Some(505), "feature disabled").model_unavailable);
    }

    #[test]
    fn an_image_fetch_failure_is_worth_one_more_try() {
        let verdict = task_failure(
            None,
            "Failed to fetch the image. Kindly verify any access limits",
        );
        assert!(verdict.retry_once);
    }

    #[test]
    fn codes_decide_when_the_text_says_nothing() {
        assert_eq!(
            create_answer(200, Some(455), "").class,
            ErrorClass::Temporary
        );
        assert_eq!(
            create_answer(503, Some(503), "").class,
            ErrorClass::Temporary
        );
        assert_eq!(
            create_answer(200, Some(422), "validation error").class,
            ErrorClass::Unknown
        );
        assert_eq!(
            create_answer(200, Some(404), "not found").class,
            ErrorClass::Unknown
        );
    }

    #[test]
    fn a_create_is_safe_to_repeat_only_when_the_answer_says_nothing_was_created() {
        let refused = classify(&Observed {
            stage: Some(Stage::Create),
            transport: Some(Transport::Connect),
            ..Observed::default()
        });
        assert!(!refused.task_may_exist);
        assert_eq!(refused.class, ErrorClass::Temporary);

        let timed_out = classify(&Observed {
            stage: Some(Stage::Create),
            transport: Some(Transport::Timeout),
            ..Observed::default()
        });
        assert!(timed_out.task_may_exist);

        let not_json = classify(&Observed {
            stage: Some(Stage::Create),
            http_status: Some(200),
            body_is_json: false,
            ..Observed::default()
        });
        assert_eq!(not_json.class, ErrorClass::Temporary);
        assert!(not_json.task_may_exist);

        assert!(!create_answer(500, Some(500), "Server error").task_may_exist);
        assert!(!create_answer(429, Some(429), "Rate limit exceeded").task_may_exist);
        let bare_429 = classify(&Observed {
            stage: Some(Stage::Create),
            http_status: Some(429),
            ..Observed::default()
        });
        assert!(!bare_429.task_may_exist);
        assert_eq!(bare_429.class, ErrorClass::RateLimit);
    }

    #[test]
    fn the_cdn_refusal_is_an_access_problem_that_says_what_to_change() {
        let cdn = classify(&Observed {
            stage: Some(Stage::Create),
            http_status: Some(403),
            body_is_json: false,
            message: Some("error code: 1010"),
            ..Observed::default()
        });
        assert_eq!(cdn.class, ErrorClass::Billing);
        assert_eq!(cdn.key, KeyVerdict::Disable);
        assert!(
            !cdn.task_may_exist,
            "the CDN stopped the request before KIE"
        );
        assert!(cdn
            .operator_hint
            .is_some_and(|hint| hint.contains("KIE_USER_AGENT")));
    }

    #[test]
    fn a_paused_model_is_its_own_class_whatever_the_code() {
        for (status, code) in [(200, Some(500)), (500, Some(500)), (200, Some(422))] {
            let paused = create_answer(status, code, "This interface is temporarily paused");
            assert_eq!(paused.class, ErrorClass::ModelUnavailable);
            assert!(paused.model_unavailable);
            assert!(!paused.task_may_exist);
        }
    }

    #[test]
    fn status_and_upload_failures_never_claim_a_task_may_exist() {
        for stage in [Stage::Status, Stage::Upload, Stage::Task] {
            let verdict = classify(&Observed {
                stage: Some(stage),
                transport: Some(Transport::Timeout),
                ..Observed::default()
            });
            assert!(!verdict.task_may_exist, "{stage:?}");
        }
    }
}
