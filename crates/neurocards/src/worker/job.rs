//! One job, from the stored state it was claimed in to its end: submit (or resume), follow
//! the task, deliver, or fail with the class's action. Every store write is fenced by the
//! job's lease; a stale lease means another worker has the job and this one stops quietly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{jitter, Worker};
use crate::clock::millis_of;
use crate::domain::image::ImageKind;
use crate::domain::retry::{decide, Decision, KeyVerdict, Verdict};
use crate::domain::{ErrorClass, JobStatus};
use crate::kie::classify::{classify, Observed, Stage};
use crate::kie::wire::TaskState;
use crate::kie::{KeyHandle, KieFailure};
use crate::photo::{fit_to_aspect, Aspect, FittedPhoto};
use crate::store::{ClaimedJob, CreateSlot, Delivery, StoreError};
use crate::telegram::{TelegramError, MAX_UPLOAD_BYTES};
use crate::texts::{self, Lang};

/// How long a job waits before asking again for a create slot the database did not answer.
const UNANSWERED_SLOT_PAUSE: Duration = Duration::from_secs(1);

/// The first pause before a send that did not reach Telegram is tried again; it doubles.
const DELIVERY_RETRY_BASE: Duration = Duration::from_secs(2);

/// How many times a task that succeeded without a video URL is read before it is refunded.
const NO_URL_READS: u32 = 3;

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
    pub(super) async fn run_job(
        self: Arc<Self>,
        job: ClaimedJob,
        stop: CancellationToken,
        _running: super::held::RunningGuard,
    ) {
        let job_id = job.lease.job_id;
        match self.drive(&job, &stop).await {
            Ok(End::Finished) => {
                crate::metrics::timed("summary", self.summarize(job.order_id)).await
            }
            Ok(End::Retrying | End::Released) => {}
            Err(Abort::LeaseLost) => {
                tracing::warn!(job = %job_id, "lease lost: another worker holds the job");
            }
            Err(Abort::Store(err)) => {
                tracing::error!(job = %job_id, error = %err, "database error; handing the job back");
                if let Err(err) = self
                    .persist(job.lease.job_id, "release_job", || {
                        self.store.release_job(&job.lease)
                    })
                    .await
                {
                    tracing::error!(job = %job_id, error = %err, "could not hand the job back");
                }
            }
        }
    }

    async fn drive(&self, job: &ClaimedJob, stop: &CancellationToken) -> Result<End, Abort> {
        match (job.status, &job.kie_task_id, &job.kie_key_id) {
            (JobStatus::Delivering, _, _) => {
                // The previous holder stopped while sending: the video may have reached the
                // user. Sending it again could send it twice and refunding it could pay for a
                // video the user has: it ends unconfirmed, and the summary offers to send it
                // again.
                tracing::warn!(job = %job.lease.job_id, "a delivery was interrupted; recorded as unconfirmed");
                let unconfirmed = Delivery::unconfirmed();
                self.persist(job.lease.job_id, "mark_delivered", || {
                    self.store.mark_delivered(&job.lease, &unconfirmed)
                })
                .await?;
                Ok(End::Finished)
            }
            (_, Some(task_id), Some(key_id)) => self.follow(job, task_id, key_id, stop).await,
            (JobStatus::Queued, None, _) => self.submit(job, stop).await,
            _ => {
                // A createTask may have reached KIE before the previous holder stopped, and
                // its task id is unknown: replaying it could bill a second task.
                let detail = crate::domain::INTERRUPTED_SUBMISSION;
                self.fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await
            }
        }
    }

    async fn submit(&self, job: &ClaimedJob, stop: &CancellationToken) -> Result<End, Abort> {
        let spec = &job.generation;
        let photo = match crate::metrics::timed("photo", self.fitted_photo(job)).await {
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
                    self.persist(job.lease.job_id, "release_job", || self.store.release_job(&job.lease)).await?;
                    return Ok(End::Released);
                }
                _ = tokio::time::sleep(rest) => {}
            }
        };

        // Once per order and key. A random name: the upload host overwrites files of the
        // same name, and takes the content type from the extension.
        let upload = self.uploads.slot(format!(
            "{}|{}|{}|{}",
            job.photo_file_id, spec.aspect, spec.photo_max_bytes, key.id
        ));
        let uploaded = upload
            .get_or_try_init(|| async {
                let _timer = crate::metrics::step("upload");
                let file_name = format!(
                    "{}.{}",
                    uuid::Uuid::new_v4().simple(),
                    FittedPhoto::EXTENSION
                );
                self.kie
                    .upload(
                        &key.secret,
                        photo.bytes.clone(),
                        &file_name,
                        FittedPhoto::MIME_TYPE,
                    )
                    .await
            })
            .await;
        let image_url = match uploaded {
            Ok(url) => url.clone(),
            Err(failure) => return self.kie_failed(job, &key, failure).await,
        };

        let Some(slot) =
            crate::metrics::timed("create_slot", self.wait_for_create_slot(&key, stop)).await
        else {
            self.persist(job.lease.job_id, "release_job", || {
                self.store.release_job(&job.lease)
            })
            .await?;
            return Ok(End::Released);
        };
        // A stop that came while the slot was being taken: no new paid task now; the next
        // process creates it.
        if stop.is_cancelled() {
            self.settle_slot(job, slot).await;
            self.persist(job.lease.job_id, "release_job", || {
                self.store.release_job(&job.lease)
            })
            .await?;
            return Ok(End::Released);
        }
        if let Err(err) = self
            .persist(job.lease.job_id, "mark_submit_started", || {
                self.store.mark_submit_started(&job.lease)
            })
            .await
        {
            // Nothing was sent: the slot is free again once settled.
            let _ = self.store.settle_create_slot(slot).await;
            return Err(err.into());
        }
        let callback = self
            .settings
            .public_url
            .as_ref()
            .map(|base| format!("{}/kie/callback", base.as_str().trim_end_matches('/')));
        let request = spec.create_request(&job.prompt, &image_url, callback.as_deref());
        let created =
            crate::metrics::timed("create", self.kie.create_task(&key.secret, &request)).await;
        match created {
            Ok(task_id) => {
                // Stored before anything else: a worker taking over follows this task.
                self.persist(job.lease.job_id, "record_task", || {
                    self.store.record_task(&job.lease, &task_id, &key.id)
                })
                .await?;
                self.settle_slot(job, slot).await;
                tracing::info!(job = %job.lease.job_id, task = %task_id, key = %key.id, "task created");
                self.follow(job, &task_id, &key.id, stop).await
            }
            Err(failure) => {
                self.settle_slot(job, slot).await;
                self.kie_failed(job, &key, failure).await
            }
        }
    }

    async fn settle_slot(&self, job: &ClaimedJob, slot: i64) {
        let _timer = crate::metrics::step("settle_slot");
        if let Err(err) = self.store.settle_create_slot(slot).await {
            // The slot then counts as in flight a little longer: slower, never over.
            tracing::warn!(job = %job.lease.job_id, error = %err, "could not settle a create slot");
        }
    }

    /// Waits for a create slot of the key's account; `None` when stopped meanwhile. The
    /// slot is asked for together with every other job of the process waiting for one of
    /// the account. While the database does not answer, the job keeps its lease and asks
    /// again: nothing was sent yet, and its heartbeat keeps it alive.
    async fn wait_for_create_slot(&self, key: &KeyHandle, stop: &CancellationToken) -> Option<i64> {
        loop {
            if stop.is_cancelled() {
                return None;
            }
            // Not raced with `stop`: the ask takes a round trip, and a job cancelled in the
            // middle of a batch would leave the batch's slots counted for nothing.
            let wait = match self.create_slots.take(&key.account).await {
                Some(CreateSlot::Taken(slot)) => return Some(slot),
                Some(CreateSlot::Wait(wait)) => wait,
                None => UNANSWERED_SLOT_PAUSE,
            };
            let wait = wait + Duration::from_millis((jitter() * 200.0) as u64);
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The order's photo fitted to its aspect; made once for all the videos of the order.
    async fn fitted_photo(&self, job: &ClaimedJob) -> Result<Arc<FittedPhoto>, PhotoProblem> {
        let spec = &job.generation;
        let key = format!(
            "{}|{}|{}",
            job.photo_file_id, spec.aspect, spec.photo_max_bytes
        );
        let slot = self.photos.slot(key);
        slot.get_or_try_init(|| async {
            let _transfer = self
                .transfers
                .acquire()
                .await
                .map_err(|_| PhotoProblem::Transient("the worker is stopping".to_owned()))?;
            let photo = self.fetch_photo(job).await?;
            // Models without an aspect field take the photo's shape: fit it to the order's.
            fit_photo(photo, &spec.aspect, spec.photo_max_bytes)
                .await
                .map(Arc::new)
                .map_err(PhotoProblem::Unusable)
        })
        .await
        .cloned()
    }

    async fn fetch_photo(&self, job: &ClaimedJob) -> Result<Vec<u8>, PhotoProblem> {
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
        if ImageKind::sniff(&bytes).is_none() {
            return Err(PhotoProblem::Unusable(
                "the photo is not a JPEG, PNG or WebP image".into(),
            ));
        }
        Ok(bytes)
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
        let result = crate::metrics::timed(
            "follow",
            self.poll_until_done(job, task_id, &key, &wake, stop),
        )
        .await;
        self.wakeups.forget(task_id);
        match result? {
            Polled::Video(url) => self.deliver(job, &url).await,
            Polled::Failed(failure) => self.failed_attempt(job, Some(&key), failure).await,
            Polled::Stopped => {
                self.persist(job.lease.job_id, "release_job", || {
                    self.store.release_job(&job.lease)
                })
                .await?;
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
        let gave_up = || {
            let detail = format!(
                "task {task_id} gave no result within {}",
                humantime::format_duration(self.settings.poll_timeout)
            );
            Polled::Failed(Failure::of(ErrorClass::Unknown, detail))
        };
        let mut reads_without_url = 0;
        loop {
            let now = self.now();
            // Past the deadline (also when a job is resumed long after it), KIE is asked
            // once more before giving up: the video may have finished meanwhile.
            let last_look = now >= deadline;
            if !last_look {
                let elapsed = Duration::from_millis(u64::try_from(now - started).unwrap_or(0));
                let pause = self.settings.poll.next_pause(elapsed, jitter());
                let until_deadline =
                    Duration::from_millis(u64::try_from(deadline - now).unwrap_or(0));
                tokio::select! {
                    _ = stop.cancelled() => return Ok(Polled::Stopped),
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(pause.min(until_deadline)) => {}
                }
            }
            crate::metrics::timed("status_turn", self.keys.until_status_allowed(&key.id)).await;
            let state = crate::metrics::timed(
                "status",
                self.kie
                    .task_state(&key.secret, job.generation.api, task_id),
            )
            .await;
            match state {
                Ok(TaskState::Running(_)) if last_look => return Ok(gave_up()),
                Ok(TaskState::Running(_)) => {}
                Ok(TaskState::Succeeded { video_url }) => return Ok(Polled::Video(video_url)),
                // KIE has charged for this task: another task would be charged again. Its
                // record may still be filling in; read it a few more times, then refund.
                Ok(TaskState::SucceededWithoutResult) => {
                    reads_without_url += 1;
                    if reads_without_url >= NO_URL_READS || last_look {
                        let detail = format!(
                            "task {task_id} succeeded without a video URL ({reads_without_url} reads)"
                        );
                        return Ok(Polled::Failed(Failure::of(ErrorClass::Unknown, detail)));
                    }
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
                Err(failure) if last_look => {
                    tracing::warn!(job = %job.lease.job_id, task = %task_id, error = %failure, "the last status query failed");
                    return Ok(gave_up());
                }
                // A status query that fails says nothing about the task: keep following it
                // until the deadline. A rate-limited key waits as told (the client caps it).
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
                    .await;
                // A refused client is told below, with what to change.
                if verdict.operator_hint.is_none() {
                    let reason = failure.to_string();
                    self.alerts
                        .raise(
                            crate::alerts::AlertKind::KeyDisabled,
                            &[("key", &key.id), ("reason", &reason)],
                        )
                        .await;
                }
            }
            KeyVerdict::CoolDown => {
                let rest = failure.retry_after.unwrap_or(self.settings.rate_limit_rest);
                self.keys
                    .cool_down(&key.id, self.now(), rest, &failure.to_string())
                    .await;
            }
            KeyVerdict::Keep => {}
        }
        let mut detail = failure.to_string();
        if verdict.model_unavailable {
            self.retire_model(job, &detail).await?;
        }
        if let Some(hint) = verdict.operator_hint {
            detail = format!("{detail} ({hint})");
            let error = failure.to_string();
            self.alerts
                .raise(
                    crate::alerts::AlertKind::ClientRefused,
                    &[("hint", &hint), ("error", &error)],
                )
                .await;
        }
        let failure = Failure {
            verdict,
            detail,
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
                self.persist(job.lease.job_id, "schedule_retry", || {
                    self.store.schedule_retry(
                        &job.lease,
                        delay,
                        failure.verdict.class,
                        &failure.detail,
                    )
                })
                .await?;
                Ok(End::Retrying)
            }
            Decision::Refund => self.fail(job, failure).await,
        }
    }

    /// Ends the job as failed with its refund (one transaction), then tells the user why.
    async fn fail(&self, job: &ClaimedJob, failure: Failure) -> Result<End, Abort> {
        let class = failure.verdict.class;
        let lang = job.language;
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
        // Told before the failure is recorded: once it is, the order may be complete and
        // another job's worker sends the summary, which must come after this message. A
        // crash in between tells the user twice; the credit is refunded once either way.
        if let Err(err) = self.telegram.send_text(job.chat_id.0, &text, None).await {
            tracing::warn!(job = %job.lease.job_id, error = %err, "could not tell the user about a failed video");
        }
        let refund = self
            .persist(job.lease.job_id, "fail_job", || {
                self.store.fail_job(&job.lease, class, &failure.detail)
            })
            .await?;
        let model = job.generation.model.clone();
        metrics::counter!("neurocards_videos_total", "outcome" => "failed", "model" => model, "class" => class.as_str())
            .increment(1);
        metrics::counter!("neurocards_refunds_total", "class" => class.as_str()).increment(1);
        let level_is_error = matches!(class, ErrorClass::Billing | ErrorClass::Unknown);
        if level_is_error {
            tracing::error!(job = %job.lease.job_id, %class, error = %failure.detail, refunded = refund.credits, "job failed");
        } else {
            tracing::info!(job = %job.lease.job_id, %class, error = %failure.detail, refunded = refund.credits, "job failed");
        }
        Ok(End::Finished)
    }

    async fn deliver(&self, job: &ClaimedJob, video_url: &str) -> Result<End, Abort> {
        // The video's bytes stay in memory until it is sent: wait for room.
        let _transfer = self.transfers.acquire().await.ok();
        // KIE's result links expire (about a day, sometimes sooner): fetch the video now, so
        // a slow or refused send by URL still has the bytes to upload.
        let prefetched = match crate::metrics::timed("download", self.download(video_url)).await {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                tracing::warn!(job = %job.lease.job_id, error = %err, "could not download the video yet; sending it by URL");
                None
            }
        };
        self.persist(job.lease.job_id, "mark_delivering", || {
            self.store.mark_delivering(&job.lease, video_url)
        })
        .await?;
        let lang = job.language;
        let total = job.video_count;
        let caption = texts::video_caption(lang, job.seq, total);
        let video = Video {
            url: video_url,
            prefetched,
        };
        let sent = crate::metrics::timed(
            "send_video",
            self.send_video(job, &video, &caption, lang, total),
        )
        .await;
        let delivery = match sent {
            Ok(delivery) => delivery,
            Err(TelegramError::Unreachable) => {
                tracing::info!(job = %job.lease.job_id, "the user blocked the bot; the video stays undelivered");
                self.persist(job.lease.job_id, "mark_unreachable", || {
                    self.store.mark_unreachable(job.user_id)
                })
                .await?;
                Delivery::default()
            }
            // No answer, or Telegram unavailable for longer than the patience: the video may
            // be with the user. Not sent again, not refunded; the summary offers it again.
            Err(
                err @ (TelegramError::Ambiguous(_)
                | TelegramError::NotSent(_)
                | TelegramError::RetryAfter(_)),
            ) => {
                tracing::warn!(job = %job.lease.job_id, error = %err, "the delivery is unconfirmed; the user can ask for the video again");
                Delivery::unconfirmed()
            }
            // Telegram answered that it will not take this video: it certainly did not
            // arrive, so its credit comes back.
            Err(err) => {
                let detail = format!("could not send the video to Telegram: {err}");
                return self
                    .fail(job, Failure::of(ErrorClass::Unknown, detail))
                    .await;
            }
        };
        self.persist(job.lease.job_id, "mark_delivered", || {
            self.store.mark_delivered(&job.lease, &delivery)
        })
        .await?;
        tracing::info!(job = %job.lease.job_id, message = ?delivery.message_id, "video delivered");
        let model = job.generation.model.clone();
        metrics::counter!("neurocards_videos_total", "outcome" => "delivered", "model" => model, "class" => "")
            .increment(1);
        let waited = self.now().saturating_sub(job.ordered_at).max(0) as f64 / 1000.0;
        metrics::histogram!("neurocards_order_to_video_seconds").record(waited);
        Ok(End::Finished)
    }

    /// By URL first; when Telegram refuses the URL, upload the bytes; over 50 MB, the link.
    /// Sends that certainly did not arrive (refused connections, Telegram's own errors, "slow
    /// down") are tried again for up to `delivery_patience`; a send without an answer is not,
    /// since it may have arrived.
    async fn send_video(
        &self,
        job: &ClaimedJob,
        video: &Video<'_>,
        caption: &str,
        lang: Lang,
        total: i64,
    ) -> Result<Delivery, TelegramError> {
        let started = tokio::time::Instant::now();
        let mut failures: u32 = 0;
        loop {
            let result = match self
                .telegram
                .send_video_url(job.chat_id.0, video.url, caption)
                .await
            {
                Err(TelegramError::FileRefused(reason)) => {
                    tracing::info!(job = %job.lease.job_id, %reason, "Telegram refused the URL; uploading the video");
                    self.upload_video(job, video, caption, lang, total).await
                }
                other => other.map(Delivery::from),
            };
            let wait = match &result {
                Err(TelegramError::RetryAfter(wait)) => *wait,
                Err(TelegramError::NotSent(_)) => {
                    crate::domain::retry::backoff(DELIVERY_RETRY_BASE, failures.min(4), jitter())
                }
                _ => return result,
            };
            failures += 1;
            if started.elapsed() + wait > self.settings.delivery_patience {
                return result;
            }
            if let Err(err) = &result {
                tracing::warn!(job = %job.lease.job_id, error = %err, ?wait, "the video did not reach Telegram; trying again");
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn upload_video(
        &self,
        job: &ClaimedJob,
        video: &Video<'_>,
        caption: &str,
        lang: Lang,
        total: i64,
    ) -> Result<Delivery, TelegramError> {
        let video_url = video.url;
        let bytes = match &video.prefetched {
            Some(bytes) => bytes.clone(),
            None => self
                .download(video_url)
                .await
                .map_err(|err| TelegramError::NotSent(format!("downloading the video: {err}")))?,
        };
        match bytes {
            Some(bytes) => self
                .telegram
                .send_video_bytes(job.chat_id.0, bytes, caption)
                .await
                .map(Delivery::from),
            None => {
                let text = texts::text(
                    lang,
                    "video.too_large",
                    &[("n", &job.seq), ("total", &total), ("url", &video_url)],
                );
                let message_id = self.telegram.send_text(job.chat_id.0, &text, None).await?;
                Ok(Delivery {
                    message_id: Some(message_id),
                    file_id: None,
                    unconfirmed: false,
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

/// A finished video: its link, and its bytes when they were fetched at once (`Some(None)`:
/// too large for Telegram).
struct Video<'a> {
    url: &'a str,
    prefetched: Option<Option<Vec<u8>>>,
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

/// Fits the photo to the order's aspect off the async threads: decoding and blurring a
/// 12-megapixel photo takes a CPU for a moment.
async fn fit_photo(photo: Vec<u8>, aspect: &str, max_bytes: u64) -> Result<FittedPhoto, String> {
    let aspect: Aspect = aspect
        .parse()
        .map_err(|_| format!("the order's aspect {aspect:?} is not W:H"))?;
    let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    tokio::task::spawn_blocking(move || fit_to_aspect(&photo, aspect, max_bytes))
        .await
        .map_err(|err| format!("fitting the photo stopped: {err}"))?
        .map_err(|err| format!("the photo cannot be fitted to {aspect}: {err}"))
}
