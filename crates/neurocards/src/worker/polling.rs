//! How often a running task is asked for its state: every few seconds at first, then less
//! and less often (KIE's guidance in docs/kie.md: 2–3 s for 30 s, then 5–10 s, then 15–30 s).
//! After two minutes a task is asked at the longest pause (`POLL_MAX_INTERVAL`, 30 s): such a
//! task is a long generation, and ten thousand of them asked every 24 s instead cost the
//! waiting worker a quarter more CPU for a few seconds less latency (BENCHMARKS.md).
//! Where KIE's callback wakes the job that follows the task (`PUBLIC_URL` set: the process
//! serving it wakes its own jobs and notes the others' for the workers), polling is only a
//! safety net and keeps to the longest pause
//! from the start: the status queries of a key are limited (10 a second), and a key whose
//! young tasks are polled every 3 s spends that budget on tasks that are not done, so the
//! query of a job its callback just woke waits behind them (`cargo bench --bench callback`
//! measured a 1.4 s median wait from success to the send, the same as polling alone).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    /// The pause while the task is young; every later step scales from it.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
    /// KIE's callbacks wake the jobs of this process: poll at the longest pause only.
    pub woken_by_callbacks: bool,
}

impl PollSchedule {
    /// The pause before the next query of a task created `elapsed` ago, spread by ±20 % of
    /// `jitter` (in [0, 1)) so thousands of tasks do not query in step, and never longer
    /// than `max`.
    pub fn next_pause(&self, elapsed: Duration, jitter: f64) -> Duration {
        let base = if self.woken_by_callbacks || elapsed >= Duration::from_secs(120) {
            self.max
        } else if elapsed < Duration::from_secs(30) {
            self.first
        } else {
            self.first * 3
        };
        let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        base.mul_f64(spread).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Default for PollSchedule {
        fn default() -> Self {
            PollSchedule {
                first: Duration::from_secs(3),
                max: Duration::from_secs(30),
                woken_by_callbacks: false,
            }
        }
    }

    #[test]
    fn pauses_grow_with_the_tasks_age_up_to_the_maximum() {
        let schedule = PollSchedule::default();
        let pause = |secs| schedule.next_pause(Duration::from_secs(secs), 0.5);
        assert_eq!(pause(0), Duration::from_secs(3));
        assert_eq!(pause(29), Duration::from_secs(3));
        assert_eq!(pause(60), Duration::from_secs(9));
        assert_eq!(pause(119), Duration::from_secs(9));
        assert_eq!(pause(120), Duration::from_secs(30));
        assert_eq!(pause(600), Duration::from_secs(30));
        let capped = PollSchedule {
            max: Duration::from_secs(10),
            ..schedule
        };
        assert_eq!(
            capped.next_pause(Duration::from_secs(600), 0.5),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn with_callbacks_waking_the_jobs_polling_is_a_slow_safety_net_from_the_start() {
        let schedule = PollSchedule {
            woken_by_callbacks: true,
            ..PollSchedule::default()
        };
        assert_eq!(
            schedule.next_pause(Duration::ZERO, 0.5),
            Duration::from_secs(30)
        );
        assert_eq!(
            schedule.next_pause(Duration::from_secs(600), 0.5),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn no_pause_is_longer_than_the_maximum_whatever_the_jitter() {
        let schedule = PollSchedule::default();
        for secs in [0, 45, 120, 600] {
            for jitter in [0.0, 0.5, 0.99, 1.0] {
                let pause = schedule.next_pause(Duration::from_secs(secs), jitter);
                assert!(
                    pause <= schedule.max,
                    "{secs} s, jitter {jitter}: {pause:?}"
                );
            }
        }
        assert_eq!(
            schedule.next_pause(Duration::from_secs(600), 0.0),
            Duration::from_secs(24)
        );
    }

    #[test]
    fn jitter_spreads_a_pause_by_a_fifth_either_way() {
        let schedule = PollSchedule::default();
        assert_eq!(
            schedule.next_pause(Duration::ZERO, 0.0),
            Duration::from_millis(2400)
        );
        assert_eq!(
            schedule.next_pause(Duration::ZERO, 1.0),
            Duration::from_millis(3600)
        );
    }
}
