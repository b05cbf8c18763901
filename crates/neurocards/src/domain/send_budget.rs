//! Telegram's flood limits for one bot token, as one decision over the sends of the last
//! seconds: about 30 messages per second overall and about one per second in a chat, 429
//! beyond. The same rule serves a process on its own and every process of a deployment
//! through the database (they share one token, so they share its budget).
//!
//! A person waiting on the dialog goes first. While people are talking to the bot (a dialog
//! answer went out in the last `dialog_quiet`, or one is waiting), deliveries and summaries
//! leave `dialog_reserve` sends of each second to the dialog. While nobody is, they may take
//! the whole second but only spread evenly over it (one send every window / rate), so that
//! the window's oldest send always leaves it within one such step: the first answer to
//! someone who starts talking waits at most that (34 ms at Telegram's rate), never a second
//! of deliveries sent in one burst. (Keeping one send of each second free instead cost the
//! deliveries a thirtieth of the rate.)

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

    /// The least time between two bulk sends while nobody talks: the window spread evenly.
    fn bulk_step(&self) -> i64 {
        self.window() / i64::try_from(self.per_second).unwrap_or(i64::MAX)
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
    /// Counted at `at`, at most one pacing step ahead: send then. Deliveries spread over
    /// the second take their moments this way, so that the time between asking and
    /// sending does not add to every step (it cost a tenth of the rate when each send was
    /// only allowed once the step had passed).
    At(i64),
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
        Lane::Bulk if people_talking => limits.per_second.saturating_sub(limits.dialog_reserve),
        Lane::Dialog | Lane::Bulk => limits.per_second,
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
    let chat_ready = recent
        .iter()
        .filter(|sent| sent.chat == chat)
        .map(|sent| sent.at + limits.chat_interval())
        .max()
        .unwrap_or(now);
    until = until.max(chat_ready);
    let paced = match in_window.iter().max() {
        Some(latest) if lane == Lane::Bulk && !people_talking => latest + limits.bulk_step(),
        _ => now,
    };
    if until <= now && paced <= now {
        Turn::Now
    } else if until <= now && paced - now <= limits.bulk_step() && chat_ready <= paced {
        Turn::At(paced)
    } else if until > now {
        Turn::Wait {
            until,
            by_chat: until > window_ready,
        }
    } else {
        // Held back only by the moments already taken more than a step ahead.
        Turn::Wait {
            until: paced - limits.bulk_step(),
            by_chat: false,
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
        Turn::At(at) => SharedTurn::At(at),
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
        let mut recent: Vec<_> = (100..124).map(|chat| sent(0, chat, Lane::Dialog)).collect();
        let turns = shared_turns(&limits, &recent, &chats, Lane::Dialog, 10, false);
        let granted = turns
            .iter()
            .filter(|turn| matches!(turn, SharedTurn::At(_)))
            .count();
        assert_eq!(granted, 6, "24 of 30 already in the window");
        assert!(turns[6..]
            .iter()
            .all(|turn| matches!(turn, SharedTurn::Wait { by_chat: false, .. })));
        // Quiet dialog: deliveries asked together get one send now and the moment a step
        // later; the others ask again when that moment comes.
        recent.clear();
        let turns = shared_turns(&limits, &recent, &chats, Lane::Bulk, 5000, false);
        assert_eq!(turns[..2], [SharedTurn::At(5000), SharedTurn::At(5034)]);
        assert!(turns[2..].iter().all(|turn| *turn
            == SharedTurn::Wait {
                until: 5034,
                by_chat: false
            }));
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
                    Turn::At(at) => {
                        now = at;
                        break;
                    }
                    Turn::Wait { until, .. } => now = until,
                }
            }
            recent.push(sent(now, chat, lane));
            times.push(now);
        }
        times
    }

    #[test]
    fn with_nobody_talking_deliveries_take_the_whole_second_spread_evenly() {
        let limits = Limits::default();
        let bulk: Vec<_> = (0..90).map(|chat| (chat, Lane::Bulk)).collect();
        let times = schedule(&limits, &bulk);
        // 1,020 ms / 30 = 34 ms apart: 30 sends in every window, 29.4 a second.
        assert!(
            times.windows(2).all(|pair| pair[1] - pair[0] == 34),
            "{times:?}"
        );
        for (index, &at) in times.iter().enumerate() {
            let in_window = times[..=index].iter().filter(|t| at - **t < 1020).count();
            assert!(
                in_window <= 30,
                "{in_window} sends in the window ending at {at}"
            );
        }
        // A person who starts talking while the window is full, the next delivery's moment
        // taken already, is answered within two steps.
        let recent: Vec<_> = times[1..31]
            .iter()
            .zip(0..)
            .map(|(&at, chat)| sent(at, chat, Lane::Bulk))
            .collect();
        let now = times[29] + 1;
        match turn(&limits, &recent, 500, Lane::Dialog, now, false) {
            Turn::Wait { until, by_chat } => {
                assert!(!by_chat);
                assert!(until - now <= 68, "the answer waits {} ms", until - now);
            }
            other => panic!("the window is full: {other:?}"),
        }
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
        later.extend((0..28).map(|chat| sent(1000 + 34 * chat, chat, Lane::Bulk)));
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
