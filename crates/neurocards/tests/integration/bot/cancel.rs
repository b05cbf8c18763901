//! "Cancel" under "order accepted": the videos not yet at KIE come back at once.

use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig};

crate::both_engines!(a_queued_order_is_cancelled_from_its_accepted_message_and_refunded_once);

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
