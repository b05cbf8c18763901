//! A fake of the KIE API (task creation, status, callbacks, file upload, credits), in the
//! shapes of /work/shared/fixtures/kie.
//!
//! A task spends `stage_delay` in each of waiting, queuing and generating, then succeeds with
//! a result URL served at `/videos/<taskId>.mp4`. Markers in `input.prompt` script other ends:
//!
//! | marker | effect |
//! | --- | --- |
//! | `#violation` | ends `fail`, failCode "422", prohibited content |
//! | `#people` | ends `fail`, failCode 400 (a number), photorealistic people |
//! | `#temporary` | ends `fail`, failCode "500", "Internal server error" |
//! | `#temporary*N` | the first N tasks with this exact prompt fail as `#temporary` |
//! | `#unknown` | ends `fail`, failCode "999" |
//! | `#nourl` | ends `success` with `{"resultUrls":[]}` |
//! | `#billing` | createTask: HTTP 200, code 402; nothing created |
//! | `#http500` | createTask: HTTP 500; nothing created |
//! | `#http429` | createTask: HTTP 429 with `Retry-After: 1`; nothing created |
//! | `#malformed` | createTask: HTTP 200 with an HTML body; nothing created |
//! | `#hang` | createTask never answers (until shutdown); nothing created |
//! | `#statusmalformed` | created, but every recordInfo answers `not json` |
//! | `#slow=N` | the three stages last N seconds in total |
//!
//! Besides the API, `/_control/requests`, `/_control/tasks` and
//! `POST /_control/accounts/{name}/credits` `{"credits": n}` serve a test that runs the
//! emulator as a process.

mod callbacks;
mod control;
mod markers;
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
    pub account: String,
    pub key: String,
    pub model: String,
    pub prompt: String,
    pub input: serde_json::Value,
    pub callback_url: Option<String>,
    /// The state at the time of the call: waiting, queuing, generating, success or fail.
    pub state: String,
    /// "success", or what the task was scripted to end with: "violation", "people",
    /// "temporary", "unknown", "nourl".
    pub outcome: String,
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

    /// createTask requests received, accepted or not.
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
