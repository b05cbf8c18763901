//! Referrals: a user who arrives by another's invite link is bound to the inviter once
//! (never to themselves, never again to someone else); when the invited user's first payment
//! lands, the inviter and the invited user each get `REFERRAL_BONUS` credits, in the
//! payment's own transaction and at most once, however often the payment is reported.

use sqlx::{Any, Transaction};

use super::users::{apply_credit, LedgerRefs};
use super::{NewPayment, ResultExt, Store, StoreError};
use crate::clock::Millis;
use crate::domain::{LedgerKind, UserId};

/// The bonus a first payment brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralBonus {
    pub inviter: UserId,
    pub credits: i64,
    /// The inviter's balance after the bonus.
    pub inviter_balance: i64,
    /// The paying user's balance after the payment and the bonus.
    pub balance: i64,
}

/// What `/invite` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReferralStats {
    pub invited: i64,
    pub paying: i64,
}

impl Store {
    /// Binds `user` to `inviter` when `user` has no inviter yet, has paid nothing yet, and is
    /// not `inviter`, and `inviter` is a registered user. True when bound now.
    pub async fn bind_referrer(&self, user: UserId, inviter: UserId) -> Result<bool, StoreError> {
        if user == inviter {
            return Ok(false);
        }
        let bound = sqlx::query(
            "UPDATE users SET referrer_id = $2
             WHERE id = $1 AND referrer_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = $1)
               AND EXISTS (SELECT 1 FROM users i WHERE i.id = $2)",
        )
        .bind(user.0)
        .bind(inviter.0)
        .execute(&self.pool)
        .await
        .context("binding an invited user")?
        .rows_affected();
        Ok(bound == 1)
    }

    pub async fn referral_stats(&self, inviter: UserId) -> Result<ReferralStats, StoreError> {
        let (invited, paying): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN referral_rewarded_at IS NOT NULL THEN 1 ELSE 0 END), 0)
             FROM users WHERE referrer_id = $1",
        )
        .bind(inviter.0)
        .fetch_one(&self.pool)
        .await
        .context("counting invited users")?;
        Ok(ReferralStats { invited, paying })
    }
}

/// Within the transaction that credits `payment`: the bonus for both sides when this is
/// the first rewarded payment of an invited user.
pub(super) async fn reward_first_payment(
    tx: &mut Transaction<'static, Any>,
    payment: &NewPayment<'_>,
    bonus: i64,
    now: Millis,
) -> Result<Option<ReferralBonus>, StoreError> {
    const CONTEXT: &str = "giving the referral bonus";
    if bonus <= 0 {
        return Ok(None);
    }
    // Marked in the same statement that reads the inviter: a repeated payment, or a second
    // payment, finds it marked and gives nothing.
    let inviter: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET referral_rewarded_at = $2
         WHERE id = $1 AND referrer_id IS NOT NULL AND referral_rewarded_at IS NULL
         RETURNING referrer_id",
    )
    .bind(payment.user.0)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .context(CONTEXT)?;
    let Some(inviter) = inviter.map(UserId) else {
        return Ok(None);
    };
    let refs = || LedgerRefs {
        payment_id: Some(payment.charge_id),
        ..LedgerRefs::default()
    };
    let inviter_balance = apply_credit(
        tx,
        inviter,
        bonus,
        LedgerKind::Referral,
        Some(&format!("invited user {} paid", payment.user)),
        refs(),
        now,
    )
    .await?;
    let balance = apply_credit(
        tx,
        payment.user,
        bonus,
        LedgerKind::Referral,
        Some(&format!("invited by user {inviter}")),
        refs(),
        now,
    )
    .await?;
    Ok(Some(ReferralBonus {
        inviter,
        credits: bonus,
        inviter_balance,
        balance,
    }))
}
