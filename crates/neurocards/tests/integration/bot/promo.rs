//! `/promo CODE` in the dialog, and `neurocards admin promo` as an operator runs it.

use neurocards::store::Engine;

use super::rig::{text_of, BotRig};

crate::both_engines!(a_user_redeems_a_code_once_and_a_wrong_one_says_nothing_about_it);

async fn a_user_redeems_a_code_once_and_a_wrong_one_says_nothing_about_it(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let admin_cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_neurocards"))
            .args(args)
            .env("DATABASE_URL", rig.db.url())
            .env_remove("RUST_LOG")
            .output()
            .expect("running the neurocards binary")
    };
    let created = admin_cli(&[
        "admin",
        "promo",
        "create",
        "spring25",
        "3",
        "--uses",
        "10",
        "--expires",
        "2099-12-31",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("Code SPRING25: 3 credits for 10 users")
    );

    let user = rig.user(761, "en", 1).await;
    let usage = rig.say(&user, "/promo", 1).await.remove(0);
    assert!(
        text_of(&usage).starts_with("Send /promo and the code"),
        "{usage:?}"
    );
    let done = rig.say(&user, "/promo spring25", 1).await.remove(0);
    assert_eq!(
        text_of(&done),
        "Code accepted: 3 credits added. Your balance: 4 credits."
    );
    let again = rig.say(&user, "/promo SPRING25", 1).await.remove(0);
    assert_eq!(text_of(&again), "You have already used this code.");
    assert_eq!(rig.balance(&user).await, 4);

    // A code that does not exist and one that cannot be a code get the same answer.
    for wrong in ["/promo WINTER", "/promo <script>"] {
        let reply = rig.say(&user, wrong, 1).await.remove(0);
        assert_eq!(
            text_of(&reply),
            "This code does not work. Check it and try again."
        );
    }

    let russian = rig.user(762, "ru", 0).await;
    let done = rig.say(&russian, "/promo SPRING25", 1).await.remove(0);
    assert_eq!(
        text_of(&done),
        "Код принят: начислено 3 кредита. Ваш баланс: 3 кредита."
    );

    let listed = admin_cli(&["admin", "promo", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("SPRING25") && text.contains("2/10") && text.contains("active"),
        "{text}"
    );
    let disabled = admin_cli(&["admin", "promo", "disable", "spring25"]);
    assert!(disabled.status.success());
    let late = rig.user(763, "en", 0).await;
    let reply = rig.say(&late, "/promo SPRING25", 1).await.remove(0);
    assert_eq!(
        text_of(&reply),
        "This code does not work. Check it and try again."
    );
    rig.assert_sound().await;
}
