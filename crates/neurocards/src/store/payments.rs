//! Telegram Stars payments: each credited exactly once, keyed on Telegram's charge id (a
//! repeated `successful_payment`, or reconciliation finding one already recorded, credits
//! nothing), and refunds that take the credits back at most once.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::{apply_credit, LedgerRefs};
use super::{Engine, ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{LedgerKind, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment<'a> {
    pub charge_id: &'a str,
    pub user: UserId,
    pub package_id: &'a str,
    pub stars: i64,
    pub credits: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub charge_id: String,
    pub user: UserId,
    pub package_id: String,
    pub stars: i64,
    pub credits: i64,
    pub created_at: Millis,
    pub refunded_at: Option<Millis>,
    /// The credits the refund took back (fewer than bought when a forced refund found some
    /// spent).
    pub refunded_credits: Option<i64>,
}

/// The outcome of recording a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCredit {
    /// False when the charge was already recorded: nothing was credited this time.
    pub credited_now: bool,
    pub balance: i64,
    /// This was the first payment of a user someone invited: both got the bonus now.
    pub referral: Option<super::ReferralBonus>,
}

/// The outcome of recording a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentRefund {
    /// False when the refund was already recorded: nothing was taken this time.
    pub recorded_now: bool,
    pub taken_back: i64,
    pub balance: i64,
}

/// Totals of payments over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaymentTotals {
    pub payments: i64,
    pub stars: i64,
    pub credits_sold: i64,
    pub refunds: i64,
    pub stars_refunded: i64,
}

/// The columns [`payment_from_row`] reads, as a literal for `concat!` (queries stay
/// static strings).
macro_rules! payment_columns {
    () => {
        "charge_id, user_id, package_id, stars, credits, created_at, refunded_at, refunded_credits"
    };
}

impl Store {
    /// Records a payment and credits its package, in one transaction. A charge id already
    /// recorded credits nothing and says so.
    pub async fn record_payment(
        &self,
        payment: &NewPayment<'_>,
    ) -> Result<PaymentCredit, StoreError> {
        const CONTEXT: &str = "recording a payment";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        let inserted = sqlx::query(
            "INSERT INTO payments (charge_id, user_id, package_id, stars, credits, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (charge_id) DO NOTHING",
        )
        .bind(payment.charge_id)
        .bind(payment.user.0)
        .bind(payment.package_id)
        .bind(payment.stars)
        .bind(payment.credits)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await.context(CONTEXT)?;
            return Ok(PaymentCredit {
                credited_now: false,
                balance: self.balance(payment.user).await?,
                referral: None,
            });
        }
        let refs = LedgerRefs {
            payment_id: Some(payment.charge_id),
            ..LedgerRefs::default()
        };
        let reason = format!("{} Stars, package {}", payment.stars, payment.package_id);
        let balance = apply_credit(
            &mut tx,
            payment.user,
            payment.credits,
            LedgerKind::Purchase,
            Some(&reason),
            refs,
            now,
        )
        .await?;
        let referral = super::referrals::reward_first_payment(
            &mut tx,
            payment,
            self.options.referral_bonus,
            now,
        )
        .await?;
        let balance = referral.map_or(balance, |bonus| bonus.balance);
        tx.commit().await.context(CONTEXT)?;
        Ok(PaymentCredit {
            credited_now: true,
            balance,
            referral,
        })
    }

    pub async fn payment(&self, charge_id: &str) -> Result<Option<Payment>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE charge_id = $1"
        ))
        .bind(charge_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a payment")?
        .as_ref()
        .map(payment_from_row)
        .transpose()
    }

    /// Records that Telegram refunded `charge_id`: takes back the package's credits, or what
    /// is left of them when the buyer spent some (the balance never goes below zero). A
    /// refund already recorded takes nothing and says so.
    pub async fn record_payment_refund(
        &self,
        charge_id: &str,
    ) -> Result<PaymentRefund, StoreError> {
        const CONTEXT: &str = "recording a payment refund";
        let now = self.now();
        let mut tx = self.begin_write(CONTEXT).await?;
        // The payment row is locked on PostgreSQL; SQLite's write lock already is one.
        let query = match self.engine {
            Engine::Postgres => concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE charge_id = $1 FOR UPDATE"
            ),
            Engine::Sqlite => concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payments WHERE charge_id = $1"
            ),
        };
        let row = sqlx::query(query)
            .bind(charge_id)
            .fetch_optional(&mut *tx)
            .await
            .context(CONTEXT)?
            .ok_or_else(|| StoreError::UnknownPayment(charge_id.to_owned()))?;
        let payment = payment_from_row(&row)?;
        if payment.refunded_at.is_some() {
            tx.rollback().await.context(CONTEXT)?;
            return Ok(PaymentRefund {
                recorded_now: false,
                taken_back: payment.refunded_credits.unwrap_or(0),
                balance: self.balance(payment.user).await?,
            });
        }
        let balance: i64 = sqlx::query_scalar("SELECT credits FROM users WHERE id = $1")
            .bind(payment.user.0)
            .fetch_one(&mut *tx)
            .await
            .context(CONTEXT)?;
        let taken_back = payment.credits.min(balance).max(0);
        let balance = if taken_back > 0 {
            let refs = LedgerRefs {
                payment_id: Some(charge_id),
                ..LedgerRefs::default()
            };
            let reason = format!("{} Stars refunded", payment.stars);
            apply_credit(
                &mut tx,
                payment.user,
                -taken_back,
                LedgerKind::PaymentRefund,
                Some(&reason),
                refs,
                now,
            )
            .await?
        } else {
            balance
        };
        sqlx::query(
            "UPDATE payments SET refunded_at = $2, refunded_credits = $3 WHERE charge_id = $1",
        )
        .bind(charge_id)
        .bind(now)
        .bind(taken_back)
        .execute(&mut *tx)
        .await
        .context(CONTEXT)?;
        tx.commit().await.context(CONTEXT)?;
        Ok(PaymentRefund {
            recorded_now: true,
            taken_back,
            balance,
        })
    }

    /// A user's newest payments first.
    pub async fn payments_of(&self, user: UserId, limit: i64) -> Result<Vec<Payment>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE user_id = $1 ORDER BY created_at DESC, charge_id LIMIT $2"
        ))
        .bind(user.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading a user's payments")?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Everyone's newest payments first.
    pub async fn recent_payments(&self, limit: i64) -> Result<Vec<Payment>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments ORDER BY created_at DESC, charge_id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading the payments")?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Payments made since `since`, and refunds among them.
    pub async fn payment_totals_since(&self, since: Millis) -> Result<PaymentTotals, StoreError> {
        const CONTEXT: &str = "summing payments";
        let row = sqlx::query(
            "SELECT COUNT(*) AS payments,
                    CAST(COALESCE(SUM(stars), 0) AS BIGINT) AS stars,
                    CAST(COALESCE(SUM(credits), 0) AS BIGINT) AS credits,
                    COUNT(refunded_at) AS refunds,
                    CAST(COALESCE(SUM(CASE WHEN refunded_at IS NOT NULL THEN stars END), 0) AS BIGINT) AS stars_refunded
             FROM payments WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .context(CONTEXT)?;
        Ok(PaymentTotals {
            payments: row.try_get("payments").context(CONTEXT)?,
            stars: row.try_get("stars").context(CONTEXT)?,
            credits_sold: row.try_get("credits").context(CONTEXT)?,
            refunds: row.try_get("refunds").context(CONTEXT)?,
            stars_refunded: row.try_get("stars_refunded").context(CONTEXT)?,
        })
    }

    /// Payments per UTC day since `since`, oldest day first: (day as days since 1970,
    /// payments, Stars, Stars refunded).
    pub async fn payments_by_day(
        &self,
        since: Millis,
    ) -> Result<Vec<(i64, i64, i64, i64)>, StoreError> {
        const CONTEXT: &str = "summing payments by day";
        let rows = sqlx::query(
            "SELECT created_at / 86400000 AS day, COUNT(*) AS payments,
                    CAST(SUM(stars) AS BIGINT) AS stars,
                    CAST(COALESCE(SUM(CASE WHEN refunded_at IS NOT NULL THEN stars END), 0) AS BIGINT) AS refunded
             FROM payments WHERE created_at >= $1
             GROUP BY created_at / 86400000 ORDER BY day",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("day").context(CONTEXT)?,
                    row.try_get("payments").context(CONTEXT)?,
                    row.try_get("stars").context(CONTEXT)?,
                    row.try_get("refunded").context(CONTEXT)?,
                ))
            })
            .collect()
    }

    /// Credits spent on orders since `since` (net of the refunds of failed videos).
    pub async fn credits_spent_since(&self, since: Millis) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(-SUM(delta), 0) AS BIGINT) FROM ledger
             WHERE kind IN ('order', 'refund') AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .context("summing the credits spent")
    }
}

fn payment_from_row(row: &AnyRow) -> Result<Payment, StoreError> {
    const CONTEXT: &str = "reading a payment";
    Ok(Payment {
        charge_id: row.try_get("charge_id").context(CONTEXT)?,
        user: UserId(row.try_get("user_id").context(CONTEXT)?),
        package_id: row.try_get("package_id").context(CONTEXT)?,
        stars: row.try_get("stars").context(CONTEXT)?,
        credits: row.try_get("credits").context(CONTEXT)?,
        created_at: row.try_get("created_at").context(CONTEXT)?,
        refunded_at: row.try_get("refunded_at").context(CONTEXT)?,
        refunded_credits: row.try_get("refunded_credits").context(CONTEXT)?,
    })
}
