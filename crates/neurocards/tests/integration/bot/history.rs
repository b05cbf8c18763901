//! "My videos": the user's orders, paged, and an order's videos sent again by Telegram's
//! file id: free, instant, no request to KIE.

use emulators::telegram::{SentKind, VideoSource};
use neurocards::domain::UserId;
use neurocards::store::Engine;

use super::rig::{buttons, has_button, text_of, BotRig};
use crate::harness::place;

crate::both_engines!(
    an_old_order_s_videos_come_again_by_file_id_without_kie_or_charge,
    the_history_pages_through_older_and_newer_orders,
);

fn videos(rig: &BotRig, chat: i64) -> Vec<VideoSource> {
    rig.telegram
        .sent(chat)
        .into_iter()
        .filter_map(|message| match message.kind {
            SentKind::Video { source, .. } => Some(source),
            _ => None,
        })
        .collect()
}

async fn an_old_order_s_videos_come_again_by_file_id_without_kie_or_charge(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    let user = rig.user(751, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    let data = buttons(&counts)[1].1.clone();
    rig.telegram.press_button(&user, counts.message_id, &data);
    rig.wait_for(&user, before, |m| has_button(m, "more:"))
        .await;
    assert_eq!(videos(&rig, user.id).len(), 3);
    let created = rig.kie().create_task_calls();

    let page = rig.say(&user, "/history", 1).await.remove(0);
    let text = text_of(&page);
    assert!(text.starts_with("Your orders, newest first."), "{text}");
    assert!(text.contains("3 of 3 made"), "{text}");
    let open: Vec<(String, String)> = buttons(&page)
        .into_iter()
        .filter(|(_, data)| data.starts_with("ho:"))
        .collect();
    assert_eq!(open.len(), 1, "{page:?}");
    assert!(open[0].0.starts_with("🎞 #"), "{open:?}");

    let again = rig.press_data(&user, page.message_id, &open[0].1, 3).await;
    let sources: Vec<&VideoSource> = again
        .iter()
        .filter_map(|message| match &message.kind {
            SentKind::Video { source, .. } => Some(source),
            _ => None,
        })
        .collect();
    assert_eq!(sources.len(), 3, "{again:?}");
    assert!(
        sources
            .iter()
            .all(|source| matches!(source, VideoSource::FileId(_))),
        "{sources:?}"
    );
    assert_eq!(rig.kie().create_task_calls(), created, "no KIE request");
    assert_eq!(rig.balance(&user).await, 2, "no charge");

    // The menu's button opens the same page.
    let menu = rig.say(&user, "/start", 1).await.remove(0);
    let history = buttons(&menu)
        .into_iter()
        .find(|(_, data)| data == "m:history")
        .expect("a My videos button");
    let page = rig.press_data(&user, menu.message_id, &history.1, 1).await;
    assert!(text_of(&page[0]).contains("3 of 3 made"), "{page:?}");
    rig.assert_sound().await;
}

async fn the_history_pages_through_older_and_newer_orders(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(752, "en", 7).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(place(rig.store(), UserId(user.id), 1).await.order_id);
    }

    let first = rig.say(&user, "/history", 1).await.remove(0);
    let text = text_of(&first);
    for id in &ids[2..] {
        assert!(
            text.contains(&format!("#{id} ")),
            "{id} on the first page: {text}"
        );
    }
    assert!(!text.contains(&format!("#{} ", ids[1])), "{text}");
    assert!(text.contains("in progress, 0 of 1 made"), "{text}");
    let paging: Vec<(String, String)> = buttons(&first)
        .into_iter()
        .filter(|(_, data)| data.starts_with("h:"))
        .collect();
    assert_eq!(paging, [("Older ›".to_owned(), "h:5".to_owned())]);
    assert!(
        !buttons(&first)
            .iter()
            .any(|(_, data)| data.starts_with("ho:")),
        "no video to open yet"
    );
    assert_eq!(
        buttons(&first)
            .iter()
            .filter(|(_, data)| data.starts_with("rp:"))
            .count(),
        5,
        "each order can be repeated"
    );
    assert_eq!(
        paging,
        [("Older ›".to_owned(), "h:5".to_owned())],
        "no video to open yet"
    );

    let second = rig
        .press_data(&user, first.message_id, "h:5", 1)
        .await
        .remove(0);
    let text = text_of(&second);
    assert!(text.contains(&format!("#{} ", ids[0])) && text.contains(&format!("#{} ", ids[1])));
    assert!(!text.contains(&format!("#{} ", ids[2])), "{text}");
    let paging: Vec<(String, String)> = buttons(&second)
        .into_iter()
        .filter(|(_, data)| data.starts_with("h:"))
        .collect();
    assert_eq!(paging, [("‹ Newer".to_owned(), "h:0".to_owned())]);

    // Someone else's order is not theirs to open.
    let stranger = rig.user(753, "en", 0).await;
    let page = rig.say(&stranger, "/history", 1).await.remove(0);
    assert!(
        text_of(&page).starts_with("You have no orders yet."),
        "{page:?}"
    );
    let before = rig.telegram.sent(stranger.id).len();
    let query = rig
        .telegram
        .press_button(&stranger, page.message_id, &format!("ho:{}", ids[0]));
    rig.wait_answered(&query).await;
    assert_eq!(rig.telegram.sent(stranger.id).len(), before, "nothing sent");
}
