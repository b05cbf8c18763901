//! What moves credits. Every change of a balance is one ledger row of one of these kinds.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerKind {
    /// An admin gave (or, when negative, took back) credits.
    Grant,
    /// A paid package; unique per payment charge id.
    Purchase,
    /// The debit of an order; unique per order.
    Order,
    /// The credit of a failed job given back; unique per job.
    Refund,
    /// The credits of a refunded Stars payment taken back; unique per payment.
    PaymentRefund,
    /// A promo code redeemed; once per code and user.
    Promo,
    /// The invite bonus, to the inviter and to the invited user, on the invited user's
    /// first payment; once per invited user.
    Referral,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 7] = [
        LedgerKind::Grant,
        LedgerKind::Purchase,
        LedgerKind::Order,
        LedgerKind::Refund,
        LedgerKind::PaymentRefund,
        LedgerKind::Promo,
        LedgerKind::Referral,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Grant => "grant",
            LedgerKind::Purchase => "purchase",
            LedgerKind::Order => "order",
            LedgerKind::Refund => "refund",
            LedgerKind::PaymentRefund => "payment_refund",
            LedgerKind::Promo => "promo",
            LedgerKind::Referral => "referral",
        }
    }
}

impl fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown ledger kind {0:?}")]
pub struct UnknownLedgerKind(pub String);

impl FromStr for LedgerKind {
    type Err = UnknownLedgerKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LedgerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownLedgerKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::LedgerKind;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in LedgerKind::ALL {
            assert_eq!(kind.as_str().parse::<LedgerKind>(), Ok(kind));
        }
    }
}
