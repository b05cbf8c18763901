//! The data behind inline buttons: compact (Telegram allows 64 bytes) and parsed strictly,
//! so a forged or malformed button is recognised and changes nothing.
//!
//! Buttons of one step of the dialog carry that step's nonce: a button from an older message
//! no longer matches the dialog and is refused as out of date.

use super::{JobId, Lang, OrderId};

/// The video counts a user can order.
pub const COUNTS: [i64; 3] = [1, 3, 5];

const NONCE_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuItem {
    Create,
    Balance,
    Buy,
    Help,
    /// "My videos": the first page of the user's orders.
    History,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    Menu(MenuItem),
    /// "Main menu" under an order's summary.
    MainMenu,
    /// "Make more" under an order's summary: same photo, back to the templates.
    MakeMore(OrderId),
    /// "Send again" under a summary, for a video whose delivery Telegram did not confirm.
    SendAgain(JobId),
    Template {
        nonce: String,
        id: String,
    },
    OwnPrompt {
        nonce: String,
    },
    /// A model and one of its options, on the choice screen.
    Choice {
        nonce: String,
        model: String,
        option: String,
    },
    Count {
        nonce: String,
        count: i64,
    },
    /// A credit package on the buy screen: sends its invoice.
    Package(String),
    /// `/language`: the language picked.
    Language(Lang),
    /// A page of "My videos", from the `offset`-th order, newest first.
    HistoryPage(i64),
    /// An order opened from "My videos": its videos are sent again.
    OpenOrder(OrderId),
    /// "Repeat" under a summary or in "My videos": the same order again, after its price.
    Repeat(OrderId),
    /// "Cancel" under "order accepted": the videos that have not reached KIE yet.
    CancelOrder(OrderId),
    /// An admin sends the broadcast whose test they see.
    StartBroadcast(i64),
    /// An admin drops the broadcast whose test they see.
    DropBroadcast(i64),
}

impl Callback {
    pub fn encode(&self) -> String {
        match self {
            Callback::Menu(MenuItem::Create) => "m:create".to_owned(),
            Callback::Menu(MenuItem::Balance) => "m:balance".to_owned(),
            Callback::Menu(MenuItem::Buy) => "m:buy".to_owned(),
            Callback::Menu(MenuItem::Help) => "m:help".to_owned(),
            Callback::Menu(MenuItem::History) => "m:history".to_owned(),
            Callback::MainMenu => "menu".to_owned(),
            Callback::MakeMore(order) => format!("more:{order}"),
            Callback::SendAgain(job) => format!("again:{job}"),
            Callback::Template { nonce, id } => format!("t:{nonce}:{id}"),
            Callback::OwnPrompt { nonce } => format!("o:{nonce}"),
            Callback::Choice {
                nonce,
                model,
                option,
            } => format!("ch:{nonce}:{model}:{option}"),
            Callback::Count { nonce, count } => format!("c:{nonce}:{count}"),
            Callback::Package(id) => format!("pkg:{id}"),
            Callback::Language(lang) => format!("lang:{}", lang.code()),
            Callback::HistoryPage(offset) => format!("h:{offset}"),
            Callback::OpenOrder(order) => format!("ho:{order}"),
            Callback::Repeat(order) => format!("rp:{order}"),
            Callback::CancelOrder(order) => format!("cx:{order}"),
            Callback::StartBroadcast(id) => format!("bs:{id}"),
            Callback::DropBroadcast(id) => format!("bx:{id}"),
        }
    }

    pub fn decode(data: &str) -> Option<Callback> {
        if data.len() > 64 {
            return None;
        }
        let parts: Vec<&str> = data.split(':').collect();
        match parts.as_slice() {
            ["m", "create"] => Some(Callback::Menu(MenuItem::Create)),
            ["m", "balance"] => Some(Callback::Menu(MenuItem::Balance)),
            ["m", "buy"] => Some(Callback::Menu(MenuItem::Buy)),
            ["m", "help"] => Some(Callback::Menu(MenuItem::Help)),
            ["m", "history"] => Some(Callback::Menu(MenuItem::History)),
            ["h", "0"] => Some(Callback::HistoryPage(0)),
            ["h", offset] => canonical_id(offset).map(Callback::HistoryPage),
            ["ho", id] => canonical_id(id).map(|id| Callback::OpenOrder(OrderId(id))),
            ["rp", id] => canonical_id(id).map(|id| Callback::Repeat(OrderId(id))),
            ["cx", id] => canonical_id(id).map(|id| Callback::CancelOrder(OrderId(id))),
            ["bs", id] => canonical_id(id).map(Callback::StartBroadcast),
            ["bx", id] => canonical_id(id).map(Callback::DropBroadcast),
            ["menu"] => Some(Callback::MainMenu),
            ["more", id] => canonical_id(id).map(|id| Callback::MakeMore(OrderId(id))),
            ["again", id] => canonical_id(id).map(|id| Callback::SendAgain(JobId(id))),
            ["t", nonce, id] if is_nonce(nonce) && is_template_id(id) => Some(Callback::Template {
                nonce: (*nonce).to_owned(),
                id: (*id).to_owned(),
            }),
            ["o", nonce] if is_nonce(nonce) => Some(Callback::OwnPrompt {
                nonce: (*nonce).to_owned(),
            }),
            ["ch", nonce, model, option]
                if is_nonce(nonce) && is_catalogue_id(model, 24) && is_catalogue_id(option, 12) =>
            {
                Some(Callback::Choice {
                    nonce: (*nonce).to_owned(),
                    model: (*model).to_owned(),
                    option: (*option).to_owned(),
                })
            }
            ["c", nonce, count] if is_nonce(nonce) => {
                let count = canonical_id(count).filter(|count| COUNTS.contains(count))?;
                Some(Callback::Count {
                    nonce: (*nonce).to_owned(),
                    count,
                })
            }
            ["pkg", id] if is_catalogue_id(id, 16) => Some(Callback::Package((*id).to_owned())),
            ["lang", "ru"] => Some(Callback::Language(Lang::Ru)),
            ["lang", "en"] => Some(Callback::Language(Lang::En)),
            _ => None,
        }
    }
}

/// A fresh nonce for the buttons of one dialog step.
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..NONCE_LEN].to_owned()
}

/// A positive number written the one canonical way (no sign, no leading zero).
fn canonical_id(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && id.to_string() == text)
}

fn is_nonce(text: &str) -> bool {
    text.len() == NONCE_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_template_id(text: &str) -> bool {
    (1..=24).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The catalogue's model and option ids: like template ids, and dots (`kling-2.6`).
fn is_catalogue_id(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_and_fit_in_64_bytes() {
        let nonce = new_nonce();
        let all = [
            Callback::Menu(MenuItem::Create),
            Callback::Menu(MenuItem::Balance),
            Callback::Menu(MenuItem::Buy),
            Callback::Menu(MenuItem::Help),
            Callback::MainMenu,
            Callback::MakeMore(OrderId(i64::MAX)),
            Callback::SendAgain(JobId(i64::MAX)),
            Callback::Package("p".repeat(16)),
            Callback::Language(Lang::Ru),
            Callback::Language(Lang::En),
            Callback::Menu(MenuItem::History),
            Callback::HistoryPage(0),
            Callback::HistoryPage(i64::MAX),
            Callback::OpenOrder(OrderId(i64::MAX)),
            Callback::Repeat(OrderId(i64::MAX)),
            Callback::CancelOrder(OrderId(i64::MAX)),
            Callback::StartBroadcast(i64::MAX),
            Callback::DropBroadcast(i64::MAX),
            Callback::Template {
                nonce: nonce.clone(),
                id: "x".repeat(24),
            },
            Callback::OwnPrompt {
                nonce: nonce.clone(),
            },
            Callback::Choice {
                nonce: nonce.clone(),
                model: "m".repeat(24),
                option: "o".repeat(12),
            },
            Callback::Count { nonce, count: 5 },
        ];
        for callback in all {
            let data = callback.encode();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Callback::decode(&data), Some(callback));
        }
    }

    #[test]
    fn malformed_or_forged_data_is_refused() {
        for data in [
            "",
            "more:",
            "more:abc",
            "more:-1",
            "more:0",
            "more:+5",
            "more:05",
            "again:",
            "again:-3",
            "again:x",
            "menu:1",
            "x",
            "m:delete",
            "c:0123abcd:2",
            "c:0123abcd:05",
            "c:short:1",
            "c:0123ABCD:1",
            "t:0123abcd:Bad",
            "t:0123abcd:",
            "o:0123abcd:extra",
            "c:0123abcd:1:1",
            "ch:0123abcd:kling-2.6",
            "ch:0123abcd:Kling:5s",
            "ch:0123abcd:kling-2.6:5s:x",
            "ch:0123abcd::5s",
        ] {
            assert_eq!(Callback::decode(data), None, "{data:?}");
        }
        assert_eq!(Callback::decode(&"m:create".repeat(9)), None);
    }
}
