//! Every text a user reads, from the locale files in `locales/` (Russian by default,
//! English for users whose Telegram language is English).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::domain::ErrorClass;
use crate::store::OrderSummary;

pub use crate::domain::Lang;

static RU: LazyLock<HashMap<String, String>> =
    LazyLock::new(|| flatten(include_str!("../locales/ru.toml")));
static EN: LazyLock<HashMap<String, String>> =
    LazyLock::new(|| flatten(include_str!("../locales/en.toml")));

fn flatten(source: &str) -> HashMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, into: &mut HashMap<String, String>) {
        for (key, value) in table {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::String(text) => {
                    into.insert(name, text.clone());
                }
                toml::Value::Table(inner) => walk(&name, inner, into),
                _ => {}
            }
        }
    }
    let mut texts = HashMap::new();
    // The files are part of the binary and checked by tests: a broken one shows as keys.
    if let Ok(table) = source.parse::<toml::Table>() {
        walk("", &table, &mut texts);
    }
    texts
}

/// The text `key` in `lang` with `{name}` placeholders filled; Russian when the English
/// text is missing, the key itself when both are.
pub fn text(lang: Lang, key: &str, args: &[(&str, &(dyn std::fmt::Display + Sync))]) -> String {
    let table = match lang {
        Lang::Ru => &*RU,
        Lang::En => &*EN,
    };
    let mut out = table
        .get(key)
        .or_else(|| RU.get(key))
        .cloned()
        .unwrap_or_else(|| key.to_owned());
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// Which plural form a number takes: English has one and many; Russian has one (1, 21,
/// 101), few (2-4, 22-24) and many (0, 5-20, 25-30, 11-14 whatever comes before).
fn plural_form(lang: Lang, n: i64) -> &'static str {
    let n = n.unsigned_abs();
    match lang {
        Lang::En if n == 1 => "one",
        Lang::En => "many",
        Lang::Ru => match (n % 10, n % 100) {
            (1, hundred) if hundred != 11 => "one",
            (2..=4, hundred) if !(12..=14).contains(&hundred) => "few",
            _ => "many",
        },
    }
}

/// "1 credit", "3 credits" (English); "1 кредит", "3 кредита", "5 кредитов" (Russian).
pub fn credits(lang: Lang, n: i64) -> String {
    let key = format!("unit.credit_{}", plural_form(lang, n));
    text(lang, &key, &[("n", &n)])
}

/// The same after "from": Russian "от" takes the genitive ("от 1 кредита", "от 5 кредитов").
pub fn credits_from(lang: Lang, n: i64) -> String {
    let key = format!("unit.credit_from_{}", plural_form(lang, n));
    text(lang, &key, &[("n", &n)])
}

/// "1 video", "3 videos" (English); "3 видео" (Russian).
pub fn videos(lang: Lang, n: i64) -> String {
    let key = if n == 1 {
        "unit.video_one"
    } else {
        "unit.video_many"
    };
    text(lang, key, &[("n", &n)])
}

pub fn video_caption(lang: Lang, n: i64, total: i64) -> String {
    text(lang, "video.caption", &[("n", &n), ("total", &total)])
}

/// The message that tells the user one video failed, why, and that the credit came back.
pub fn video_failed(lang: Lang, class: ErrorClass, n: i64, total: i64) -> String {
    text(
        lang,
        &format!("failed.{}", class.as_str()),
        &[("n", &n), ("total", &total)],
    )
}

/// The one message that ends an order.
pub fn order_summary(lang: Lang, summary: &OrderSummary, balance: Option<i64>) -> String {
    let mut lines = Vec::new();
    if summary.delivered == 0 {
        lines.push(text(lang, "summary.none_made", &[]));
    }
    lines.push(text(
        lang,
        "summary.done",
        &[
            ("made", &summary.delivered),
            ("total", &summary.video_count),
        ],
    ));
    if summary.refunded_credits > 0 {
        lines.push(text(
            lang,
            "summary.refunded",
            &[("refunded", &summary.refunded_credits)],
        ));
        for (class, count) in &summary.failures {
            let reason = text(
                lang,
                &format!("reason.{}", class.as_str()),
                &[("count", count)],
            );
            lines.push(format!("• {reason}"));
        }
    }
    if !summary.unconfirmed.is_empty() {
        let numbers: Vec<String> = summary
            .unconfirmed
            .iter()
            .map(|(_, seq)| seq.to_string())
            .collect();
        lines.push(text(
            lang,
            "summary.unconfirmed",
            &[("videos", &numbers.join(", "))],
        ));
    }
    if let Some(balance) = balance {
        lines.push(text(
            lang,
            "summary.balance",
            &[("balance", &credits(lang, balance))],
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderId, UserId};

    #[test]
    fn both_languages_have_the_same_texts() {
        let mut ru: Vec<_> = RU.keys().collect();
        let mut en: Vec<_> = EN.keys().collect();
        ru.sort();
        en.sort();
        assert!(ru.len() > 10, "the Russian file parsed: {ru:?}");
        assert_eq!(ru, en);
    }

    #[test]
    fn every_error_class_has_a_message_and_a_reason() {
        for class in ErrorClass::ALL {
            for lang in [Lang::Ru, Lang::En] {
                let message = video_failed(lang, class, 2, 3);
                assert!(!message.starts_with("failed."), "{message}");
                assert!(message.contains('2') && message.contains('3'), "{message}");
                let reason = text(
                    lang,
                    &format!("reason.{}", class.as_str()),
                    &[("count", &1)],
                );
                assert!(!reason.starts_with("reason."), "{reason}");
            }
        }
    }

    #[test]
    fn credits_take_the_right_plural_form_for_every_number() {
        let ru = |n| credits(Lang::Ru, n);
        for (n, word) in [
            (0, "кредитов"),
            (1, "кредит"),
            (2, "кредита"),
            (4, "кредита"),
            (5, "кредитов"),
            (11, "кредитов"),
            (12, "кредитов"),
            (14, "кредитов"),
            (21, "кредит"),
            (22, "кредита"),
            (25, "кредитов"),
            (100, "кредитов"),
            (101, "кредит"),
            (111, "кредитов"),
            (1_000_002, "кредита"),
            (-3, "кредита"),
        ] {
            assert_eq!(ru(n), format!("{n} {word}"));
        }
        assert_eq!(credits_from(Lang::Ru, 1), "1 кредита");
        assert_eq!(credits_from(Lang::Ru, 21), "21 кредита");
        assert_eq!(credits_from(Lang::Ru, 3), "3 кредитов");
        assert_eq!(credits_from(Lang::Ru, 11), "11 кредитов");
        assert_eq!(credits(Lang::En, 1), "1 credit");
        assert_eq!(credits(Lang::En, 2), "2 credits");
        assert_eq!(credits_from(Lang::En, 1), "1 credit");
        // No Russian text ends an abbreviation with a second full stop.
        for value in RU.values() {
            assert!(!value.contains(".."), "{value}");
        }
        for n in 0..200 {
            assert!(!ru(n).contains('.'), "{}", ru(n));
        }
    }

    #[test]
    fn english_is_chosen_only_for_english_speakers() {
        assert_eq!(Lang::from_code("en"), Lang::En);
        assert_eq!(Lang::from_code("en-GB"), Lang::En);
        assert_eq!(Lang::from_code("ru"), Lang::Ru);
        assert_eq!(Lang::from_code("de"), Lang::Ru);
        assert_eq!(Lang::from_code(""), Lang::Ru);
    }

    #[test]
    fn a_summary_says_what_was_made_refunded_and_why() {
        let summary = OrderSummary {
            order_id: OrderId(1),
            user_id: UserId(1),
            chat_id: crate::domain::ChatId(1),
            language: Lang::En,
            video_count: 3,
            delivered: 2,
            failed: 1,
            refunded_credits: 1,
            unconfirmed: Vec::new(),
            failures: vec![(ErrorClass::UserViolation, 1)],
        };
        assert_eq!(
            order_summary(Lang::En, &summary, Some(4)),
            "Videos made: 2 of 3.\nCredits refunded: 1.\n• refused by moderation: 1\nBalance: 4 credits."
        );
        assert!(order_summary(Lang::Ru, &summary, None).starts_with("Готово видео: 2 из 3."));
        assert_eq!(credits(Lang::En, 1), "1 credit");
        assert_eq!(credits(Lang::En, 0), "0 credits");
        assert_eq!(videos(Lang::En, 5), "5 videos");
        assert_eq!(credits(Lang::Ru, 5), "5 кредитов");
    }
}
