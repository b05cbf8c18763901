//! The `neurocards` binary's operator commands, run as a person would run them.

use std::process::{Command, Output};

use neurocards::store::{Engine, KeyHealth, KeyState};

use crate::harness::{place, user_with, TestDb};

crate::both_engines!(
    admin_commands_report_and_change_credits,
    admin_check_exits_with_1_and_lists_a_breach,
    admin_keys_shows_health_and_puts_a_key_back,
    admin_models_shows_the_catalogue_and_offers_a_retired_model_again,
    a_catalogue_with_a_mistake_stops_the_start_with_the_line_named,
    admin_user_shows_everything_and_admin_requeue_says_what_it_did,
);

async fn admin_user_shows_everything_and_admin_requeue_says_what_it_did(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url();
    let user = user_with(&db.store, 42, 3).await;
    let placed = place(&db.store, user, 2).await;

    let shown = neurocards(&url, &["admin", "user", "42"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("User 42 (@seller)"), "{text}");
    assert!(text.contains("1 credits"), "{text}");
    assert!(text.contains("Blocked the bot: no"), "{text}");
    assert!(
        text.contains(&format!("#{:<8}", placed.order_id.to_string())),
        "{text}"
    );
    assert!(
        text.contains("2 videos: 0 delivered, 0 failed, 2 in progress"),
        "{text}"
    );
    assert!(text.contains("Payments:\n  none"), "{text}");
    let missing = neurocards(&url, &["admin", "user", "7"]);
    assert!(!missing.status.success());

    let job = placed.job_ids[0].to_string();
    let requeued = neurocards(&url, &["admin", "requeue", &job]);
    assert!(requeued.status.success(), "{}", stderr(&requeued));
    assert!(
        stdout(&requeued).contains("back in the queue"),
        "{}",
        stdout(&requeued)
    );
    let missing = neurocards(&url, &["admin", "requeue", "9999"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );
}

fn neurocards(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("running the neurocards binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn admin_commands_report_and_change_credits(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url();
    let user = user_with(&db.store, 42, 0).await;

    let migrated = neurocards(&url, &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    let granted = neurocards(&url, &["admin", "grant", "42", "5", "--reason", "welcome"]);
    assert!(granted.status.success(), "{}", stderr(&granted));
    assert!(
        stdout(&granted).contains("Balance now 5"),
        "{}",
        stdout(&granted)
    );

    let taken = neurocards(&url, &["admin", "grant", "42", "-7"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("has 5 credits and 7 are needed"),
        "{}",
        stderr(&taken)
    );

    let unknown = neurocards(&url, &["admin", "grant", "7", "5"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("user 7 is not registered"),
        "{}",
        stderr(&unknown)
    );

    let balance = neurocards(&url, &["admin", "balance", "42"]);
    assert!(balance.status.success(), "{}", stderr(&balance));
    let text = stdout(&balance);
    assert!(
        text.contains("User 42 (@seller), language ru: 5 credits"),
        "{text}"
    );
    assert!(text.contains("welcome"), "{text}");

    let order = place(&db.store, user, 2).await;
    let queue = neurocards(&url, &["admin", "queue"]);
    assert!(queue.status.success(), "{}", stderr(&queue));
    assert!(
        stdout(&queue).contains("queued             2"),
        "{}",
        stdout(&queue)
    );

    let job_id = order.job_ids[0].to_string();
    let job = neurocards(&url, &["admin", "job", &job_id]);
    assert!(job.status.success(), "{}", stderr(&job));
    assert!(stdout(&job).contains(&format!(
        "Job {job_id} (video 1 of 2 in order {}",
        order.order_id
    )));
    let missing = neurocards(&url, &["admin", "job", "999999"]);
    assert_eq!(missing.status.code(), Some(1));

    let check = neurocards(&url, &["admin", "check"]);
    assert!(check.status.success(), "{}", stdout(&check));
    assert!(stdout(&check).starts_with("All invariants hold"));
}

async fn admin_check_exits_with_1_and_lists_a_breach(engine: Engine) {
    let db = TestDb::new(engine).await;
    user_with(&db.store, 1, 3).await;
    sqlx::query("UPDATE users SET credits = 10 WHERE id = 1")
        .execute(db.store.pool())
        .await
        .unwrap();

    let check = neurocards(&db.url(), &["admin", "check"]);

    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("user 1: balance 10 but ledger rows sum to 3"),
        "{}",
        stdout(&check)
    );
}

#[test]
fn a_malformed_variable_stops_the_command_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .args(["admin", "queue"])
        .env("DATABASE_URL", &url)
        .env("WORKER_CONCURRENCY", "lots")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("WORKER_CONCURRENCY is invalid"), "{text}");
    assert!(
        !dir.path().join("x.db").exists(),
        "nothing is opened with a bad configuration"
    );
}

#[test]
fn a_database_password_never_appears_in_an_error() {
    let output = neurocards(
        "postgres://app:s3cret-pw@127.0.0.1:1/neurocards",
        &["admin", "queue"],
    );

    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("postgres://app:***@127.0.0.1:1/neurocards"),
        "{text}"
    );
    assert!(!text.contains("s3cret-pw"), "{text}");
}

async fn admin_keys_shows_health_and_puts_a_key_back(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url();
    let empty = neurocards(&url, &["admin", "keys"]);
    assert!(
        stdout(&empty).contains("No KIE keys registered yet"),
        "{}",
        stdout(&empty)
    );
    db.store
        .save_key_health(&KeyHealth::healthy("KIE_API_KEY_1", "main"))
        .await
        .unwrap();
    db.store
        .save_key_health(&KeyHealth {
            state: KeyState::Disabled,
            reason: Some("KIE Create, HTTP 200, code 402: credits are insufficient".into()),
            ..KeyHealth::healthy("KIE_API_KEY_2", "main")
        })
        .await
        .unwrap();

    let listed = neurocards(&url, &["admin", "keys"]);
    let text = stdout(&listed);
    assert!(text.contains("KIE_API_KEY_1"), "{text}");
    let disabled = text
        .lines()
        .find(|line| line.contains("KIE_API_KEY_2"))
        .expect("key 2 listed");
    assert!(
        disabled.contains("DISABLED") && disabled.contains("402"),
        "{text}"
    );

    let enabled = neurocards(&url, &["admin", "keys", "enable", "KIE_API_KEY_2"]);
    assert!(enabled.status.success(), "{}", stderr(&enabled));
    let health = db.store.key_health().await.unwrap();
    assert!(
        health.iter().all(|key| key.state == KeyState::Healthy),
        "{health:?}"
    );
    let unknown = neurocards(&url, &["admin", "keys", "enable", "NOPE"]);
    assert_eq!(unknown.status.code(), Some(1));
}

async fn admin_models_shows_the_catalogue_and_offers_a_retired_model_again(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url();
    let listed = neurocards(&url, &["admin", "models"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    for needle in [
        "kling-2.6  Kling 2.6 (market API, KIE id kling-2.6/image-to-video), prompt up to 1000 characters: available",
        "5s         1 credit(s) per video, offered: Kling 2.6, 5 s",
        "10s        2 credit(s) per video, not offered: Kling 2.6, 10 s",
        "veo-3.1-fast  Veo 3.1 Fast (veo API, KIE id veo3_fast)",
        "fallback: seedance-1.5-pro",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }

    db.store
        .mark_model_unavailable("kling-2.6", "This interface is temporarily paused")
        .await
        .unwrap();
    let retired = stdout(&neurocards(&url, &["admin", "models"]));
    assert!(
        retired.contains("UNAVAILABLE since")
            && retired.contains("This interface is temporarily paused"),
        "{retired}"
    );
    let enabled = neurocards(&url, &["admin", "models", "enable", "kling-2.6"]);
    assert!(enabled.status.success(), "{}", stderr(&enabled));
    assert!(stdout(&enabled).contains("Model kling-2.6 is offered again."));
    assert!(db.store.unavailable_models().await.unwrap().is_empty());
    let unknown = neurocards(&url, &["admin", "models", "enable", "sora-2"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("not in the catalogue"),
        "{}",
        stderr(&unknown)
    );
}

async fn a_catalogue_with_a_mistake_stops_the_start_with_the_line_named(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broken = neurocards::catalogue::BUILT_IN.replacen("price = 1\n", "price = 0\n", 1);
    let line = broken
        .lines()
        .position(|line| line == "price = 0")
        .expect("the edited line")
        + 1;
    let path = dir.path().join("models.toml");
    std::fs::write(&path, &broken).expect("writing the catalogue");
    // The bot loads the catalogue before it talks to Telegram: the token is never used.
    let started = Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .arg("bot")
        .env("DATABASE_URL", db.url())
        .env("MODELS_FILE", &path)
        .env("BOT_TOKEN", "123456:NOT-USED")
        .env("TELEGRAM_API_URL", "http://127.0.0.1:9")
        .env_remove("RUST_LOG")
        .output()
        .expect("running the neurocards binary");
    assert!(!started.status.success());
    let err = stderr(&started);
    assert!(
        err.contains(&format!("line {line}")) && err.contains("at least 1 credit"),
        "{err}"
    );
    assert!(!err.contains("NOT-USED"), "the token stays secret: {err}");
}
