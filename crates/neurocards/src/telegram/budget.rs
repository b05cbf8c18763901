//! The bot token's rate budget as this process spends it: every message of the process,
//! the dialog's and the worker's, takes its turn here, by the rule of
//! [`crate::domain::send_budget`]. When other processes send with the same token (a `bot`
//! and its `worker`s), each turn is taken from the budget they share in the database
//! instead, so that together they stay within Telegram's limits; a process that cannot
//! reach the database meanwhile keeps to its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::coalesce::{lock, Coalescer};
use crate::domain::send_budget::{self, Sent, SharedTurn, Turn};
pub use crate::domain::send_budget::{Lane, Limits};
use crate::store::Store;

pub struct Budget {
    limits: Limits,
    /// This process's clock for its own decisions: milliseconds since then.
    started: Instant,
    state: Mutex<State>,
    shared: Option<Shared>,
}

#[derive(Default)]
struct State {
    /// The sends of the last [`Limits::memory`], oldest first.
    recent: VecDeque<Sent>,
    /// Dialog answers waiting for their turn: the bulk lane holds back while there are any.
    dialog_waiting: usize,
}

/// The budget every process of the deployment takes its sends from.
struct Shared {
    store: Store,
    /// Per lane, the messages waiting for their turn, asked for in one transaction per
    /// batch: a busy process pays one transaction per batch of messages, not one per
    /// message. An answer is `None` when the database did not answer.
    lanes: [Coalescer<i64, Option<SharedTurn>>; 2],
    /// The database did not answer the last ask: logged once per outage.
    unreachable: AtomicBool,
    /// When the database last failed to answer (system clock, ms): for a while after, the
    /// process keeps to its own budget rather than make every message wait for a timeout.
    failed_at: AtomicI64,
}

/// The most messages asked for in one transaction.
const MOST_ASKED_AT_ONCE: usize = 500;

/// How long after a failed ask the shared budget is left alone.
const UNREACHABLE_REST_MS: i64 = 5_000;

impl Budget {
    /// A budget this process has to itself: `neurocards run` alone on its token.
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            shared: None,
        }
    }

    /// A budget shared through `store` with every other process that sends with the token.
    pub fn shared(limits: Limits, store: Store) -> Budget {
        Budget {
            shared: Some(Shared {
                store,
                lanes: [
                    Coalescer::new(MOST_ASKED_AT_ONCE),
                    Coalescer::new(MOST_ASKED_AT_ONCE),
                ],
                unreachable: AtomicBool::new(false),
                failed_at: AtomicI64::new(i64::MIN),
            }),
            ..Budget::new(limits)
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits until a message to `chat` may be sent in `lane`, and counts it as sent.
    pub async fn acquire(&self, chat: i64, lane: Lane) {
        let _waiting = (lane == Lane::Dialog).then(|| DialogWaiting::enter(self));
        // The shared budget knows every process's sends: it alone decides while it answers.
        if let Some(shared) = &self.shared {
            if shared
                .take(&self.limits, chat, lane, || self.dialog_waiting())
                .await
            {
                return;
            }
        }
        let sleep_until = |until: i64| {
            tokio::time::sleep_until(
                self.started + Duration::from_millis(u64::try_from(until).unwrap_or(0)),
            )
        };
        loop {
            let now = self.millis_now();
            match self.try_take(chat, lane, now) {
                Turn::Now => break,
                Turn::At(at) => {
                    sleep_until(at).await;
                    break;
                }
                Turn::Wait { until, .. } => sleep_until(until).await,
            }
        }
    }

    fn dialog_waiting(&self) -> bool {
        self.state
            .lock()
            .map(|state| state.dialog_waiting > 0)
            .unwrap_or(false)
    }

    fn millis_now(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn try_take(&self, chat: i64, lane: Lane, now: i64) -> Turn {
        let mut state = lock(&self.state);
        let memory = i64::try_from(self.limits.memory().as_millis()).unwrap_or(i64::MAX);
        while state
            .recent
            .front()
            .is_some_and(|sent| now - sent.at >= memory)
        {
            state.recent.pop_front();
        }
        let dialog_waiting = state.dialog_waiting > 0;
        let turn = send_budget::turn(
            &self.limits,
            state.recent.make_contiguous(),
            chat,
            lane,
            now,
            dialog_waiting,
        );
        let counted_at = match turn {
            Turn::Now => Some(now),
            Turn::At(at) => Some(at),
            Turn::Wait { .. } => None,
        };
        if let Some(at) = counted_at {
            // A moment taken ahead may lie after sends counted since: keep the order.
            let place = state.recent.partition_point(|sent| sent.at <= at);
            state.recent.insert(place, Sent { at, chat, lane });
        }
        turn
    }
}

impl Shared {
    /// Takes the turn from the database; false when the database did not answer (the caller
    /// then keeps to its own budget).
    async fn take(
        &self,
        limits: &Limits,
        chat: i64,
        lane: Lane,
        dialog_waiting: impl Fn() -> bool,
    ) -> bool {
        let since_failure = SystemClock
            .now_millis()
            .saturating_sub(self.failed_at.load(Ordering::Relaxed));
        if since_failure < UNREACHABLE_REST_MS {
            return false;
        }
        loop {
            match self.ask(limits, chat, lane, &dialog_waiting).await {
                Some(SharedTurn::At(at)) => {
                    if self.unreachable.swap(false, Ordering::Relaxed) {
                        tracing::info!("the shared Telegram budget is back");
                    }
                    sleep_ms(at.saturating_sub(SystemClock.now_millis())).await;
                    return true;
                }
                Some(SharedTurn::Wait { until, .. }) => {
                    sleep_ms(
                        until
                            .saturating_sub(SystemClock.now_millis())
                            .clamp(1, 2_000),
                    )
                    .await;
                }
                // Without the database the message goes by this process's own budget: at
                // worst Telegram answers 429 and the sender waits as told, which is better
                // than holding every message for the length of an outage.
                None => return false,
            }
        }
    }

    /// One answer for the message to `chat`: asked by this task, or by whichever task of
    /// the lane was asking for every waiting message when this one's turn came.
    async fn ask(
        &self,
        limits: &Limits,
        chat: i64,
        lane: Lane,
        dialog_waiting: &impl Fn() -> bool,
    ) -> Option<SharedTurn> {
        let asks = &self.lanes[match lane {
            Lane::Dialog => 0,
            Lane::Bulk => 1,
        }];
        // A message no longer waiting when its answer comes: a place counted for nothing,
        // never one too few.
        asks.ask(chat, |chats| {
            self.ask_for(limits, lane, chats, dialog_waiting)
        })
        .await
    }

    async fn ask_for(
        &self,
        limits: &Limits,
        lane: Lane,
        chats: Vec<i64>,
        dialog_waiting: &impl Fn() -> bool,
    ) -> Vec<Option<SharedTurn>> {
        let holding_back = lane == Lane::Bulk && dialog_waiting();
        match self
            .store
            .take_telegram_sends(&SystemClock, limits, &chats, lane, holding_back)
            .await
        {
            Ok(turns) => turns.into_iter().map(Some).collect(),
            Err(err) => {
                self.failed_at
                    .store(SystemClock.now_millis(), Ordering::Relaxed);
                if !self.unreachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "the shared Telegram budget is out of reach: sending by this process's own budget until it is back");
                }
                vec![None; chats.len()]
            }
        }
    }
}

async fn sleep_ms(millis: i64) {
    if millis > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(millis).unwrap_or(0))).await;
    }
}

/// Counts a waiting dialog answer for as long as it waits, even when its future is dropped.
struct DialogWaiting<'a>(&'a Budget);

impl<'a> DialogWaiting<'a> {
    fn enter(budget: &'a Budget) -> DialogWaiting<'a> {
        if let Ok(mut state) = budget.state.lock() {
            state.dialog_waiting += 1;
        }
        DialogWaiting(budget)
    }
}

impl Drop for DialogWaiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.state.lock() {
            state.dialog_waiting = state.dialog_waiting.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn budget() -> Arc<Budget> {
        Arc::new(Budget::new(Limits::default()))
    }

    /// When each of `sends` (chat, lane) got its turn, in ms from the start.
    async fn turns(budget: Arc<Budget>, sends: Vec<(i64, Lane)>) -> Vec<u128> {
        let start = Instant::now();
        let tasks: Vec<_> = sends
            .into_iter()
            .map(|(chat, lane)| {
                let budget = Arc::clone(&budget);
                tokio::spawn(async move {
                    budget.acquire(chat, lane).await;
                    start.elapsed().as_millis()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap_or(u128::MAX));
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn one_chat_gets_at_most_one_message_a_second_and_a_margin() {
        let times = turns(budget(), vec![(1, Lane::Bulk); 3]).await;
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1100, 2200]);
    }

    #[tokio::test(start_paused = true)]
    async fn deliveries_spread_over_the_second_let_a_person_who_starts_talking_in_soon() {
        let budget = budget();
        let bulk: Vec<_> = (0..40).map(|chat| (chat, Lane::Bulk)).collect();
        let mut times = turns(Arc::clone(&budget), bulk).await;
        times.sort();
        // 1,020 ms / 30: a send every 34 ms, the whole second used.
        let expected: Vec<u128> = (0..40).map(|step| step * 34).collect();
        assert_eq!(times, expected);
        // The window is full of deliveries: its oldest leaves within two steps.
        let dialog = turns(budget, vec![(100, Lane::Dialog)]).await;
        assert!(dialog[0] <= 68, "{dialog:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_thirty_in_a_window() {
        let sends: Vec<_> = (0..90)
            .map(|chat| {
                (
                    chat,
                    if chat % 3 == 0 {
                        Lane::Dialog
                    } else {
                        Lane::Bulk
                    },
                )
            })
            .collect();
        let mut times = turns(budget(), sends).await;
        times.sort();
        for (i, start) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|t| **t < start + 1020).count();
            assert!(
                in_window <= 30,
                "{in_window} sends within 1.02 s from {start} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_dialog_answer_goes_before_queued_deliveries() {
        let budget = budget();
        // Fill the bulk lane's share of this second.
        let first: Vec<_> = (0..29).map(|chat| (chat, Lane::Bulk)).collect();
        turns(Arc::clone(&budget), first).await;
        // The dialog fills the rest, so everything now waits for the window to move.
        let rest: Vec<_> = (29..30).map(|chat| (chat, Lane::Dialog)).collect();
        turns(Arc::clone(&budget), rest).await;
        let mut queued: Vec<_> = (100..110).map(|chat| (chat, Lane::Bulk)).collect();
        queued.push((200, Lane::Dialog));
        let times = turns(budget, queued).await;
        let dialog = times[times.len() - 1];
        assert!(
            times[..times.len() - 1].iter().all(|bulk| *bulk >= dialog),
            "{times:?}"
        );
    }
}
