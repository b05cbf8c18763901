//! The Telegram emulator's transport faults: a late answer, and refused connections.

use std::time::{Duration, Instant};

use emulators::telegram::{Fault, SentKind, TelegramConfig, TelegramEmulator, VideoSource};
use serde_json::{json, Value};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile};
use teloxide::RequestError;

async fn start() -> TelegramEmulator {
    TelegramEmulator::start(TelegramConfig::default())
        .await
        .unwrap()
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

fn bot_with(tg: &TelegramEmulator, client: reqwest::Client) -> Bot {
    Bot::with_client(tg.token(), client).set_api_url(reqwest::Url::parse(&tg.base_url()).unwrap())
}

fn api(tg: &TelegramEmulator, method: &str) -> String {
    format!("{}/bot{}/{method}", tg.base_url(), tg.token())
}

async fn send_message(
    client: &reqwest::Client,
    tg: &TelegramEmulator,
    chat_id: i64,
    text: &str,
) -> reqwest::Result<Value> {
    client
        .post(api(tg, "sendMessage"))
        .json(&json!({"chat_id": chat_id, "text": text}))
        .send()
        .await?
        .json()
        .await
}

#[tokio::test]
async fn a_late_send_message_is_recorded_at_once_and_answered_after_the_delay() {
    let tg = start().await;
    tg.inject(Fault::LateAnswer {
        method: "SENDMESSAGE".to_owned(),
        delay: Duration::from_secs(3),
    });
    let started = Instant::now();
    let error = send_message(&client(Duration::from_millis(300)), &tg, 3, "late")
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The client gave up, yet Telegram has the message.
    let sent = tg.sent(3);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text.as_deref(), Some("late"));

    // A patient client gets the answer, once the delay is over.
    tg.inject(Fault::LateAnswer {
        method: "sendMessage".to_owned(),
        delay: Duration::from_millis(600),
    });
    let patient = client(Duration::from_secs(10));
    let started = Instant::now();
    let answer = send_message(&patient, &tg, 3, "later").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(550));
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["result"]["text"], "later");
    assert_eq!(tg.sent(3).len(), 2);

    // One-shot: the next call is answered at once.
    let started = Instant::now();
    send_message(&patient, &tg, 3, "prompt").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(tg.sent(3).len(), 3);
}

#[tokio::test]
async fn a_late_send_video_times_out_in_teloxide_but_is_delivered() {
    let tg = start().await;
    let bot = bot_with(&tg, client(Duration::from_millis(300)));
    // teloxide's own spelling of the method.
    tg.inject(Fault::LateAnswer {
        method: "SendVideo".to_owned(),
        delay: Duration::from_secs(2),
    });
    let url = reqwest::Url::parse("http://127.0.0.1:9/videos/task_1.mp4").unwrap();
    let error = bot
        .send_video(ChatId(4), InputFile::url(url.clone()))
        .caption("Your video")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RequestError::Network(e) if e.is_timeout()),
        "{error:?}"
    );
    let sent = tg.sent(4);
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(&sent[0].kind, SentKind::Video { source: VideoSource::Url(u), .. } if *u == url.to_string())
    );
    assert_eq!(sent[0].text.as_deref(), Some("Your video"));
    // Other methods are answered at once meanwhile.
    bot.send_message(ChatId(4), "still there").await.unwrap();
}

#[tokio::test]
async fn refused_connections_fail_to_connect_then_the_same_port_serves_the_same_state() {
    let tg = start().await;
    let base_url = tg.base_url();
    // The same client throughout, so its pooled keep-alive connection is put to the test too.
    let http = client(Duration::from_secs(5));
    let bot = bot_with(&tg, http.clone());
    let before = bot.send_message(ChatId(6), "before").await.unwrap();
    let file_id = tg.add_file(b"\x89PNG\r\n\x1a\nimage".to_vec());

    let window = Duration::from_secs(1);
    let opened = Instant::now();
    tg.refuse_connections_for(window);
    // Well inside the window, and late enough for the pooled connection's close to be seen.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = bot.get_me().await.unwrap_err();
    assert!(
        matches!(&error, RequestError::Network(e) if e.is_connect()),
        "{error:?}"
    );
    let error = send_message(&client(Duration::from_secs(5)), &tg, 6, "during")
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert!(opened.elapsed() < Duration::from_millis(700));
    assert_eq!(tg.sent(6).len(), 1);

    tokio::time::sleep_until((opened + window + Duration::from_millis(400)).into()).await;
    assert_eq!(tg.base_url(), base_url);
    let after = bot.send_message(ChatId(6), "after").await.unwrap();
    assert!(after.id.0 > before.id.0);
    let texts: Vec<String> = tg.sent(6).into_iter().filter_map(|m| m.text).collect();
    assert_eq!(texts, ["before", "after"]);
    let file = bot.get_file(file_id.into()).await.unwrap();
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, b"\x89PNG\r\n\x1a\nimage");
    // The "during" request never got through.
    let methods: Vec<String> = tg.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["sendMessage", "sendMessage", "getFile"]);
}

#[tokio::test]
async fn a_request_in_flight_when_the_window_opens_is_cut() {
    let tg = start().await;
    let bot = bot_with(&tg, client(Duration::from_secs(30)));
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(20).await }
    });
    // Until the long poll has reached the emulator.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tg.calls().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tg.calls().len(), 1);

    let started = Instant::now();
    tg.refuse_connections_for(Duration::from_millis(500));
    let result = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the long poll outlived the window's opening")
        .unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, RequestError::Network(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The state API works during the window; the update waits for the bot to come back.
    tg.send_text(&emulators::telegram::TestUser::new(12, "en"), "hello");
    tokio::time::sleep_until((started + Duration::from_millis(900)).into()).await;
    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 1);
}

#[tokio::test]
async fn a_second_window_extends_the_first() {
    let tg = start().await;
    let http = client(Duration::from_secs(5));
    let opened = Instant::now();
    tg.refuse_connections_for(Duration::from_millis(300));
    tg.refuse_connections_for(Duration::from_millis(1200));
    // Past the first window, well inside the second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let error = http.get(api(&tg, "getMe")).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert!(opened.elapsed() < Duration::from_millis(1000));
    tokio::time::sleep_until((opened + Duration::from_millis(1600)).into()).await;
    let me: Value = http
        .get(api(&tg, "getMe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["ok"], true);
}
