//! Markers in a prompt that script what the emulator does with the task.
//!
//! A marker is `#name`, optionally followed by `*N` or `=N`. When a prompt holds several markers
//! of the same group, the first one wins.

use std::time::Duration;

/// Answers to createTask that create nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateFault {
    /// Never answer.
    Hang,
    /// HTTP 500.
    Http500,
    /// HTTP 429 with `Retry-After: <seconds>` (1 unless `#http429=N`).
    Http429 { retry_after: u32 },
    /// HTTP 200 with an HTML body.
    Malformed,
    /// HTTP 200 with code 402.
    Billing,
}

/// How an accepted task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Scripted {
    #[default]
    Success,
    /// Refused by moderation; with `first`, only the first N tasks of the same prompt are.
    Violation {
        first: Option<u32>,
    },
    People,
    /// Fails as a temporary error; with `first`, only the first N tasks of the same prompt do.
    Temporary {
        first: Option<u32>,
    },
    Unknown,
    NoUrl,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Script {
    pub create_fault: Option<CreateFault>,
    pub outcome: Scripted,
    /// Every recordInfo of the task answers a non-JSON body.
    pub status_malformed: bool,
    /// The total duration of the three stages, replacing 3 × stage_delay.
    pub slow: Option<Duration>,
}

/// Reads the markers of `prompt`; unknown markers are ordinary text.
pub(crate) fn parse(prompt: &str) -> Script {
    let mut script = Script::default();
    let mut outcome = None;
    for (name, arg) in markers(prompt) {
        let fault = match name.as_str() {
            "hang" => Some(CreateFault::Hang),
            "http500" => Some(CreateFault::Http500),
            "http429" => Some(CreateFault::Http429 {
                retry_after: match arg {
                    Some(Arg::Value(seconds)) if seconds >= 0.0 => seconds as u32,
                    _ => 1,
                },
            }),
            "malformed" => Some(CreateFault::Malformed),
            "billing" => Some(CreateFault::Billing),
            _ => None,
        };
        if fault.is_some() {
            script.create_fault = script.create_fault.or(fault);
            continue;
        }
        let scripted = match name.as_str() {
            "violation" => Some(Scripted::Violation {
                first: match arg {
                    Some(Arg::Times(n)) => Some(n),
                    _ => None,
                },
            }),
            "people" => Some(Scripted::People),
            "temporary" => Some(Scripted::Temporary {
                first: match arg {
                    Some(Arg::Times(n)) => Some(n),
                    _ => None,
                },
            }),
            "unknown" => Some(Scripted::Unknown),
            "nourl" => Some(Scripted::NoUrl),
            _ => None,
        };
        if scripted.is_some() {
            outcome = outcome.or(scripted);
            continue;
        }
        match (name.as_str(), arg) {
            ("statusmalformed", _) => script.status_malformed = true,
            // An absurd value would make a test wait for ever; an hour is plenty.
            ("slow", Some(Arg::Value(seconds)))
                if script.slow.is_none() && (0.0..=3600.0).contains(&seconds) =>
            {
                script.slow = Some(Duration::from_secs_f64(seconds));
            }
            _ => {}
        }
    }
    script.outcome = outcome.unwrap_or_default();
    script
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arg {
    Times(u32),
    Value(f64),
}

fn markers(prompt: &str) -> Vec<(String, Option<Arg>)> {
    prompt
        .split('#')
        .skip(1)
        .filter_map(|piece| {
            let name_len = piece
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(piece.len());
            if name_len == 0 {
                return None;
            }
            let (name, rest) = piece.split_at(name_len);
            Some((name.to_ascii_lowercase(), argument(rest)))
        })
        .collect()
}

fn argument(rest: &str) -> Option<Arg> {
    let mut chars = rest.chars();
    let sign = chars.next()?;
    let body = chars.as_str();
    let number_len = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    // A sentence may end right after the marker: "#slow=3."
    let number = body[..number_len].trim_end_matches('.');
    match sign {
        '*' => number.parse().ok().map(Arg::Times),
        '=' => number.parse().ok().map(Arg::Value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_prompt_succeeds() {
        assert_eq!(parse("a red sneaker on a podium"), Script::default());
    }

    #[test]
    fn temporary_with_a_count_is_read() {
        let script = parse("shoe #temporary*2 please");
        assert_eq!(script.outcome, Scripted::Temporary { first: Some(2) });
        assert_eq!(
            parse("#temporary").outcome,
            Scripted::Temporary { first: None }
        );
    }

    #[test]
    fn create_faults_and_outcomes_combine() {
        let script = parse("#statusmalformed #violation #http429 #slow=1.5.");
        assert_eq!(
            script.create_fault,
            Some(CreateFault::Http429 { retry_after: 1 })
        );
        assert_eq!(
            parse("#http429=3600").create_fault,
            Some(CreateFault::Http429 { retry_after: 3600 })
        );
        assert_eq!(script.outcome, Scripted::Violation { first: None });
        assert!(script.status_malformed);
        assert_eq!(script.slow, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn similar_names_are_not_confused() {
        assert_eq!(parse("#http500").create_fault, Some(CreateFault::Http500));
        assert_eq!(parse("#statusmalformed").create_fault, None);
        assert_eq!(
            parse("#malformed").create_fault,
            Some(CreateFault::Malformed)
        );
        assert_eq!(parse("#unknownthing").outcome, Scripted::Success);
    }
}
