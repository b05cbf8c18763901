//! `neurocards admin payments [reconcile]` and `neurocards admin refund-payment`.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::billing::{Billing, Reconciled, RefundError};
use crate::bot::payments::utc_date;
use crate::store::{Payment, PaymentTotals, Store};

#[derive(Debug, Subcommand)]
pub enum PaymentsAction {
    /// Read Telegram's Star transactions and credit every payment (and record every refund)
    /// we have not: the `successful_payment` updates lost during an outage. Safe to repeat.
    Reconcile,
}

const DAY: i64 = 86_400_000;

/// Payments today and in the last 7 days, and credits sold versus spent: for `/stats` and
/// `admin queue`.
pub async fn money_figures(store: &Store) -> Result<String, crate::store::StoreError> {
    let now = store.now_millis();
    let today = store
        .payment_totals_since(now - now.rem_euclid(DAY))
        .await?;
    let week = store.payment_totals_since(now - 7 * DAY).await?;
    let spent = store.credits_spent_since(now - 7 * DAY).await?;
    Ok(format_totals(&today, &week, spent))
}

pub async fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let now = store.now_millis();
    let money = money_figures(store).await.context("summing payments")?;
    let days = store
        .payments_by_day(now - 14 * DAY)
        .await
        .context("summing payments by day")?;
    let recent = store
        .recent_payments(20)
        .await
        .context("reading the payments")?;
    print!("{}", format_payments(money, &days, &recent));
    Ok(ExitCode::SUCCESS)
}

pub fn format_totals(today: &PaymentTotals, week: &PaymentTotals, spent_week: i64) -> String {
    format!(
        "Payments today: {} ({} Stars, {} refunded); last 7 days: {} ({} Stars, {} refunded).\n\
         Credits in the last 7 days: {} sold, {} spent on videos.\n",
        today.payments,
        today.stars,
        today.refunds,
        week.payments,
        week.stars,
        week.refunds,
        week.credits_sold,
        spent_week
    )
}

fn format_payments(money: String, days: &[(i64, i64, i64, i64)], recent: &[Payment]) -> String {
    let mut out = money;
    let _ = writeln!(out, "Stars earned per day (UTC, refunds deducted):");
    if days.is_empty() {
        let _ = writeln!(out, "  none in the last 14 days");
    }
    for (day, payments, stars, refunded) in days {
        let date = utc_date(day * DAY);
        let _ = writeln!(
            out,
            "  {}  {payments:>4} payments  {:>7} Stars",
            date.get(..10).unwrap_or(&date),
            stars - refunded
        );
    }
    let _ = writeln!(out, "Latest payments:");
    if recent.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for payment in recent {
        let refund = match (payment.refunded_at, payment.refunded_credits) {
            (Some(at), taken) => format!(
                "  REFUNDED {} ({} credits taken back)",
                utc_date(at),
                taken.unwrap_or(0)
            ),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}  user {}  {} Stars  {} credits ({})  {}{refund}",
            utc_date(payment.created_at),
            payment.user,
            payment.stars,
            payment.credits,
            payment.package_id,
            payment.charge_id
        );
    }
    out
}

pub async fn reconcile(billing: &Billing) -> anyhow::Result<ExitCode> {
    let report = billing
        .reconcile()
        .await
        .context("reconciling with Telegram's Star transactions")?;
    print!("{}", format_reconciled(&report));
    Ok(if report.unmatched.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn format_reconciled(report: &Reconciled) -> String {
    let mut out = format!(
        "Read {} Star transactions from Telegram.\n",
        report.transactions_read
    );
    if report.credited.is_empty() && report.refunds_recorded.is_empty() {
        out.push_str("Every payment and refund was already recorded.\n");
    }
    for charge in &report.credited {
        let _ = writeln!(out, "Credited a missed payment: {charge}");
    }
    for charge in &report.refunds_recorded {
        let _ = writeln!(out, "Recorded a missed refund: {charge}");
    }
    for charge in &report.unmatched {
        let _ = writeln!(
            out,
            "NOT CREDITED (no package of ours matches its invoice): {charge}; credit it with \
             `admin grant` or refund it"
        );
    }
    out
}

pub async fn refund(billing: &Billing, charge_id: &str, force: bool) -> anyhow::Result<ExitCode> {
    match billing.refund(charge_id, force).await {
        Ok(done) => {
            println!("{}", format_refund(&done));
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (RefundError::Unknown(_)
            | RefundError::AlreadyRefunded(_)
            | RefundError::Spent { .. }
            | RefundError::Telegram(_)),
        ) => {
            eprintln!("Refused: {err}. Nothing was changed.");
            Ok(ExitCode::FAILURE)
        }
        Err(err) => Err(err).context("refunding the payment"),
    }
}

pub fn format_refund(done: &crate::billing::RefundDone) -> String {
    let short = done.credits - done.recorded.taken_back;
    let mut out = format!(
        "Refunded {} Stars to user {}; {} credits taken back, balance now {}.",
        done.stars, done.user, done.recorded.taken_back, done.recorded.balance
    );
    if short > 0 {
        let _ = write!(
            out,
            " The buyer had spent {short} of the {} credits: only what was left was taken.",
            done.credits
        );
    }
    out
}
