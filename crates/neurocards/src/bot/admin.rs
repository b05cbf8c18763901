//! `/stats` and `/grant` for the admins (`ADMIN_IDS`).

use teloxide::prelude::*;

use super::input::parse_grant;
use super::reply::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::billing::RefundError;
use crate::domain::callback::Callback;
use crate::domain::{JobStatus, UserId};
use crate::store::{KeyState, Segment, StoreError};
use crate::texts::{self, text, Lang};

/// `/stats`: the queue, the workers, the last hour, the keys, the money and the invariants,
/// in the admin's language.
pub async fn stats(bot: &TgBot, ctx: &Ctx, chat: ChatId, lang: Lang) -> HandlerResult {
    const DAY: i64 = 24 * 3_600_000;
    let now = ctx.store.now_millis();
    let queue = ctx.store.queue_stats().await?;
    let outcomes = ctx.store.outcomes_since(now - 3_600_000).await?;
    let keys = ctx.store.key_health().await?;
    let retired = ctx.store.unavailable_models().await?.len();
    let today = ctx
        .store
        .payment_totals_since(now - now.rem_euclid(DAY))
        .await?;
    let week = ctx.store.payment_totals_since(now - 7 * DAY).await?;
    let spent = ctx.store.credits_spent_since(now - 7 * DAY).await?;
    let breaches = ctx.store.check_invariants().await?.len();

    let jobs = |wanted: &[JobStatus]| -> i64 {
        queue
            .by_status
            .iter()
            .filter(|(status, _)| wanted.contains(status))
            .map(|(_, jobs)| jobs)
            .sum()
    };
    let mut lines = vec![
        text(lang, "stats.title", &[]),
        text(
            lang,
            "stats.queue",
            &[
                ("queued", &jobs(&[JobStatus::Queued])),
                (
                    "working",
                    &jobs(&[
                        JobStatus::Submitting,
                        JobStatus::Generating,
                        JobStatus::Delivering,
                    ]),
                ),
                ("held", &queue.held),
            ],
        ),
    ];
    if let Some(age) = queue.oldest_queued_age {
        lines.push(text(
            lang,
            "stats.oldest",
            &[("minutes", &(age.as_secs() / 60))],
        ));
    }
    let alive = queue.workers.iter().filter(|worker| worker.alive).count();
    lines.push(text(
        lang,
        "stats.workers",
        &[("alive", &alive), ("total", &queue.workers.len())],
    ));
    let count_of = |wanted: &str| -> i64 {
        outcomes
            .iter()
            .filter(|(status, _, _)| status == wanted)
            .map(|(_, _, jobs)| jobs)
            .sum()
    };
    lines.push(text(
        lang,
        "stats.hour",
        &[
            ("delivered", &count_of("delivered")),
            ("failed", &count_of("failed")),
        ],
    ));
    for (status, class, count) in &outcomes {
        if let (true, Some(class)) = (status == "failed", class) {
            lines.push(text(
                lang,
                "stats.failed_class",
                &[("class", class), ("count", count)],
            ));
        }
    }
    let keys_in = |state: KeyState| keys.iter().filter(|key| key.state == state).count();
    lines.push(text(
        lang,
        "stats.keys",
        &[
            ("healthy", &keys_in(KeyState::Healthy)),
            ("cooling", &keys_in(KeyState::Cooling)),
            ("disabled", &keys_in(KeyState::Disabled)),
        ],
    ));
    lines.push(text(lang, "stats.models", &[("count", &retired)]));
    lines.push(text(
        lang,
        "stats.money",
        &[
            ("today", &today.payments),
            ("today_stars", &today.stars),
            ("week", &week.payments),
            ("week_stars", &week.stars),
            ("refunds", &week.refunds),
        ],
    ));
    lines.push(text(
        lang,
        "stats.credits",
        &[("sold", &week.credits_sold), ("spent", &spent)],
    ));
    lines.push(if breaches == 0 {
        text(lang, "stats.invariants_ok", &[])
    } else {
        text(lang, "stats.invariants_broken", &[("count", &breaches)])
    });
    say(bot, ctx, chat, &lines.join("\n")).await
}

pub async fn grant(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    admin: i64,
    lang: Lang,
    args: &str,
) -> HandlerResult {
    let Some((user, credits)) = parse_grant(args) else {
        return say(bot, ctx, chat, &text(lang, "admin.grant_usage", &[])).await;
    };
    let reason = format!("admin {admin} in the bot");
    match ctx.store.grant(UserId(user), credits, Some(&reason)).await {
        Ok(balance) => {
            let done = text(
                lang,
                "admin.granted",
                &[
                    ("user", &user),
                    ("credits", &format!("{credits:+}")),
                    ("balance", &texts::credits(lang, balance)),
                ],
            );
            say(bot, ctx, chat, &done).await
        }
        Err(err @ (StoreError::UnknownUser(_) | StoreError::InsufficientCredits { .. })) => {
            say(
                bot,
                ctx,
                chat,
                &text(lang, "admin.refused", &[("reason", &err)]),
            )
            .await
        }
        Err(err) => {
            // The admin hears back even then (a grant that would overflow the balance ends
            // here too); the error is logged by the dispatcher.
            let refused = text(lang, "admin.refused", &[("reason", &err)]);
            say(bot, ctx, chat, &refused).await?;
            Err(err.into())
        }
    }
}

/// `/refund <charge_id> [force]`: as `neurocards admin refund-payment`.
pub async fn refund(bot: &TgBot, ctx: &Ctx, chat: ChatId, lang: Lang, args: &str) -> HandlerResult {
    let mut words = args.split_whitespace();
    let (Some(charge_id), force) = (words.next(), words.next()) else {
        return say(bot, ctx, chat, &text(lang, "admin.refund_usage", &[])).await;
    };
    if force.is_some_and(|word| word != "force") || words.next().is_some() {
        return say(bot, ctx, chat, &text(lang, "admin.refund_usage", &[])).await;
    }
    let reply = match ctx.billing.refund(charge_id, force.is_some()).await {
        Ok(done) => crate::cli::payments::format_refund(&done),
        Err(RefundError::Store(err)) => {
            let refused = text(lang, "admin.refused", &[("reason", &err)]);
            say(bot, ctx, chat, &refused).await?;
            return Err(err.into());
        }
        Err(err) => text(lang, "admin.refused", &[("reason", &err)]),
    };
    say(bot, ctx, chat, &reply).await
}

/// `/broadcast [all|paid|active-7d|with-balance] TEXT`: a draft, shown to this admin as the
/// users will see it, with a button to send it to the segment and one to drop it.
pub async fn broadcast(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    lang: Lang,
    args: &str,
) -> HandlerResult {
    let (segment, message) = match args.split_once(char::is_whitespace) {
        Some((first, rest)) if Segment::parse(first).is_some() => (first, rest.trim()),
        _ => ("all", args.trim()),
    };
    let Some(segment) = Segment::parse(segment) else {
        return say(bot, ctx, chat, &text(lang, "admin.broadcast_usage", &[])).await;
    };
    if message.is_empty() || message.chars().count() > 4096 {
        return say(bot, ctx, chat, &text(lang, "admin.broadcast_usage", &[])).await;
    }
    let id = ctx.store.create_broadcast(message, None, segment).await?;
    say(bot, ctx, chat, message).await?;
    let keyboard = teloxide::types::InlineKeyboardMarkup::new(vec![vec![
        teloxide::types::InlineKeyboardButton::callback(
            text(
                lang,
                "admin.broadcast_send",
                &[("segment", &segment.as_str())],
            ),
            Callback::StartBroadcast(id).encode(),
        ),
        teloxide::types::InlineKeyboardButton::callback(
            text(lang, "admin.broadcast_drop", &[]),
            Callback::DropBroadcast(id).encode(),
        ),
    ]]);
    let question = text(lang, "admin.broadcast_test", &[("id", &id)]);
    super::reply::say_with(bot, ctx, chat, &question, keyboard).await?;
    Ok(())
}

/// The admin's answer under a broadcast's test.
pub async fn broadcast_decided(
    ctx: &Ctx,
    lang: Lang,
    id: i64,
    send: bool,
) -> Result<String, StoreError> {
    if send {
        Ok(match ctx.store.start_broadcast(id).await? {
            Some(recipients) => text(
                lang,
                "admin.broadcast_started",
                &[("id", &id), ("recipients", &recipients)],
            ),
            None => text(lang, "admin.broadcast_not_draft", &[("id", &id)]),
        })
    } else {
        Ok(if ctx.store.cancel_broadcast(id).await? {
            text(lang, "admin.broadcast_dropped", &[("id", &id)])
        } else {
            text(lang, "admin.broadcast_not_draft", &[("id", &id)])
        })
    }
}
