//! The user's choice of model and length where the operator offers several, the totals on
//! the count screen, and a retired model leaving the offer.

use neurocards::catalogue::Catalogue;
use neurocards::store::Engine;

use super::rig::{buttons, has_button, text_of, BotRig};

crate::both_engines!(
    the_user_picks_a_model_and_length_and_pays_its_price,
    a_retired_model_is_replaced_by_its_fallback,
    an_old_choice_button_is_refused,
);

/// The built-in catalogue with 10 s Kling and 8 s Seedance offered too.
fn three_choices() -> Catalogue {
    let text = neurocards::catalogue::BUILT_IN
        .replace(
            "price = 2\noffered = false\ninput = { duration = \"10\", sound = false }",
            "price = 2\ninput = { duration = \"10\", sound = false }",
        )
        .replace(
            "price = 2\noffered = false\ninput = { duration = 8 }",
            "price = 2\ninput = { duration = 8 }",
        );
    Catalogue::parse(&text, "models.toml").expect("a valid catalogue")
}

async fn the_user_picks_a_model_and_length_and_pays_its_price(engine: Engine) {
    let rig = BotRig::with_catalogue(engine, three_choices()).await;
    let user = rig.user(3101, "en", 10).await;
    let templates = rig.photo_to_templates(&user).await;
    let choice = rig.press(&user, &templates, 0, 1).await;
    assert!(
        text_of(&choice[0]).starts_with("Template: Showcase: product close-up\nChoose the model"),
        "{choice:?}"
    );
    let labels: Vec<String> = buttons(&choice[0])
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        labels,
        [
            "Kling 2.6, 5 s: 1 credit",
            "Kling 2.6, 10 s: 2 credits",
            "Seedance 1.5 Pro, 8 s: 2 credits"
        ]
    );
    let counts = rig.press(&user, &choice[0], 1, 1).await;
    assert!(
        text_of(&counts[0]).contains("Model: Kling 2.6, 10 s\nHow many videos? 1 video costs 2 credits. Your balance: 10 credits."),
        "{counts:?}"
    );
    let labels: Vec<String> = buttons(&counts[0])
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        labels,
        [
            "1 video × 2 = 2 credits",
            "3 videos × 2 = 6 credits",
            "5 videos × 2 = 10 credits"
        ]
    );
    let accepted = rig.press(&user, &counts[0], 1, 1).await;
    assert!(
        text_of(&accepted[0])
            .starts_with("Order accepted: 3 videos. 6 credits charged, balance: 4 credits."),
        "{accepted:?}"
    );
    let (model, option, unit_price, generation): (String, String, i64, String) = sqlx::query_as(
        "SELECT model, model_option, unit_price, generation FROM orders WHERE user_id = $1",
    )
    .bind(user.id)
    .fetch_one(rig.store().pool())
    .await
    .expect("the order");
    assert_eq!(
        (model.as_str(), option.as_str(), unit_price),
        ("kling-2.6", "10s", 2)
    );
    let generation: serde_json::Value = serde_json::from_str(&generation).expect("JSON");
    assert_eq!(generation["input"]["duration"], "10");
    assert_eq!(generation["kie_model"], "kling-2.6/image-to-video");
    assert_eq!(rig.balance(&user).await, 4);
    rig.assert_sound().await;
}

async fn a_retired_model_is_replaced_by_its_fallback(engine: Engine) {
    let rig = BotRig::start(engine).await;
    assert!(rig
        .store()
        .mark_model_unavailable("kling-2.6", "This interface is temporarily paused")
        .await
        .expect("marking"));
    let user = rig.user(3102, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    assert!(
        text_of(&counts).contains("Model: Seedance 1.5 Pro, 4 s\n"),
        "{counts:?}"
    );
    rig.press(&user, &counts, 0, 1).await;
    let model: String = sqlx::query_scalar("SELECT model FROM orders WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(rig.store().pool())
        .await
        .expect("the order");
    assert_eq!(model, "seedance-1.5-pro");

    // With the fallback retired as well, nothing is offered and nothing is charged.
    rig.store()
        .mark_model_unavailable("seedance-1.5-pro", "gone")
        .await
        .expect("marking");
    let other = rig.user(3103, "en", 5).await;
    let templates = rig.photo(&other, 1).await;
    assert!(!has_button(&templates[0], "t:"), "{templates:?}");
    let own = rig.press(&other, &templates[0], 0, 1).await;
    assert!(
        text_of(&own[0]).starts_with("Write what should happen"),
        "{own:?}"
    );
    let none = rig.say(&other, "a mug", 1).await;
    assert_eq!(
        text_of(&none[0]),
        "No video model is available right now. Nothing was charged: please try again later."
    );
    assert_eq!(rig.balance(&other).await, 5);
    rig.assert_sound().await;
}

async fn an_old_choice_button_is_refused(engine: Engine) {
    let rig = BotRig::with_catalogue(engine, three_choices()).await;
    let user = rig.user(3104, "en", 10).await;
    let templates = rig.photo_to_templates(&user).await;
    let old = rig.press(&user, &templates, 0, 1).await;
    let templates = rig.photo_to_templates(&user).await;
    rig.press(&user, &templates, 0, 1).await;
    let data = buttons(&old[0])[1].1.clone();
    let before = rig.telegram.sent(user.id).len();
    rig.press_data(&user, old[0].message_id, &data, 0).await;
    assert_eq!(rig.telegram.sent(user.id).len(), before, "no new message");
    assert_eq!(rig.orders(&user).await, 0);
    rig.assert_sound().await;
}
