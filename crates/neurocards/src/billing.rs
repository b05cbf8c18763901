//! Money that needs Telegram as well as the database: refunding a Stars payment, and
//! reconciling our payments with Telegram's list of Star transactions (a `successful_payment`
//! lost in an outage longer than Telegram keeps updates is found and credited there).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertKind, Alerts};
use crate::domain::UserId;
use crate::packages::{InvoicePayload, Packages};
use crate::store::{NewPayment, PaymentRefund, Store, StoreError};
use crate::telegram::{StarRefund, StarTransactionKind, Telegram, TelegramError};

/// Transactions read per `getStarTransactions` call (Telegram's maximum).
const PAGE: u8 = 100;
/// How many pages one reconciliation reads at most: the newest 10,000 transactions.
const MAX_PAGES: u32 = 100;

#[derive(Clone)]
pub struct Billing {
    store: Store,
    telegram: Telegram,
    packages: Arc<Packages>,
    /// The refunds no admin asked for (Telegram's own, or found by reconciliation) are told
    /// to the admins.
    alerts: Alerts,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no payment {0} is recorded")]
    Unknown(String),
    #[error("payment {0} was already refunded")]
    AlreadyRefunded(String),
    /// The buyer spent some of the credits: a refund would take more than they have.
    #[error(
        "the payment bought {credits} credits and the buyer has {balance} left: refunding would \
         take more than they have (use --force to refund and take the {balance} left)"
    )]
    Spent { credits: i64, balance: i64 },
    #[error("Telegram refused the refund: {0}")]
    Telegram(#[from] TelegramError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDone {
    pub user: UserId,
    pub stars: i64,
    pub credits: i64,
    pub recorded: PaymentRefund,
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub transactions_read: usize,
    /// Payments Telegram has and we had not: now credited.
    pub credited: Vec<String>,
    /// Refunds Telegram made that we had not recorded: now taken back.
    pub refunds_recorded: Vec<String>,
    /// Payments we cannot credit by ourselves (an unknown package or payload): for the
    /// operator.
    pub unmatched: Vec<String>,
}

/// Whether a refund may go ahead: a refund never takes a balance below zero unless forced,
/// and then it takes what is left.
pub fn refund_allowed(credits: i64, balance: i64, force: bool) -> Result<(), RefundError> {
    if balance < credits && !force {
        return Err(RefundError::Spent { credits, balance });
    }
    Ok(())
}

impl Billing {
    pub fn new(
        store: Store,
        telegram: Telegram,
        packages: Arc<Packages>,
        alerts: Alerts,
    ) -> Billing {
        Billing {
            store,
            telegram,
            packages,
            alerts,
        }
    }

    /// A refund Telegram reported (the refunded_payment message): takes the credits back,
    /// once, and tells the admins the first time.
    pub async fn record_telegram_refund(
        &self,
        charge_id: &str,
        user: UserId,
        stars: i64,
    ) -> Result<PaymentRefund, StoreError> {
        let recorded = self.store.record_payment_refund(charge_id).await?;
        if recorded.recorded_now {
            metrics::counter!("neurocards_payment_refunds_total").increment(1);
            self.tell_refund(charge_id, user, stars, &recorded).await;
        }
        Ok(recorded)
    }

    async fn tell_refund(
        &self,
        charge_id: &str,
        user: UserId,
        stars: i64,
        recorded: &PaymentRefund,
    ) {
        self.alerts
            .raise(
                AlertKind::PaymentRefunded,
                &[
                    ("charge_id", &charge_id),
                    ("user", &user.0),
                    ("stars", &stars),
                    ("credits", &recorded.taken_back),
                ],
            )
            .await;
    }

    /// Refunds a payment's Stars and takes its credits back. Refused by us, before Telegram
    /// is asked, when it is unknown, already refunded, or partly spent without `force`.
    pub async fn refund(&self, charge_id: &str, force: bool) -> Result<RefundDone, RefundError> {
        let payment = self
            .store
            .payment(charge_id)
            .await?
            .ok_or_else(|| RefundError::Unknown(charge_id.to_owned()))?;
        if payment.refunded_at.is_some() {
            return Err(RefundError::AlreadyRefunded(charge_id.to_owned()));
        }
        let balance = self.store.balance(payment.user).await?;
        refund_allowed(payment.credits, balance, force)?;
        let answer = self
            .telegram
            .refund_star_payment(payment.user.0, charge_id)
            .await?;
        if answer == StarRefund::AlreadyRefunded {
            tracing::warn!(
                charge_id,
                "Telegram had already refunded this payment: recording it"
            );
        }
        // Recorded whether or not Telegram had refunded it before: the Stars are gone.
        let recorded = self.store.record_payment_refund(charge_id).await?;
        if recorded.recorded_now {
            // An admin asked for it: no alert.
            metrics::counter!("neurocards_payment_refunds_total").increment(1);
        }
        tracing::info!(
            charge_id,
            stars = payment.stars,
            taken_back = recorded.taken_back,
            "payment refunded"
        );
        Ok(RefundDone {
            user: payment.user,
            stars: payment.stars,
            credits: payment.credits,
            recorded,
        })
    }

    /// Reads Telegram's Star transactions, newest first, and records every payment and
    /// refund we lack, with the same exactly-once keys as the updates.
    pub async fn reconcile(&self) -> Result<Reconciled, RefundError> {
        let mut report = Reconciled::default();
        for page in 0..MAX_PAGES {
            let transactions = self
                .telegram
                .star_transactions(page * u32::from(PAGE), PAGE)
                .await?;
            report.transactions_read += transactions.len();
            for transaction in &transactions {
                match transaction.kind {
                    StarTransactionKind::Payment => {
                        self.reconcile_payment(transaction, &mut report).await?
                    }
                    StarTransactionKind::Refund => {
                        self.reconcile_refund(&transaction.charge_id, &mut report)
                            .await?;
                    }
                }
            }
            if transactions.len() < usize::from(PAGE) {
                break;
            }
        }
        Ok(report)
    }

    async fn reconcile_payment(
        &self,
        transaction: &crate::telegram::StarTransaction,
        report: &mut Reconciled,
    ) -> Result<(), RefundError> {
        if self.store.payment(&transaction.charge_id).await?.is_some() {
            return Ok(());
        }
        let package = transaction
            .payload
            .as_deref()
            .and_then(InvoicePayload::parse)
            .filter(|payload| payload.user == transaction.user)
            .and_then(|payload| self.packages.get(&payload.package));
        let Some(package) = package else {
            tracing::error!(charge_id = %transaction.charge_id, payload = ?transaction.payload, "a Stars payment for no package we sell: credit or refund it by hand");
            report.unmatched.push(transaction.charge_id.clone());
            return Ok(());
        };
        let user = UserId(transaction.user);
        // The buyer talked to the bot to get the invoice, but the database may be newer
        // than that conversation (restored from a backup).
        if self.store.user(user).await?.is_none() {
            self.store.register_user(user, None, "ru", 0).await?;
        }
        let credited = self
            .store
            .record_payment(&NewPayment {
                charge_id: &transaction.charge_id,
                user,
                package_id: &package.id,
                stars: transaction.stars,
                credits: package.credits,
            })
            .await?;
        if credited.credited_now {
            metrics::counter!("neurocards_payments_total").increment(1);
            metrics::counter!("neurocards_stars_total")
                .increment(u64::try_from(transaction.stars).unwrap_or(0));
            tracing::warn!(charge_id = %transaction.charge_id, user = user.0, credits = package.credits, "reconciliation credited a payment whose update never arrived");
            report.credited.push(transaction.charge_id.clone());
        }
        Ok(())
    }

    async fn reconcile_refund(
        &self,
        charge_id: &str,
        report: &mut Reconciled,
    ) -> Result<(), RefundError> {
        let Some(payment) = self.store.payment(charge_id).await? else {
            return Ok(());
        };
        if payment.refunded_at.is_none() {
            let recorded = self.store.record_payment_refund(charge_id).await?;
            if recorded.recorded_now {
                tracing::warn!(
                    charge_id,
                    taken_back = recorded.taken_back,
                    "reconciliation recorded a refund whose update never arrived"
                );
                metrics::counter!("neurocards_payment_refunds_total").increment(1);
                self.tell_refund(charge_id, payment.user, payment.stars, &recorded)
                    .await;
                report.refunds_recorded.push(charge_id.to_owned());
            }
        }
        Ok(())
    }

    /// Reconciles at once and then every `every` until `stop`. A failed round is logged
    /// and tried again next time: payments wait, they are not lost.
    pub async fn keep_reconciling(self, every: Duration, stop: CancellationToken) {
        loop {
            match self.reconcile().await {
                Ok(report) if report.credited.is_empty() && report.refunds_recorded.is_empty() => {
                    tracing::debug!(
                        read = report.transactions_read,
                        "payments reconciled: nothing missing"
                    );
                }
                Ok(report) => tracing::warn!(?report, "payments reconciled: some were missing"),
                Err(err) => tracing::error!(error = %err, "reconciling payments failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_never_takes_more_than_is_left_unless_forced() {
        assert!(refund_allowed(20, 20, false).is_ok());
        assert!(refund_allowed(20, 35, false).is_ok());
        let refused = refund_allowed(20, 5, false).expect_err("spent credits");
        assert!(matches!(
            refused,
            RefundError::Spent {
                credits: 20,
                balance: 5
            }
        ));
        assert!(refused.to_string().contains("--force"));
        assert!(refund_allowed(20, 5, true).is_ok());
        assert!(refund_allowed(20, 0, true).is_ok());
    }
}
