//! The phases a generation job goes through, and which moves between them are legal.

use std::fmt;
use std::str::FromStr;

/// Where a job stands. The phase is kept while a job changes hands: a job taken back from a
/// dead worker keeps `generating` (and its KIE task id), so the next holder resumes instead of
/// starting over. Whether a worker holds the job is a separate fact (its lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobStatus {
    /// Waiting for a worker; nothing was sent to KIE for the current attempt.
    Queued,
    /// A createTask may be on its way: replaying it blindly could bill a second task.
    Submitting,
    /// KIE accepted the task; its id and key are stored.
    Generating,
    /// The video is being sent to the user.
    Delivering,
    /// Terminal: the user has the video (or could not receive it), no refund.
    Delivered,
    /// Terminal: the credit was refunded.
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Submitting,
        JobStatus::Generating,
        JobStatus::Delivering,
        JobStatus::Delivered,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Submitting => "submitting",
            JobStatus::Generating => "generating",
            JobStatus::Delivering => "delivering",
            JobStatus::Delivered => "delivered",
            JobStatus::Failed => "failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Delivered | JobStatus::Failed)
    }

    /// The moves the store performs. A retry goes back to `queued` from any phase before
    /// `delivering`: once a video may have reached the user, generating it again could send
    /// it twice.
    pub fn can_move_to(self, next: JobStatus) -> bool {
        use JobStatus::*;
        match (self, next) {
            (Queued, Submitting) => true,
            (Submitting, Generating) => true,
            (Generating, Delivering) => true,
            (Delivering, Delivered) => true,
            (Queued | Submitting | Generating, Queued) => true,
            (from, Failed) => !from.is_terminal(),
            _ => false,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown job status {0:?}")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownJobStatus(s.to_owned()))
    }
}

impl TryFrom<String> for JobStatus {
    type Error = UnknownJobStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Why a job taken over in `submitting` ends: a createTask may have reached KIE before its
/// holder stopped, with its task id never stored. Replaying it could bill a second task, so
/// the job is refunded; the task KIE may have made is the one kind of duplicate allowed, and
/// the chaos soak explains each duplicate it finds by a job that ended with this.
pub const INTERRUPTED_SUBMISSION: &str =
    "a submission was interrupted before KIE's answer was stored";

#[cfg(test)]
mod tests {
    use super::JobStatus::{self, *};

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        assert!("done".parse::<JobStatus>().is_err());
    }

    #[test]
    fn the_happy_path_is_a_chain_of_legal_moves() {
        let path = [Queued, Submitting, Generating, Delivering, Delivered];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn terminal_jobs_never_move_again() {
        for from in [Delivered, Failed] {
            for to in JobStatus::ALL {
                assert!(!from.can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_job_that_may_have_reached_the_user_is_never_retried() {
        assert!(!Delivering.can_move_to(Queued));
        assert!(Delivering.can_move_to(Failed));
        assert!(Generating.can_move_to(Queued));
        assert!(Queued.can_move_to(Queued));
    }

    #[test]
    fn a_task_is_recorded_only_after_its_submission_was() {
        assert!(!Queued.can_move_to(Generating));
        assert!(!Submitting.can_move_to(Submitting));
    }
}
