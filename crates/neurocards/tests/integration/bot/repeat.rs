//! "Repeat": the same order again after its price and one confirm press, placed once however
//! often the press arrives.

use emulators::telegram::SentKind;
use neurocards::store::Engine;

use super::rig::{buttons, has_button, text_of, BotRig};

crate::both_engines!(repeat_shows_the_price_and_a_double_press_places_one_order);

async fn repeat_shows_the_price_and_a_double_press_places_one_order(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    let user = rig.user(771, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    let one = buttons(&counts)[0].1.clone();
    rig.telegram.press_button(&user, counts.message_id, &one);
    let summary = rig
        .wait_for(&user, before, |m| has_button(m, "more:"))
        .await;
    assert_eq!(rig.balance(&user).await, 4);

    let repeat = buttons(&summary)
        .into_iter()
        .find(|(_, data)| data.starts_with("rp:"))
        .expect("a Repeat button under the summary");
    assert_eq!(repeat.0, "🔁 Repeat");
    let confirm = rig
        .press_data(&user, summary.message_id, &repeat.1, 1)
        .await
        .remove(0);
    let text = text_of(&confirm);
    assert!(text.starts_with("Repeat order #"), "{text}");
    assert!(text.contains(": 1 video, "), "{text}");
    assert!(
        text.contains("Price: 1 credit. Your balance: 4 credits."),
        "{text}"
    );
    let press = buttons(&confirm);
    assert_eq!(press.len(), 1, "one confirm button: {press:?}");
    assert_eq!(press[0].0, "✅ Repeat for 1 credit");

    // Pressed twice before the first is handled.
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .press_button(&user, confirm.message_id, &press[0].1);
    rig.telegram
        .press_button(&user, confirm.message_id, &press[0].1);
    let second = rig
        .wait_for(&user, before, |m| has_button(m, "more:"))
        .await;
    assert_ne!(second.message_id, summary.message_id);
    assert_eq!(rig.orders(&user).await, 2, "one more order, not two");
    assert_eq!(rig.balance(&user).await, 3);
    let videos = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|message| matches!(message.kind, SentKind::Video { .. }))
        .count();
    assert_eq!(videos, 2);

    // From "My videos" too.
    let page = rig.say(&user, "/history", 1).await.remove(0);
    let again = buttons(&page)
        .into_iter()
        .find(|(_, data)| data.starts_with("rp:"))
        .expect("a repeat button per order");
    let confirm = rig
        .press_data(&user, page.message_id, &again.1, 1)
        .await
        .remove(0);
    assert!(
        text_of(&confirm).contains("Your balance: 3 credits."),
        "{confirm:?}"
    );
    rig.assert_sound().await;
}
