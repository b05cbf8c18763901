//! The bot token's one rate budget, shared by every part of the process: Telegram allows a
//! bot about 30 messages per second overall and about one per second in a chat, and answers
//! 429 beyond that. A person waiting on the dialog goes first: deliveries and summaries
//! (the bulk lane) never take the last few sends of a second, and wait while a dialog answer
//! is waiting. Times are kept a little wider than Telegram's, because a request reaches
//! Telegram a few milliseconds after it leaves and two sends must not arrive closer than
//! the limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// An answer to a person's action.
    Dialog,
    /// Deliveries, summaries, alerts: nobody is waiting on them second by second.
    Bulk,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Sends per second overall.
    pub per_second: usize,
    /// Of those, kept for the dialog: the bulk lane never uses them.
    pub dialog_reserve: usize,
    /// The least time between two sends to one chat.
    pub per_chat: Duration,
    /// Added to every interval, for the time a request takes to reach Telegram.
    pub margin: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 30,
            dialog_reserve: 6,
            per_chat: Duration::from_secs(1),
            margin: Duration::from_millis(100),
        }
    }
}

pub struct Budget {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the sends of the last window left, oldest first.
    recent: VecDeque<Instant>,
    last_in_chat: HashMap<i64, Instant>,
    /// Dialog answers waiting for their turn: the bulk lane holds back while there are any.
    dialog_waiting: usize,
}

/// How long until a send may leave, or that it may leave now.
enum Turn {
    Now,
    After(Instant),
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Waits until a message to `chat` may be sent in `lane`, and counts it as sent.
    pub async fn acquire(&self, chat: i64, lane: Lane) {
        let _waiting = (lane == Lane::Dialog).then(|| DialogWaiting::enter(self));
        loop {
            match self.try_take(chat, lane, Instant::now()) {
                Turn::Now => return,
                Turn::After(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    fn try_take(&self, chat: i64, lane: Lane, now: Instant) -> Turn {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = Duration::from_secs(1) + self.limits.margin;
        while state
            .recent
            .front()
            .is_some_and(|sent| now.duration_since(*sent) >= window)
        {
            state.recent.pop_front();
        }
        let cap = match lane {
            Lane::Dialog => self.limits.per_second,
            Lane::Bulk => self
                .limits
                .per_second
                .saturating_sub(self.limits.dialog_reserve)
                .max(1),
        };
        let mut ready = now;
        if state.recent.len() >= cap {
            // The send that must leave the window before this one may go.
            if let Some(oldest) = state.recent.get(state.recent.len() - cap) {
                ready = ready.max(*oldest + window);
            }
        }
        if let Some(last) = state.last_in_chat.get(&chat) {
            ready = ready.max(*last + self.limits.per_chat + self.limits.margin);
        }
        if lane == Lane::Bulk && state.dialog_waiting > 0 {
            // A person is waiting for an answer: look again shortly.
            ready = ready.max(now + Duration::from_millis(10));
        }
        if ready > now {
            return Turn::After(ready);
        }
        state.recent.push_back(now);
        state.last_in_chat.insert(chat, now);
        if state.last_in_chat.len() > 10_000 {
            let horizon = self.limits.per_chat + self.limits.margin;
            state
                .last_in_chat
                .retain(|_, last| now.duration_since(*last) < horizon);
        }
        Turn::Now
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
    async fn the_bulk_lane_leaves_the_dialog_its_reserve() {
        let budget = budget();
        let bulk: Vec<_> = (0..40).map(|chat| (chat, Lane::Bulk)).collect();
        let times = turns(Arc::clone(&budget), bulk).await;
        assert_eq!(times.iter().filter(|t| **t == 0).count(), 24, "{times:?}");
        // The dialog still has its reserve in this very second.
        let dialog = turns(budget, vec![(100, Lane::Dialog)]).await;
        assert!(dialog[0] < 1100, "{dialog:?}");
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
            let in_window = times[i..].iter().take_while(|t| **t < start + 1100).count();
            assert!(
                in_window <= 30,
                "{in_window} sends within 1.1 s from {start} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_dialog_answer_goes_before_queued_deliveries() {
        let budget = budget();
        // Fill the bulk lane's share of this second.
        let first: Vec<_> = (0..24).map(|chat| (chat, Lane::Bulk)).collect();
        turns(Arc::clone(&budget), first).await;
        // The dialog fills the rest, so everything now waits for the window to move.
        let rest: Vec<_> = (24..30).map(|chat| (chat, Lane::Dialog)).collect();
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
