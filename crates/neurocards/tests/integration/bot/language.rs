//! `/language`: the user's own choice of ru or en, stored, over Telegram's language.

use neurocards::domain::UserId;
use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig};

crate::both_engines!(a_chosen_language_outlasts_telegrams_and_is_stored);

async fn a_chosen_language_outlasts_telegrams_and_is_stored(engine: Engine) {
    let rig = BotRig::start(engine).await;
    // Telegram says English.
    let user = rig.user(701, "en", 3).await;

    let picker = rig.say(&user, "/language", 1).await.remove(0);
    assert_eq!(text_of(&picker), "Choose your language:");
    let labels: Vec<String> = buttons(&picker)
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(labels, ["🇷🇺 Русский", "🇬🇧 English"]);
    let chosen = rig.press(&user, &picker, 0, 1).await.remove(0);
    assert!(text_of(&chosen).starts_with("Язык: русский."), "{chosen:?}");
    assert!(
        buttons(&chosen)
            .iter()
            .any(|(label, _)| label.contains("Создать видео")),
        "the menu in Russian: {chosen:?}"
    );

    // Every later message is Russian, though Telegram still says English.
    let balance = rig.say(&user, "/balance", 1).await.remove(0);
    assert!(
        text_of(&balance).starts_with("Ваш баланс: 3 кредита."),
        "{balance:?}"
    );
    let stored = rig.store().user(UserId(user.id)).await.unwrap().unwrap();
    assert_eq!(stored.language, "ru");

    // And back, by the command's argument.
    let chosen = rig.say(&user, "/language en", 1).await.remove(0);
    assert!(
        text_of(&chosen).starts_with("Language: English."),
        "{chosen:?}"
    );
    let balance = rig.say(&user, "/balance", 1).await.remove(0);
    assert!(
        text_of(&balance).starts_with("Your balance: 3 credits."),
        "{balance:?}"
    );
    rig.assert_sound().await;
}
