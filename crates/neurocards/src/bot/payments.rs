//! Buying credits with Telegram Stars (the only currency Telegram allows for digital goods):
//! the packages, their invoices, the checkout, the receipt, refunds Telegram tells us about,
//! and `/paysupport`, which Telegram requires of every bot that takes payments.

use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, PreCheckoutQuery, RefundedPayment,
    SuccessfulPayment,
};

use super::reply::{say, say_with};
use super::{Ctx, HandlerResult, TgBot};
use crate::domain::callback::Callback;
use crate::domain::UserId;
use crate::packages::{check_checkout, CheckoutRefusal, InvoicePayload, Package};
use crate::store::{NewPayment, StoreError};
use crate::texts::{credits, text, Lang};

/// How many of a user's payments `/paysupport` lists.
const SUPPORT_PAYMENTS: i64 = 10;

/// The buy screen: the balance and one button per package.
pub async fn show_packages(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: i64,
    lang: Lang,
) -> HandlerResult {
    let balance = ctx.store.balance(UserId(user)).await?;
    let intro = text(
        lang,
        "buy.text",
        &[
            ("balance", &credits(lang, balance)),
            ("price", &ctx.cheapest_price_text(lang)),
        ],
    );
    let rows = ctx
        .packages
        .all()
        .iter()
        .map(|package| {
            vec![InlineKeyboardButton::callback(
                package_label(lang, package),
                Callback::Package(package.id.clone()).encode(),
            )]
        })
        .collect::<Vec<_>>();
    say_with(bot, ctx, chat, &intro, InlineKeyboardMarkup::new(rows)).await?;
    Ok(())
}

fn package_label(lang: Lang, package: &Package) -> String {
    let label = text(
        lang,
        "buy.button",
        &[
            ("credits", &credits(lang, package.credits)),
            ("stars", &package.stars),
        ],
    );
    match package.bonus(lang) {
        Some(bonus) => format!("{label} · {bonus}"),
        None => label,
    }
}

/// An invoice in Stars for `package`, payable by `user` only.
pub async fn send_invoice(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: i64,
    lang: Lang,
    package: &Package,
) -> HandlerResult {
    let amount = credits(lang, package.credits);
    let title = text(lang, "buy.invoice_title", &[("credits", &amount)]);
    let description = text(
        lang,
        "buy.invoice_description",
        &[
            ("credits", &amount),
            ("price", &ctx.cheapest_price_text(lang)),
        ],
    );
    let payload = InvoicePayload {
        package: package.id.clone(),
        user,
    };
    let stars = u32::try_from(package.stars).unwrap_or(u32::MAX);
    ctx.telegram.dialog_turn(chat.0).await;
    // Stars invoices take one price and no provider token.
    bot.send_invoice(
        chat,
        title.clone(),
        description,
        payload.encode(),
        "XTR",
        vec![LabeledPrice::new(title, stars)],
    )
    .await?;
    Ok(())
}

/// Telegram cancels a payment whose checkout is not answered within 10 s: this runs beside
/// the chats' own updates (a checkout has no chat) and reads nothing but the packages.
pub async fn on_pre_checkout(bot: TgBot, ctx: Ctx, query: PreCheckoutQuery) -> HandlerResult {
    let lang = Lang::from_code(query.from.language_code.as_deref().unwrap_or("ru"));
    let payer = i64::try_from(query.from.id.0).unwrap_or(i64::MAX);
    let verdict = check_checkout(
        &ctx.packages,
        &query.invoice_payload,
        payer,
        &query.currency,
        i64::from(query.total_amount),
    );
    let answer = bot.answer_pre_checkout_query(query.id.clone(), verdict.is_ok());
    match verdict {
        Ok(package) => {
            tracing::info!(user = payer, package = %package.id, stars = query.total_amount, "checkout accepted");
            answer.await?;
        }
        Err(refusal) => {
            tracing::warn!(user = payer, payload = %query.invoice_payload, ?refusal, "checkout refused");
            answer.error_message(refusal_text(lang, &refusal)).await?;
        }
    }
    Ok(())
}

fn refusal_text(lang: Lang, refusal: &CheckoutRefusal) -> String {
    match refusal {
        CheckoutRefusal::Malformed => text(lang, "buy.refused_malformed", &[]),
        CheckoutRefusal::OtherUser => text(lang, "buy.refused_other_user", &[]),
        CheckoutRefusal::Retired => text(lang, "buy.refused_retired", &[]),
        CheckoutRefusal::PriceChanged { now } => text(lang, "buy.refused_price", &[("stars", now)]),
    }
}

/// The money has moved: record it and credit the package, once per charge id, whatever
/// Telegram repeats.
pub async fn on_successful_payment(
    bot: TgBot,
    ctx: Ctx,
    message: Message,
    payment: SuccessfulPayment,
) -> HandlerResult {
    let chat = message.chat.id;
    let lang = message
        .from
        .as_ref()
        .and_then(|user| user.language_code.as_deref())
        .map_or(Lang::Ru, Lang::from_code);
    let charge_id = payment.telegram_payment_charge_id.0.clone();
    let stars = i64::from(payment.total_amount);
    let payload = InvoicePayload::parse(&payment.invoice_payload);
    let package = payload
        .as_ref()
        .and_then(|payload| ctx.packages.get(&payload.package));
    let (Some(payload), Some(package)) = (payload.as_ref(), package) else {
        // Paid, but for nothing we sell now (the package was retired between the checkout
        // and the payment): the operator credits or refunds it by hand.
        tracing::error!(charge_id = %charge_id, payload = %payment.invoice_payload, stars, "a payment for an unknown package: credit or refund it by hand");
        let reply = text(lang, "buy.unknown_package", &[("charge_id", &charge_id)]);
        return say(&bot, &ctx, chat, &reply).await;
    };
    let recorded = ctx
        .store
        .record_payment(&NewPayment {
            charge_id: &charge_id,
            user: UserId(payload.user),
            package_id: &package.id,
            stars,
            credits: package.credits,
        })
        .await?;
    // The receipt shows the balance the purchase made; the invite bonus follows on its own.
    let bought = recorded
        .referral
        .map_or(recorded.balance, |bonus| recorded.balance - bonus.credits);
    let balance = credits(lang, bought);
    if recorded.credited_now {
        metrics::counter!("neurocards_payments_total").increment(1);
        metrics::counter!("neurocards_stars_total").increment(u64::try_from(stars).unwrap_or(0));
    }
    let reply = if recorded.credited_now {
        tracing::info!(user = payload.user, charge_id = %charge_id, stars, credits = package.credits, "payment credited");
        text(
            lang,
            "buy.receipt",
            &[
                ("stars", &stars),
                ("credits", &credits(lang, package.credits)),
                ("balance", &balance),
                ("charge_id", &charge_id),
            ],
        )
    } else {
        text(lang, "buy.already_credited", &[("balance", &balance)])
    };
    say(&bot, &ctx, chat, &reply).await?;
    if let Some(bonus) = recorded.referral {
        tell_referral_bonus(&bot, &ctx, chat, lang, bonus).await?;
    }
    Ok(())
}

/// The invite bonus a first payment brought, told to both sides, each in their language.
async fn tell_referral_bonus(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    lang: Lang,
    bonus: crate::store::ReferralBonus,
) -> HandlerResult {
    tracing::info!(inviter = %bonus.inviter, credits = bonus.credits, "the referral bonus went to both sides");
    let invited = text(
        lang,
        "invite.rewarded",
        &[
            ("bonus", &credits(lang, bonus.credits)),
            ("balance", &credits(lang, bonus.balance)),
        ],
    );
    say(bot, ctx, chat, &invited).await?;
    let inviter_lang = ctx.store.language_of(bonus.inviter).await;
    let inviter = text(
        inviter_lang,
        "invite.friend_paid",
        &[
            ("bonus", &credits(inviter_lang, bonus.credits)),
            ("balance", &credits(inviter_lang, bonus.inviter_balance)),
        ],
    );
    say(bot, ctx, ChatId(bonus.inviter.0), &inviter).await
}

/// Telegram refunded a payment (through `refundStarPayment` or on its own): take the
/// credits back, once.
pub async fn on_refunded_payment(
    bot: TgBot,
    ctx: Ctx,
    message: Message,
    refunded: RefundedPayment,
) -> HandlerResult {
    let lang = message
        .from
        .as_ref()
        .and_then(|user| user.language_code.as_deref())
        .map_or(Lang::Ru, Lang::from_code);
    let charge_id = refunded.telegram_payment_charge_id.0.clone();
    let user = message
        .from
        .as_ref()
        .map_or(UserId(message.chat.id.0), |user| {
            UserId(i64::try_from(user.id.0).unwrap_or(i64::MAX))
        });
    let stars = i64::from(refunded.total_amount);
    let outcome = match ctx
        .billing
        .record_telegram_refund(&charge_id, user, stars)
        .await
    {
        Ok(outcome) => outcome,
        Err(StoreError::UnknownPayment(_)) => {
            tracing::warn!(charge_id = %charge_id, "Telegram refunded a payment we never recorded");
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    if !outcome.recorded_now {
        return Ok(());
    }
    tracing::info!(charge_id = %charge_id, taken_back = outcome.taken_back, "payment refund recorded");
    let reply = text(
        lang,
        "buy.refunded",
        &[
            ("charge_id", &charge_id),
            ("stars", &refunded.total_amount),
            ("credits", &credits(lang, outcome.taken_back)),
            ("balance", &credits(lang, outcome.balance)),
        ],
    );
    say(&bot, &ctx, message.chat.id, &reply).await
}

/// `/paysupport`: the user's payments with their ids, and whom to write to.
pub async fn pay_support(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: i64,
    lang: Lang,
) -> HandlerResult {
    let payments = ctx
        .store
        .payments_of(UserId(user), SUPPORT_PAYMENTS)
        .await?;
    let list = if payments.is_empty() {
        text(lang, "paysupport.none", &[])
    } else {
        payments
            .iter()
            .map(|payment| {
                let date = utc_date(payment.created_at);
                let refunded = if payment.refunded_at.is_some() {
                    text(lang, "paysupport.refunded", &[])
                } else {
                    String::new()
                };
                text(
                    lang,
                    "paysupport.line",
                    &[
                        ("date", &date),
                        ("stars", &payment.stars),
                        ("credits", &credits(lang, payment.credits)),
                        ("charge_id", &payment.charge_id),
                        ("refunded", &refunded),
                    ],
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let contact = match &ctx.support_contact {
        Some(contact) => text(lang, "paysupport.contact", &[("contact", contact)]),
        None => text(lang, "paysupport.no_contact", &[("user_id", &user)]),
    };
    let reply = text(
        lang,
        "paysupport.text",
        &[("payments", &list), ("contact", &contact)],
    );
    say(bot, ctx, chat, &reply).await
}

/// "2026-11-30 14:05 UTC".
pub fn utc_date(millis: i64) -> String {
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    let iso = humantime::format_rfc3339_seconds(at).to_string();
    // 2026-11-30T14:05:09Z
    match (iso.get(..10), iso.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => iso,
    }
}
