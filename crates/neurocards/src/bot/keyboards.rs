//! The inline keyboards the bot shows.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::domain::callback::{Callback, MenuItem, COUNTS};
use crate::templates::Templates;
use crate::texts::{credits, text, videos, Lang};

fn button(lang: Lang, key: &str, callback: Callback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text(lang, key, &[]), callback.encode())
}

pub fn main_menu(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![button(
            lang,
            "button.create",
            Callback::Menu(MenuItem::Create),
        )],
        vec![
            button(lang, "button.balance", Callback::Menu(MenuItem::Balance)),
            button(lang, "button.buy", Callback::Menu(MenuItem::Buy)),
        ],
        vec![button(lang, "button.help", Callback::Menu(MenuItem::Help))],
    ])
}

pub fn buy(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(
        lang,
        "button.buy",
        Callback::Menu(MenuItem::Buy),
    )]])
}

/// One button per template, then "own prompt".
pub fn templates(lang: Lang, templates: &Templates, nonce: &str) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = templates
        .all()
        .iter()
        .map(|template| {
            vec![InlineKeyboardButton::callback(
                template.title(lang),
                Callback::Template {
                    nonce: nonce.to_owned(),
                    id: template.id.clone(),
                }
                .encode(),
            )]
        })
        .collect();
    rows.push(vec![button(
        lang,
        "button.own_prompt",
        Callback::OwnPrompt {
            nonce: nonce.to_owned(),
        },
    )]);
    InlineKeyboardMarkup::new(rows)
}

pub fn counts(lang: Lang, nonce: &str, unit_price: i64) -> InlineKeyboardMarkup {
    let row = COUNTS
        .iter()
        .map(|count| {
            InlineKeyboardButton::callback(
                text(
                    lang,
                    "button.count",
                    &[
                        ("videos", &videos(lang, *count)),
                        ("price", &credits(lang, count * unit_price)),
                    ],
                ),
                Callback::Count {
                    nonce: nonce.to_owned(),
                    count: *count,
                }
                .encode(),
            )
        })
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new(vec![row])
}
