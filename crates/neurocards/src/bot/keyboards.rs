//! The inline keyboards the bot shows.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::catalogue::Choice;
use crate::domain::callback::{Callback, MenuItem, COUNTS};
use crate::templates::Template;
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
        vec![
            button(lang, "button.history", Callback::Menu(MenuItem::History)),
            button(lang, "button.help", Callback::Menu(MenuItem::Help)),
        ],
    ])
}

/// "My videos": per order, a button to send its videos again (when it has any) and one to
/// repeat it; then the way to older and newer orders.
pub fn history(
    lang: Lang,
    orders: &[(crate::domain::OrderId, Option<String>)],
    newer: Option<i64>,
    older: Option<i64>,
) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = orders
        .iter()
        .map(|(order, open)| {
            let mut row = Vec::new();
            if let Some(label) = open {
                row.push(InlineKeyboardButton::callback(
                    label.clone(),
                    Callback::OpenOrder(*order).encode(),
                ));
            }
            row.push(InlineKeyboardButton::callback(
                text(lang, "history.repeat", &[("id", order)]),
                Callback::Repeat(*order).encode(),
            ));
            row
        })
        .collect();
    let mut paging = Vec::new();
    if let Some(offset) = newer {
        paging.push(button(lang, "history.newer", Callback::HistoryPage(offset)));
    }
    if let Some(offset) = older {
        paging.push(button(lang, "history.older", Callback::HistoryPage(offset)));
    }
    if !paging.is_empty() {
        rows.push(paging);
    }
    InlineKeyboardMarkup::new(rows)
}

/// Under "order accepted": cancel the videos that have not reached KIE yet.
pub fn cancel_order(lang: Lang, order: crate::domain::OrderId) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(
        lang,
        "button.cancel_order",
        Callback::CancelOrder(order),
    )]])
}

/// "Repeat": one button that places the order, through the count step.
pub fn confirm_repeat(lang: Lang, nonce: &str, count: i64, cost: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        text(lang, "repeat.confirm", &[("cost", &credits(lang, cost))]),
        Callback::Count {
            nonce: nonce.to_owned(),
            count,
        }
        .encode(),
    )]])
}

/// Each language named in itself.
pub fn languages() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback("🇷🇺 Русский", Callback::Language(Lang::Ru).encode()),
        InlineKeyboardButton::callback("🇬🇧 English", Callback::Language(Lang::En).encode()),
    ]])
}

pub fn buy(lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![button(
        lang,
        "button.buy",
        Callback::Menu(MenuItem::Buy),
    )]])
}

/// One button per template that can be made now, then "own prompt".
pub fn templates(lang: Lang, templates: &[&Template], nonce: &str) -> InlineKeyboardMarkup {
    let mut rows: Vec<Vec<InlineKeyboardButton>> = templates
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

/// One button per model option, with its price per video.
pub fn choices(lang: Lang, choices: &[Choice<'_>], nonce: &str) -> InlineKeyboardMarkup {
    let rows = choices
        .iter()
        .map(|choice| {
            vec![InlineKeyboardButton::callback(
                text(
                    lang,
                    "button.choice",
                    &[
                        ("title", &choice.option.title(lang)),
                        ("price", &credits(lang, choice.price())),
                    ],
                ),
                Callback::Choice {
                    nonce: nonce.to_owned(),
                    model: choice.model.id.clone(),
                    option: choice.option.id.clone(),
                }
                .encode(),
            )]
        })
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new(rows)
}

pub fn counts(lang: Lang, nonce: &str, unit_price: i64) -> InlineKeyboardMarkup {
    // At more than a credit a video the total is spelled out: "3 videos × 2 = 6 credits".
    let key = if unit_price > 1 {
        "button.count_priced"
    } else {
        "button.count"
    };
    let row = COUNTS
        .iter()
        .map(|count| {
            InlineKeyboardButton::callback(
                text(
                    lang,
                    key,
                    &[
                        ("videos", &videos(lang, *count)),
                        ("unit", &unit_price),
                        ("price", &credits(lang, count.saturating_mul(unit_price))),
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
