//! Logs on stderr, filtered by `RUST_LOG` (default `info`): human-readable lines, or one JSON
//! object per line with `LOG_FORMAT=json` for log shippers (the span and event fields, such
//! as user, order, job and task ids, become JSON fields).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (the default) or `json`.
    pub fn parse(value: Option<&str>) -> Result<LogFormat, String> {
        match value.map(str::trim).filter(|value| !value.is_empty()) {
            None => Ok(LogFormat::Text),
            Some(value) if value.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(value) if value.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "LOG_FORMAT is invalid: it must be text or json (got {other:?})"
            )),
        }
    }
}

pub fn init(format: LogFormat) {
    init_with_default(format, "info,sqlx=warn");
}

/// `RUST_LOG` when set, else `default`.
pub fn init_with_default(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        let err = LogFormat::parse(Some("yaml")).expect_err("not a format");
        assert!(err.contains("LOG_FORMAT"), "{err}");
    }
}
