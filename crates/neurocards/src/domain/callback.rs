//! The data behind inline buttons: compact (Telegram allows 64 bytes) and parsed strictly,
//! so a forged or malformed button is recognised and changes nothing.

use super::OrderId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    /// "Make more" under an order's summary: same photo, back to the templates.
    MakeMore(OrderId),
    MainMenu,
}

impl Callback {
    pub fn encode(self) -> String {
        match self {
            Callback::MakeMore(order) => format!("more:{order}"),
            Callback::MainMenu => "menu".to_owned(),
        }
    }

    pub fn decode(data: &str) -> Option<Callback> {
        match data.split_once(':') {
            Some(("more", id)) => id
                .parse::<i64>()
                .ok()
                .filter(|parsed| *parsed > 0 && parsed.to_string() == id)
                .map(|id| Callback::MakeMore(OrderId(id))),
            None if data == "menu" => Some(Callback::MainMenu),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_and_fit_in_64_bytes() {
        for callback in [Callback::MakeMore(OrderId(i64::MAX)), Callback::MainMenu] {
            let data = callback.encode();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Callback::decode(&data), Some(callback));
        }
    }

    #[test]
    fn malformed_data_is_refused() {
        for data in [
            "", "more:", "more:abc", "more:-1", "more:0", "more:+5", "more:05", "menu:1", "x",
        ] {
            assert_eq!(Callback::decode(data), None, "{data:?}");
        }
    }
}
