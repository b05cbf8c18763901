//! The Telegram emulator's invoices and payments through teloxide: sendInvoice's limits,
//! `pay_invoice` with a bot that answers the pre-checkout query (or does not), and a
//! successful_payment delivered twice by `repeat_message`.

use std::time::{Duration, Instant};

use emulators::telegram::{PaymentOutcome, TelegramConfig, TelegramEmulator, TestUser};
use teloxide::prelude::*;
use teloxide::types::{LabeledPrice, PreCheckoutQuery, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::task::JoinHandle;

async fn start() -> TelegramEmulator {
    TelegramEmulator::start(TelegramConfig::default())
        .await
        .unwrap()
}

fn bot(tg: &TelegramEmulator) -> Bot {
    Bot::new(tg.token()).set_api_url(reqwest::Url::parse(&tg.base_url()).unwrap())
}

/// teloxide gives an error text it does not know as `ApiError::Unknown`.
fn assert_refused(error: &RequestError, description: &str) {
    assert!(
        matches!(error, RequestError::Api(ApiError::Unknown(text)) if text == description),
        "{error:?}"
    );
}

/// The bot sends a one-price Stars invoice; returns its message id.
async fn send_stars_invoice(bot: &Bot, chat_id: i64, payload: &str, amount: u32) -> i64 {
    let invoice = bot
        .send_invoice(
            ChatId(chat_id),
            "10 videos",
            "A pack of ten generations",
            payload,
            "XTR",
            [LabeledPrice::new("10 videos", amount)],
        )
        .await
        .unwrap();
    i64::from(invoice.id.0)
}

fn offset_after(update: &Update) -> i32 {
    i32::try_from(update.id.0 + 1).unwrap()
}

/// The bot's side of a payment: polls until a pre-checkout query comes, answers it (ok when
/// `refusal` is `None`), and returns the query and the offset confirming it.
fn answer_next_pre_checkout(
    bot: Bot,
    refusal: Option<&'static str>,
) -> JoinHandle<(PreCheckoutQuery, i32)> {
    tokio::spawn(async move {
        let mut offset = 0;
        loop {
            let updates = bot.get_updates().offset(offset).timeout(5).await.unwrap();
            for update in updates {
                offset = offset_after(&update);
                if let UpdateKind::PreCheckoutQuery(query) = update.kind {
                    let mut answer =
                        bot.answer_pre_checkout_query(query.id.clone(), refusal.is_none());
                    if let Some(text) = refusal {
                        answer = answer.error_message(text);
                    }
                    answer.await.unwrap();
                    return (query, offset);
                }
            }
        }
    })
}

#[tokio::test]
async fn an_invoice_with_a_129_byte_payload_is_refused() {
    let tg = start().await;
    let bot = bot(&tg);
    let send = |title: String, description: String, payload: String| {
        bot.send_invoice(
            ChatId(21),
            title,
            description,
            payload,
            "XTR",
            [LabeledPrice::new("pack", 50)],
        )
    };

    let error = send("t".into(), "d".into(), "p".repeat(129))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: INVOICE_PAYLOAD_INVALID");
    // Bytes, not characters: 65 two-byte characters are 130 bytes.
    let error = send("t".into(), "d".into(), "я".repeat(65))
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: INVOICE_PAYLOAD_INVALID");
    let error = send("t".repeat(33), "d".into(), "p".into())
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: INVOICE_TITLE_INVALID");
    let error = send("t".into(), "d".repeat(256), "p".into())
        .await
        .unwrap_err();
    assert_refused(&error, "Bad Request: INVOICE_DESCRIPTION_INVALID");
    assert!(tg.sent(21).is_empty());

    // At the limits the invoice is sent.
    send("т".repeat(32), "д".repeat(255), "p".repeat(128))
        .await
        .unwrap();
    send("t".into(), "d".into(), "я".repeat(64)).await.unwrap();
    assert_eq!(tg.sent(21).len(), 2);
}

#[tokio::test]
async fn a_payment_answered_ok_is_paid_and_its_successful_payment_arrives() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(41, "en");
    let invoice_id = send_stars_invoice(&bot, 41, "pack:10:order-41", 250).await;

    let answering = answer_next_pre_checkout(bot.clone(), None);
    let outcome = tg.pay_invoice(&buyer, invoice_id, "charge-41").await;
    let (query, offset) = answering.await.unwrap();
    let PaymentOutcome::Paid { message_id } = outcome else {
        panic!("not paid: {outcome:?}")
    };

    // The query was for the invoice, and was answered once.
    assert_eq!(query.from.id, UserId(41));
    assert_eq!(query.currency, "XTR");
    assert_eq!(query.total_amount, 250);
    assert_eq!(query.invoice_payload, "pack:10:order-41");
    let answers = tg.pre_checkout_answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].query_id, query.id.0);
    assert!(answers[0].ok);

    let updates = bot.get_updates().offset(offset).await.unwrap();
    assert_eq!(updates.len(), 1);
    let UpdateKind::Message(paid) = &updates[0].kind else {
        panic!("not a message: {:?}", updates[0])
    };
    assert_eq!(i64::from(paid.id.0), message_id);
    assert_eq!(paid.chat.id, ChatId(41));
    let payment = paid.successful_payment().unwrap();
    assert_eq!(payment.currency, "XTR");
    assert_eq!(payment.total_amount, 250);
    assert_eq!(payment.invoice_payload, "pack:10:order-41");
    assert_eq!(payment.telegram_payment_charge_id.0, "charge-41");

    // As `successful_payment` does, the payment is a Star transaction.
    let listed = bot.get_star_transactions().await.unwrap();
    assert_eq!(listed.transactions.len(), 1);
    assert_eq!(listed.transactions[0].id.0, "charge-41");
    assert_eq!(listed.transactions[0].amount, 250);
}

#[tokio::test]
async fn a_payment_answered_not_ok_is_refused() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(42, "en");
    let invoice_id = send_stars_invoice(&bot, 42, "pack:10:order-42", 250).await;

    let answering = answer_next_pre_checkout(bot.clone(), Some("Sold out, sorry"));
    let outcome = tg.pay_invoice(&buyer, invoice_id, "charge-42").await;
    let (_, offset) = answering.await.unwrap();
    assert_eq!(
        outcome,
        PaymentOutcome::Refused {
            error_message: Some("Sold out, sorry".to_owned())
        }
    );
    assert!(!tg.pre_checkout_answers()[0].ok);

    // Nothing follows the refused query, and no Stars were taken.
    assert!(bot.get_updates().offset(offset).await.unwrap().is_empty());
    assert!(bot
        .get_star_transactions()
        .await
        .unwrap()
        .transactions
        .is_empty());
}

#[tokio::test]
async fn an_unanswered_payment_times_out_and_a_late_answer_is_refused() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(43, "en");
    let invoice_id = send_stars_invoice(&bot, 43, "pack:10:order-43", 250).await;

    let started = Instant::now();
    let outcome = tg
        .pay_invoice_within(&buyer, invoice_id, "charge-43", Duration::from_millis(200))
        .await;
    assert_eq!(outcome, PaymentOutcome::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Only the pre-checkout query was queued; answering it now is too late.
    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 1);
    let UpdateKind::PreCheckoutQuery(query) = &updates[0].kind else {
        panic!("not a pre-checkout query: {:?}", updates[0])
    };
    let error = bot
        .answer_pre_checkout_query(query.id.clone(), true)
        .await
        .unwrap_err();
    assert_refused(
        &error,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    );
    assert!(tg.pre_checkout_answers().is_empty());
    let later = bot
        .get_updates()
        .offset(offset_after(&updates[0]))
        .await
        .unwrap();
    assert!(later.is_empty());
    assert!(bot
        .get_star_transactions()
        .await
        .unwrap()
        .transactions
        .is_empty());
}

#[tokio::test]
async fn a_payment_answered_in_time_after_a_slow_start_is_paid() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(44, "en");
    let invoice_id = send_stars_invoice(&bot, 44, "pack:1:order-44", 10).await;

    // The bot only starts polling after a while, yet well within the window.
    let answering = tokio::spawn({
        let bot = bot.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            answer_next_pre_checkout(bot, None).await.unwrap()
        }
    });
    let outcome = tg
        .pay_invoice_within(&buyer, invoice_id, "charge-44", Duration::from_secs(5))
        .await;
    answering.await.unwrap();
    assert!(
        matches!(outcome, PaymentOutcome::Paid { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_repeated_successful_payment_arrives_again_as_a_new_update() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(45, "en");
    let invoice_id = send_stars_invoice(&bot, 45, "pack:10:order-45", 250).await;
    let answering = answer_next_pre_checkout(bot.clone(), None);
    let outcome = tg.pay_invoice(&buyer, invoice_id, "charge-45").await;
    let (_, offset) = answering.await.unwrap();
    let PaymentOutcome::Paid { message_id } = outcome else {
        panic!("not paid: {outcome:?}")
    };

    let first = bot.get_updates().offset(offset).await.unwrap();
    assert_eq!(first.len(), 1);
    // Confirmed, then delivered again.
    let offset = offset_after(&first[0]);
    assert!(bot.get_updates().offset(offset).await.unwrap().is_empty());
    let update_id = tg.repeat_message(&buyer, message_id);

    let second = bot.get_updates().offset(offset).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(i64::from(second[0].id.0), update_id);
    assert!(second[0].id.0 > first[0].id.0);
    let (UpdateKind::Message(once), UpdateKind::Message(twice)) = (&first[0].kind, &second[0].kind)
    else {
        panic!("not messages: {first:?} {second:?}")
    };
    assert_eq!(once, twice);
    assert_eq!(
        twice
            .successful_payment()
            .unwrap()
            .telegram_payment_charge_id
            .0,
        "charge-45"
    );
    // Telegram still holds one payment.
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
#[should_panic(expected = "sent no invoice with message id")]
async fn paying_a_message_that_is_not_an_invoice_panics() {
    let tg = start().await;
    let message = bot(&tg).send_message(ChatId(46), "hi").await.unwrap();
    tg.pay_invoice(
        &TestUser::new(46, "en"),
        i64::from(message.id.0),
        "charge-46",
    )
    .await;
}

#[test]
#[should_panic(expected = "no message 99 was delivered in chat 47")]
fn repeating_a_message_never_delivered_panics() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tg = runtime.block_on(start());
    tg.repeat_message(&TestUser::new(47, "en"), 99);
}
