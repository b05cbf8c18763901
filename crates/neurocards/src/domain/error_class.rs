//! The classes every failure from KIE is sorted into: the five of the job lifecycle, and a
//! retired model.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The photo or prompt was refused by the provider's content policy.
    UserViolation,
    /// The provider account cannot pay or the key is invalid.
    Billing,
    /// The provider asked us to slow down.
    RateLimit,
    /// Worth another try: 5xx, maintenance, timeouts, connection errors, malformed answers.
    Temporary,
    /// Anything else, including a generation that never finished.
    Unknown,
    /// KIE has retired or switched off the model ("temporarily paused", "page does not
    /// exist"): no key or retry helps; the model leaves the offer and operators are told.
    ModelUnavailable,
    /// The user cancelled the video before it reached the provider.
    Cancelled,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::UserViolation,
        ErrorClass::Billing,
        ErrorClass::RateLimit,
        ErrorClass::Temporary,
        ErrorClass::Unknown,
        ErrorClass::ModelUnavailable,
        ErrorClass::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::UserViolation => "USER_VIOLATION",
            ErrorClass::Billing => "BILLING",
            ErrorClass::RateLimit => "RATE_LIMIT",
            ErrorClass::Temporary => "TEMPORARY",
            ErrorClass::Unknown => "UNKNOWN",
            ErrorClass::ModelUnavailable => "MODEL_UNAVAILABLE",
            ErrorClass::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown error class {0:?}")]
pub struct UnknownErrorClass(pub String);

impl FromStr for ErrorClass {
    type Err = UnknownErrorClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|class| class.as_str() == s)
            .ok_or_else(|| UnknownErrorClass(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorClass;

    #[test]
    fn every_class_round_trips_through_its_name() {
        for class in ErrorClass::ALL {
            assert_eq!(class.as_str().parse::<ErrorClass>(), Ok(class));
        }
        assert!("billing".parse::<ErrorClass>().is_err());
    }
}
