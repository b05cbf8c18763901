//! The Telegram emulator's Stars ledger: getStarTransactions, refundStarPayment and the
//! payment updates, read through teloxide.

use std::time::Duration;

use emulators::telegram::{Fault, TelegramConfig, TelegramEmulator, TestUser};
use serde_json::{json, Value};
use teloxide::prelude::*;
use teloxide::types::{
    MessageKind, StarTransactions, TelegramTransactionId, TransactionPartner, UpdateKind,
};
use teloxide::{ApiError, RequestError};

async fn start() -> TelegramEmulator {
    TelegramEmulator::start(TelegramConfig::default())
        .await
        .unwrap()
}

fn bot(tg: &TelegramEmulator) -> Bot {
    Bot::new(tg.token()).set_api_url(reqwest::Url::parse(&tg.base_url()).unwrap())
}

fn charge(id: &str) -> TelegramTransactionId {
    TelegramTransactionId(id.to_owned())
}

fn ids(transactions: &StarTransactions) -> Vec<&str> {
    transactions
        .transactions
        .iter()
        .map(|t| t.id.0.as_str())
        .collect()
}

/// A raw Bot API call, for the JSON exactly as the emulator answers it.
async fn call(tg: &TelegramEmulator, method: &str, params: Value) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/bot{}/{method}", tg.base_url(), tg.token()))
        .json(&params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// teloxide gives an error text it does not know as `ApiError::Unknown`.
fn assert_refused(error: &RequestError, description: &str) {
    assert!(
        matches!(error, RequestError::Api(ApiError::Unknown(text)) if text == description),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_successful_payment_is_a_star_transaction_teloxide_parses() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(77, "en");
    tg.successful_payment(&buyer, "XTR", 250, "pack:10:order-1", "charge-1");

    let raw = call(&tg, "getStarTransactions", json!({})).await;
    assert_eq!(raw["ok"], true);
    let transaction = &raw["result"]["transactions"][0];
    assert_eq!(transaction["id"], "charge-1");
    assert_eq!(transaction["amount"], 250);
    assert!(transaction["date"].as_i64().unwrap() > 0);
    assert_eq!(transaction["source"]["type"], "user");
    assert_eq!(transaction["source"]["user"]["id"], 77);
    assert_eq!(transaction["source"]["user"]["is_bot"], false);
    assert_eq!(transaction["source"]["invoice_payload"], "pack:10:order-1");
    let parsed: StarTransactions = serde_json::from_value(raw["result"].clone()).unwrap();
    assert_eq!(ids(&parsed), ["charge-1"]);

    let listed = bot.get_star_transactions().await.unwrap();
    let payment = &listed.transactions[0];
    assert_eq!(payment.amount, 250);
    assert!(payment.receiver.is_none());
    let Some(TransactionPartner::User(partner)) = &payment.source else {
        panic!("not a user payment: {payment:?}")
    };
    assert_eq!(partner.user.id, UserId(77));
    let invoice = partner.invoice_payment().unwrap();
    assert_eq!(invoice.invoice_payload.as_deref(), Some("pack:10:order-1"));

    // Only Stars payments are Star transactions.
    tg.successful_payment(&buyer, "USD", 500, "fiat", "charge-usd");
    assert_eq!(
        bot.get_star_transactions()
            .await
            .unwrap()
            .transactions
            .len(),
        1
    );
}

#[tokio::test]
async fn star_transactions_page_newest_first_by_offset_and_limit() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(5, "ru");
    for n in 1..=5 {
        tg.record_payment_only(&buyer, n * 10, &format!("order-{n}"), &format!("c{n}"));
    }
    let all = bot.get_star_transactions().await.unwrap();
    assert_eq!(ids(&all), ["c5", "c4", "c3", "c2", "c1"]);
    let page = bot
        .get_star_transactions()
        .offset(1)
        .limit(2)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["c4", "c3"]);
    let rest = bot
        .get_star_transactions()
        .offset(3)
        .limit(100)
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["c2", "c1"]);
    let beyond = bot.get_star_transactions().offset(5).await.unwrap();
    assert!(beyond.transactions.is_empty());
    // The limit is clamped to 1..=100, as getUpdates does.
    let clamped = call(&tg, "getStarTransactions", json!({"limit": 0})).await;
    assert_eq!(
        clamped["result"]["transactions"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_refund_is_answered_once_then_refused() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(9, "en");
    tg.successful_payment(&buyer, "XTR", 100, "pack:5", "charge-9");

    bot.refund_star_payment(UserId(9), charge("charge-9"))
        .await
        .unwrap();
    assert_eq!(tg.star_refunds(), [(9, "charge-9".to_owned())]);
    let error = bot
        .refund_star_payment(UserId(9), charge("charge-9"))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: CHARGE_ALREADY_REFUNDED");
    assert_eq!(tg.star_refunds().len(), 1);

    // The refund is listed first, under the charge's id, with the user as its receiver.
    let listed = bot.get_star_transactions().await.unwrap();
    assert_eq!(ids(&listed), ["charge-9", "charge-9"]);
    let refund = &listed.transactions[0];
    assert_eq!(refund.amount, 100);
    assert!(refund.source.is_none());
    assert!(
        matches!(&refund.receiver, Some(TransactionPartner::User(p)) if p.user.id == UserId(9)),
        "{refund:?}"
    );
    assert!(listed.transactions[1].source.is_some());
}

#[tokio::test]
async fn an_unknown_charge_or_another_users_charge_is_not_refunded() {
    let tg = start().await;
    let bot = bot(&tg);
    tg.successful_payment(&TestUser::new(1, "en"), "XTR", 50, "pack:1", "charge-1");

    let error = bot
        .refund_star_payment(UserId(1), charge("no-such-charge"))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: CHARGE_NOT_FOUND");
    let error = bot
        .refund_star_payment(UserId(2), charge("charge-1"))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: CHARGE_NOT_FOUND");
    assert!(tg.star_refunds().is_empty());
    assert_eq!(
        bot.get_star_transactions()
            .await
            .unwrap()
            .transactions
            .len(),
        1
    );
}

#[tokio::test]
async fn a_payment_recorded_only_queues_no_update() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(3, "en");
    tg.record_payment_only(&buyer, 75, "pack:3:lost", "charge-lost");

    assert!(bot.get_updates().await.unwrap().is_empty());
    let listed = bot.get_star_transactions().await.unwrap();
    assert_eq!(ids(&listed), ["charge-lost"]);
    // The bot can refund what it found by reconciling.
    bot.refund_star_payment(UserId(3), charge("charge-lost"))
        .await
        .unwrap();
    assert_eq!(tg.star_refunds(), [(3, "charge-lost".to_owned())]);
}

#[tokio::test]
async fn a_refunded_payment_update_parses_and_joins_the_ledger() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(4, "en");
    tg.record_payment_only(&buyer, 30, "pack:4", "charge-4");
    tg.refunded_payment(&buyer, 30, "pack:4", "charge-4");

    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::Message(message) = &updates[0].kind else {
        panic!("not a message")
    };
    let MessageKind::RefundedPayment(refunded) = &message.kind else {
        panic!("not a refunded payment: {message:?}")
    };
    assert_eq!(refunded.refunded_payment.currency, "XTR");
    assert_eq!(refunded.refunded_payment.total_amount, 30);
    assert_eq!(refunded.refunded_payment.invoice_payload, "pack:4");
    assert_eq!(
        refunded.refunded_payment.telegram_payment_charge_id,
        charge("charge-4")
    );

    // Refunded by Telegram, not by the bot: listed, yet not one of the bot's refunds.
    let listed = bot.get_star_transactions().await.unwrap();
    assert_eq!(ids(&listed), ["charge-4", "charge-4"]);
    assert!(listed.transactions[0].receiver.is_some());
    assert!(tg.star_refunds().is_empty());
    let error = bot
        .refund_star_payment(UserId(4), charge("charge-4"))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: CHARGE_ALREADY_REFUNDED");
}

#[tokio::test]
async fn stars_methods_take_injected_faults() {
    let tg = start().await;
    let buyer = TestUser::new(6, "en");
    tg.successful_payment(&buyer, "XTR", 20, "pack:6", "charge-6");

    tg.inject(Fault::TooManyRequests {
        method: "getStarTransactions".to_owned(),
        retry_after: 2,
    });
    let error = bot(&tg).get_star_transactions().await.unwrap_err();
    assert!(
        matches!(&error, RequestError::RetryAfter(s) if s.seconds() == 2),
        "{error:?}"
    );

    // A refund answered after the client's timeout has still happened: the retry is refused.
    tg.inject(Fault::LateAnswer {
        method: "refundStarPayment".to_owned(),
        delay: Duration::from_secs(2),
    });
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let impatient = Bot::with_client(tg.token(), impatient)
        .set_api_url(reqwest::Url::parse(&tg.base_url()).unwrap());
    let error = impatient
        .refund_star_payment(UserId(6), charge("charge-6"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RequestError::Network(e) if e.is_timeout()),
        "{error:?}"
    );
    assert_eq!(tg.star_refunds(), [(6, "charge-6".to_owned())]);
    let error = bot(&tg)
        .refund_star_payment(UserId(6), charge("charge-6"))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: CHARGE_ALREADY_REFUNDED");
}
