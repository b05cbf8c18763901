//! A fake of the KIE API (task creation, status, callbacks, file upload, credits), in the
//! shapes of /work/shared/fixtures/kie and of docs.kie.ai.
//!
//! Endpoints (the API and upload ones sit behind an emulated CDN, see below):
//!
//! | route | what |
//! | --- | --- |
//! | `POST /api/v1/jobs/createTask` | a Market task; `input` is validated against the model table |
//! | `GET /api/v1/jobs/recordInfo?taskId=` | a Market task's state (`state`, `resultJson` string) |
//! | `POST /api/v1/veo/generate` | a Veo 3.1 task (top-level body, validated like KIE) |
//! | `GET /api/v1/veo/record-info?taskId=` | a Veo task (`successFlag`, `response.resultUrls` array) |
//! | `GET /api/v1/chat/credit` | the account's credits |
//! | `POST /api/v1/common/download-url` | a "fresh" link |
//! | `POST /api/file-stream-upload`, `…/file-base64-upload`, `…/file-url-upload` | uploads |
//! | `GET /videos/<taskId>.mp4` (`-watermark`, `-origin`) | result videos, once a task succeeded |
//! | `GET /files/<path>` | uploaded files |
//!
//! Each status endpoint sees only the tasks of its own API: a Veo id asked of recordInfo is
//! "recordInfo is null", as a task of another account is.
//!
//! **Models.** createTask knows the Market image-to-video models KIE lists (`models.rs`:
//! Kling 2.6 / 3.0, Seedance 1.5 Pro / 2 / 2 Fast, Hailuo 2.3 Standard / Pro, Wan 2.6 / 2.7,
//! Grok Imagine) with their input schemas. A missing required field, a wrong JSON type
//! (`"duration": 5` for Kling, `"duration": "8"` for Seedance), a value not allowed or a field
//! the model does not have answers HTTP 200
//! `{"code":422,"msg":"Parameter validation failed: <field and why>","data":null}`. Any
//! `sora-*` model, and a model retired with [`KieEmulator::pause_model`], answers
//! `{"code":500,"msg":"This interface is temporarily paused","data":null}`; any other model
//! `{"code":422,"msg":"The page does not exist or is not published","data":null}`. None of
//! these create anything.
//!
//! **CDN.** A request to `/api/…` without a `User-Agent`, or with one containing an entry of
//! [`KieConfig::refused_user_agents`], gets HTTP 403 `text/plain` `error code: 1010` before
//! anything else (it is recorded, and it counts as no createTask call).
//!
//! A task spends `stage_delay` in each of waiting, queuing and generating (Veo:
//! `successFlag` 0 throughout), then succeeds with a result URL served at
//! `/videos/<taskId>.mp4`. Markers in the prompt (`input.prompt`, or Veo's `prompt`) script
//! other ends, for both APIs:
//!
//! | marker | Market effect | Veo effect |
//! | --- | --- | --- |
//! | `#violation` | ends `fail`, failCode "422", prohibited content | `successFlag` 2, errorCode 400, "Your prompt was flagged…" |
//! | `#people` | ends `fail`, failCode 400 (a number), photorealistic people | `successFlag` 2, errorCode 400, "Public error: unsafe image upload" |
//! | `#temporary` | ends `fail`, failCode "500", "Internal server error" | `successFlag` 3, errorCode 500, "Internal Error, Please try again later." |
//! | `#temporary*N` | the first N tasks with this exact prompt fail as `#temporary` | same |
//! | `#unknown` | ends `fail`, failCode "999" | `successFlag` 3, errorCode 501 |
//! | `#nourl` | ends `success` with `{"resultUrls":[]}` | `successFlag` 1 with `resultUrls: []` |
//! | `#billing` | create: HTTP 200, code 402; nothing created | same |
//! | `#http500` | create: HTTP 500; nothing created | same |
//! | `#http429`, `#http429=N` | create: HTTP 429 with `Retry-After: 1` (or N); nothing created | same |
//! | `#malformed` | create: HTTP 200 with an HTML body; nothing created | same |
//! | `#hang` | create never answers (until shutdown); nothing created | same |
//! | `#statusmalformed` | created, but every status query answers `not json` | same |
//! | `#slow=N` | the three stages last N seconds in total | same |
//!
//! Callbacks (to `callBackUrl`) follow each API's documented shape: the Market one is the
//! recordInfo `data` plus `creditsConsumed`, with code 200 / 501; Veo's is code 200 with
//! `data.info.resultUrls`, or the error code and message with `data` holding only the id.
//! [`KieConfig::callback_task_id_snake_case`] renames `data.taskId` to `data.task_id`.
//!
//! Besides the API, a test that runs the emulator as a process has `/_control`:
//! `GET /_control/requests`, `GET /_control/tasks`, `GET|POST /_control/accounts/{name}/credits`
//! (`{"credits": n}`), `GET /_control/models` and `POST /_control/models/{model}/pause`, where
//! `{model}` is the model id as is, slash included
//! (`/_control/models/kling-2.6/image-to-video/pause`; `%2F` works too).

mod callbacks;
mod control;
mod markers;
mod models;
mod record;
mod routes;
mod state;
mod task;
mod upload;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::server::{self, Server};
use state::Shared;

pub use callbacks::callback_signature;

/// The Market model ids createTask accepts (Veo 3.1's `veo3`, `veo3_fast` and `veo3_lite` go
/// through `POST /api/v1/veo/generate` instead).
pub fn listed_models() -> Vec<&'static str> {
    models::market_ids()
}

/// How the emulator behaves. The defaults mirror KIE's documented limits.
#[derive(Debug, Clone)]
pub struct KieConfig {
    pub accounts: Vec<KieAccount>,
    /// Time a task spends in each of waiting, queuing and generating.
    pub stage_delay: Duration,
    /// Accepted creates per account per `create_window`.
    pub create_limit: u32,
    pub create_window: Duration,
    /// Status queries per key per second.
    pub status_limit_per_second: u32,
    /// When set, callbacks carry `X-Webhook-Timestamp` and `X-Webhook-Signature`.
    pub callback_hmac_key: Option<String>,
    /// Credits charged per accepted task.
    pub cost_per_task: i64,
    /// User-Agent fragments (case-insensitive) that KIE's CDN refuses with HTTP 403
    /// `error code: 1010`; a request without a User-Agent is refused whatever this holds.
    pub refused_user_agents: Vec<String>,
    /// Callbacks carry `data.task_id` instead of `data.taskId`, as the sample of KIE's docs
    /// spells it.
    pub callback_task_id_snake_case: bool,
}

impl Default for KieConfig {
    fn default() -> Self {
        KieConfig {
            accounts: vec![KieAccount {
                name: "main".to_owned(),
                keys: vec!["test-key".to_owned()],
                credits: 1_000_000,
            }],
            stage_delay: Duration::from_millis(300),
            create_limit: 20,
            create_window: Duration::from_secs(10),
            status_limit_per_second: 10,
            callback_hmac_key: None,
            cost_per_task: 1,
            refused_user_agents: Vec::new(),
            callback_task_id_snake_case: false,
        }
    }
}

/// A KIE account: its keys share its credits and its create limit.
#[derive(Debug, Clone)]
pub struct KieAccount {
    pub name: String,
    pub keys: Vec<String>,
    pub credits: i64,
}

/// One HTTP request as the emulator received it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    /// The body as text; for multipart uploads a summary:
    /// `file=<name> (<n> bytes); uploadPath=…; fileName=…`.
    pub body: String,
    /// The HTTP status answered; 0 while unanswered (`#hang`).
    pub status: u16,
}

/// An accepted task.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedTask {
    pub task_id: String,
    /// The API the task came through: "market" (createTask) or "veo" (veo/generate).
    pub api: String,
    pub account: String,
    pub key: String,
    /// The Market model id, or Veo's `model` ("veo3_fast" when the request left it out).
    pub model: String,
    pub prompt: String,
    /// The Market request's `input`; for Veo, the whole request body.
    pub input: serde_json::Value,
    pub callback_url: Option<String>,
    /// The state at the time of the call: waiting, queuing, generating, success or fail.
    pub state: String,
    /// "success", or what the task was scripted to end with: "violation", "people",
    /// "temporary", "unknown", "nourl".
    pub outcome: String,
    /// When the task ends (its state turns to success or fail): latencies are measured from
    /// here.
    #[serde(skip)]
    pub finished_at: Instant,
}

/// A running KIE emulator; it stops when dropped.
#[derive(Debug)]
pub struct KieEmulator {
    shared: Arc<Shared>,
    server: Server,
}

impl KieEmulator {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: KieConfig) -> std::io::Result<KieEmulator> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr, config: KieConfig) -> std::io::Result<KieEmulator> {
        let listener = server::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(config, base_url)?);
        let router = routes::router(Arc::clone(&shared));
        let server = server::spawn(listener, router, shared.cancel.clone())?;
        Ok(KieEmulator { shared, server })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash; serves the API and the uploads.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every request received, in order (the `/_control` API excepted).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Create requests (createTask and veo/generate) that passed the CDN, accepted or not.
    pub fn create_task_calls(&self) -> usize {
        self.shared.lock().create_task_calls
    }

    /// Accepted tasks, in creation order, each in its current state.
    pub fn tasks(&self) -> Vec<EmulatedTask> {
        self.shared.lock().public_tasks(Instant::now())
    }

    /// How many HTTP 429 answers were given, for any reason.
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// The largest number of accepted creates of `account` inside any sliding `create_window`.
    pub fn max_creates_in_window(&self, account: &str) -> usize {
        self.shared
            .lock()
            .max_creates_in_window(account, self.shared.config.create_window)
    }

    /// The next `count` accepted tasks end refused for a content violation, whatever their
    /// prompt (for a demo whose prompts carry no markers).
    pub fn refuse_next_tasks(&self, count: u32) {
        self.shared.lock().refuse_next += count;
    }

    /// Retires `model` (a Market model id or a Veo model name) from now on: its creates answer
    /// code 500 "This interface is temporarily paused", as Sora's do. Tasks already created
    /// go on.
    pub fn pause_model(&self, model: &str) {
        self.shared.lock().pause_model(model);
    }

    /// Sets the credits of `account`; unknown accounts are ignored.
    pub fn set_credits(&self, account: &str, credits: i64) {
        self.shared.lock().set_credits(account, credits);
    }

    /// The credits of `account`; 0 for an unknown account.
    pub fn credits(&self, account: &str) -> i64 {
        self.shared.lock().credits(account).unwrap_or(0)
    }

    /// Stops the server (as dropping the handle does).
    pub fn shutdown(self) {}
}
