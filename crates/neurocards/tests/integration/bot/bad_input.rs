//! Bad input, one case per test: what a user (or a forger) may send that is not the next step
//! of the dialog. Every case checks the bot's answer (or its silence), that no credit moved and
//! no order was placed, and the data invariants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use emulators::telegram::{SentMessage, TestUser};
use neurocards::domain::UserId;
use neurocards::store::Engine;
use serde_json::{json, Value};
use teloxide::types::{Update, UpdateKind};

use super::rig::{buttons, has_button, text_of, BotRig, ADMIN};
use crate::worker::rig::JPEG;

crate::both_engines!(
    text_before_any_photo_asks_for_a_photo,
    a_sticker_is_not_a_photo,
    a_voice_message_is_not_a_photo,
    a_video_is_not_a_photo,
    a_video_note_is_not_a_photo,
    an_audio_file_is_not_a_photo,
    a_pdf_document_is_not_a_photo,
    a_gif_animation_is_not_a_photo,
    a_location_is_not_a_photo,
    a_contact_is_not_a_photo,
    a_dice_a_venue_and_a_poll_are_not_photos,
    an_image_document_declared_over_the_limit_is_too_large,
    an_image_document_of_eleven_megabytes_is_too_large,
    an_image_document_without_a_declared_size_is_checked_by_its_bytes,
    a_compressed_photo_over_the_limit_is_too_large,
    a_corrupt_image_document_cannot_be_read,
    a_compressed_photo_with_corrupt_bytes_cannot_be_read,
    an_empty_image_file_cannot_be_read,
    an_image_document_of_another_format_is_not_a_photo,
    an_empty_prompt_is_refused_and_the_step_stays,
    a_ten_thousand_character_prompt_is_refused,
    a_prompt_one_character_over_the_limit_is_refused,
    a_prompt_of_control_characters_is_empty,
    a_right_to_left_prompt_is_accepted,
    a_right_to_left_override_is_stripped_from_the_prompt,
    a_sticker_or_a_voice_instead_of_a_prompt_is_refused,
    an_unknown_command_is_refused,
    grant_with_bad_arguments_shows_the_usage,
    grant_to_an_unknown_user_is_refused,
    grant_taking_back_more_than_the_balance_is_refused,
    grant_that_would_overflow_the_balance_is_answered,
    grant_by_a_non_admin_is_an_unknown_command,
    stats_by_a_non_admin_is_an_unknown_command,
    random_callback_data_is_answered_and_changes_nothing,
    overlong_and_empty_callback_data_are_answered_and_change_nothing,
    a_callback_without_data_or_message_is_answered,
    make_more_of_another_users_order_is_refused,
    make_more_of_a_missing_order_is_refused,
    group_messages_get_no_reply_and_register_nothing,
    channel_posts_get_no_reply,
    a_button_pressed_in_a_group_is_refused,
    a_button_forged_on_another_users_chat_is_refused,
    an_edited_message_is_not_taken_into_account,
    a_photo_while_an_order_runs_notes_it_and_shows_the_templates,
    a_count_button_from_an_old_keyboard_is_refused,
    a_forged_template_button_is_refused,
    a_forged_count_is_refused,
    an_own_prompt_button_from_an_old_keyboard_is_refused,
    a_count_button_without_a_dialog_is_refused,
    text_while_choosing_a_template_gets_the_hint,
    text_while_choosing_a_count_gets_the_hint,
    an_album_takes_its_first_photo_only,
    a_command_for_another_bot_is_plain_text,
);

const SETTLE: Duration = Duration::from_secs(1);
const MB: u64 = 1024 * 1024;

const SEND_PHOTO: &str = "First send a photo of your product: I will make a video of it.";
const NOT_PHOTO: &str =
    "I only understand photos. Send a photo of your product (JPEG, PNG or WebP).";
const CHOOSE_TEMPLATE: &str =
    "Choose a template with the buttons above or press “Own prompt”. To cancel: /cancel.";
const CHOOSE_COUNT: &str = "Choose how many videos with the buttons above. To cancel: /cancel.";
const EDITED: &str = "Edited messages are not taken into account: send a new message.";
const UNKNOWN_COMMAND: &str = "I do not know this command. The commands are in /help.";
const CORRUPT: &str = "The image could not be read: the file looks damaged. Send another photo.";
const EMPTY_PROMPT: &str = "The prompt is empty. Write in text what should happen in the video.";
const NOT_TEXT: &str = "The prompt must be text. Write what should happen in the video.";
const OWN_PROMPT_COUNT: &str = "Template: own prompt\nModel: Kling 2.6, 5 s\nHow many videos?";
const STALE: &str = "This button is out of date.";
const GRANT_USAGE: &str = "Usage: /grant <user_id> <credits>, for example /grant 123456789 10";
const ALBUM: &str = "You sent an album: I took its first photo.";
const ORDER_RUNNING: &str =
    "Your previous order is still running: its videos will arrive as soon as they are ready.";
const PHOTO_RECEIVED: &str = "Photo received. Choose a video template or write your own prompt:";

fn too_large(size_mb: &str) -> String {
    format!("The photo is too large: {size_mb} MB. The limit is 10 MB. Send a smaller photo.")
}

// --- helpers ---

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(1)
}

fn user_json(user: &TestUser) -> Value {
    json!({
        "id": user.id,
        "is_bot": false,
        "first_name": user.first_name,
        "username": user.username,
        "language_code": user.language_code,
    })
}

fn private_chat(user: &TestUser) -> Value {
    json!({"id": user.id, "type": "private", "first_name": user.first_name})
}

fn group_chat(id: i64) -> Value {
    json!({"id": id, "type": "group", "title": "Sellers"})
}

fn bot_json() -> Value {
    json!({"id": 123456, "is_bot": true, "first_name": "Neurocards Test Bot",
           "username": "neurocards_test_bot"})
}

/// A message in `chat` from `from` (none for a channel post), with `fields` merged in.
fn message(message_id: i64, from: Option<Value>, chat: Value, fields: Value) -> Value {
    let mut message = json!({"message_id": message_id, "chat": chat, "date": now_unix()});
    if let Some(from) = from {
        message["from"] = from;
    }
    if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
        message.extend(fields);
    }
    message
}

/// teloxide drops an update it cannot parse, which would pass for silence: every hand-made
/// update is checked first.
fn assert_parses(update: &Value) {
    let mut update = update.clone();
    update["update_id"] = json!(1);
    // From text, as teloxide reads it (it borrows the keys).
    let parsed: Update = serde_json::from_str(&update.to_string())
        .unwrap_or_else(|err| panic!("not an update ({err}): {update}"));
    assert!(
        !matches!(parsed.kind, UpdateKind::Error(_)),
        "teloxide cannot parse {update}"
    );
}

fn push(rig: &BotRig, update: Value) {
    assert_parses(&update);
    rig.telegram.push_update(update);
}

/// A private message from `user` with `fields`; waits for `replies` answers.
async fn send_json(
    rig: &BotRig,
    user: &TestUser,
    fields: Value,
    replies: usize,
) -> Vec<SentMessage> {
    let local = message(1, Some(user_json(user)), private_chat(user), fields.clone());
    assert_parses(&json!({ "message": local }));
    let before = rig.telegram.sent(user.id).len();
    rig.telegram.send_message_json(user, fields);
    rig.replies(user, before, replies).await
}

async fn document(
    rig: &BotRig,
    user: &TestUser,
    bytes: Vec<u8>,
    file_name: &str,
    mime_type: &str,
    replies: usize,
) -> Vec<SentMessage> {
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .send_document(user, bytes, file_name, mime_type);
    rig.replies(user, before, replies).await
}

/// The chat got exactly `count` messages, still after a settle time.
async fn assert_sent_total(rig: &BotRig, chat: i64, count: usize) {
    tokio::time::sleep(SETTLE).await;
    let sent = rig.telegram.sent(chat);
    assert_eq!(sent.len(), count, "messages in chat {chat}: {sent:?}");
}

/// Exactly one new message, with exactly `expected` as its text.
fn assert_one(replies: &[SentMessage], expected: &str) {
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(text_of(&replies[0]), expected, "{replies:?}");
}

async fn assert_untouched(rig: &BotRig, user: &TestUser, credits: i64) {
    assert_eq!(rig.balance(user).await, credits, "user {}", user.id);
    assert_eq!(rig.orders(user).await, 0, "user {}", user.id);
}

/// The stored dialog of a chat, as JSON text.
async fn dialog(rig: &BotRig, chat: i64) -> Option<String> {
    rig.store().dialog(chat).await.expect("reading a dialog")
}

/// The dialog's step; a chat without a stored dialog is idle.
async fn step(rig: &BotRig, chat: i64) -> String {
    match dialog(rig, chat).await {
        Some(_) => dialog_json(rig, chat).await["step"]
            .as_str()
            .expect("a step")
            .to_owned(),
        None => "idle".to_owned(),
    }
}

async fn dialog_json(rig: &BotRig, chat: i64) -> Value {
    let text = dialog(rig, chat).await.expect("a dialog");
    serde_json::from_str(&text).expect("a dialog in JSON")
}

/// Presses a button and waits for the answer; the messages the press produced come back
/// with the query id (an answered press has sent everything it will send).
async fn press_raw(
    rig: &BotRig,
    user: &TestUser,
    message_id: i64,
    data: &str,
) -> (String, Vec<SentMessage>) {
    let before = rig.telegram.sent(user.id).len();
    let query = rig.telegram.press_button(user, message_id, data);
    rig.wait_answered(&query).await;
    (query, rig.telegram.sent(user.id)[before..].to_vec())
}

/// The text of the answerCallbackQuery for `query`, if it had one.
fn answer_text(rig: &BotRig, query: &str) -> Option<String> {
    let calls = rig.telegram.calls();
    let answers: Vec<_> = calls
        .iter()
        .filter(|call| {
            call.method == "answerCallbackQuery" && call.params["callback_query_id"] == query
        })
        .collect();
    assert_eq!(answers.len(), 1, "one answer for {query}: {answers:?}");
    answers[0].params["text"].as_str().map(str::to_owned)
}

/// The press is answered "out of date", sends nothing and leaves the dialog as it was.
async fn assert_stale_press(rig: &BotRig, user: &TestUser, message_id: i64, data: &str) {
    let state = dialog(rig, user.id).await;
    let (query, new) = press_raw(rig, user, message_id, data).await;
    assert!(new.is_empty(), "{data:?} sent {new:?}");
    assert_eq!(answer_text(rig, &query).as_deref(), Some(STALE), "{data:?}");
    assert_eq!(
        dialog(rig, user.id).await,
        state,
        "{data:?} changed the dialog"
    );
}

/// Photo, then "own prompt": the step that waits for the prompt's text.
async fn to_own_prompt(rig: &BotRig, user: &TestUser) {
    let templates = rig.photo_to_templates(user).await;
    let own = buttons(&templates).len() - 1;
    let ask = rig.press(user, &templates, own, 1).await;
    assert!(
        text_of(&ask[0]).starts_with("Write what should happen in the video"),
        "{ask:?}"
    );
}

/// `rig.up_to_count`, and then until the dialog holds the count message's id (stored just
/// after the message is sent), so that a snapshot of the dialog is final.
async fn count_step(rig: &BotRig, user: &TestUser) -> SentMessage {
    let counts = rig.up_to_count(user).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dialog_json(rig, user.id).await["message_id"] != json!(counts.message_id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the count message id was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    counts
}

/// The nonce of the step whose buttons `message` carries ("t:<nonce>:…", "c:<nonce>:…").
fn nonce_of(message: &SentMessage) -> String {
    let (_, data) = buttons(message).into_iter().next().expect("a button");
    data.split(':').nth(1).expect("a nonce").to_owned()
}

/// Printable, deterministic "random" bytes.
fn random_alphanumerics(len: usize, mut seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ALPHABET[usize::try_from(seed % ALPHABET.len() as u64).unwrap_or(0)] as char
        })
        .collect()
}

/// A kind of message that is not a photo gets the hint, in Idle, and changes nothing.
async fn not_a_photo(engine: Engine, id: i64, fields: Value) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(id, "en", 5).await;

    let reply = send_json(&rig, &user, fields, 1).await;

    assert_one(&reply, NOT_PHOTO);
    assert_eq!(step(&rig, user.id).await, "idle", "no dialog started");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- not a photo ---

async fn text_before_any_photo_asks_for_a_photo(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1001, "en", 5).await;

    let reply = rig.say(&user, "make me a video of my mug", 1).await;

    assert_one(&reply, SEND_PHOTO);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_sticker_is_not_a_photo(engine: Engine) {
    let sticker = json!({"sticker": {
        "file_id": "sticker-1", "file_unique_id": "u-sticker-1", "width": 512, "height": 512,
        "is_animated": false, "is_video": false, "type": "regular", "emoji": "😀",
        "file_size": 20000,
    }});
    not_a_photo(engine, 1002, sticker).await;
}

async fn a_voice_message_is_not_a_photo(engine: Engine) {
    let voice = json!({"voice": {
        "file_id": "voice-1", "file_unique_id": "u-voice-1", "duration": 3,
        "mime_type": "audio/ogg", "file_size": 10000,
    }});
    not_a_photo(engine, 1003, voice).await;
}

async fn a_video_is_not_a_photo(engine: Engine) {
    let video = json!({"video": {
        "file_id": "video-1", "file_unique_id": "u-video-1", "width": 720, "height": 1280,
        "duration": 10, "mime_type": "video/mp4", "file_size": 500000,
    }});
    not_a_photo(engine, 1004, video).await;
}

async fn a_video_note_is_not_a_photo(engine: Engine) {
    let note = json!({"video_note": {
        "file_id": "note-1", "file_unique_id": "u-note-1", "length": 240, "duration": 5,
        "file_size": 100000,
    }});
    not_a_photo(engine, 1005, note).await;
}

async fn an_audio_file_is_not_a_photo(engine: Engine) {
    let audio = json!({"audio": {
        "file_id": "audio-1", "file_unique_id": "u-audio-1", "duration": 180,
        "performer": "Band", "title": "Song", "mime_type": "audio/mpeg", "file_size": 3000000,
    }});
    not_a_photo(engine, 1006, audio).await;
}

async fn a_pdf_document_is_not_a_photo(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1007, "en", 5).await;

    let reply = document(
        &rig,
        &user,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n".to_vec(),
        "catalog.pdf",
        "application/pdf",
        1,
    )
    .await;

    assert_one(&reply, NOT_PHOTO);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_gif_animation_is_not_a_photo(engine: Engine) {
    // Telegram sends a GIF as an animation and, for old clients, as a document too.
    let gif = json!({
        "animation": {
            "file_id": "gif-1", "file_unique_id": "u-gif-1", "width": 320, "height": 240,
            "duration": 2, "file_name": "dance.gif.mp4", "mime_type": "video/mp4",
            "file_size": 80000,
        },
        "document": {
            "file_id": "gif-1", "file_unique_id": "u-gif-1", "file_name": "dance.gif.mp4",
            "mime_type": "video/mp4", "file_size": 80000,
        },
    });
    not_a_photo(engine, 1008, gif).await;
}

async fn a_location_is_not_a_photo(engine: Engine) {
    let location = json!({"location": {"latitude": 55.7558, "longitude": 37.6173}});
    not_a_photo(engine, 1009, location).await;
}

async fn a_contact_is_not_a_photo(engine: Engine) {
    let contact = json!({"contact": {
        "phone_number": "+10000000000", "first_name": "Somebody", "user_id": 4242,
    }});
    not_a_photo(engine, 1010, contact).await;
}

async fn a_dice_a_venue_and_a_poll_are_not_photos(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1011, "en", 5).await;
    let kinds = [
        json!({"dice": {"emoji": "🎲", "value": 6}}),
        json!({"venue": {
            "location": {"latitude": 48.8584, "longitude": 2.2945},
            "title": "Shop", "address": "Champ de Mars",
        }}),
        json!({"poll": {
            "id": "poll-1", "question": "Which mug?",
            "options": [{"text": "Red", "voter_count": 0}, {"text": "Blue", "voter_count": 0}],
            "total_voter_count": 0, "is_closed": false, "is_anonymous": true,
            "type": "regular", "allows_multiple_answers": false,
        }}),
    ];
    for fields in kinds {
        let reply = send_json(&rig, &user, fields.clone(), 1).await;
        assert_one(&reply, NOT_PHOTO);
    }
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- photos that do not fit ---

async fn an_image_document_declared_over_the_limit_is_too_large(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1101, "en", 5).await;
    let big = json!({"document": {
        "file_id": "huge-doc", "file_unique_id": "u-huge-doc", "file_name": "product.jpg",
        "mime_type": "image/jpeg", "file_size": 11 * MB,
    }});

    let reply = send_json(&rig, &user, big, 1).await;

    assert_one(&reply, &too_large("11.0"));
    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_image_document_of_eleven_megabytes_is_too_large(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1102, "en", 5).await;
    let mut bytes = JPEG.to_vec();
    bytes.resize(usize::try_from(11 * MB).unwrap(), 0);

    let reply = document(&rig, &user, bytes, "product.jpg", "image/jpeg", 1).await;

    assert_one(&reply, &too_large("11.0"));
    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_image_document_without_a_declared_size_is_checked_by_its_bytes(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1108, "en", 5).await;
    let small = rig.telegram.add_file(JPEG.to_vec());
    let mut big = JPEG.to_vec();
    big.resize(usize::try_from(11 * MB).unwrap(), 0);
    let big = rig.telegram.add_file(big);
    // The Bot API marks file_size optional.
    let unsized_document = |file_id: &str| {
        json!({"document": {
            "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
            "file_name": "product.jpg", "mime_type": "image/jpeg",
        }})
    };

    // A small photo is taken; a big one is refused with the size Telegram reports for it.
    let reply = send_json(&rig, &user, unsized_document(&small), 1).await;
    assert_one(&reply, PHOTO_RECEIVED);
    assert!(has_button(&reply[0], "t:"), "{reply:?}");
    let state = dialog_json(&rig, user.id).await;
    let reply = send_json(&rig, &user, unsized_document(&big), 1).await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert_one(&reply, &too_large("11.0"));
    assert_eq!(dialog_json(&rig, user.id).await, state, "the step stays");

    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_compressed_photo_over_the_limit_is_too_large(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1103, "en", 5).await;
    let small = rig.telegram.add_file(JPEG.to_vec());
    let photo = json!({"photo": [
        {"file_id": small, "file_unique_id": "u-small", "width": 90, "height": 90,
         "file_size": JPEG.len()},
        {"file_id": "mid", "file_unique_id": "u-mid", "width": 320, "height": 320,
         "file_size": 40000},
        {"file_id": "large", "file_unique_id": "u-large", "width": 5000, "height": 5000,
         "file_size": 12 * MB},
    ]});

    let reply = send_json(&rig, &user, photo, 1).await;

    assert_one(&reply, &too_large("12.0"));
    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_corrupt_image_document_cannot_be_read(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1104, "en", 5).await;

    let reply = document(
        &rig,
        &user,
        b"this is not a PNG, whatever the name says".to_vec(),
        "product.png",
        "image/png",
        1,
    )
    .await;

    assert_one(&reply, CORRUPT);
    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_compressed_photo_with_corrupt_bytes_cannot_be_read(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1105, "en", 5).await;
    let before = rig.telegram.sent(user.id).len();

    rig.telegram
        .send_photo(&user, b"GIF89a but not really".to_vec());
    let reply = rig.replies(&user, before, 1).await;

    assert_one(&reply, CORRUPT);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_empty_image_file_cannot_be_read(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1106, "en", 5).await;

    let reply = document(&rig, &user, Vec::new(), "empty.jpg", "image/jpeg", 1).await;

    assert_one(&reply, CORRUPT);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_image_document_of_another_format_is_not_a_photo(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1107, "en", 5).await;
    let files: [(&[u8], &str, &str); 4] = [
        (
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
            "product.gif",
            "image/gif",
        ),
        (
            b"BM\x1e\x00\x00\x00\x00\x00\x00\x00",
            "product.bmp",
            "image/bmp",
        ),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            "product.svg",
            "image/svg+xml",
        ),
        // JPEG bytes do not make a TIFF a JPEG: the declared type decides first.
        (&JPEG[..], "product.tiff", "image/tiff"),
    ];
    for (bytes, name, mime) in files {
        let reply = document(&rig, &user, bytes.to_vec(), name, mime, 1).await;
        assert_one(&reply, NOT_PHOTO);
    }
    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- prompts ---

async fn an_empty_prompt_is_refused_and_the_step_stays(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1201, "en", 5).await;
    to_own_prompt(&rig, &user).await;

    let reply = rig.say(&user, "   ", 1).await;

    assert_one(&reply, EMPTY_PROMPT);
    assert_eq!(dialog_json(&rig, user.id).await["step"], "awaiting_prompt");
    // The step stays: a real prompt is still taken.
    let counts = rig.say(&user, "a mug on a table", 1).await;
    assert!(
        text_of(&counts[0]).starts_with(OWN_PROMPT_COUNT),
        "{counts:?}"
    );
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_ten_thousand_character_prompt_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1202, "en", 5).await;
    to_own_prompt(&rig, &user).await;

    let reply = rig.say(&user, &"x".repeat(10_000), 1).await;

    assert_one(
        &reply,
        "The prompt is too long: 10000 characters, the limit is 1000. Shorten it and send it again.",
    );
    assert_eq!(dialog_json(&rig, user.id).await["step"], "awaiting_prompt");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_prompt_one_character_over_the_limit_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1203, "en", 5).await;
    to_own_prompt(&rig, &user).await;

    // Characters count, not bytes: 1001 Cyrillic letters are 2002 bytes. The limit is the
    // chosen model's: Kling 2.6 takes 1,000 characters.
    let reply = rig.say(&user, &"я".repeat(1001), 1).await;
    assert_one(
        &reply,
        "The prompt is too long: 1001 characters, the limit is 1000. Shorten it and send it again.",
    );
    let counts = rig.say(&user, &"я".repeat(1000), 1).await;
    assert!(
        text_of(&counts[0]).starts_with(OWN_PROMPT_COUNT),
        "{counts:?}"
    );

    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_prompt_of_control_characters_is_empty(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1204, "en", 5).await;
    to_own_prompt(&rig, &user).await;

    let reply = rig
        .say(
            &user,
            "\u{0007}\u{0000}\u{001B}\u{007F}\u{202E}\u{FEFF}\u{0008}",
            1,
        )
        .await;

    assert_one(&reply, EMPTY_PROMPT);
    assert_eq!(dialog_json(&rig, user.id).await["step"], "awaiting_prompt");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_right_to_left_prompt_is_accepted(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1205, "en", 5).await;
    to_own_prompt(&rig, &user).await;
    let hebrew = "כוס קפה מסתובבת על שולחן עץ";

    let reply = rig.say(&user, hebrew, 1).await;

    assert!(
        text_of(&reply[0]).starts_with(OWN_PROMPT_COUNT),
        "{reply:?}"
    );
    assert!(has_button(&reply[0], "c:"), "{reply:?}");
    let state = dialog_json(&rig, user.id).await;
    assert_eq!(state["step"], "choosing_count");
    assert_eq!(state["prompt"], hebrew);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_right_to_left_override_is_stripped_from_the_prompt(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1206, "en", 5).await;
    to_own_prompt(&rig, &user).await;

    let reply = rig
        .say(&user, "a mug \u{202E}gninnips\u{202C} slowly", 1)
        .await;

    assert!(
        text_of(&reply[0]).starts_with(OWN_PROMPT_COUNT),
        "{reply:?}"
    );
    let state = dialog_json(&rig, user.id).await;
    assert_eq!(state["prompt"], "a mug gninnips slowly");
    // Nothing pressed: nothing ordered.
    tokio::time::sleep(SETTLE).await;
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_sticker_or_a_voice_instead_of_a_prompt_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1207, "en", 5).await;
    to_own_prompt(&rig, &user).await;
    let kinds = [
        json!({"sticker": {
            "file_id": "sticker-2", "file_unique_id": "u-sticker-2", "width": 512,
            "height": 512, "is_animated": false, "is_video": false, "type": "regular",
        }}),
        json!({"voice": {"file_id": "voice-2", "file_unique_id": "u-voice-2", "duration": 4}}),
    ];

    for fields in kinds {
        let reply = send_json(&rig, &user, fields, 1).await;
        assert_one(&reply, NOT_TEXT);
    }

    assert_eq!(dialog_json(&rig, user.id).await["step"], "awaiting_prompt");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- commands ---

async fn an_unknown_command_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1301, "en", 5).await;

    for command in [
        "/frobnicate",
        "/frobnicate@neurocards_test_bot now",
        "/стоп",
        "/",
    ] {
        let reply = rig.say(&user, command, 1).await;
        assert_one(&reply, UNKNOWN_COMMAND);
    }

    assert_eq!(step(&rig, user.id).await, "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn grant_with_bad_arguments_shows_the_usage(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let admin = rig.user(ADMIN, "en", 0).await;
    let user = rig.user(5, "en", 5).await;
    let ledger_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ledger")
            .fetch_one(rig.store().pool())
            .await
            .unwrap()
    };
    let rows = ledger_rows().await;

    for command in [
        "/grant",
        "/grant abc 5",
        "/grant 5",
        "/grant 5 0",
        "/grant 5 1.5",
        "/grant -5 10",
        "/grant 5 10 20",
        "/grant 5 99999999999999999999",
        "/grant 5 ten",
    ] {
        let reply = rig.say(&admin, command, 1).await;
        assert_one(&reply, GRANT_USAGE);
    }

    assert_untouched(&rig, &user, 5).await;
    assert_untouched(&rig, &admin, 0).await;
    assert_eq!(ledger_rows().await, rows, "no ledger row written");
    rig.assert_sound().await;
}

async fn grant_to_an_unknown_user_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let admin = rig.user(ADMIN, "en", 0).await;

    let reply = rig.say(&admin, "/grant 424242 10", 1).await;

    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(text_of(&reply[0]).starts_with("Refused: "), "{reply:?}");
    assert!(text_of(&reply[0]).contains("424242"), "{reply:?}");
    assert!(rig.store().user(UserId(424242)).await.unwrap().is_none());
    assert_untouched(&rig, &admin, 0).await;
    rig.assert_sound().await;
}

async fn grant_taking_back_more_than_the_balance_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let admin = rig.user(ADMIN, "en", 0).await;
    let user = rig.user(1403, "en", 5).await;

    let reply = rig.say(&admin, "/grant 1403 -6", 1).await;

    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(text_of(&reply[0]).starts_with("Refused: "), "{reply:?}");
    assert_untouched(&rig, &user, 5).await;
    assert_untouched(&rig, &admin, 0).await;
    rig.assert_sound().await;
}

async fn grant_that_would_overflow_the_balance_is_answered(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let admin = rig.user(ADMIN, "en", 0).await;
    let user = rig.user(1404, "en", 5).await;

    let reply = rig
        .say(&admin, &format!("/grant 1404 {}", i64::MAX), 1)
        .await;

    assert_eq!(reply.len(), 1, "{reply:?}");
    assert_eq!(
        text_of(&reply[0]),
        "Refused: database error while moving credits"
    );
    assert_untouched(&rig, &user, 5).await;
    assert_untouched(&rig, &admin, 0).await;
    rig.assert_sound().await;
}

async fn grant_by_a_non_admin_is_an_unknown_command(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1501, "en", 5).await;
    let other = rig.user(1502, "en", 5).await;

    for command in [
        "/grant 1501 100",
        "/grant 1502 -5",
        "/grant",
        "/GRANT 1501 1",
    ] {
        let reply = rig.say(&user, command, 1).await;
        assert_one(&reply, UNKNOWN_COMMAND);
    }

    assert_untouched(&rig, &user, 5).await;
    assert_untouched(&rig, &other, 5).await;
    rig.assert_sound().await;
}

async fn stats_by_a_non_admin_is_an_unknown_command(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1601, "en", 5).await;

    for command in ["/stats", "/stats@neurocards_test_bot", "/Stats all"] {
        let reply = rig.say(&user, command, 1).await;
        assert_one(&reply, UNKNOWN_COMMAND);
    }

    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_command_for_another_bot_is_plain_text(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1701, "en", 5).await;

    let reply = rig.say(&user, "/start@another_bot", 1).await;
    assert_one(&reply, SEND_PHOTO);
    // While choosing a template it is the template hint, not the main menu.
    rig.photo_to_templates(&user).await;
    let reply = rig.say(&user, "/cancel@another_bot", 1).await;
    assert_one(&reply, CHOOSE_TEMPLATE);

    assert_eq!(
        dialog_json(&rig, user.id).await["step"],
        "choosing_template"
    );
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- buttons ---

async fn random_callback_data_is_answered_and_changes_nothing(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1801, "en", 5).await;
    let templates = rig.photo_to_templates(&user).await;

    for seed in [1, 7, 2024] {
        let data = random_alphanumerics(64, seed);
        assert_eq!(data.len(), 64);
        assert_stale_press(&rig, &user, templates.message_id, &data).await;
    }

    let hint = rig.say(&user, "hello?", 1).await;
    assert_one(&hint, CHOOSE_TEMPLATE);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn overlong_and_empty_callback_data_are_answered_and_change_nothing(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1802, "en", 5).await;
    let counts = count_step(&rig, &user).await;
    let valid = buttons(&counts)[0].1.clone();

    for data in [
        String::new(),
        random_alphanumerics(65, 3),
        random_alphanumerics(1000, 4),
        // A valid count button with junk after it.
        format!("{valid}{}", ":1".repeat(40)),
        format!("{valid}\u{0000}"),
        " ".repeat(64),
    ] {
        assert_stale_press(&rig, &user, counts.message_id, &data).await;
    }

    let hint = rig.say(&user, "hello?", 1).await;
    assert_one(&hint, CHOOSE_COUNT);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_callback_without_data_or_message_is_answered(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1803, "en", 5).await;
    let counts = count_step(&rig, &user).await;
    let state = dialog(&rig, user.id).await;
    let before = rig.telegram.sent(user.id).len();
    let on_counts = message(
        counts.message_id,
        Some(bot_json()),
        private_chat(&user),
        json!({"text": text_of(&counts)}),
    );
    let valid = buttons(&counts)[0].1.clone();

    // No data (a game button), and a valid count from an inline message (no chat).
    let queries = [
        json!({"id": "no-data", "from": user_json(&user), "chat_instance": "ci",
               "message": on_counts, "game_short_name": "mugs"}),
        json!({"id": "inline", "from": user_json(&user), "chat_instance": "ci",
               "inline_message_id": "AAAA", "data": valid}),
    ];
    for query in queries {
        let id = query["id"].as_str().unwrap().to_owned();
        push(&rig, json!({ "callback_query": query }));
        rig.wait_answered(&id).await;
        assert_eq!(answer_text(&rig, &id).as_deref(), Some(STALE));
    }

    assert_eq!(rig.telegram.sent(user.id).len(), before);
    assert_eq!(dialog(&rig, user.id).await, state);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn make_more_of_another_users_order_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let owner = rig.user(1901, "en", 5).await;
    let intruder = rig.user(1902, "en", 5).await;
    let counts = count_step(&rig, &owner).await;
    let accepted = rig.press(&owner, &counts, 0, 1).await;
    assert!(
        text_of(&accepted[0]).starts_with("Order accepted"),
        "{accepted:?}"
    );
    let order: i64 = sqlx::query_scalar("SELECT id FROM orders WHERE user_id = $1")
        .bind(owner.id)
        .fetch_one(rig.store().pool())
        .await
        .unwrap();
    let owner_state = dialog(&rig, owner.id).await;
    let menu = rig.say(&intruder, "/start", 1).await;

    assert_stale_press(
        &rig,
        &intruder,
        menu[0].message_id,
        &format!("more:{order}"),
    )
    .await;

    assert!(
        !rig.telegram
            .sent(intruder.id)
            .iter()
            .any(|m| has_button(m, "t:")),
        "no templates for the intruder"
    );
    assert_eq!(dialog_json(&rig, intruder.id).await["step"], "idle");
    assert_eq!(dialog(&rig, owner.id).await, owner_state);
    assert_untouched(&rig, &intruder, 5).await;
    assert_eq!(rig.balance(&owner).await, 4);
    assert_eq!(rig.orders(&owner).await, 1);
    rig.assert_sound().await;
}

async fn make_more_of_a_missing_order_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(1903, "en", 5).await;
    let menu = rig.say(&user, "/start", 1).await;

    for data in ["more:999999", "more:9223372036854775807", "more:1"] {
        assert_stale_press(&rig, &user, menu[0].message_id, data).await;
    }

    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_button_pressed_in_a_group_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2001, "en", 5).await;
    let group = -200_100;
    let counts = count_step(&rig, &user).await;
    let state = dialog(&rig, user.id).await;
    let valid = buttons(&counts)[0].1.clone();
    let in_group = message(
        77,
        Some(bot_json()),
        group_chat(group),
        json!({"text": "Template: own prompt"}),
    );

    push(
        &rig,
        json!({"callback_query": {
            "id": "group-press", "from": user_json(&user), "chat_instance": "cg",
            "message": in_group, "data": valid,
        }}),
    );
    rig.wait_answered("group-press").await;

    assert_eq!(answer_text(&rig, "group-press").as_deref(), Some(STALE));
    assert_sent_total(&rig, group, 0).await;
    assert_eq!(dialog(&rig, user.id).await, state);
    assert_eq!(dialog(&rig, group).await, None);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_button_forged_on_another_users_chat_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let victim = rig.user(2101, "en", 5).await;
    let forger = rig.user(2102, "en", 5).await;
    let counts = count_step(&rig, &victim).await;
    let victim_state = dialog(&rig, victim.id).await;
    let victim_sent = rig.telegram.sent(victim.id).len();
    // The victim's count message, as if the forger had pressed it.
    let theirs = message(
        counts.message_id,
        Some(bot_json()),
        private_chat(&victim),
        json!({"text": text_of(&counts)}),
    );

    for (i, (_, data)) in buttons(&counts).into_iter().enumerate() {
        let id = format!("forged-{i}");
        push(
            &rig,
            json!({"callback_query": {
                "id": id, "from": user_json(&forger), "chat_instance": "cf",
                "message": theirs, "data": data,
            }}),
        );
        rig.wait_answered(&id).await;
        assert_eq!(answer_text(&rig, &id).as_deref(), Some(STALE));
    }

    assert_eq!(rig.telegram.sent(victim.id).len(), victim_sent);
    assert!(rig.telegram.sent(forger.id).is_empty());
    assert_eq!(dialog(&rig, victim.id).await, victim_state);
    assert_untouched(&rig, &victim, 5).await;
    assert_untouched(&rig, &forger, 5).await;
    rig.assert_sound().await;
}

async fn a_count_button_from_an_old_keyboard_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2201, "en", 5).await;
    let old = count_step(&rig, &user).await;
    rig.photo_to_templates(&user).await;

    for (_, data) in buttons(&old) {
        assert_stale_press(&rig, &user, old.message_id, &data).await;
    }

    let hint = rig.say(&user, "one video please", 1).await;
    assert_one(&hint, CHOOSE_TEMPLATE);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_forged_template_button_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2301, "en", 5).await;
    let templates = rig.photo_to_templates(&user).await;
    let nonce = nonce_of(&templates);

    for data in [
        format!("t:{nonce}:nonexistent"),
        format!("t:{nonce}:../../etc"),
        format!("t:{nonce}:{}", "a".repeat(24)),
        format!("t:{nonce}:"),
        "t:00000000:showcase".to_owned(),
    ] {
        assert_stale_press(&rig, &user, templates.message_id, &data).await;
    }

    let hint = rig.say(&user, "which one?", 1).await;
    assert_one(&hint, CHOOSE_TEMPLATE);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_forged_count_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2401, "en", 100).await;
    let counts = count_step(&rig, &user).await;
    let nonce = nonce_of(&counts);

    let real: Vec<String> = buttons(&counts).into_iter().map(|(_, data)| data).collect();
    let forged = [
        format!("c:{nonce}:2"),
        format!("c:{nonce}:100"),
        format!("c:{nonce}:0"),
        format!("c:{nonce}:-1"),
        format!("c:{nonce}:01"),
        format!("c:{nonce}:1.0"),
        format!("c:{}:1", nonce.to_uppercase()),
        "c:00000000:1".to_owned(),
    ];
    // A nonce of digits only reads the same in upper case: that one is a real button.
    for data in forged.iter().filter(|data| !real.contains(data)) {
        assert_stale_press(&rig, &user, counts.message_id, data).await;
    }

    let hint = rig.say(&user, "100 videos", 1).await;
    assert_one(&hint, CHOOSE_COUNT);
    assert_untouched(&rig, &user, 100).await;
    rig.assert_sound().await;
}

async fn an_own_prompt_button_from_an_old_keyboard_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2501, "en", 5).await;
    let old = rig.photo_to_templates(&user).await;
    rig.photo_to_templates(&user).await;
    let own = buttons(&old).last().expect("own prompt").1.clone();
    assert!(own.starts_with("o:"), "{own}");

    assert_stale_press(&rig, &user, old.message_id, &own).await;

    assert_eq!(
        dialog_json(&rig, user.id).await["step"],
        "choosing_template"
    );
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn a_count_button_without_a_dialog_is_refused(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2601, "en", 5).await;
    let menu = rig.say(&user, "/start", 1).await;

    for data in ["c:0123abcd:1", "t:0123abcd:showcase", "o:0123abcd"] {
        assert_stale_press(&rig, &user, menu[0].message_id, data).await;
    }

    assert_eq!(dialog_json(&rig, user.id).await["step"], "idle");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- chats and updates that are not for the dialog ---

async fn group_messages_get_no_reply_and_register_nothing(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2701, "en", 5).await;
    let group = -270_100;
    let supergroup = -1_002_701_000;
    let photo = rig.telegram.add_file(JPEG.to_vec());
    let sizes = json!([{"file_id": photo, "file_unique_id": "u-group-photo", "width": 1280,
                        "height": 1280, "file_size": JPEG.len()}]);
    let from = || Some(user_json(&user));
    let supergroup_chat = json!({"id": supergroup, "type": "supergroup", "title": "Shop"});
    let updates = [
        json!({"message": message(1, from(), group_chat(group), json!({"text": "hello bot"}))}),
        json!({"message": message(2, from(), group_chat(group), json!({"photo": sizes}))}),
        json!({"message": message(3, from(), group_chat(group), json!({
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        }))}),
        json!({"message": message(4, from(), supergroup_chat.clone(), json!({
            "text": "/grant@neurocards_test_bot 2701 100",
        }))}),
        json!({"edited_message": message(5, from(), group_chat(group), json!({
            "text": "hello bot, edited", "edit_date": now_unix(),
        }))}),
        json!({"message": message(6, from(), supergroup_chat, json!({"photo": sizes}))}),
    ];
    for update in updates {
        push(&rig, update);
    }

    assert_sent_total(&rig, group, 0).await;
    assert_sent_total(&rig, supergroup, 0).await;
    assert_sent_total(&rig, user.id, 0).await;
    for chat in [group, supergroup] {
        assert!(rig.store().user(UserId(chat)).await.unwrap().is_none());
        assert_eq!(dialog(&rig, chat).await, None);
    }
    assert_eq!(dialog(&rig, user.id).await, None);
    // The bot is alive and the user's own chat is untouched.
    let hint = rig.say(&user, "hello", 1).await;
    assert_one(&hint, SEND_PHOTO);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn channel_posts_get_no_reply(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2702, "en", 5).await;
    let channel = -1_002_702_000;
    let chat = json!({"id": channel, "type": "channel", "title": "News"});
    let post = message(1, None, chat.clone(), json!({"text": "/start"}));
    let edited = message(
        1,
        None,
        chat,
        json!({"text": "/start again", "edit_date": now_unix()}),
    );

    push(&rig, json!({ "channel_post": post }));
    push(&rig, json!({ "edited_channel_post": edited }));

    assert_sent_total(&rig, channel, 0).await;
    assert!(rig.store().user(UserId(channel)).await.unwrap().is_none());
    assert_eq!(dialog(&rig, channel).await, None);
    let hint = rig.say(&user, "hello", 1).await;
    assert_one(&hint, SEND_PHOTO);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_edited_message_is_not_taken_into_account(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2801, "en", 5).await;
    rig.photo_to_templates(&user).await;
    let state = dialog(&rig, user.id).await;
    let before = rig.telegram.sent(user.id).len();

    push(
        &rig,
        json!({"edited_message": message(
            1,
            Some(user_json(&user)),
            private_chat(&user),
            json!({"text": "/grant 2801 100", "edit_date": now_unix()}),
        )}),
    );
    let reply = rig.replies(&user, before, 1).await;

    assert_one(&reply, EDITED);
    assert_eq!(dialog(&rig, user.id).await, state);
    let hint = rig.say(&user, "and now?", 1).await;
    assert_one(&hint, CHOOSE_TEMPLATE);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

// --- the dialog's steps ---

async fn a_photo_while_an_order_runs_notes_it_and_shows_the_templates(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(2901, "en", 5).await;
    let counts = count_step(&rig, &user).await;
    let accepted = rig.press(&user, &counts, 0, 1).await;
    assert!(
        text_of(&accepted[0]).starts_with("Order accepted: 1 video."),
        "{accepted:?}"
    );
    assert_eq!(rig.balance(&user).await, 4);

    let reply = rig.photo(&user, 2).await;

    assert_eq!(reply.len(), 2, "{reply:?}");
    assert_eq!(text_of(&reply[0]), ORDER_RUNNING);
    assert_eq!(text_of(&reply[1]), PHOTO_RECEIVED);
    assert!(has_button(&reply[1], "t:"), "{reply:?}");
    assert!(has_button(&reply[1], "o:"), "{reply:?}");
    assert_eq!(rig.balance(&user).await, 4);
    assert_eq!(rig.orders(&user).await, 1);
    rig.assert_sound().await;
}

async fn text_while_choosing_a_template_gets_the_hint(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(3001, "en", 5).await;
    rig.photo_to_templates(&user).await;
    let state = dialog(&rig, user.id).await;

    let reply = rig.say(&user, "the first template please", 1).await;

    assert_one(&reply, CHOOSE_TEMPLATE);
    assert_eq!(dialog(&rig, user.id).await, state);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn text_while_choosing_a_count_gets_the_hint(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(3101, "en", 5).await;
    count_step(&rig, &user).await;
    let state = dialog(&rig, user.id).await;

    for text in ["3", "five videos", "1"] {
        let reply = rig.say(&user, text, 1).await;
        assert_one(&reply, CHOOSE_COUNT);
    }

    assert_eq!(dialog(&rig, user.id).await, state);
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}

async fn an_album_takes_its_first_photo_only(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(3201, "en", 5).await;
    let files: Vec<String> = (0..3)
        .map(|_| rig.telegram.add_file(JPEG.to_vec()))
        .collect();

    for (i, file) in files.iter().enumerate() {
        let fields = json!({
            "media_group_id": "13579246801357924",
            "photo": [{"file_id": file, "file_unique_id": format!("u-album-{i}"),
                       "width": 1280, "height": 960, "file_size": JPEG.len()}],
        });
        let local = message(
            1,
            Some(user_json(&user)),
            private_chat(&user),
            fields.clone(),
        );
        assert_parses(&json!({ "message": local }));
        rig.telegram.send_message_json(&user, fields);
    }

    let reply = rig.replies(&user, 0, 2).await;
    assert_eq!(text_of(&reply[0]), ALBUM, "{reply:?}");
    assert_eq!(text_of(&reply[1]), PHOTO_RECEIVED, "{reply:?}");
    assert_sent_total(&rig, user.id, 2).await;
    let templates = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|m| has_button(m, "t:"))
        .count();
    assert_eq!(templates, 1);
    let state = dialog_json(&rig, user.id).await;
    assert_eq!(state["step"], "choosing_template");
    assert_eq!(state["photo"], files[0].as_str(), "the first photo");
    assert_untouched(&rig, &user, 5).await;
    rig.assert_sound().await;
}
