//! Telegram's flood limits for one bot token, as one decision over the sends of the last
//! seconds: about 30 messages per second overall and about one per second in a chat, 429
//! beyond. The same rule serves a process on its own and every process of a deployment
//! through the database (they share one token, so they share its budget).
//!
//! A person waiting on the dialog goes first. While people are talking to the bot (a dialog
//! answer went out in the last `dialog_quiet`, or one is waiting), deliveries and summaries
//! leave `dialog_reserve` sends of each second to the dialog; while nobody is, they leave
//! one, so that the first answer to someone who starts talking need not wait for a second
//! of deliveries to pass.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// An answer to a person's action.
    Dialog,
    /// Deliveries, summaries, alerts: nobody is waiting on them second by second.
    Bulk,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Dialog => "dialog",
            Lane::Bulk => "bulk",
        }
    }

    pub fn parse(text: &str) -> Option<Lane> {
        match text {
            "dialog" => Some(Lane::Dialog),
            "bulk" => Some(Lane::Bulk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Sends per second overall.
    pub per_second: usize,
    /// Of those, kept for the dialog while people are talking to the bot.
    pub dialog_reserve: usize,
    /// The least time between two sends to one chat.
    pub per_chat: Duration,
    /// Added to the per-chat interval: for the time a request takes to reach Telegram.
    pub chat_margin: Duration,
    /// Added to the one-second window. Two sends a second apart reach Telegram with about
    /// the same delay, so this covers only how much that delay varies; each millisecond of
    /// it costs the bulk lane a thousandth of its rate.
    pub window_margin: Duration,
    /// How long after a dialog answer the reserve is still kept.
    pub dialog_quiet: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 30,
            dialog_reserve: 6,
            per_chat: Duration::from_secs(1),
            chat_margin: Duration::from_millis(100),
            window_margin: Duration::from_millis(20),
            dialog_quiet: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// Telegram's limits with `per_second` messages a second overall, a fifth of them kept
    /// for the dialog while people talk.
    pub fn with_rate(per_second: usize) -> Limits {
        Limits {
            per_second: per_second.max(1),
            dialog_reserve: (per_second / 5).max(1),
            ..Limits::default()
        }
    }

    fn window(&self) -> i64 {
        millis(Duration::from_secs(1) + self.window_margin)
    }

    fn chat_interval(&self) -> i64 {
        millis(self.per_chat + self.chat_margin)
    }

    /// How long a send matters to later decisions: older ones can be forgotten.
    pub fn memory(&self) -> Duration {
        (Duration::from_secs(1) + self.window_margin)
            .max(self.per_chat + self.chat_margin)
            .max(self.dialog_quiet)
    }
}

/// A send that went out, at `at` milliseconds on the deciding clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub at: i64,
    pub chat: i64,
    pub lane: Lane,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Now,
    /// Not before `until`. `by_chat`: only this chat is held back (others may go sooner).
    Wait {
        until: i64,
        by_chat: bool,
    },
}

/// Whether a send to `chat` in `lane` may go at `now`. `recent`: the sends of the last
/// [`Limits::memory`], oldest first; `dialog_waiting`: a dialog answer of this process is
/// waiting for its turn.
pub fn turn(
    limits: &Limits,
    recent: &[Sent],
    chat: i64,
    lane: Lane,
    now: i64,
    dialog_waiting: bool,
) -> Turn {
    let window = limits.window();
    let in_window: Vec<i64> = recent
        .iter()
        .map(|sent| sent.at)
        .filter(|at| now - at < window)
        .collect();
    let people_talking = dialog_waiting
        || recent
            .iter()
            .any(|sent| sent.lane == Lane::Dialog && now - sent.at < millis(limits.dialog_quiet));
    let cap = match lane {
        Lane::Dialog => limits.per_second,
        Lane::Bulk if people_talking => limits.per_second.saturating_sub(limits.dialog_reserve),
        Lane::Bulk => limits.per_second.saturating_sub(1),
    }
    .max(1);
    let mut until = now;
    if in_window.len() >= cap {
        // The send that must leave the window before this one may go.
        until = until.max(in_window[in_window.len() - cap] + window);
    }
    if lane == Lane::Bulk && dialog_waiting {
        // A person is waiting for an answer: look again shortly.
        until = until.max(now + 10);
    }
    let window_ready = until;
    if let Some(last) = recent
        .iter()
        .filter(|sent| sent.chat == chat)
        .map(|sent| sent.at)
        .max()
    {
        until = until.max(last + limits.chat_interval());
    }
    if until <= now {
        Turn::Now
    } else {
        Turn::Wait {
            until,
            by_chat: until > window_ready,
        }
    }
}

/// What a budget shared by several processes gives a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedTurn {
    /// The send is counted at `at`: now, or, for a dialog answer held back only by its own
    /// chat, the chat's next free moment, reserved so that no delivery from another process
    /// takes it first. Send at `at`.
    At(i64),
    /// Ask again at `until`. `by_chat`: only this chat is held back.
    Wait { until: i64, by_chat: bool },
}

/// [`turn`] for a budget that several processes share: they cannot see each other's
/// waiting answers, so a person's answer keeps its place in its chat by reserving it.
pub fn shared_turn(
    limits: &Limits,
    recent: &[Sent],
    chat: i64,
    lane: Lane,
    now: i64,
    dialog_waiting: bool,
) -> SharedTurn {
    match turn(limits, recent, chat, lane, now, dialog_waiting) {
        Turn::Now => SharedTurn::At(now),
        Turn::Wait {
            until,
            by_chat: true,
        } if lane == Lane::Dialog => SharedTurn::At(until),
        Turn::Wait { until, by_chat } => SharedTurn::Wait { until, by_chat },
    }
}

/// [`shared_turn`] for several sends to `chats` asked together, in that order: each send
/// granted counts against those after it, as if they had asked one by one at `now`.
pub fn shared_turns(
    limits: &Limits,
    recent: &[Sent],
    chats: &[i64],
    lane: Lane,
    now: i64,
    dialog_waiting: bool,
) -> Vec<SharedTurn> {
    let mut recent = recent.to_vec();
    chats
        .iter()
        .map(|&chat| {
            let turn = shared_turn(limits, &recent, chat, lane, now, dialog_waiting);
            if let SharedTurn::At(at) = turn {
                // A reserved moment may lie ahead of sends already granted: keep the order.
                let place = recent.partition_point(|sent| sent.at <= at);
                recent.insert(place, Sent { at, chat, lane });
            }
            turn
        })
        .collect()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(at: i64, chat: i64, lane: Lane) -> Sent {
        Sent { at, chat, lane }
    }

    #[test]
    fn sends_asked_together_get_what_they_would_one_by_one() {
        let limits = Limits::default();
        let recent = vec![sent(0, 1, Lane::Bulk), sent(500, 2, Lane::Dialog)];
        let chats: Vec<i64> = vec![1, 3, 3, 4];
        let together = shared_turns(&limits, &recent, &chats, Lane::Bulk, 600, false);

        let mut one_by_one = Vec::new();
        let mut seen = recent.clone();
        for &chat in &chats {
            let turn = shared_turn(&limits, &seen, chat, Lane::Bulk, 600, false);
            if let SharedTurn::At(at) = turn {
                seen.push(sent(at, chat, Lane::Bulk));
            }
            one_by_one.push(turn);
        }
        assert_eq!(together, one_by_one);
        // Chat 1 spoke 600 ms ago and chat 3's second message follows its first.
        assert_eq!(
            together,
            [
                SharedTurn::Wait {
                    until: 1100,
                    by_chat: true
                },
                SharedTurn::At(600),
                SharedTurn::Wait {
                    until: 1700,
                    by_chat: true
                },
                SharedTurn::At(600),
            ]
        );
    }

    #[test]
    fn a_batch_never_grants_more_than_the_window_holds() {
        let limits = Limits::default();
        let chats: Vec<i64> = (0..40).collect();
        let turns = shared_turns(&limits, &[], &chats, Lane::Bulk, 0, false);
        let granted = turns
            .iter()
            .filter(|turn| matches!(turn, SharedTurn::At(_)))
            .count();
        // Quiet dialog: the bulk lane may take all but one send of the second.
        assert_eq!(granted, 29);
        assert!(turns[29..]
            .iter()
            .all(|turn| matches!(turn, SharedTurn::Wait { by_chat: false, .. })));
    }

    #[test]
    fn a_reserved_dialog_moment_counts_for_the_answers_after_it() {
        let limits = Limits::default();
        let recent = vec![sent(0, 7, Lane::Dialog)];
        let turns = shared_turns(&limits, &recent, &[7, 7], Lane::Dialog, 100, false);
        assert_eq!(turns, [SharedTurn::At(1100), SharedTurn::At(2200)]);
    }

    /// Grants `sends` (chat, lane) in order, each at the first moment it may go, and
    /// returns when each went.
    fn schedule(limits: &Limits, sends: &[(i64, Lane)]) -> Vec<i64> {
        let mut recent: Vec<Sent> = Vec::new();
        let mut now = 0;
        let mut times = Vec::new();
        for &(chat, lane) in sends {
            loop {
                match turn(limits, &recent, chat, lane, now, false) {
                    Turn::Now => break,
                    Turn::Wait { until, .. } => now = until,
                }
            }
            recent.push(sent(now, chat, lane));
            times.push(now);
        }
        times
    }

    #[test]
    fn with_nobody_talking_deliveries_leave_one_send_a_second() {
        let bulk: Vec<_> = (0..40).map(|chat| (chat, Lane::Bulk)).collect();
        let times = schedule(&Limits::default(), &bulk);
        assert_eq!(times.iter().filter(|t| **t == 0).count(), 29, "{times:?}");
        // A person who starts talking is answered in the same instant.
        let recent: Vec<_> = (0..29).map(|chat| sent(0, chat, Lane::Bulk)).collect();
        assert_eq!(
            turn(&Limits::default(), &recent, 100, Lane::Dialog, 0, false),
            Turn::Now
        );
    }

    #[test]
    fn while_people_talk_deliveries_leave_the_dialog_its_reserve() {
        let limits = Limits::default();
        let mut recent = vec![sent(0, 500, Lane::Dialog)];
        recent.extend((0..23).map(|chat| sent(10, chat, Lane::Bulk)));
        // 24 in the window: the bulk lane's share while the dialog is active.
        assert_eq!(
            turn(&limits, &recent, 99, Lane::Bulk, 20, false),
            Turn::Wait {
                until: 1020,
                by_chat: false
            }
        );
        assert_eq!(
            turn(&limits, &recent, 99, Lane::Dialog, 20, false),
            Turn::Now
        );
        // Two seconds after the last answer, the reserve is released.
        let mut later = vec![sent(0, 500, Lane::Dialog)];
        later.extend((0..28).map(|chat| sent(2000, chat, Lane::Bulk)));
        assert_eq!(
            turn(&limits, &later, 99, Lane::Bulk, 2000, false),
            Turn::Now
        );
    }

    #[test]
    fn the_default_rate_is_telegrams_with_a_fifth_for_the_dialog() {
        let limits = Limits::with_rate(30);
        assert_eq!((limits.per_second, limits.dialog_reserve), (30, 6));
        assert_eq!(Limits::with_rate(1000).dialog_reserve, 200);
        assert_eq!(Limits::with_rate(1).dialog_reserve, 1);
    }

    #[test]
    fn a_shared_answer_reserves_its_chats_next_moment_and_a_delivery_does_not() {
        let limits = Limits::default();
        let recent = [sent(0, 7, Lane::Bulk)];
        assert_eq!(
            shared_turn(&limits, &recent, 7, Lane::Dialog, 500, false),
            SharedTurn::At(1100)
        );
        assert_eq!(
            shared_turn(&limits, &recent, 7, Lane::Bulk, 500, false),
            SharedTurn::Wait {
                until: 1100,
                by_chat: true
            }
        );
        assert_eq!(
            shared_turn(&limits, &recent, 8, Lane::Bulk, 500, false),
            SharedTurn::At(500)
        );
    }

    #[test]
    fn a_waiting_dialog_answer_holds_deliveries_back() {
        let turn = turn(&Limits::default(), &[], 1, Lane::Bulk, 0, true);
        assert_eq!(
            turn,
            Turn::Wait {
                until: 10,
                by_chat: false
            }
        );
    }

    #[test]
    fn a_busy_chat_holds_back_only_that_chat() {
        let limits = Limits::default();
        let recent = [sent(0, 7, Lane::Bulk)];
        assert_eq!(
            turn(&limits, &recent, 7, Lane::Bulk, 500, false),
            Turn::Wait {
                until: 1100,
                by_chat: true
            }
        );
        assert_eq!(turn(&limits, &recent, 8, Lane::Bulk, 500, false), Turn::Now);
    }
}
