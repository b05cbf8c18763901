use std::time::{Duration, Instant};

use emulators::telegram::{
    Fault, SentKind, TelegramConfig, TelegramEmulator, TestUser, VideoSource,
};
use serde_json::{json, Value};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LabeledPrice, MediaKind,
    MessageEntityKind, MessageKind, UpdateKind,
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

fn keyboard() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Portrait", "fmt:portrait"),
        InlineKeyboardButton::callback("Landscape", "fmt:landscape"),
    ]])
}

fn methods(tg: &TelegramEmulator) -> Vec<String> {
    tg.calls().into_iter().map(|c| c.method).collect()
}

#[tokio::test]
async fn get_me_parses_with_teloxide() {
    let tg = start().await;
    let me = bot(&tg).get_me().await.unwrap();
    assert_eq!(me.username(), "neurocards_test_bot");
    assert!(me.user.is_bot);
    assert_eq!(me.user.id, UserId(123_456));
    let calls = tg.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "getMe");
    assert!(calls[0].token_ok);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let tg = start().await;
    let wrong = Bot::new("999:WRONG").set_api_url(reqwest::Url::parse(&tg.base_url()).unwrap());
    let error = wrong.get_me().await.unwrap_err();
    assert!(
        matches!(error, RequestError::Api(ApiError::InvalidToken)),
        "{error:?}"
    );
    assert!(!tg.calls()[0].token_ok);

    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/bot999:WRONG/getMe", tg.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
}

#[tokio::test]
async fn updates_from_users_parse_and_an_offset_confirms_them() {
    let tg = start().await;
    let bot = bot(&tg);
    let alice = TestUser::new(1001, "ru");
    let text_id = tg.send_text(&alice, "/start promo");
    let photo_id = tg.send_photo(&alice, vec![0xFF, 0xD8, 0xFF, 0xE0, 9, 9]);
    assert!(photo_id > text_id);

    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 2);
    let UpdateKind::Message(first) = &updates[0].kind else {
        panic!("not a message: {:?}", updates[0].kind)
    };
    assert_eq!(first.id.0, i32::try_from(text_id).unwrap());
    assert_eq!(first.text(), Some("/start promo"));
    assert_eq!(first.chat.id, ChatId(1001));
    let from = first.from.as_ref().unwrap();
    assert_eq!(from.language_code.as_deref(), Some("ru"));
    assert!(!from.is_bot);
    let entities = first.entities().unwrap();
    assert_eq!(entities[0].kind, MessageEntityKind::BotCommand);
    assert_eq!(entities[0].length, "/start".len());

    let UpdateKind::Message(second) = &updates[1].kind else {
        panic!("not a message")
    };
    let sizes = second.photo().unwrap();
    assert_eq!(sizes.len(), 3);
    assert!(sizes[2].width > sizes[0].width);

    // The same updates come back until an offset confirms them.
    assert_eq!(bot.get_updates().await.unwrap().len(), 2);
    let next = i32::try_from(updates[1].id.0 + 1).unwrap();
    assert!(bot.get_updates().offset(next).await.unwrap().is_empty());
    assert!(bot.get_updates().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_long_poll_wakes_as_soon_as_an_update_arrives() {
    let tg = start().await;
    let bot = bot(&tg);
    let started = Instant::now();
    let poll = tokio::spawn(async move { bot.get_updates().timeout(10).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    tg.send_text(&TestUser::new(7, "en"), "hello");
    let updates = poll.await.unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(3));

    // With nothing queued, a short poll answers empty after its timeout.
    let started = Instant::now();
    let next = i32::try_from(updates[0].id.0 + 1).unwrap();
    let empty = self::bot(&tg)
        .get_updates()
        .offset(next)
        .timeout(1)
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_message_with_a_keyboard_is_sent_its_button_pressed_answered_and_edited() {
    let tg = start().await;
    let bot = bot(&tg);
    let alice = TestUser::new(42, "en");
    tg.send_text(&alice, "/start");

    let sent = bot
        .send_message(ChatId(42), "Choose a format")
        .reply_markup(keyboard())
        .await
        .unwrap();
    assert_eq!(sent.text(), Some("Choose a format"));
    assert_eq!(sent.reply_markup(), Some(&keyboard()));
    assert_eq!(sent.from.as_ref().map(|u| u.is_bot), Some(true));

    let query_id = tg.press_button(&alice, i64::from(sent.id.0), "fmt:portrait");
    let updates = bot.get_updates().await.unwrap();
    let query = updates
        .iter()
        .find_map(|u| match &u.kind {
            UpdateKind::CallbackQuery(q) => Some(q.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(query.id.0, query_id);
    assert_eq!(query.data.as_deref(), Some("fmt:portrait"));
    assert_eq!(query.regular_message().map(|m| m.id), Some(sent.id));

    bot.answer_callback_query(query.id.clone()).await.unwrap();
    assert_eq!(tg.answered_callbacks(), [query_id]);

    let edited = bot
        .edit_message_text(ChatId(42), sent.id, "Portrait it is")
        .await
        .unwrap();
    assert_eq!(edited.text(), Some("Portrait it is"));
    assert!(edited.edit_date().is_some());
    // Telegram drops the keyboard of an edit that does not repeat it.
    assert_eq!(edited.reply_markup(), None);

    let messages = tg.sent(42);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].kind, SentKind::Text);
    assert_eq!(messages[0].text.as_deref(), Some("Portrait it is"));
    assert_eq!(messages[0].edits, 1);
    assert_eq!(messages[0].reply_markup, None);

    // An edit that changes nothing is refused, as by Telegram.
    let error = bot
        .edit_message_text(ChatId(42), sent.id, "Portrait it is")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RequestError::Api(ApiError::MessageNotModified)),
        "{error:?}"
    );

    let marked = bot
        .edit_message_reply_markup(ChatId(42), sent.id)
        .reply_markup(keyboard())
        .await
        .unwrap();
    assert_eq!(marked.reply_markup(), Some(&keyboard()));
    assert_eq!(tg.sent(42)[0].edits, 2);

    assert_eq!(
        methods(&tg),
        [
            "sendMessage",
            "getUpdates",
            "answerCallbackQuery",
            "editMessageText",
            "editMessageText",
            "editMessageReplyMarkup"
        ]
    );
    let params = &tg.calls()[0].params;
    assert_eq!(params["chat_id"], 42);
    assert_eq!(
        params["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "fmt:portrait"
    );
}

#[tokio::test]
async fn videos_are_sent_by_url_by_upload_and_by_file_id() {
    let tg = start().await;
    let bot = bot(&tg);
    let url = reqwest::Url::parse("http://127.0.0.1:9/videos/task_1.mp4").unwrap();
    let by_url = bot
        .send_video(ChatId(5), InputFile::url(url.clone()))
        .caption("Your video")
        .await
        .unwrap();
    let video = by_url.video().unwrap();
    assert!(video.file.id.0.starts_with("video_"));
    assert_eq!((video.width, video.height), (720, 1280));
    assert_eq!(by_url.caption(), Some("Your video"));

    let bytes = vec![7u8; 4096];
    let by_upload = bot
        .send_video(
            ChatId(5),
            InputFile::memory(bytes.clone()).file_name("ad.mp4"),
        )
        .await
        .unwrap();
    let uploaded = by_upload.video().unwrap().clone();
    assert_eq!(uploaded.file.size, 4096);
    assert_ne!(uploaded.file.id, video.file.id);

    let by_id = bot
        .send_video(ChatId(5), InputFile::file_id(uploaded.file.id.clone()))
        .await
        .unwrap();
    assert_eq!(by_id.video().unwrap().file.id, uploaded.file.id);

    let sent = tg.sent(5);
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0].kind,
        SentKind::Video {
            source: VideoSource::Url(url.to_string()),
            file_id: video.file.id.0.clone()
        }
    );
    assert_eq!(sent[0].text.as_deref(), Some("Your video"));
    assert_eq!(
        sent[1].kind,
        SentKind::Video {
            source: VideoSource::Upload {
                bytes: 4096,
                file_name: Some("ad.mp4".to_owned())
            },
            file_id: uploaded.file.id.0.clone()
        }
    );
    assert!(
        matches!(&sent[2].kind, SentKind::Video { source: VideoSource::FileId(id), .. } if *id == uploaded.file.id.0)
    );

    let calls = tg.calls();
    assert_eq!(calls[1].method, "sendVideo");
    assert_eq!(calls[1].params["video"], "<upload 4096 bytes>");
    assert_eq!(calls[0].params["video"], url.as_str());

    // The uploaded video can be fetched back, as Telegram serves a bot's own files.
    let file = bot.get_file(uploaded.file.id.clone()).await.unwrap();
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, bytes);
}

#[tokio::test]
async fn a_received_photo_downloads_with_teloxide() {
    let tg = start().await;
    let bot = bot(&tg);
    let photo: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..=255u8).cycle().take(10_000))
        .collect();
    tg.send_photo(&TestUser::new(3, "en"), photo.clone());
    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::Message(message) = &updates[0].kind else {
        panic!("not a message")
    };
    let largest = message.photo().unwrap().last().unwrap().clone();
    let file = bot.get_file(largest.file.id.clone()).await.unwrap();
    assert!(file.path.starts_with("photos/"));
    assert_eq!(file.size as usize, photo.len());
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, photo);

    let id = tg.add_file(b"\x89PNG\r\n\x1a\nmore".to_vec());
    let file = bot.get_file(id.into()).await.unwrap();
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, b"\x89PNG\r\n\x1a\nmore");
}

#[tokio::test]
async fn documents_and_odd_messages_parse() {
    let tg = start().await;
    let bot = bot(&tg);
    let user = TestUser::new(11, "en");
    tg.send_document(&user, b"%PDF-1.4".to_vec(), "brief.pdf", "application/pdf");
    tg.send_message_json(
        &user,
        json!({"voice": {"file_id": "v1", "file_unique_id": "uv1", "duration": 3, "mime_type": "audio/ogg", "file_size": 10}}),
    );
    let updates = bot.get_updates().await.unwrap();
    let kinds: Vec<bool> = updates
        .iter()
        .map(|u| match &u.kind {
            UpdateKind::Message(m) => match &m.kind {
                MessageKind::Common(c) => {
                    matches!(c.media_kind, MediaKind::Document(_) | MediaKind::Voice(_))
                }
                _ => false,
            },
            _ => false,
        })
        .collect();
    assert_eq!(kinds, [true, true]);
    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!()
    };
    assert_eq!(
        m.document().unwrap().file_name.as_deref(),
        Some("brief.pdf")
    );
}

#[tokio::test]
async fn a_stars_invoice_is_sent_and_pre_checkout_is_answered() {
    let tg = start().await;
    let bot = bot(&tg);
    let buyer = TestUser::new(77, "en");
    let invoice = bot
        .send_invoice(
            ChatId(77),
            "10 videos",
            "A pack of ten generations",
            "pack:10:order-1",
            "XTR",
            [LabeledPrice::new("10 videos", 250)],
        )
        .await
        .unwrap();
    let parsed = invoice.invoice().unwrap();
    assert_eq!(parsed.currency, "XTR");
    assert_eq!(parsed.total_amount, 250);
    assert_eq!(
        tg.sent(77)[0].kind,
        SentKind::Invoice {
            payload: "pack:10:order-1".to_owned(),
            currency: "XTR".to_owned(),
            amount: 250
        }
    );

    let query_id = tg.pre_checkout(&buyer, "XTR", 250, "pack:10:order-1");
    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::PreCheckoutQuery(query) = &updates[0].kind else {
        panic!("not a pre-checkout query")
    };
    assert_eq!(query.invoice_payload, "pack:10:order-1");
    bot.answer_pre_checkout_query(query.id.clone(), true)
        .await
        .unwrap();
    assert_eq!(tg.pre_checkout_answers()[0].query_id, query_id);
    assert!(tg.pre_checkout_answers()[0].ok);

    tg.successful_payment(&buyer, "XTR", 250, "pack:10:order-1", "charge-1");
    let next = i32::try_from(updates[0].id.0 + 1).unwrap();
    let updates = bot.get_updates().offset(next).await.unwrap();
    let UpdateKind::Message(paid) = &updates[0].kind else {
        panic!("not a message")
    };
    let payment = paid.successful_payment().unwrap();
    assert_eq!(payment.telegram_payment_charge_id.0, "charge-1");

    // Two prices are not a valid Stars invoice.
    let error = bot
        .send_invoice(
            ChatId(77),
            "t",
            "d",
            "p",
            "XTR",
            [LabeledPrice::new("a", 1), LabeledPrice::new("b", 2)],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RequestError::Api(_)), "{error:?}");
}

#[tokio::test]
async fn a_blocked_chat_gives_teloxide_bot_blocked() {
    let tg = start().await;
    let bot = bot(&tg);
    tg.inject(Fault::Blocked { chat_id: 9 });
    let error = bot.send_message(ChatId(9), "hi").await.unwrap_err();
    assert!(
        matches!(error, RequestError::Api(ApiError::BotBlocked)),
        "{error:?}"
    );
    let error = bot
        .send_video(ChatId(9), InputFile::memory(vec![1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RequestError::Api(ApiError::BotBlocked)),
        "{error:?}"
    );
    bot.send_message(ChatId(10), "others still get messages")
        .await
        .unwrap();
    assert!(tg.sent(9).is_empty());

    tg.clear_faults();
    bot.send_message(ChatId(9), "unblocked").await.unwrap();
    assert_eq!(tg.sent(9).len(), 1);
}

#[tokio::test]
async fn too_many_requests_gives_teloxide_retry_after_once() {
    let tg = start().await;
    let bot = bot(&tg);
    tg.inject(Fault::TooManyRequests {
        method: "sendMessage".to_owned(),
        retry_after: 3,
    });
    let error = bot.send_message(ChatId(1), "hi").await.unwrap_err();
    match error {
        RequestError::RetryAfter(seconds) => assert_eq!(seconds.seconds(), 3),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    bot.send_message(ChatId(1), "hi again").await.unwrap();
    assert_eq!(tg.sent(1).len(), 1);
}

#[tokio::test]
async fn a_refused_video_url_fails_once_and_an_upload_succeeds() {
    let tg = start().await;
    let bot = bot(&tg);
    tg.inject(Fault::RefuseVideoUrl);
    let url = reqwest::Url::parse("http://127.0.0.1:9/v.mp4").unwrap();
    let error = bot
        .send_video(ChatId(2), InputFile::url(url.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RequestError::Api(ApiError::FailedToGetUrlContent)),
        "{error:?}"
    );
    bot.send_video(ChatId(2), InputFile::memory(vec![0u8; 100]))
        .await
        .unwrap();
    // The fault was used up: a URL works again.
    bot.send_video(ChatId(2), InputFile::url(url))
        .await
        .unwrap();
    assert_eq!(tg.sent(2).len(), 2);
}

#[tokio::test]
async fn a_server_error_fault_answers_500_once() {
    let tg = start().await;
    tg.inject(Fault::ServerError {
        method: "sendMessage".to_owned(),
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/bot{}/sendMessage", tg.base_url(), tg.token());
    let response = client
        .post(&url)
        .json(&json!({"chat_id": 1, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["description"], "Internal Server Error");
    let response = client
        .post(&url)
        .json(&json!({"chat_id": 1, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn parameters_are_accepted_as_query_form_and_json_in_any_method_case() {
    let tg = start().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("{}/bot{}", tg.base_url(), tg.token());
    let by_query: Value = client
        .get(format!("{base}/sendmessage?chat_id=5&text=from%20query"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_query["ok"], true);
    let by_form: Value = client
        .post(format!("{base}/SENDMESSAGE"))
        .form(&[
            ("chat_id", "5"),
            ("text", "from form"),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}"#,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_form["result"]["reply_markup"]["inline_keyboard"][0][0]["text"],
        "a"
    );
    let texts: Vec<String> = tg.sent(5).into_iter().filter_map(|m| m.text).collect();
    assert_eq!(texts, ["from query", "from form"]);
    assert_eq!(methods(&tg), ["sendMessage", "sendMessage"]);
}

#[tokio::test]
async fn enforce_limits_answers_429_to_a_second_send_within_a_second() {
    let tg = TelegramEmulator::start(TelegramConfig {
        enforce_limits: true,
        ..TelegramConfig::default()
    })
    .await
    .unwrap();
    let bot = bot(&tg);
    bot.send_message(ChatId(1), "one").await.unwrap();
    let error = bot.send_message(ChatId(1), "two").await.unwrap_err();
    assert!(
        matches!(error, RequestError::RetryAfter(s) if s.seconds() == 1),
        "{error:?}"
    );
    // Another chat, and edits, are not held back.
    let other = bot.send_message(ChatId(2), "other").await.unwrap();
    bot.edit_message_text(ChatId(2), other.id, "edited")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1050)).await;
    bot.send_message(ChatId(1), "two").await.unwrap();
    assert_eq!(tg.sent(1).len(), 2);
}

#[tokio::test]
async fn wait_for_sent_returns_once_the_bot_has_sent_enough() {
    let tg = start().await;
    let bot = bot(&tg);
    let sender = tokio::spawn(async move {
        for text in ["a", "b"] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bot.send_message(ChatId(8), text).await.unwrap();
        }
    });
    let sent = tg.wait_for_sent(8, 2, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 2);
    sender.await.unwrap();
    let started = Instant::now();
    let sent = tg.wait_for_sent(8, 3, Duration::from_millis(200)).await;
    assert_eq!(sent.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(190));
}

#[tokio::test]
async fn webhook_and_command_setup_calls_are_answered() {
    let tg = start().await;
    let bot = bot(&tg);
    bot.delete_webhook().await.unwrap();
    let info = bot.get_webhook_info().await.unwrap();
    assert!(info.url.is_none());
    bot.set_my_commands([teloxide::types::BotCommand::new("start", "Start")])
        .await
        .unwrap();
    let commands = bot.get_my_commands().await.unwrap();
    assert_eq!(commands[0].command, "start");
    bot.send_chat_action(ChatId(1), teloxide::types::ChatAction::UploadVideo)
        .await
        .unwrap();
    assert_eq!(
        methods(&tg),
        [
            "deleteWebhook",
            "getWebhookInfo",
            "setMyCommands",
            "getMyCommands",
            "sendChatAction"
        ]
    );
}
