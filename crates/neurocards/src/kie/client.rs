//! The KIE HTTP client: one struct built from configuration, base URLs injected. It reports
//! failures as raw facts ([`KieFailure`]); the classifier decides what they mean.

use std::fmt;
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use super::classify::{classify, Observed, Stage, Transport};
use super::wire::{self, Envelope, TaskState};
use crate::domain::generation::{CreateRequest, KieApi};
use crate::domain::retry::Verdict;

/// Sent unless `KIE_USER_AGENT` says otherwise: KIE's CDN refuses some clients that send
/// none (HTTP 403 "error code: 1010").
pub const USER_AGENT: &str = concat!("neurocards/", env!("CARGO_PKG_VERSION"));

/// The longest a `Retry-After` from KIE is obeyed.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Folder of our uploads on KIE's file host.
const UPLOAD_PATH: &str = "neurocards";

#[derive(Debug, Clone)]
pub struct KieFailure {
    pub stage: Stage,
    pub transport: Option<Transport>,
    pub http_status: Option<u16>,
    pub body_code: Option<i64>,
    pub body_is_json: bool,
    pub message: String,
    /// From a `Retry-After` header.
    pub retry_after: Option<Duration>,
}

impl KieFailure {
    pub fn verdict(&self) -> Verdict {
        classify(&Observed {
            stage: Some(self.stage),
            transport: self.transport,
            http_status: self.http_status,
            body_code: self.body_code,
            body_is_json: self.body_is_json,
            message: Some(self.message.as_str()),
            ..Observed::default()
        })
    }

    fn transport(stage: Stage, err: &reqwest::Error) -> KieFailure {
        let transport = if err.is_connect() {
            Transport::Connect
        } else if err.is_timeout() {
            Transport::Timeout
        } else {
            Transport::Other
        };
        KieFailure {
            stage,
            transport: Some(transport),
            http_status: None,
            body_code: None,
            body_is_json: false,
            // The error text names only KIE's URL: no secret is in it.
            message: err.to_string(),
            retry_after: None,
        }
    }
}

impl fmt::Display for KieFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KIE {:?}", self.stage)?;
        if let Some(transport) = self.transport {
            write!(f, " {transport:?} error")?;
        }
        if let Some(status) = self.http_status {
            write!(f, ", HTTP {status}")?;
        }
        if let Some(code) = self.body_code {
            write!(f, ", code {code}")?;
        }
        if !self.body_is_json && self.transport.is_none() {
            write!(f, ", body not JSON")?;
        }
        let message: String = self.message.chars().take(300).collect();
        write!(f, ": {message}")
    }
}

impl std::error::Error for KieFailure {}

#[derive(Clone)]
pub struct KieClient {
    http: reqwest::Client,
    api_url: Url,
    upload_url: Url,
    /// The status endpoints, built once: every waiting job asks one of them every few
    /// seconds, and building the URL from text each time (parse, host check, query
    /// encoding) was a share of the waiting worker's CPU.
    market_status: Url,
    veo_status: Url,
}

impl KieClient {
    pub fn new(api_url: Url, upload_url: Url, request_timeout: Duration) -> reqwest::Result<Self> {
        KieClient::with_user_agent(api_url, upload_url, request_timeout, USER_AGENT)
    }

    pub fn with_user_agent(
        api_url: Url,
        upload_url: Url,
        request_timeout: Duration,
        user_agent: &str,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(10))
            .timeout(request_timeout)
            .build()?;
        Ok(KieClient {
            http,
            market_status: endpoint(&api_url, "api/v1/jobs/recordInfo"),
            veo_status: endpoint(&api_url, "api/v1/veo/record-info"),
            api_url,
            upload_url,
        })
    }

    /// Uploads our copy of the user's photo under a random name and returns its public URL.
    pub async fn upload(
        &self,
        key: &SecretString,
        bytes: Vec<u8>,
        file_name: &str,
        mime_type: &str,
    ) -> Result<String, KieFailure> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(mime_type)
            .map_err(|err| KieFailure::transport(Stage::Upload, &err))?;
        let form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("uploadPath", UPLOAD_PATH)
            .text("fileName", file_name.to_owned());
        let request = self
            .http
            .post(endpoint(&self.upload_url, "api/file-stream-upload"))
            .bearer_auth(key.expose_secret())
            .multipart(form);
        let answer = self.call(Stage::Upload, request).await?;
        wire::uploaded_url(&answer.data).ok_or_else(|| malformed(Stage::Upload, "no downloadUrl"))
    }

    /// Creates a generation task through the model's API and returns its id.
    pub async fn create_task(
        &self,
        key: &SecretString,
        create: &CreateRequest,
    ) -> Result<String, KieFailure> {
        let path = match create.api {
            KieApi::Market => "api/v1/jobs/createTask",
            KieApi::Veo => "api/v1/veo/generate",
        };
        let request = self
            .http
            .post(endpoint(&self.api_url, path))
            .bearer_auth(key.expose_secret())
            .json(&create.body);
        let answer = self.call(Stage::Create, request).await?;
        wire::task_id(&answer.data).ok_or_else(|| malformed(Stage::Create, "no taskId"))
    }

    pub async fn task_state(
        &self,
        key: &SecretString,
        api: KieApi,
        task_id: &str,
    ) -> Result<TaskState, KieFailure> {
        let mut url = match api {
            KieApi::Market => self.market_status.clone(),
            KieApi::Veo => self.veo_status.clone(),
        };
        url.query_pairs_mut().append_pair("taskId", task_id);
        let request = self.http.get(url).bearer_auth(key.expose_secret());
        let answer = self.call(Stage::Status, request).await?;
        let state = match api {
            KieApi::Market => wire::task_state(&answer.data),
            KieApi::Veo => wire::veo_task_state(&answer.data),
        };
        state.ok_or_else(|| malformed(Stage::Status, "no task record"))
    }

    /// The KIE account's remaining credits.
    pub async fn credit(&self, key: &SecretString) -> Result<i64, KieFailure> {
        let request = self
            .http
            .get(endpoint(&self.api_url, "api/v1/chat/credit"))
            .bearer_auth(key.expose_secret());
        let answer = self.call(Stage::Status, request).await?;
        answer
            .data
            .as_i64()
            .or_else(|| answer.data.as_f64().map(|credits| credits as i64))
            .ok_or_else(|| malformed(Stage::Status, "no credit balance"))
    }

    /// A fresh link (valid 20 minutes) for an expiring result URL.
    pub async fn download_url(&self, key: &SecretString, url: &str) -> Result<String, KieFailure> {
        let request = self
            .http
            .post(endpoint(&self.api_url, "api/v1/common/download-url"))
            .bearer_auth(key.expose_secret())
            .json(&json!({ "url": url }));
        let answer = self.call(Stage::Status, request).await?;
        answer
            .data
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed(Stage::Status, "no download URL"))
    }

    /// [`KieClient::exchange`], counted and timed for the metrics.
    async fn call(&self, stage: Stage, request: RequestBuilder) -> Result<Envelope, KieFailure> {
        let started = std::time::Instant::now();
        let answer = self.exchange(stage, request).await;
        let endpoint = match stage {
            Stage::Upload => "upload",
            Stage::Create => "create",
            Stage::Status | Stage::Task => "status",
        };
        let outcome: std::borrow::Cow<'static, str> = match &answer {
            Ok(_) => "ok".into(),
            Err(failure) if failure.transport.is_some() => "transport".into(),
            Err(failure) => match (failure.http_status, failure.body_code) {
                (Some(status), _) if status != 200 => format!("http_{status}").into(),
                (_, Some(code)) => format!("code_{code}").into(),
                _ => "malformed".into(),
            },
        };
        if outcome == "http_429" || outcome == "code_429" {
            metrics::counter!("neurocards_rate_limited_total", "service" => "kie").increment(1);
        }
        metrics::counter!("neurocards_kie_requests_total", "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("neurocards_kie_request_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        answer
    }

    /// Sends, reads the body, and accepts only an envelope with code 200 over HTTP 2xx. The
    /// body is read before the status: KIE reports many errors inside HTTP 200.
    async fn exchange(
        &self,
        stage: Stage,
        request: RequestBuilder,
    ) -> Result<Envelope, KieFailure> {
        let response = request
            .send()
            .await
            .map_err(|err| KieFailure::transport(stage, &err))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            // A wait of an hour would park every job of the key for an hour: a key that
            // asks for more rests the cap, then tries again.
            .map(|seconds| Duration::from_secs(seconds.min(MAX_RETRY_AFTER.as_secs())));
        let body = response
            .text()
            .await
            .map_err(|err| KieFailure::transport(stage, &err))?;
        let failure = |envelope: Option<&Envelope>| KieFailure {
            stage,
            transport: None,
            http_status: Some(status.as_u16()),
            body_code: envelope.and_then(|e| e.code),
            body_is_json: envelope.is_some(),
            message: envelope
                .map(|e| e.message().to_owned())
                .unwrap_or_else(|| body.chars().take(300).collect()),
            retry_after,
        };
        match Envelope::parse(&body) {
            Some(envelope) if envelope.is_ok() && status.is_success() => Ok(envelope),
            Some(envelope) => Err(failure(Some(&envelope))),
            None if status == StatusCode::OK && body.trim().is_empty() => Err(failure(None)),
            None => Err(failure(None)),
        }
    }
}

/// `path` under `base` (whether or not the base ends with a slash), without parsing text.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path.split('/'));
    }
    url
}

fn malformed(stage: Stage, what: &str) -> KieFailure {
    KieFailure {
        stage,
        transport: None,
        http_status: Some(200),
        body_code: Some(200),
        body_is_json: false,
        message: format!("malformed answer: {what}"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_written_as_the_joined_text_would_be() {
        let join =
            |base: &Url, path: &str| format!("{}/{path}", base.as_str().trim_end_matches('/'));
        for base in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "https://api.kie.ai/proxy/",
            "https://api.kie.ai/proxy",
        ] {
            let Ok(base) = Url::parse(base) else {
                panic!("{base} parses");
            };
            let path = "api/v1/jobs/recordInfo";
            assert_eq!(endpoint(&base, path).as_str(), join(&base, path), "{base}");
        }
    }
}
