//! The faults, on a schedule: worker processes SIGKILLed and replaced, the database cut,
//! Telegram answering 429, 500 and late, KIE retiring a model. Each kill is followed: how long
//! the dead worker's jobs wait before another worker takes them.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use emulators::kie::KieEmulator;
use emulators::netcut::TcpProxy;
use emulators::telegram::{Fault, TelegramEmulator};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fleet::Fleet;
use crate::domain::JobId;
use crate::store::Store;

const TELEGRAM_FAULT_EVERY: Duration = Duration::from_millis(500);
/// Longer than the processes' TELEGRAM_TIMEOUT: the send lands, the answer comes too late.
const LATE_ANSWER: Duration = Duration::from_secs(6);
const SEND_METHODS: [&str; 3] = ["sendVideo", "sendMessage", "editMessageText"];

pub struct StormSetup<'a> {
    pub fleet: Fleet,
    pub store: Store,
    pub proxy: Arc<TcpProxy>,
    pub telegram: &'a TelegramEmulator,
    pub kie: Arc<KieEmulator>,
    pub kill_every: Duration,
    /// When each database cut begins, from now.
    pub db_cuts: Vec<Duration>,
    pub db_cut: Duration,
    pub retire_model_after: Duration,
    pub retired_model: &'static str,
    /// This KIE account runs out of credits for `dry_for`, `dry_after` from now: its key
    /// answers 402 until the account is topped up again.
    pub dry_account: String,
    pub dry_after: Duration,
    pub dry_for: Duration,
    /// Cancelled when the users are done: the faults stop, the fleet runs on.
    pub calm: CancellationToken,
    pub seed: u64,
}

#[derive(Debug, Default, Clone)]
pub struct FaultCounts {
    pub kills: usize,
    pub restarts_after_exit: usize,
    pub db_cuts: usize,
    pub too_many_requests: usize,
    pub server_errors: usize,
    pub late_answers: usize,
    pub refused_video_urls: usize,
    pub model_retired: bool,
    pub account_ran_dry: bool,
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} workers SIGKILLed, {} processes restarted after exiting, {} database cuts, \
             Telegram: {} × 429, {} × 500, {} late answers, {} video links refused; {}; {}",
            self.kills,
            self.restarts_after_exit,
            self.db_cuts,
            self.too_many_requests,
            self.server_errors,
            self.late_answers,
            self.refused_video_urls,
            if self.model_retired {
                "a model retired at KIE"
            } else {
                "no model retired"
            },
            if self.account_ran_dry {
                "a KIE account out of credits for a while"
            } else {
                "no KIE account ran dry"
            }
        )
    }
}

type Window = (Instant, Instant);

/// What the killing loop hands back: the fleet, kills, restarts and one follower per kill.
type Killed = (Fleet, usize, usize, Vec<JoinHandle<Vec<Takeover>>>);

pub struct Storm {
    killing: JoinHandle<anyhow::Result<Killed>>,
    cutting: JoinHandle<Vec<Window>>,
    telegram_faults: Arc<Mutex<FaultCounts>>,
    injecting: JoinHandle<()>,
    retiring: JoinHandle<bool>,
    drying: JoinHandle<bool>,
}

impl Storm {
    pub fn start(setup: StormSetup<'_>) -> Storm {
        let StormSetup {
            fleet,
            store,
            proxy,
            telegram,
            kie,
            kill_every,
            db_cuts,
            db_cut,
            retire_model_after,
            retired_model,
            dry_account,
            dry_after,
            dry_for,
            calm,
            seed,
        } = setup;
        let start = tokio::time::Instant::now();
        let killing = tokio::spawn(kill_workers(fleet, store, kill_every, calm.clone()));
        let cutting = tokio::spawn({
            let calm = calm.clone();
            async move {
                let mut windows = Vec::new();
                for at in db_cuts {
                    tokio::select! {
                        () = calm.cancelled() => break,
                        () = tokio::time::sleep_until(start + at) => {}
                    }
                    proxy.cut_for(db_cut);
                    tracing::info!(?db_cut, "chaos: the database is cut");
                    windows.push((Instant::now(), Instant::now() + db_cut));
                }
                windows
            }
        });
        let telegram_faults = Arc::new(Mutex::new(FaultCounts::default()));
        let injecting = tokio::spawn(inject_telegram_faults(
            telegram.fault_injector(),
            Arc::clone(&telegram_faults),
            calm.clone(),
            seed,
        ));
        let drying = tokio::spawn({
            let kie = Arc::clone(&kie);
            let calm = calm.clone();
            async move {
                tokio::select! {
                    () = calm.cancelled() => return false,
                    () = tokio::time::sleep(dry_after) => {}
                }
                let credits = kie.credits(&dry_account);
                kie.set_credits(&dry_account, 0);
                tracing::info!(account = %dry_account, "chaos: a KIE account ran dry");
                tokio::time::sleep(dry_for).await;
                kie.set_credits(&dry_account, credits);
                true
            }
        });
        let retiring = tokio::spawn(async move {
            tokio::select! {
                () = calm.cancelled() => false,
                () = tokio::time::sleep(retire_model_after) => {
                    kie.pause_model(retired_model);
                    true
                }
            }
        });
        Storm {
            killing,
            cutting,
            telegram_faults,
            injecting,
            retiring,
            drying,
        }
    }

    /// After `calm`: the fleet back, what was injected, and for each job a killed worker held,
    /// how long until it was taken back and until another worker held it, and whether a
    /// database cut fell in that time.
    pub async fn finish(self) -> anyhow::Result<(Fleet, FaultCounts, Vec<super::report::Wait>)> {
        let (fleet, kills, restarts, trackers) = self.killing.await??;
        let cuts = self.cutting.await?;
        self.injecting.await?;
        let model_retired = self.retiring.await?;
        let account_ran_dry = self.drying.await?;
        let mut waits = Vec::new();
        for tracker in trackers {
            for takeover in tracker.await? {
                let cut_for = time_within(&cuts, (takeover.killed, takeover.taken));
                let cut_before_release = time_within(&cuts, (takeover.killed, takeover.released));
                waits.push(super::report::Wait {
                    released: takeover.released - takeover.killed,
                    taken: takeover.taken - takeover.killed,
                    cut_for,
                    cut_before_release,
                });
            }
        }
        let mut counts = self
            .telegram_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        counts.kills = kills;
        counts.restarts_after_exit = restarts;
        counts.db_cuts = cuts.len();
        counts.model_retired = model_retired;
        counts.account_ran_dry = account_ran_dry;
        Ok((fleet, counts, waits))
    }
}

/// How much of `span` falls within the (disjoint) `windows`.
fn time_within(windows: &[Window], span: Window) -> Duration {
    let (start, end) = span;
    windows
        .iter()
        .map(|(from, to)| (*to).min(end).saturating_duration_since((*from).max(start)))
        .sum()
}

async fn kill_workers(
    mut fleet: Fleet,
    store: Store,
    kill_every: Duration,
    calm: CancellationToken,
) -> anyhow::Result<Killed> {
    let mut kills = 0;
    let mut restarts = 0;
    let mut trackers = Vec::new();
    let mut last_kill = Instant::now();
    while !calm.is_cancelled() {
        tokio::select! {
            () = calm.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        restarts += fleet.restart_exited()?;
        if last_kill.elapsed() < kill_every || fleet.workers().is_empty() {
            continue;
        }
        let dead = fleet.kill_and_replace(kills)?;
        last_kill = Instant::now();
        kills += 1;
        // Read straight from the server: the dead worker's rows are as it left them.
        let held: Vec<JobId> = match store.held_jobs(&dead).await {
            Ok(leases) => leases.into_iter().map(|lease| lease.job_id).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "chaos: could not list a dead worker's jobs");
                Vec::new()
            }
        };
        tracing::info!(worker = %dead, jobs = held.len(), "chaos: worker SIGKILLed");
        trackers.push(tokio::spawn(follow_takeover(
            store.clone(),
            dead,
            held,
            last_kill,
        )));
    }
    restarts += fleet.restart_exited()?;
    Ok((fleet, kills, restarts, trackers))
}

/// A job a killed worker held: when it was killed, when the others took the job back from
/// it, and when another worker held it (or it had ended).
#[derive(Debug, Clone, Copy)]
pub struct Takeover {
    pub killed: Instant,
    pub released: Instant,
    pub taken: Instant,
}

/// Follows each job from the kill until another worker holds it or it has ended.
async fn follow_takeover(
    store: Store,
    dead: String,
    jobs: Vec<JobId>,
    killed: Instant,
) -> Vec<Takeover> {
    let mut waiting: Vec<(JobId, Option<Instant>)> =
        jobs.into_iter().map(|job| (job, None)).collect();
    let mut done = Vec::new();
    let give_up = killed + Duration::from_secs(600);
    while !waiting.is_empty() && Instant::now() < give_up {
        let mut still = Vec::new();
        for (job, released) in waiting {
            let now = Instant::now();
            match store.job(job).await {
                Ok(Some(details)) if !details.status.is_terminal() => {
                    match details.locked_by.as_deref() {
                        Some(holder) if holder == dead => still.push((job, released)),
                        None => still.push((job, released.or(Some(now)))),
                        Some(_) => done.push(Takeover {
                            killed,
                            released: released.unwrap_or(now),
                            taken: now,
                        }),
                    }
                }
                Ok(_) => done.push(Takeover {
                    killed,
                    released: released.unwrap_or(now),
                    taken: now,
                }),
                Err(_) => still.push((job, released)),
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Never taken: counted with the longest wait, so the report shows it.
    let now = Instant::now();
    done.extend(waiting.iter().map(|(_, released)| Takeover {
        killed,
        released: released.unwrap_or(now),
        taken: now,
    }));
    done
}

async fn inject_telegram_faults(
    telegram: emulators::telegram::FaultInjector,
    counts: Arc<Mutex<FaultCounts>>,
    calm: CancellationToken,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7e1e);
    loop {
        tokio::select! {
            () = calm.cancelled() => return,
            () = tokio::time::sleep(TELEGRAM_FAULT_EVERY) => {}
        }
        let method = SEND_METHODS[rng.random_range(0..SEND_METHODS.len())].to_owned();
        let draw: f64 = rng.random();
        let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let fault = if draw < 0.35 {
            counts.too_many_requests += 1;
            Fault::TooManyRequests {
                method,
                retry_after: rng.random_range(1..=2),
            }
        } else if draw < 0.7 {
            counts.server_errors += 1;
            Fault::ServerError { method }
        } else if draw < 0.9 {
            counts.late_answers += 1;
            Fault::LateAnswer {
                method,
                delay: LATE_ANSWER,
            }
        } else {
            counts.refused_video_urls += 1;
            Fault::RefuseVideoUrl
        };
        telegram.inject(fault);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_part_of_a_cut_inside_the_wait_counts() {
        let zero = Instant::now();
        let at = |secs: u64| zero + Duration::from_secs(secs);
        let cuts = [(at(5), at(15)), (at(40), at(60))];
        assert_eq!(time_within(&cuts, (at(0), at(30))), Duration::from_secs(10));
        assert_eq!(
            time_within(&cuts, (at(10), at(50))),
            Duration::from_secs(15)
        );
        assert_eq!(time_within(&cuts, (at(20), at(35))), Duration::ZERO);
        assert_eq!(time_within(&cuts, (at(45), at(50))), Duration::from_secs(5));
    }
}
