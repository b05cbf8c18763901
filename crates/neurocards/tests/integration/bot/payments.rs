//! Buying credits with Telegram Stars through the emulator: packages, the invoice, the
//! checkout, crediting exactly once, refunds Telegram reports, `/paysupport` and `/terms`.

use std::time::{Duration, Instant};

use emulators::telegram::{PreCheckoutAnswer, SentKind, SentMessage, TestUser};
use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig};

crate::both_engines!(
    a_package_is_bought_and_credited_once_however_often_telegram_repeats_it,
    a_checkout_at_an_old_price_or_for_someone_else_is_refused_and_nothing_is_credited,
    a_checkout_is_answered_at_once_while_fifty_users_are_being_served,
    a_refund_from_telegram_takes_the_credits_back_once,
    paysupport_and_terms_answer_in_both_languages,
    a_payment_whose_update_was_lost_is_credited_by_reconcile_exactly_once,
    a_refund_is_refused_when_credits_were_spent_unless_forced_and_never_twice,
    an_admin_refunds_from_the_bot,
    a_refund_whose_answer_never_came_is_recorded_once_when_asked_again,
);

/// `/buy`, then the package button at `index`; returns the invoice.
async fn invoice(rig: &BotRig, user: &TestUser, index: usize) -> (String, i64) {
    let screen = rig.say(user, "/buy", 1).await.remove(0);
    assert!(
        buttons(&screen)
            .iter()
            .all(|(_, data)| data.starts_with("pkg:")),
        "{screen:?}"
    );
    let sent = rig.press(user, &screen, index, 1).await;
    match &sent[0].kind {
        SentKind::Invoice {
            payload,
            currency,
            amount,
        } => {
            assert_eq!(currency, "XTR");
            (payload.clone(), *amount)
        }
        other => panic!("expected an invoice, got {other:?}"),
    }
}

/// Waits for the bot's answer to the checkout `query`.
async fn checkout_answer(rig: &BotRig, query: &str) -> PreCheckoutAnswer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = rig
            .telegram
            .pre_checkout_answers()
            .into_iter()
            .find(|answer| answer.query_id == query)
        {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "checkout {query} was never answered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pay(
    rig: &BotRig,
    user: &TestUser,
    payload: &str,
    stars: i64,
    charge: &str,
) -> SentMessage {
    let query = rig.telegram.pre_checkout(user, "XTR", stars, payload);
    assert!(checkout_answer(rig, &query).await.ok, "checkout refused");
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .successful_payment(user, "XTR", stars, payload, charge);
    rig.replies(user, before, 1).await.remove(0)
}

async fn a_package_is_bought_and_credited_once_however_often_telegram_repeats_it(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(501, "en", 0).await;
    let (payload, stars) = invoice(&rig, &user, 0).await;
    assert_eq!((payload.as_str(), stars), ("buy:start:501", 100));

    let receipt = pay(&rig, &user, &payload, stars, "charge-1").await;
    let receipt = text_of(&receipt);
    assert!(receipt.contains("5 credits added"), "{receipt}");
    assert!(receipt.contains("charge-1"), "{receipt}");
    assert_eq!(rig.balance(&user).await, 5);

    // Telegram delivers the same update again.
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .successful_payment(&user, "XTR", stars, &payload, "charge-1");
    let again = text_of(&rig.replies(&user, before, 1).await[0]);
    assert!(again.contains("already been credited"), "{again}");
    assert_eq!(rig.balance(&user).await, 5);

    // The same invoice paid a second time is a second payment, with its own charge id.
    pay(&rig, &user, &payload, stars, "charge-2").await;
    assert_eq!(rig.balance(&user).await, 10);
    rig.assert_sound().await;
}

async fn a_checkout_at_an_old_price_or_for_someone_else_is_refused_and_nothing_is_credited(
    engine: Engine,
) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(502, "en", 0).await;
    let (payload, _) = invoice(&rig, &user, 0).await;

    let query = rig.telegram.pre_checkout(&user, "XTR", 90, &payload);
    let answer = checkout_answer(&rig, &query).await;
    assert!(!answer.ok);
    let message = answer.error_message.unwrap_or_default();
    assert!(message.contains("changed to 100 ⭐"), "{message}");

    let stranger = rig.user(503, "ru", 0).await;
    let query = rig.telegram.pre_checkout(&stranger, "XTR", 100, &payload);
    let answer = checkout_answer(&rig, &query).await;
    assert!(!answer.ok);
    assert!(
        answer
            .error_message
            .unwrap_or_default()
            .contains("другому пользователю"),
        "the refusal is in the payer's language"
    );

    let query = rig
        .telegram
        .pre_checkout(&user, "XTR", 100, "buy:retired:502");
    assert!(!checkout_answer(&rig, &query).await.ok);
    assert_eq!(rig.balance(&user).await, 0);
    assert_eq!(rig.balance(&stranger).await, 0);
    rig.assert_sound().await;
}

async fn a_checkout_is_answered_at_once_while_fifty_users_are_being_served(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let buyer = rig.user(504, "en", 0).await;
    let (payload, stars) = invoice(&rig, &buyer, 0).await;
    let mut crowd = Vec::new();
    for n in 0..50 {
        crowd.push(rig.user(600 + n, "ru", 1).await);
    }
    for user in &crowd {
        rig.telegram.send_text(user, "/start");
        rig.telegram
            .send_photo(user, super::super::worker::rig::JPEG.to_vec());
    }
    let asked = Instant::now();
    let query = rig.telegram.pre_checkout(&buyer, "XTR", stars, &payload);
    assert!(checkout_answer(&rig, &query).await.ok);
    let waited = asked.elapsed();
    let polls = rig.telegram.calls();
    let poll = polls
        .iter()
        .find(|call| call.method == "getUpdates")
        .expect("the bot long-polls");
    assert!(
        poll.params.to_string().contains("pre_checkout_query"),
        "checkouts must be asked for: {}",
        poll.params
    );
    println!("checkout answered after {waited:?} behind 100 updates of 50 users");
    // Telegram cancels a payment whose checkout is not answered within 10 s.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    for user in &crowd {
        rig.telegram
            .wait_for_sent(user.id, 2, Duration::from_secs(30))
            .await;
    }
}

async fn a_refund_from_telegram_takes_the_credits_back_once(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(505, "en", 2).await;
    let (payload, stars) = invoice(&rig, &user, 0).await;
    pay(&rig, &user, &payload, stars, "charge-r").await;
    assert_eq!(rig.balance(&user).await, 7);

    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .refunded_payment(&user, stars, &payload, "charge-r");
    let told = text_of(&rig.replies(&user, before, 1).await[0]);
    assert!(told.contains("5 credits are taken"), "{told}");
    assert_eq!(rig.balance(&user).await, 2);

    // A repeated refund update takes nothing more.
    rig.telegram
        .refunded_payment(&user, stars, &payload, "charge-r");
    rig.say(&user, "/balance", 1).await;
    assert_eq!(rig.balance(&user).await, 2);
    // The admins are told once, in their language (Russian: the admin never wrote to the
    // bot).
    let alerts: Vec<String> = rig
        .telegram
        .sent(super::rig::ADMIN)
        .iter()
        .map(text_of)
        .filter(|text| text.contains("charge-r"))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains("пользователя 505 возвращён")
            && alerts[0].contains("списано кредитов: 5"),
        "{alerts:?}"
    );
    rig.assert_sound().await;
}

async fn paysupport_and_terms_answer_in_both_languages(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let english = rig.user(506, "en", 0).await;
    let russian = rig.user(507, "ru", 0).await;
    let (payload, stars) = invoice(&rig, &english, 1).await;
    pay(&rig, &english, &payload, stars, "charge-support").await;

    let support = text_of(&rig.say(&english, "/paysupport", 1).await[0]);
    assert!(support.contains("charge-support"), "{support}");
    assert!(support.contains("Help with payments"), "{support}");
    let support = text_of(&rig.say(&russian, "/paysupport", 1).await[0]);
    assert!(support.contains("Помощь с оплатой"), "{support}");
    assert!(support.contains("пока нет"), "{support}");

    let terms = text_of(&rig.say(&english, "/terms", 1).await[0]);
    assert!(terms.starts_with("Terms of use"), "{terms}");
    let terms = text_of(&rig.say(&russian, "/terms", 1).await[0]);
    assert!(terms.starts_with("Условия использования"), "{terms}");
}

async fn a_payment_whose_update_was_lost_is_credited_by_reconcile_exactly_once(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(510, "en", 0).await;
    let (payload, stars) = invoice(&rig, &user, 1).await;
    pay(&rig, &user, &payload, stars, "seen").await;
    // Paid, but the update never reached the bot (an outage longer than Telegram keeps it).
    rig.telegram
        .record_payment_only(&user, stars, &payload, "lost-1");
    assert_eq!(rig.balance(&user).await, 20);

    let billing = rig.billing();
    let report = billing.reconcile().await.expect("reconciling");
    assert_eq!(report.credited, ["lost-1"]);
    assert_eq!(report.transactions_read, 2);
    assert_eq!(rig.balance(&user).await, 40);
    let again = billing.reconcile().await.expect("reconciling again");
    assert!(again.credited.is_empty() && again.refunds_recorded.is_empty());
    assert_eq!(rig.balance(&user).await, 40);

    // A refund Telegram made while the bot was away is found the same way.
    rig.telegram
        .refunded_payment(&user, stars, &payload, "seen");
    rig.say(&user, "/balance", 2).await;
    let after = billing
        .reconcile()
        .await
        .expect("reconciling after a refund");
    assert!(
        after.refunds_recorded.is_empty(),
        "the update already recorded it"
    );
    assert_eq!(rig.balance(&user).await, 20);
    rig.assert_sound().await;
}

async fn a_refund_is_refused_when_credits_were_spent_unless_forced_and_never_twice(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(511, "en", 0).await;
    let (payload, stars) = invoice(&rig, &user, 0).await;
    pay(&rig, &user, &payload, stars, "spent").await;
    rig.store()
        .grant(
            neurocards::domain::UserId(user.id),
            -3,
            Some("spent on videos"),
        )
        .await
        .expect("spending");
    let billing = rig.billing();

    let refused = billing
        .refund("spent", false)
        .await
        .expect_err("partly spent");
    assert!(refused.to_string().contains("has 2 left"), "{refused}");
    assert!(
        rig.telegram.star_refunds().is_empty(),
        "Telegram was asked anyway"
    );
    assert_eq!(rig.balance(&user).await, 2);

    let done = billing
        .refund("spent", true)
        .await
        .expect("a forced refund");
    assert_eq!((done.recorded.taken_back, done.recorded.balance), (2, 0));
    assert_eq!(rig.telegram.star_refunds(), [(user.id, "spent".to_owned())]);

    let twice = billing
        .refund("spent", true)
        .await
        .expect_err("refunded already");
    assert!(twice.to_string().contains("already refunded"), "{twice}");
    assert_eq!(rig.telegram.star_refunds().len(), 1, "asked Telegram twice");
    let unknown = billing.refund("nope", true).await.expect_err("unknown");
    assert!(unknown.to_string().contains("no payment nope"), "{unknown}");
    rig.assert_sound().await;
}

async fn an_admin_refunds_from_the_bot(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let buyer = rig.user(512, "en", 0).await;
    let admin = rig.user(super::rig::ADMIN, "en", 0).await;
    let (payload, stars) = invoice(&rig, &buyer, 0).await;
    pay(&rig, &buyer, &payload, stars, "by-admin").await;

    let usage = text_of(&rig.say(&admin, "/refund", 1).await[0]);
    assert!(usage.starts_with("Usage: /refund"), "{usage}");
    let done = text_of(&rig.say(&admin, "/refund by-admin", 1).await[0]);
    assert!(done.contains("Refunded 100 Stars to user 512"), "{done}");
    assert_eq!(rig.balance(&buyer).await, 0);
    // For everyone else the command does not exist.
    let hint = text_of(&rig.say(&buyer, "/refund by-admin", 1).await[0]);
    assert!(hint.contains("do not know this command"), "{hint}");
    rig.assert_sound().await;
}

async fn a_refund_whose_answer_never_came_is_recorded_once_when_asked_again(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(513, "en", 0).await;
    let (payload, stars) = invoice(&rig, &user, 0).await;
    pay(&rig, &user, &payload, stars, "late").await;
    // Telegram refunds the Stars, but its answer comes after the client gave up (or the
    // process was killed right after the request went out).
    rig.telegram.inject(emulators::telegram::Fault::LateAnswer {
        method: "refundStarPayment".into(),
        delay: Duration::from_secs(3),
    });
    let billing = rig.billing_with_timeout(Duration::from_millis(500));
    let lost = billing.refund("late", false).await.expect_err("no answer");
    assert!(lost.to_string().contains("Telegram"), "{lost}");
    assert_eq!(
        rig.balance(&user).await,
        5,
        "nothing taken without an answer"
    );
    assert_eq!(
        rig.telegram.star_refunds().len(),
        1,
        "but the Stars went back"
    );

    // Asked again, Telegram says it was already refunded: the credits are taken back once.
    let done = billing.refund("late", false).await.expect("recorded now");
    assert_eq!((done.recorded.taken_back, done.recorded.balance), (5, 0));
    assert_eq!(
        rig.telegram.star_refunds().len(),
        1,
        "refunded once at Telegram"
    );
    let again = billing
        .refund("late", false)
        .await
        .expect_err("done already");
    assert!(again.to_string().contains("already refunded"), "{again}");
    rig.assert_sound().await;
}
