//! One job, from the stored state it was claimed in to its end: submit (or resume), follow
//! the task, deliver, or fail with the class's action. Every store write is fenced by the
//! job's lease; a stale lease means another worker has the job and this one stops quietly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{jitter, Worker};
use crate::clock::millis_of;
use crate::domain::generation::GenerationSpec;
use crate::domain::image::ImageKind;
use crate::domain::retry::{decide, Decision, KeyVerdict, Verdict};
use crate::domain::{ErrorClass, JobStatus};
use crate::kie::classify::{classify, Observed, Stage};
use crate::kie::wire::TaskState;
use crate::kie::{KeyHandle, KieFailure};
use crate::store::{ClaimedJob, Delivery, StoreError};
use crate::telegram::{TelegramError, MAX_UPLOAD_BYTES};
use crate::texts::{self, Lang};

/// How a job left this worker.
#[derive(Debug)]
enum End {
    /// Terminal: delivered or failed (and refunded).
    Finished,
    /// Back in the queue for a later attempt.
    Retrying,
    /// Handed back as it stands (shutdown).
    Released,
}

/// Why a job stopped without reaching an end.
#[derive(Debug, thiserror::Error)]
enum Abort {
    /// Another worker holds the job now: leave it alone.
    #[error("the lease was lost")]
    LeaseLost,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Abort {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::StaleLease(_) => Abort::LeaseLost,
            other => Abort::Store(other),
        }
    }
}

/// A failure the user hears about: a class, and the text key of its message.
struct Failure {
    verdict: Verdict,
    detail: String,
    /// The user-facing text; `failed.<CLASS>` unless the photo was the problem.
    user_text: Option<&'static str>,
}

impl Failure {
    fn of(class: ErrorClass, detail: impl Into<String>) -> Failure {
        Failure {
            verdict: Verdict::of(class),
            detail: detail.into(),
            user_text: None,
        }
    }
}

impl Worker {
    pub(super) async fn run_job(self: Arc<Self>, job: ClaimedJob, stop: CancellationToken) {
        let job_id = job.lease.job_id;
        match self.drive(&job, &stop).await {
            Ok(End::Finished) => self.summarize(job.order_id).await,
            Ok(End::Retrying | End::Released) => {}
            Err(Abort::LeaseLost) => {
                tracing::warn!(job = %job_id, "lease lost: another worker holds the job");
            }
            Err(Abort::Store(err)) => {
                tracing::error!(job = %job_id, error = %err, "database error; handing the job back");
                if let Err(err) = self.store.release_job(&job.lease).await {
                    tracing::error!(job = %job_id, error = %err, "could not hand the job back");
                }
            }
        }
    }

    async fn drive(&self, job: &ClaimedJob, stop: &CancellationToken) -> Result<End, Abort> {
        match (job.status, &job.kie_task_id, &job.kie_key_id) {
            (JobStatus::Delivering, _, _) => {
                // The previous holder stopped while sending: the video may or may not have
                // reached the user. Sending again could send it twice; refund instead.
                let detail = "delivery was interrupted; not sent again";
                self.fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await
            }
            (_, Some(task_id), Some(key_id)) => self.follow(job, task_id, key_id, stop).await,
            (JobStatus::Queued, None, _) => self.submit(job, stop).await,
            _ => {
                // A createTask may have reached KIE before the previous holder stopped, and
                // its task id is unknown: replaying it could bill a second task.
                let detail = "a submission was interrupted before KIE's answer was stored";
                self.fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await
            }
        }
    }

    async fn submit(&self, job: &ClaimedJob, stop: &CancellationToken) -> Result<End, Abort> {
        let spec = match GenerationSpec::parse(&job.generation) {
            Ok(spec) => spec,
            Err(err) => {
                let detail = format!("the order's generation settings do not parse: {err}");
                return self
                    .fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await;
            }
        };
        let (photo, kind) = match self.fetch_photo(job).await {
            Ok(photo) => photo,
            Err(PhotoProblem::Unusable(detail)) => {
                let failure = Failure {
                    user_text: Some("failed.photo"),
                    ..Failure::of(ErrorClass::Unknown, detail)
                };
                return self.fail(job, failure).await;
            }
            Err(PhotoProblem::Transient(detail)) => {
                return self
                    .failed_attempt(job, None, Failure::of(ErrorClass::Temporary, detail))
                    .await;
            }
        };
        let key = loop {
            if let Some(key) = self.keys.pick(self.now(), job.kie_key_id.as_deref()) {
                break key;
            }
            let Some(usable_at) = self.keys.next_usable_at(self.now()) else {
                tracing::error!(job = %job.lease.job_id, "no usable KIE key: every key is out of rotation");
                let detail = "no usable KIE key: every key is out of rotation";
                return self
                    .fail(job, Failure::of(ErrorClass::Billing, detail))
                    .await;
            };
            // Every key is resting after a 429: wait for the first to come back.
            let rest = Duration::from_millis(u64::try_from(usable_at - self.now()).unwrap_or(0));
            tokio::select! {
                _ = stop.cancelled() => {
                    self.store.release_job(&job.lease).await?;
                    return Ok(End::Released);
                }
                _ = tokio::time::sleep(rest) => {}
            }
        };

        let file_name = format!("{}.{}", uuid::Uuid::new_v4().simple(), kind.extension());
        let image_url = match self
            .kie
            .upload(&key.secret, photo, &file_name, kind.mime_type())
            .await
        {
            Ok(url) => url,
            Err(failure) => return self.kie_failed(job, &key, failure).await,
        };

        if !self.wait_for_create_slot(&key, stop).await? {
            self.store.release_job(&job.lease).await?;
            return Ok(End::Released);
        }
        self.store.mark_submit_started(&job.lease).await?;
        let callback = self
            .settings
            .public_url
            .as_ref()
            .map(|base| format!("{}/kie/callback", base.as_str().trim_end_matches('/')));
        let body = spec.create_request(&job.prompt, &image_url, callback.as_deref());
        match self.kie.create_task(&key.secret, &body).await {
            Ok(task_id) => {
                // Stored before anything else: a worker taking over follows this task.
                self.store
                    .record_task(&job.lease, &task_id, &key.id)
                    .await?;
                tracing::info!(job = %job.lease.job_id, task = %task_id, key = %key.id, "task created");
                self.follow(job, &task_id, &key.id, stop).await
            }
            Err(failure) => self.kie_failed(job, &key, failure).await,
        }
    }

    /// Waits for a create slot of the key's account; false when stopped meanwhile.
    async fn wait_for_create_slot(
        &self,
        key: &KeyHandle,
        stop: &CancellationToken,
    ) -> Result<bool, Abort> {
        let limit = self.settings.create_limit;
        let window = self.settings.create_window;
        loop {
            let Some(wait) = self
                .store
                .take_create_slot(&key.account, limit, window)
                .await?
            else {
                return Ok(true);
            };
            let wait = wait + Duration::from_millis((jitter() * 200.0) as u64);
            tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn fetch_photo(&self, job: &ClaimedJob) -> Result<(Vec<u8>, ImageKind), PhotoProblem> {
        let max = self.settings.max_photo_bytes;
        let bytes = self
            .telegram
            .fetch_file(&job.photo_file_id, max)
            .await
            .map_err(|err| match err {
                TelegramError::TooLarge { .. } | TelegramError::FileRefused(_) => {
                    PhotoProblem::Unusable(format!("the photo cannot be used: {err}"))
                }
                other => {
                    PhotoProblem::Transient(format!("fetching the photo from Telegram: {other}"))
                }
            })?;
        let kind = ImageKind::sniff(&bytes).ok_or_else(|| {
            PhotoProblem::Unusable("the photo is not a JPEG, PNG or WebP image".into())
        })?;
        Ok((bytes, kind))
    }

    async fn follow(
        &self,
        job: &ClaimedJob,
        task_id: &str,
        key_id: &str,
        stop: &CancellationToken,
    ) -> Result<End, Abort> {
        let Some(key) = self.keys.by_id(key_id) else {
            let detail =
                format!("the key {key_id} that created task {task_id} is no longer configured");
            return self
                .fail(job, Failure::of(ErrorClass::Unknown, detail))
                .await;
        };
        let wake = self.wakeups.register(task_id);
        let result = self.poll_until_done(job, task_id, &key, &wake, stop).await;
        self.wakeups.forget(task_id);
        match result? {
            Polled::Video(url) => self.deliver(job, &url).await,
            Polled::Failed(failure) => self.failed_attempt(job, Some(&key), failure).await,
            Polled::Stopped => {
                self.store.release_job(&job.lease).await?;
                Ok(End::Released)
            }
        }
    }

    async fn poll_until_done(
        &self,
        job: &ClaimedJob,
        task_id: &str,
        key: &KeyHandle,
        wake: &tokio::sync::Notify,
        stop: &CancellationToken,
    ) -> Result<Polled, Abort> {
        let started = job.submit_started_at.unwrap_or_else(|| self.now());
        let deadline = started.saturating_add(millis_of(self.settings.poll_timeout));
        loop {
            let now = self.now();
            if now >= deadline {
                let detail = format!(
                    "task {task_id} gave no result within {}",
                    humantime::format_duration(self.settings.poll_timeout)
                );
                return Ok(Polled::Failed(Failure::of(ErrorClass::Unknown, detail)));
            }
            let elapsed = Duration::from_millis(u64::try_from(now - started).unwrap_or(0));
            let pause = self.settings.poll.next_pause(elapsed, jitter());
            let until_deadline = Duration::from_millis(u64::try_from(deadline - now).unwrap_or(0));
            tokio::select! {
                _ = stop.cancelled() => return Ok(Polled::Stopped),
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause.min(until_deadline)) => {}
            }
            self.keys.until_status_allowed(&key.id).await;
            match self.kie.task_state(&key.secret, task_id).await {
                Ok(TaskState::Running(_)) => {}
                Ok(TaskState::Succeeded { video_url }) => return Ok(Polled::Video(video_url)),
                Ok(TaskState::SucceededWithoutResult) => {
                    let detail = format!("task {task_id} succeeded without a video URL");
                    return Ok(Polled::Failed(Failure::of(ErrorClass::Temporary, detail)));
                }
                Ok(TaskState::Failed {
                    fail_code,
                    fail_msg,
                }) => {
                    let verdict = classify(&Observed {
                        stage: Some(Stage::Task),
                        body_is_json: true,
                        fail_code: fail_code.as_deref(),
                        fail_msg: fail_msg.as_deref(),
                        ..Observed::default()
                    });
                    let detail = format!(
                        "task {task_id} failed: {} {}",
                        fail_code.unwrap_or_default(),
                        fail_msg.unwrap_or_default()
                    );
                    return Ok(Polled::Failed(Failure {
                        verdict,
                        detail: detail.trim().to_owned(),
                        user_text: None,
                    }));
                }
                // A status query that fails says nothing about the task: keep following it
                // until the deadline. A rate-limited key waits as told.
                Err(failure) => {
                    tracing::warn!(job = %job.lease.job_id, task = %task_id, error = %failure, "status query failed");
                    if let Some(rest) = failure.retry_after {
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(Polled::Stopped),
                            _ = tokio::time::sleep(rest) => {}
                        }
                    }
                }
            }
        }
    }

    async fn kie_failed(
        &self,
        job: &ClaimedJob,
        key: &KeyHandle,
        failure: KieFailure,
    ) -> Result<End, Abort> {
        let verdict = failure.verdict();
        match verdict.key {
            KeyVerdict::Disable => {
                self.keys
                    .disable(&key.id, self.now(), &failure.to_string())
                    .await
            }
            KeyVerdict::CoolDown => {
                let rest = failure.retry_after.unwrap_or(self.settings.rate_limit_rest);
                self.keys
                    .cool_down(&key.id, self.now(), rest, &failure.to_string())
                    .await;
            }
            KeyVerdict::Keep => {}
        }
        if verdict.model_unavailable {
            tracing::error!(job = %job.lease.job_id, error = %failure, "the model is unavailable: operators must act");
        }
        let failure = Failure {
            verdict,
            detail: failure.to_string(),
            user_text: None,
        };
        self.failed_attempt(job, Some(key), failure).await
    }

    /// Applies the class's action: another attempt later, or the end with a refund.
    async fn failed_attempt(
        &self,
        job: &ClaimedJob,
        key: Option<&KeyHandle>,
        failure: Failure,
    ) -> Result<End, Abort> {
        let failed_before = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let other_key = key.is_none_or(|key| self.keys.has_other_usable(&key.id, self.now()));
        match decide(
            &self.settings.retry,
            &failure.verdict,
            failed_before,
            other_key,
            jitter(),
        ) {
            Decision::Retry { delay } => {
                tracing::info!(
                    job = %job.lease.job_id, class = %failure.verdict.class, attempt = failed_before + 1,
                    delay = ?delay, error = %failure.detail, "attempt failed; retrying"
                );
                self.store
                    .schedule_retry(&job.lease, delay, failure.verdict.class, &failure.detail)
                    .await?;
                Ok(End::Retrying)
            }
            Decision::Refund => self.fail(job, failure).await,
        }
    }

    /// Ends the job as failed with its refund (one transaction), then tells the user why.
    async fn fail(&self, job: &ClaimedJob, failure: Failure) -> Result<End, Abort> {
        let class = failure.verdict.class;
        let refund = self
            .store
            .fail_job(&job.lease, class, &failure.detail)
            .await?;
        let level_is_error = matches!(class, ErrorClass::Billing | ErrorClass::Unknown);
        if level_is_error {
            tracing::error!(job = %job.lease.job_id, %class, error = %failure.detail, refunded = refund.credits, "job failed");
        } else {
            tracing::info!(job = %job.lease.job_id, %class, error = %failure.detail, refunded = refund.credits, "job failed");
        }
        let lang = Lang::from_code(&job.language);
        let total = job.video_count;
        let text = match failure.user_text {
            Some(key) => texts::text(
                lang,
                key,
                &[
                    ("n", &job.seq),
                    ("total", &total),
                    ("max_mb", &(self.settings.max_photo_bytes / (1024 * 1024))),
                ],
            ),
            None => texts::video_failed(lang, class, job.seq, total),
        };
        if let Err(err) = self.telegram.send_text(job.chat_id, &text, None).await {
            tracing::warn!(job = %job.lease.job_id, error = %err, "could not tell the user about a failed video");
        }
        Ok(End::Finished)
    }

    async fn deliver(&self, job: &ClaimedJob, video_url: &str) -> Result<End, Abort> {
        self.store.mark_delivering(&job.lease).await?;
        let lang = Lang::from_code(&job.language);
        let total = job.video_count;
        let caption = texts::video_caption(lang, job.seq, total);
        let sent = self.send_video(job, video_url, &caption, lang, total).await;
        let delivery = match sent {
            Ok(delivery) => delivery,
            Err(TelegramError::Unreachable) => {
                tracing::info!(job = %job.lease.job_id, "the user blocked the bot; the video stays undelivered");
                self.store.mark_unreachable(job.user_id).await?;
                Delivery::default()
            }
            Err(err) => {
                let detail = format!("could not send the video to Telegram: {err}");
                return self
                    .fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await;
            }
        };
        self.store.mark_delivered(&job.lease, &delivery).await?;
        tracing::info!(job = %job.lease.job_id, message = ?delivery.message_id, "video delivered");
        Ok(End::Finished)
    }

    /// By URL first; when Telegram refuses the URL, download and upload; over 50 MB, the
    /// link. Waits and tries again when Telegram asks to slow down.
    async fn send_video(
        &self,
        job: &ClaimedJob,
        video_url: &str,
        caption: &str,
        lang: Lang,
        total: i64,
    ) -> Result<Delivery, TelegramError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match self
                .telegram
                .send_video_url(job.chat_id, video_url, caption)
                .await
            {
                Err(TelegramError::FileRefused(reason)) => {
                    tracing::info!(job = %job.lease.job_id, %reason, "Telegram refused the URL; uploading the video");
                    self.upload_video(job, video_url, caption, lang, total)
                        .await
                }
                other => other.map(Delivery::from),
            };
            match result {
                Err(TelegramError::RetryAfter(wait)) if tries < 4 => tokio::time::sleep(wait).await,
                Err(TelegramError::Other(reason)) if tries < 3 => {
                    tracing::warn!(job = %job.lease.job_id, %reason, "sending the video failed; trying again");
                    tokio::time::sleep(Duration::from_secs(2 * tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn upload_video(
        &self,
        job: &ClaimedJob,
        video_url: &str,
        caption: &str,
        lang: Lang,
        total: i64,
    ) -> Result<Delivery, TelegramError> {
        let bytes = self
            .download(video_url)
            .await
            .map_err(|err| TelegramError::Other(format!("downloading the video: {err}")))?;
        match bytes {
            Some(bytes) => self
                .telegram
                .send_video_bytes(job.chat_id, bytes, caption)
                .await
                .map(Delivery::from),
            None => {
                let text = texts::text(
                    lang,
                    "video.too_large",
                    &[("n", &job.seq), ("total", &total), ("url", &video_url)],
                );
                let message_id = self.telegram.send_text(job.chat_id, &text, None).await?;
                Ok(Delivery {
                    message_id: Some(message_id),
                    file_id: None,
                })
            }
        }
    }

    /// The video's bytes, or `None` when it is larger than Telegram takes from a bot.
    async fn download(&self, url: &str) -> Result<Option<Vec<u8>>, reqwest::Error> {
        let mut response = self.downloads.get(url).send().await?.error_for_status()?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_UPLOAD_BYTES)
        {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            bytes.extend_from_slice(&chunk);
            if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_UPLOAD_BYTES {
                return Ok(None);
            }
        }
        Ok(Some(bytes))
    }
}

enum Polled {
    Video(String),
    Failed(Failure),
    Stopped,
}

enum PhotoProblem {
    /// Wrong type, too large, refused: no retry helps.
    Unusable(String),
    Transient(String),
}
