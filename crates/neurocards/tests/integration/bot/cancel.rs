//! "Order accepted": its cancel button (the videos not yet at KIE come back at once) and
//! its edits as the order moves.

use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig};

crate::both_engines!(
    a_queued_order_is_cancelled_from_its_accepted_message_and_refunded_once,
    the_accepted_message_follows_the_order_to_done_within_the_edit_limit,
);

async fn a_queued_order_is_cancelled_from_its_accepted_message_and_refunded_once(engine: Engine) {
    // No worker: the videos wait in the queue.
    let rig = BotRig::start(engine).await;
    let user = rig.user(781, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let three = buttons(&counts)[1].1.clone();
    let accepted = rig
        .press_data(&user, counts.message_id, &three, 1)
        .await
        .remove(0);
    assert!(
        text_of(&accepted).starts_with("Order accepted: 3 videos."),
        "{accepted:?}"
    );
    assert_eq!(rig.balance(&user).await, 2);
    let cancel = buttons(&accepted)
        .into_iter()
        .find(|(_, data)| data.starts_with("cx:"))
        .expect("a cancel button");
    assert_eq!(cancel.0, "✖ Cancel videos not started");

    let done = rig
        .press_data(&user, accepted.message_id, &cancel.1, 1)
        .await
        .remove(0);
    assert_eq!(
        text_of(&done),
        "Cancelled: 3 videos not started yet; 3 credits refunded. Your balance: 5 credits. The videos already being made will arrive."
    );
    assert_eq!(rig.balance(&user).await, 5);
    let again = rig
        .press_data(&user, accepted.message_id, &cancel.1, 1)
        .await
        .remove(0);
    assert!(
        text_of(&again).starts_with("Nothing to cancel"),
        "{again:?}"
    );
    assert_eq!(rig.balance(&user).await, 5);
    rig.assert_sound().await;
}

/// The "order accepted" message is edited as the order moves, at most once per
/// PROGRESS_EVERY (1 s in the tests), and ends showing the order done, without its cancel
/// button.
async fn the_accepted_message_follows_the_order_to_done_within_the_edit_limit(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    let user = rig.user(782, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let three = buttons(&counts)[1].1.clone();
    let started = std::time::Instant::now();
    let before = rig.telegram.sent(user.id).len();
    rig.telegram.press_button(&user, counts.message_id, &three);
    // The accepted message, edited in place until it shows the order done.
    let done = rig
        .wait_for(&user, before, |message| {
            text_of(message).contains("3 videos: done, 3 of 3 made")
        })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        text_of(&done).starts_with("Order #") && text_of(&done).contains("3 videos: done"),
        "{done:?}"
    );
    assert!(buttons(&done).is_empty(), "no cancel once done: {done:?}");
    assert!(done.edits >= 1);
    assert!(
        (done.edits as f64) <= elapsed + 1.0,
        "{} edits in {elapsed:.1} s",
        done.edits
    );
    // Once done, it is left alone.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let later = rig
        .telegram
        .sent(user.id)
        .into_iter()
        .find(|message| message.message_id == done.message_id)
        .expect("the message");
    assert_eq!(later.edits, done.edits);
    rig.assert_sound().await;
}
