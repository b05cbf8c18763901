//! `/stats` and `/grant` for the admins (`ADMIN_IDS`).

use std::fmt::Write as _;

use teloxide::prelude::*;

use super::input::parse_grant;
use super::reply::say;
use super::{Ctx, HandlerResult, TgBot};
use crate::billing::RefundError;
use crate::cli::admin::{format_keys, format_queue};
use crate::domain::UserId;
use crate::store::StoreError;
use crate::texts::{self, text, Lang};

pub async fn stats(bot: &TgBot, ctx: &Ctx, chat: ChatId, _lang: Lang) -> HandlerResult {
    let now = ctx.store.now_millis();
    let queue = ctx.store.queue_stats().await?;
    let outcomes = ctx.store.outcomes_since(now - 3_600_000).await?;
    let keys = ctx.store.key_health().await?;
    let mut report = format_queue(&queue);
    let _ = writeln!(report, "Last hour:");
    if outcomes.is_empty() {
        let _ = writeln!(report, "  nothing finished");
    }
    for (status, class, jobs) in outcomes {
        let class = class
            .filter(|_| status == "failed")
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let _ = writeln!(report, "  {status}{class}: {jobs}");
    }
    let _ = writeln!(report, "KIE keys:");
    report.push_str(&format_keys(&keys, now));
    report.push_str(&crate::cli::payments::money_figures(&ctx.store).await?);
    let breaches = ctx.store.check_invariants().await?;
    let _ = writeln!(report, "Invariant breaches: {}", breaches.len());
    say(bot, ctx, chat, report.trim_end()).await
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
