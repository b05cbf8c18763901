//! Bot API parameters, from whichever encoding the client chose.
//!
//! Telegram accepts a query string, a JSON body, a urlencoded form or multipart/form-data, and
//! teloxide uses JSON for most methods and multipart whenever a payload can carry a file. In
//! form encodings, objects (`reply_markup`, `prices`) arrive as JSON text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use super::error::TgError;

/// A file part of a multipart request.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub bytes: Bytes,
    pub file_name: Option<String>,
}

/// A file parameter: an upload, or a string naming a URL or a file id.
#[derive(Debug, Clone)]
pub(crate) enum FileParam {
    Url(String),
    FileId(String),
    Upload(Upload),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    values: Map<String, Value>,
    uploads: HashMap<String, Upload>,
}

impl Params {
    pub(crate) async fn from_request(req: Request) -> Result<Params, TgError> {
        let mut params = Params::default();
        if let Some(query) = req.uri().query() {
            params.add_pairs(query.as_bytes());
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            params.add_multipart(req).await?;
            return Ok(params);
        }
        let body = Bytes::from_request(req, &())
            .await
            .map_err(|_| TgError::bad_request("request body is unreadable"))?;
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("application/x-www-form-urlencoded") {
            params.add_pairs(&body);
        } else {
            // JSON is what clients send when they say nothing else.
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => params.values.extend(map),
                _ => return Err(TgError::bad_request("can't parse JSON object")),
            }
        }
        Ok(params)
    }

    /// Parameters as a JSON body gives them, for unit tests of the methods.
    #[cfg(test)]
    pub(crate) fn from_json(values: Value) -> Params {
        let Value::Object(values) = values else {
            panic!("parameters are an object")
        };
        Params {
            values,
            uploads: HashMap::new(),
        }
    }

    fn add_pairs(&mut self, encoded: &[u8]) {
        for (key, value) in url::form_urlencoded::parse(encoded) {
            self.values.insert(key.into_owned(), text_value(&value));
        }
    }

    async fn add_multipart(&mut self, req: Request) -> Result<(), TgError> {
        let malformed = || TgError::bad_request("can't parse multipart/form-data");
        let mut multipart = Multipart::from_request(req, &())
            .await
            .map_err(|_| malformed())?;
        while let Some(field) = multipart.next_field().await.map_err(|_| malformed())? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let is_file = file_name.is_some()
                || field
                    .content_type()
                    .is_some_and(|c| !c.starts_with("text/"));
            let bytes = field.bytes().await.map_err(|_| malformed())?;
            if is_file {
                let file_name = file_name.filter(|n| !n.is_empty());
                self.uploads.insert(name, Upload { bytes, file_name });
            } else {
                self.values
                    .insert(name, text_value(&String::from_utf8_lossy(&bytes)));
            }
        }
        Ok(())
    }

    /// A string parameter; numbers and booleans are given as text.
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub(crate) fn i64(&self, key: &str) -> Option<i64> {
        match self.values.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.values.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// An object or array parameter, whether sent as JSON or as JSON text in a form.
    pub(crate) fn json(&self, key: &str) -> Option<Value> {
        match self.values.get(key)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// A file parameter: `attach://<part>`, a part named `key`, a URL or a file id.
    pub(crate) fn file(&self, key: &str) -> Option<FileParam> {
        if let Some(value) = self.str(key) {
            if let Some(part) = value.strip_prefix("attach://") {
                return self.uploads.get(part).cloned().map(FileParam::Upload);
            }
            if value.starts_with("http://") || value.starts_with("https://") {
                return Some(FileParam::Url(value));
            }
            return Some(FileParam::FileId(value));
        }
        self.uploads.get(key).cloned().map(FileParam::Upload)
    }

    /// The parameters for `calls()`: uploads appear as `"<upload n bytes>"` under the
    /// parameter that refers to them.
    pub(crate) fn recorded(&self) -> Value {
        let mut values = self.values.clone();
        let mut attached = Vec::new();
        for value in values.values_mut() {
            let Some(part) = value.as_str().and_then(|s| s.strip_prefix("attach://")) else {
                continue;
            };
            if let Some(upload) = self.uploads.get(part) {
                attached.push(part.to_owned());
                *value = Value::String(describe(upload));
            }
        }
        for (name, upload) in &self.uploads {
            if !attached.contains(name) {
                values.insert(name.clone(), Value::String(describe(upload)));
            }
        }
        Value::Object(values)
    }
}

fn describe(upload: &Upload) -> String {
    format!("<upload {} bytes>", upload.bytes.len())
}

/// Form values are text; objects and arrays among them are JSON.
fn text_value(text: &str) -> Value {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value) = serde_json::from_str(text) {
            return value;
        }
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(values: Value, uploads: &[(&str, usize)]) -> Params {
        let Value::Object(values) = values else {
            panic!("an object")
        };
        Params {
            values,
            uploads: uploads
                .iter()
                .map(|(name, n)| {
                    let upload = Upload {
                        bytes: Bytes::from(vec![0u8; *n]),
                        file_name: None,
                    };
                    ((*name).to_owned(), upload)
                })
                .collect(),
        }
    }

    #[test]
    fn numbers_are_read_from_text_and_json() {
        let p = params(json!({"a": "42", "b": -7, "c": "x"}), &[]);
        assert_eq!(p.i64("a"), Some(42));
        assert_eq!(p.i64("b"), Some(-7));
        assert_eq!(p.i64("c"), None);
        assert_eq!(p.str("b").as_deref(), Some("-7"));
    }

    #[test]
    fn attached_uploads_are_recorded_under_their_parameter() {
        let p = params(
            json!({"video": "attach://abc", "chat_id": "1"}),
            &[("abc", 5)],
        );
        assert_eq!(
            p.recorded(),
            json!({"video": "<upload 5 bytes>", "chat_id": "1"})
        );
        assert!(matches!(p.file("video"), Some(FileParam::Upload(u)) if u.bytes.len() == 5));
    }

    #[test]
    fn file_strings_are_urls_or_ids() {
        let p = params(json!({"a": "https://x/v.mp4", "b": "video_1"}), &[("c", 1)]);
        assert!(matches!(p.file("a"), Some(FileParam::Url(_))));
        assert!(matches!(p.file("b"), Some(FileParam::FileId(_))));
        assert!(matches!(p.file("c"), Some(FileParam::Upload(_))));
    }

    #[test]
    fn form_values_holding_json_objects_are_parsed() {
        assert_eq!(text_value(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(text_value("[1,2]"), json!([1, 2]));
        assert_eq!(text_value("{not json"), json!("{not json"));
    }
}
