//! Telegram Stars: the bot's transaction ledger, getStarTransactions and refundStarPayment.
//!
//! Telegram keeps every Stars payment to the bot, and every refund of one, whether or not the
//! bot ever saw the update about it; a bot reconciles against this ledger after an outage.

use serde_json::{json, Value};

use super::error::TgError;
use super::params::Params;
use super::types;
use super::TestUser;

/// getStarTransactions answers at most this many, and this many when no limit is given.
const MAX_PAGE: usize = 100;

/// One entry of the ledger: an incoming payment, or the outgoing refund of one.
#[derive(Debug, Clone)]
struct StarTransaction {
    /// The payment's `telegram_payment_charge_id`; a refund keeps the id of what it refunds.
    id: String,
    amount: i64,
    date: i64,
    user: TestUser,
    payload: String,
    refund: bool,
}

impl StarTransaction {
    /// The Bot API's StarTransaction. The user side is a TransactionPartnerUser: teloxide 0.17
    /// requires its `transaction_type` (Bot API 9.0), and a refund names the user as
    /// `receiver` where a payment names it as `source`.
    fn json(&self) -> Value {
        let partner = json!({
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": types::user(&self.user),
            "invoice_payload": self.payload,
        });
        let side = if self.refund { "receiver" } else { "source" };
        json!({
            "id": self.id,
            "amount": self.amount,
            "date": self.date,
            side: partner,
        })
    }
}

/// The bot's Stars transactions, oldest first, and the refunds it asked for.
#[derive(Debug, Default)]
pub(crate) struct StarLedger {
    transactions: Vec<StarTransaction>,
    /// Successful refundStarPayment calls, in order, as `(user id, charge id)`.
    refunds: Vec<(i64, String)>,
}

impl StarLedger {
    /// Records an incoming payment. Once per charge: a test replaying the successful_payment
    /// update (a duplicate delivery) must not make Telegram hold the payment twice.
    pub(crate) fn record_payment(
        &mut self,
        user: &TestUser,
        amount: i64,
        payload: &str,
        charge_id: &str,
    ) {
        if self.payment(charge_id).is_some() {
            return;
        }
        self.transactions.push(StarTransaction {
            id: charge_id.to_owned(),
            amount,
            date: types::now_unix(),
            user: user.clone(),
            payload: payload.to_owned(),
            refund: false,
        });
    }

    /// Records the outgoing refund of `charge_id`, once per charge, whoever refunded it.
    pub(crate) fn record_refund(
        &mut self,
        user: &TestUser,
        amount: i64,
        payload: &str,
        charge_id: &str,
    ) {
        if self.is_refunded(charge_id) {
            return;
        }
        self.transactions.push(StarTransaction {
            id: charge_id.to_owned(),
            amount,
            date: types::now_unix(),
            user: user.clone(),
            payload: payload.to_owned(),
            refund: true,
        });
    }

    fn payment(&self, charge_id: &str) -> Option<&StarTransaction> {
        self.transactions
            .iter()
            .find(|t| !t.refund && t.id == charge_id)
    }

    fn is_refunded(&self, charge_id: &str) -> bool {
        self.transactions
            .iter()
            .any(|t| t.refund && t.id == charge_id)
    }

    /// refundStarPayment: a payment of that very user, refunded at most once.
    pub(crate) fn refund(&mut self, user_id: i64, charge_id: &str) -> Result<(), TgError> {
        let payment = self
            .payment(charge_id)
            .filter(|p| p.user.id == user_id)
            .cloned()
            .ok_or_else(|| TgError::bad_request("CHARGE_NOT_FOUND"))?;
        if self.is_refunded(charge_id) {
            return Err(TgError::bad_request("CHARGE_ALREADY_REFUNDED"));
        }
        self.record_refund(&payment.user, payment.amount, &payment.payload, charge_id);
        self.refunds.push((user_id, charge_id.to_owned()));
        Ok(())
    }

    /// Newest first, as Telegram lists them; entries of the same second keep their order.
    fn page(&self, offset: usize, limit: usize) -> Value {
        let transactions: Vec<Value> = self
            .transactions
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .map(StarTransaction::json)
            .collect();
        json!({"transactions": transactions})
    }

    pub(crate) fn refunds(&self) -> Vec<(i64, String)> {
        self.refunds.clone()
    }
}

/// getStarTransactions. A limit outside 1..=100 is clamped, as getUpdates does it, and a
/// negative offset counts as none.
pub(crate) fn get_star_transactions(ledger: &StarLedger, p: &Params) -> Value {
    let offset = usize::try_from(p.i64("offset").unwrap_or(0)).unwrap_or(0);
    let limit = p.i64("limit").map_or(MAX_PAGE, |limit| {
        usize::try_from(limit).unwrap_or(1).clamp(1, MAX_PAGE)
    });
    ledger.page(offset, limit)
}

/// refundStarPayment: answers True once per refunded charge.
pub(crate) fn refund_star_payment(ledger: &mut StarLedger, p: &Params) -> Result<Value, TgError> {
    let user_id = p
        .i64("user_id")
        .ok_or_else(|| TgError::bad_request("USER_ID_INVALID"))?;
    let charge_id = p
        .str("telegram_payment_charge_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| TgError::bad_request("CHARGE_NOT_FOUND"))?;
    ledger.refund(user_id, &charge_id)?;
    Ok(json!(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_of(charges: &[&str]) -> StarLedger {
        let mut ledger = StarLedger::default();
        for (n, charge) in (1..).zip(charges) {
            ledger.record_payment(&TestUser::new(7, "en"), n * 10, "pack", charge);
        }
        ledger
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn pages_go_newest_first() {
        let ledger = ledger_of(&["a", "b", "c", "d"]);
        assert_eq!(ids(&ledger.page(0, 100)), ["d", "c", "b", "a"]);
        assert_eq!(ids(&ledger.page(1, 2)), ["c", "b"]);
        assert!(ids(&ledger.page(4, 100)).is_empty());
    }

    #[test]
    fn a_payment_is_recorded_once_per_charge() {
        let mut ledger = ledger_of(&["a"]);
        ledger.record_payment(&TestUser::new(7, "en"), 10, "pack", "a");
        assert_eq!(ids(&ledger.page(0, 100)), ["a"]);
    }

    #[test]
    fn a_charge_is_refunded_once_and_only_to_its_payer() {
        let mut ledger = ledger_of(&["a"]);
        let refused = ledger.refund(8, "a").unwrap_err();
        assert_eq!(refused.description, "Bad Request: CHARGE_NOT_FOUND");
        ledger.refund(7, "a").unwrap();
        let again = ledger.refund(7, "a").unwrap_err();
        assert_eq!(again.description, "Bad Request: CHARGE_ALREADY_REFUNDED");
        assert_eq!(ledger.refunds(), [(7, "a".to_owned())]);

        let page = ledger.page(0, 100);
        let refund = &page["transactions"][0];
        assert_eq!(refund["id"], "a");
        assert_eq!(refund["receiver"]["user"]["id"], 7);
        assert!(refund.get("source").is_none());
        assert_eq!(page["transactions"][1]["source"]["invoice_payload"], "pack");
    }
}
