//! Webhook mode end to end: the emulator posts every update to the bot process's webhook with
//! the secret token; the process stores it in the inbox before it answers and processes it
//! from there.

use std::time::Duration;

use emulators::telegram::{PaymentOutcome, SentKind};
use neurocards::store::Engine;
use serde_json::json;

use super::rig::{buttons, has_button, text_of, BotRig, WEBHOOK_SECRET};

crate::both_engines!(
    webhook_mode_takes_a_payment_and_delivers_a_whole_order,
    a_request_without_the_right_secret_is_refused_and_not_processed,
    an_update_delivered_twice_is_processed_once,
    an_update_acknowledged_by_a_process_that_then_died_is_processed_after_restart,
);

async fn webhook_mode_takes_a_payment_and_delivers_a_whole_order(engine: Engine) {
    let rig = BotRig::with_webhook(engine).await;
    let user = rig.user(301, "en", 0).await;

    let screen = rig.say(&user, "/buy", 1).await.remove(0);
    let invoice = rig.press(&user, &screen, 0, 1).await.remove(0);
    assert!(
        matches!(invoice.kind, SentKind::Invoice { .. }),
        "{invoice:?}"
    );
    let before = rig.telegram.sent(user.id).len();
    let paid = rig
        .telegram
        .pay_invoice(&user, invoice.message_id, "charge-webhook-1")
        .await;
    assert!(matches!(paid, PaymentOutcome::Paid { .. }), "{paid:?}");
    rig.replies(&user, before, 1).await;
    assert_eq!(rig.balance(&user).await, 5, "the start package");

    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    let data = buttons(&counts)[1].1.clone();
    rig.telegram.press_button(&user, counts.message_id, &data);
    let summary = rig
        .wait_for(&user, before, |m| has_button(m, "more:"))
        .await;
    assert!(
        text_of(&summary).starts_with("Videos made: 3 of 3."),
        "{summary:?}"
    );
    let videos = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|message| matches!(message.kind, SentKind::Video { .. }))
        .count();
    assert_eq!(videos, 3);
    assert_eq!(rig.balance(&user).await, 2);

    // Everything came by the webhook (the checkout included), nothing by getUpdates, and
    // the inbox is empty.
    let kinds: Vec<String> = rig
        .telegram
        .webhook_delivered()
        .iter()
        .filter_map(|update| {
            update
                .as_object()?
                .keys()
                .find(|key| *key != "update_id")
                .cloned()
        })
        .collect();
    for kind in ["message", "callback_query", "pre_checkout_query"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    assert!(
        !rig.telegram
            .calls()
            .iter()
            .any(|call| call.method == "getUpdates"),
        "long polling in webhook mode"
    );
    assert_eq!(rig.store().inbox_backlog().await.unwrap(), 0);
    rig.assert_sound().await;
}

async fn a_request_without_the_right_secret_is_refused_and_not_processed(engine: Engine) {
    let rig = BotRig::with_webhook(engine).await;
    let user = rig.user(302, "en", 1).await;
    let update = json!({"update_id": 900_001, "message": {
        "message_id": 1, "date": 0,
        "chat": {"id": user.id, "type": "private", "first_name": "U"},
        "from": {"id": user.id, "is_bot": false, "first_name": "U", "language_code": "en"},
        "text": "/balance", "entities": [{"type": "bot_command", "offset": 0, "length": 8}]}});
    let http = reqwest::Client::new();
    let post = |secret: Option<&'static str>| {
        let mut request = http.post(rig.webhook_url()).json(&update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };

    for secret in [None, Some("wrong-secret"), Some("")] {
        let answer = post(secret).await.expect("the webhook answers");
        assert_eq!(answer.status(), 401, "secret {secret:?}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM telegram_inbox")
        .fetch_one(rig.store().pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "a refused update is not stored");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rig.telegram.sent(user.id).is_empty(),
        "a refused update is not processed"
    );

    let answer = post(Some(WEBHOOK_SECRET))
        .await
        .expect("the webhook answers");
    assert_eq!(answer.status(), 200);
    let reply = rig.replies(&user, 0, 1).await.remove(0);
    assert!(text_of(&reply).starts_with("Your balance:"), "{reply:?}");
}

async fn an_update_delivered_twice_is_processed_once(engine: Engine) {
    let rig = BotRig::with_webhook(engine).await;
    let user = rig.user(303, "en", 1).await;
    rig.say(&user, "/balance", 1).await;
    let first = rig
        .telegram
        .webhook_delivered()
        .into_iter()
        .find(|update| update["message"]["text"] == "/balance")
        .expect("the /balance update was delivered");

    // Telegram did not get the 200 in time and posts the same update again.
    let delivered = rig.telegram.webhook_delivered().len();
    rig.telegram.push_update(first.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.telegram.webhook_delivered().len() == delivered {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never delivered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A later update of the same chat is processed after it: had the repeat been stored,
    // its reply would come first.
    let after = rig.say(&user, "/help", 1).await;
    assert!(
        !text_of(&after[0]).starts_with("Your balance:"),
        "{after:?}"
    );
    let balances = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|message| text_of(message).starts_with("Your balance:"))
        .count();
    assert_eq!(balances, 1, "the repeated /balance was answered again");
}

async fn an_update_acknowledged_by_a_process_that_then_died_is_processed_after_restart(
    engine: Engine,
) {
    let mut rig = BotRig::with_webhook(engine).await;
    let user = rig.user(304, "en", 1).await;
    rig.restart_as_receiver_only().await;

    rig.telegram.send_text(&user, "/balance");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.telegram.webhook_delivered().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Answered 200, so Telegram will not deliver it again; the process is gone before it
    // processed it.
    assert_eq!(rig.telegram.pending_updates(), 0);
    assert_eq!(rig.store().inbox_backlog().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rig.telegram.sent(user.id).is_empty());

    rig.restart_bot().await;
    let reply = rig.replies(&user, 0, 1).await.remove(0);
    assert!(text_of(&reply).starts_with("Your balance:"), "{reply:?}");
    // Marked processed right after its reply went out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.store().inbox_backlog().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked processed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `neurocards webhook set|info|delete` against the emulator, as an operator runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_commands_register_show_and_remove_it_without_showing_a_secret() {
    let telegram = emulators::telegram::TelegramEmulator::start(Default::default())
        .await
        .expect("starting the Telegram emulator");
    let secret = "cli-secret-0123456789";
    let hook = "http://127.0.0.1:9/telegram/hook";
    let run = |args: &'static [&'static str], with_secret: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_neurocards"));
        command
            .args(args)
            .env("BOT_TOKEN", telegram.token())
            .env("TELEGRAM_API_URL", telegram.base_url())
            .env("WEBHOOK_URL", hook)
            .env_remove("RUST_LOG");
        if with_secret {
            command.env("WEBHOOK_SECRET", secret);
        } else {
            command.env_remove("WEBHOOK_SECRET");
        }
        let token = telegram.token();
        tokio::task::spawn_blocking(move || {
            let output = command.output().expect("running the neurocards binary");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            for text in [&stdout, &stderr] {
                assert!(!text.contains(secret), "the secret shown: {text}");
                assert!(!text.contains(&token), "the token shown: {text}");
            }
            (output.status.success(), stdout, stderr)
        })
    };

    let (ok, _, stderr) = run(&["webhook", "set"], false).await.unwrap();
    assert!(!ok && stderr.contains("WEBHOOK_SECRET"), "{stderr}");

    let (ok, stdout, stderr) = run(&["webhook", "set"], true).await.unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Webhook set"), "{stdout}");
    let registered = telegram
        .calls()
        .into_iter()
        .find(|call| call.method == "setWebhook")
        .expect("setWebhook was called");
    assert_eq!(registered.params["url"], hook);
    assert_eq!(registered.params["secret_token"], secret);
    assert_eq!(registered.params["drop_pending_updates"], "false");

    let (ok, stdout, stderr) = run(&["webhook", "info"], true).await.unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("Webhook: {hook}")), "{stdout}");
    assert!(
        stdout
            .contains("Update kinds: message, edited_message, callback_query, pre_checkout_query"),
        "{stdout}"
    );

    let (ok, _, stderr) = run(&["webhook", "delete"], true).await.unwrap();
    assert!(ok, "{stderr}");
    let (_, stdout, _) = run(&["webhook", "info"], true).await.unwrap();
    assert!(stdout.contains("Webhook: none"), "{stdout}");
}
