//! `/broadcast` for admins: the message shown to the admin first, then sent to the segment
//! by the workers once the admin presses send.

use std::time::Duration;

use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig, ADMIN};

crate::both_engines!(an_admin_tries_a_broadcast_then_sends_it_and_each_user_gets_it_once);

async fn an_admin_tries_a_broadcast_then_sends_it_and_each_user_gets_it_once(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    let admin = rig.user(ADMIN, "en", 0).await;
    let users = [rig.user(791, "en", 0).await, rig.user(792, "ru", 1).await];

    // Not an admin: the command does not exist.
    let hint = rig
        .say(&users[0], "/broadcast all Hello", 1)
        .await
        .remove(0);
    assert!(
        text_of(&hint).starts_with("I do not know this command"),
        "{hint:?}"
    );
    let usage = rig.say(&admin, "/broadcast", 1).await.remove(0);
    assert!(
        text_of(&usage).starts_with("Usage: /broadcast"),
        "{usage:?}"
    );

    let shown = rig
        .say(&admin, "/broadcast with-balance New templates are here!", 2)
        .await;
    assert_eq!(text_of(&shown[0]), "New templates are here!");
    let choices = buttons(&shown[1]);
    assert_eq!(choices[0].0, "📣 Send to with-balance");
    let before = rig.telegram.sent(admin.id).len();
    let query = rig
        .telegram
        .press_button(&admin, shown[1].message_id, &choices[0].1);
    rig.wait_answered(&query).await;
    // Only the user with credits; the workers' progress message may come first.
    rig.wait_for(&admin, before, |message| {
        text_of(message).contains("is being sent to 1 users")
    })
    .await;
    // Pressed again: sent once. (The workers' progress message may come in between.)
    let before = rig.telegram.sent(admin.id).len();
    let query = rig
        .telegram
        .press_button(&admin, shown[1].message_id, &choices[0].1);
    rig.wait_answered(&query).await;
    rig.wait_for(&admin, before, |message| {
        text_of(message).contains("was already sent or dropped")
    })
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !rig
        .telegram
        .sent(users[1].id)
        .iter()
        .any(|message| text_of(message) == "New templates are here!")
    {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = |id: i64| {
        rig.telegram
            .sent(id)
            .iter()
            .filter(|message| text_of(message) == "New templates are here!")
            .count()
    };
    assert_eq!(count(users[1].id), 1);
    assert_eq!(count(users[0].id), 0, "not in the segment");
}
