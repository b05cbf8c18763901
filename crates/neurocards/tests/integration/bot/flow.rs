use emulators::telegram::{SentKind, TestUser};
use neurocards::store::Engine;

use super::rig::{buttons, has_button, text_of, BotRig, ADMIN};

crate::both_engines!(
    orders_of_one_three_and_five_videos_are_made_and_debited,
    a_count_the_balance_cannot_pay_is_refused_and_charges_nothing,
    orders_are_refused_up_front_while_every_kie_key_is_out_of_rotation,
    an_own_prompt_is_cleaned_and_ordered,
    make_more_goes_back_to_the_templates_with_the_same_photo,
    cancel_works_at_every_step,
    a_restart_between_photo_and_count_keeps_the_dialog,
    a_double_press_and_an_old_button_place_one_order,
    admin_commands_answer_admins_only,
    start_registers_the_user_and_shows_the_menu_in_their_language,
);

async fn orders_of_one_three_and_five_videos_are_made_and_debited(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    for (id, count, button) in [(101, 1i64, 0), (103, 3, 1), (105, 5, 2)] {
        let user = rig.user(id, "en", 5).await;
        let counts = rig.up_to_count(&user).await;
        let before = rig.telegram.sent(user.id).len();
        let data = buttons(&counts)[button].1.clone();
        rig.telegram.press_button(&user, counts.message_id, &data);
        let accepted = rig
            .wait_for(&user, before, |m| text_of(m).starts_with("Order accepted"))
            .await;
        assert!(
            text_of(&accepted).starts_with(&if count == 1 {
                "Order accepted: 1 video.".to_owned()
            } else {
                format!("Order accepted: {count} videos.")
            }),
            "{accepted:?}"
        );
        // The videos, then the summary.
        let summary = rig
            .wait_for(&user, before, |m| has_button(m, "more:"))
            .await;
        assert_eq!(
            text_of(&summary),
            format!(
                "Videos made: {count} of {count}.\nBalance: {} credits.",
                5 - count
            )
        );
        let videos = rig
            .telegram
            .sent(user.id)
            .iter()
            .filter(|message| matches!(message.kind, SentKind::Video { .. }))
            .count();
        assert_eq!(videos as i64, count);
        assert_eq!(rig.balance(&user).await, 5 - count);
        assert_eq!(rig.orders(&user).await, 1);
    }
    rig.assert_sound().await;
}

async fn a_count_the_balance_cannot_pay_is_refused_and_charges_nothing(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(201, "en", 2).await;
    let counts = rig.up_to_count(&user).await;
    assert!(
        text_of(&counts).contains("Your balance: 2 credits"),
        "{counts:?}"
    );

    let refused = rig.press(&user, &counts, 1, 1).await;

    assert!(
        text_of(&refused[0])
            .starts_with("Not enough credits: 3 videos need 3 credits and you have 2 credits."),
        "{refused:?}"
    );
    assert!(
        buttons(&refused[0]).iter().any(|(_, data)| data == "m:buy"),
        "{refused:?}"
    );
    assert_eq!(rig.balance(&user).await, 2);
    assert_eq!(rig.orders(&user).await, 0);
    // The step stays: one video can still be ordered from the same buttons.
    let accepted = rig.press(&user, &counts, 0, 1).await;
    assert!(
        text_of(&accepted[0]).starts_with("Order accepted: 1 video."),
        "{accepted:?}"
    );
    assert_eq!(rig.balance(&user).await, 1);
    rig.assert_sound().await;
}

async fn an_own_prompt_is_cleaned_and_ordered(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(301, "en", 3).await;
    let templates = rig.photo(&user, 1).await;
    let own = buttons(&templates[0]).len() - 1;

    let ask = rig.press(&user, &templates[0], own, 1).await;
    assert!(
        text_of(&ask[0]).starts_with("Write what should happen in the video"),
        "{ask:?}"
    );
    let counts = rig
        .say(&user, "  a mug\u{0007} spinning\u{202E} slowly  ", 1)
        .await;
    assert!(
        text_of(&counts[0]).starts_with("Template: own prompt"),
        "{counts:?}"
    );
    rig.press(&user, &counts[0], 0, 1).await;

    let (prompt, template): (String, Option<String>) =
        sqlx::query_as("SELECT prompt, template_id FROM orders WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(rig.store().pool())
            .await
            .unwrap();
    assert_eq!(prompt, "a mug spinning slowly");
    assert_eq!(template, None);
    rig.assert_sound().await;
}

async fn make_more_goes_back_to_the_templates_with_the_same_photo(engine: Engine) {
    let rig = BotRig::with_worker(engine).await;
    let user = rig.user(401, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .press_button(&user, counts.message_id, &buttons(&counts)[0].1);
    let summary = rig
        .wait_for(&user, before, |m| has_button(m, "more:"))
        .await;
    assert!(
        text_of(&summary).starts_with("Videos made: 1 of 1."),
        "{summary:?}"
    );

    let templates = rig.press(&user, &summary, 0, 1).await;
    assert!(
        text_of(&templates[0]).starts_with("Photo received"),
        "{templates:?}"
    );
    let counts = rig.press(&user, &templates[0], 1, 1).await;
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .press_button(&user, counts[0].message_id, &buttons(&counts[0])[0].1);
    rig.wait_for(&user, before, |m| text_of(m).starts_with("Order accepted"))
        .await;

    let photos: Vec<String> =
        sqlx::query_scalar("SELECT photo_file_id FROM orders WHERE user_id = $1 ORDER BY id")
            .bind(user.id)
            .fetch_all(rig.store().pool())
            .await
            .unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0], photos[1], "the same photo");
    rig.assert_sound().await;
}

async fn cancel_works_at_every_step(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(501, "en", 5).await;
    // Idle, after "create video", choosing a template, writing a prompt, choosing a count.
    let menu = rig.say(&user, "/start", 1).await;
    let cancelled = rig.say(&user, "/cancel", 2).await;
    assert!(
        text_of(&cancelled[0]).starts_with("Cancelled"),
        "{cancelled:?}"
    );
    assert!(
        text_of(&cancelled[1]).starts_with("Main menu"),
        "{cancelled:?}"
    );
    let ask = rig.press(&user, &menu[0], 0, 1).await;
    assert!(
        text_of(&ask[0]).starts_with("Send a photo of your product"),
        "{ask:?}"
    );
    let cancelled = rig.say(&user, "/cancel", 2).await;
    assert!(
        text_of(&cancelled[0]).starts_with("Cancelled"),
        "{cancelled:?}"
    );

    let templates = rig.photo(&user, 1).await;
    let cancelled = rig.say(&user, "/cancel", 2).await;
    assert!(text_of(&cancelled[0]).starts_with("Cancelled"));
    let stale = rig.press(&user, &templates[0], 0, 0).await;
    assert!(
        stale.is_empty(),
        "an old template button does nothing: {stale:?}"
    );

    let templates = rig.photo(&user, 1).await;
    let own = buttons(&templates[0]).len() - 1;
    rig.press(&user, &templates[0], own, 1).await;
    let cancelled = rig.say(&user, "/cancel", 2).await;
    assert!(text_of(&cancelled[0]).starts_with("Cancelled"));
    let hint = rig.say(&user, "a prompt after cancel", 1).await;
    assert!(
        text_of(&hint[0]).starts_with("First send a photo"),
        "{hint:?}"
    );

    let counts = rig.up_to_count(&user).await;
    let cancelled = rig.say(&user, "/cancel", 2).await;
    assert!(text_of(&cancelled[0]).starts_with("Cancelled"));
    rig.press(&user, &counts, 0, 0).await;

    assert_eq!(rig.orders(&user).await, 0);
    assert_eq!(rig.balance(&user).await, 5);
    rig.assert_sound().await;
}

async fn a_restart_between_photo_and_count_keeps_the_dialog(engine: Engine) {
    let mut rig = BotRig::start(engine).await;
    let user = rig.user(601, "en", 3).await;
    let templates = rig.photo(&user, 1).await;

    rig.restart_bot().await;
    let counts = rig.press(&user, &templates[0], 0, 1).await;
    rig.restart_bot().await;
    let accepted = rig.press(&user, &counts[0], 1, 1).await;

    assert!(
        text_of(&accepted[0]).starts_with("Order accepted: 3 videos"),
        "{accepted:?}"
    );
    assert_eq!(rig.orders(&user).await, 1);
    assert_eq!(rig.balance(&user).await, 0);
    rig.assert_sound().await;
}

async fn a_double_press_and_an_old_button_place_one_order(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(701, "en", 10).await;
    let counts = rig.up_to_count(&user).await;
    let data = buttons(&counts)[0].1.clone();

    let first = rig.telegram.press_button(&user, counts.message_id, &data);
    let second = rig.telegram.press_button(&user, counts.message_id, &data);
    rig.wait_answered(&first).await;
    rig.wait_answered(&second).await;
    // A button of the same kind from an older message: a new photo, a new count step, and
    // then the first keyboard again.
    rig.up_to_count(&user).await;
    rig.press_data(&user, counts.message_id, &buttons(&counts)[2].1, 0)
        .await;

    assert_eq!(rig.orders(&user).await, 1);
    assert_eq!(rig.balance(&user).await, 9);
    let accepted = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|message| text_of(message).starts_with("Order accepted"))
        .count();
    assert_eq!(accepted, 1);
    rig.assert_sound().await;
}

async fn admin_commands_answer_admins_only(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(801, "en", 0).await;
    let admin = rig.user(ADMIN, "en", 0).await;

    for command in ["/stats", "/grant 801 10"] {
        let reply = rig.say(&user, command, 1).await;
        assert!(
            text_of(&reply[0]).starts_with("I do not know this command"),
            "{command}: {reply:?}"
        );
    }
    assert_eq!(rig.balance(&user).await, 0);

    let granted = rig.say(&admin, "/grant 801 10", 1).await;
    assert_eq!(
        text_of(&granted[0]),
        "User 801: +10 credits. Balance: 10 credits."
    );
    assert_eq!(rig.balance(&user).await, 10);
    let stats = rig.say(&admin, "/stats", 1).await;
    let text = text_of(&stats[0]);
    assert!(
        text.contains("Queue: 0 waiting, 0 in progress, 0 held by workers.")
            && text.contains("Last hour: 0 delivered, 0 failed.")
            && text.contains("Payments today: 0")
            && text.contains("Invariants: all hold."),
        "{text}"
    );
    // In the admin's language.
    let russian = TestUser::new(ADMIN, "ru");
    let stats = rig.say(&russian, "/stats", 1).await;
    let text = text_of(&stats[0]);
    assert!(
        text.contains("Очередь: ждут — 0") && text.contains("Инварианты: все соблюдены."),
        "{text}"
    );
    rig.assert_sound().await;
}

async fn start_registers_the_user_and_shows_the_menu_in_their_language(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let russian = emulators::telegram::TestUser::new(901, "ru");
    let english = emulators::telegram::TestUser::new(902, "en-US");

    let ru = rig.say(&russian, "/start", 1).await;
    let en = rig.say(&english, "/start", 1).await;

    assert!(text_of(&ru[0]).starts_with("Привет!"), "{ru:?}");
    assert!(text_of(&en[0]).starts_with("Hi!"), "{en:?}");
    let labels: Vec<String> = buttons(&en[0])
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        labels,
        [
            "🎬 Create video",
            "💰 Balance",
            "⭐ Buy credits",
            "🎞 My videos",
            "❓ Help"
        ]
    );
    assert_eq!(
        rig.store()
            .user(neurocards::domain::UserId(901))
            .await
            .unwrap()
            .unwrap()
            .language,
        "ru"
    );
    rig.assert_sound().await;
}

async fn orders_are_refused_up_front_while_every_kie_key_is_out_of_rotation(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let user = rig.user(202, "en", 3).await;
    let mut key = neurocards::store::KeyHealth::healthy("KIE_API_KEY", "main");
    key.state = neurocards::store::KeyState::Disabled;
    key.reason = Some("402 credits insufficient".into());
    rig.store().save_key_health(&key).await.unwrap();
    let counts = rig.up_to_count(&user).await;

    let refused = rig.press(&user, &counts, 0, 1).await;
    assert!(
        text_of(&refused[0]).starts_with("Sorry, making videos is paused"),
        "{refused:?}"
    );
    assert_eq!(rig.balance(&user).await, 3, "nothing charged");
    assert_eq!(rig.orders(&user).await, 0);

    // The operator topped up the account and put the key back: the same button works.
    assert!(rig.store().enable_key("KIE_API_KEY").await.unwrap());
    let accepted = rig.press(&user, &counts, 0, 1).await;
    assert!(
        text_of(&accepted[0]).starts_with("Order accepted: 1 video."),
        "{accepted:?}"
    );
    rig.assert_sound().await;
}
