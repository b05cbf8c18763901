//! Broadcasts: the segment reached once each, users who blocked the bot marked and left out,
//! and a broadcast whose sender died resumed by another worker without messaging anyone
//! twice.

use std::time::Duration;

use emulators::telegram::Fault;
use neurocards::domain::UserId;
use neurocards::store::{Engine, NewPayment, Segment};

use super::rig::{Rig, ADMIN_ID};

crate::both_engines!(
    a_broadcast_reaches_its_segment_once_skips_the_blocked_and_survives_its_sender,
    each_segment_takes_its_own_users,
    an_operator_tries_a_broadcast_on_the_admins_then_sends_and_follows_it,
);

const TEXT: &str = "Spring sale: 20 credits for 300 ⭐ this week.";

fn received(rig: &Rig, user: i64) -> usize {
    rig.texts(user).iter().filter(|text| *text == TEXT).count()
}

async fn a_broadcast_reaches_its_segment_once_skips_the_blocked_and_survives_its_sender(
    engine: Engine,
) {
    let mut rig = Rig::start(engine).await;
    rig.user(ADMIN_ID, 0, "en").await;
    let users: Vec<UserId> = {
        let mut users = Vec::new();
        for id in 1001..=1010 {
            users.push(rig.user(id, 0, "en").await);
        }
        users
    };
    // Blocked the bot long ago: left out. Blocks it now: marked.
    rig.store().mark_unreachable(users[0]).await.unwrap();
    rig.telegram.inject(Fault::Blocked {
        chat_id: users[9].0,
    });

    let id = rig
        .store()
        .create_broadcast(
            TEXT,
            Some(("Buy", "https://t.me/neurocards_test_bot")),
            Segment::All,
        )
        .await
        .unwrap();
    // Everyone registered but the unreachable one: ten users and the admin.
    assert_eq!(rig.store().start_broadcast(id).await.unwrap(), Some(10));
    assert_eq!(
        rig.store().start_broadcast(id).await.unwrap(),
        None,
        "started once"
    );

    // A sender claimed the first three and died before sending anything.
    let dead = rig
        .store()
        .take_broadcast("dead-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the broadcast");
    let lost = rig
        .store()
        .claim_recipients(dead.id, "dead-worker", 3)
        .await
        .unwrap();
    assert_eq!(lost.len(), 3);
    sqlx::query("UPDATE broadcasts SET held_at = held_at - 120000 WHERE id = $1")
        .bind(id)
        .execute(rig.store().pool())
        .await
        .unwrap();

    rig.spawn_worker().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = rig.store().broadcast_status(id).await.unwrap().unwrap();
        if status.state == "done" {
            assert_eq!(status.recipients, 10);
            assert_eq!(status.blocked, 1, "{status:?} {:?}", rig.texts(1010));
            assert_eq!(status.sent, 6, "{status:?}");
            assert_eq!(status.pending, 0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for user in &users {
        let claimed_by_the_dead = lost.contains(user);
        let expected = usize::from(!claimed_by_the_dead && user.0 != 1001 && user.0 != 1010);
        assert_eq!(received(&rig, user.0), expected, "user {user}");
    }
    let blocked = rig.store().user(users[9]).await.unwrap().unwrap();
    assert!(blocked.unreachable_at.is_some(), "marked unreachable");
    // The admin (a recipient the dead sender had claimed) saw the progress, brought up to
    // date at the end, and got the report.
    let progress = format!("Broadcast #{id}: 10 of 10 sent so far (1 had blocked the bot).");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rig.texts(ADMIN_ID).contains(&progress) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            rig.texts(ADMIN_ID)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rig
        .texts(ADMIN_ID)
        .iter()
        .any(|text| text.contains(&format!("broadcast #{id} ended (done)")))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            rig.texts(ADMIN_ID)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn each_segment_takes_its_own_users(engine: Engine) {
    let rig = Rig::start(engine).await;
    let payer = rig.user(2001, 0, "en").await;
    let rich = rig.user(2002, 3, "en").await;
    rig.user(2003, 0, "en").await;
    rig.store()
        .record_payment(&NewPayment {
            charge_id: "c-1",
            user: payer,
            package_id: "start",
            stars: 100,
            credits: 5,
        })
        .await
        .unwrap();
    let _ = rich;
    for (segment, expected) in [
        (Segment::Paid, 1),
        (Segment::WithBalance, 2),
        (Segment::Active7d, 3),
        (Segment::All, 3),
    ] {
        let id = rig
            .store()
            .create_broadcast(TEXT, None, segment)
            .await
            .unwrap();
        assert_eq!(
            rig.store().start_broadcast(id).await.unwrap(),
            Some(expected),
            "{segment:?}"
        );
        assert!(rig.store().cancel_broadcast(id).await.unwrap());
    }
}

async fn an_operator_tries_a_broadcast_on_the_admins_then_sends_and_follows_it(engine: Engine) {
    let rig = Rig::start(engine).await;
    rig.user(ADMIN_ID, 0, "en").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.txt");
    std::fs::write(&file, format!("{TEXT}\n")).unwrap();
    let run = |args: Vec<String>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_neurocards"));
        command
            .args(args)
            .env("DATABASE_URL", rig.db.url())
            .env("BOT_TOKEN", rig.telegram.token())
            .env("TELEGRAM_API_URL", rig.telegram.base_url())
            .env("ADMIN_IDS", ADMIN_ID.to_string())
            .env_remove("RUST_LOG");
        tokio::task::spawn_blocking(move || {
            let output = command.output().expect("running the neurocards binary");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let file = file.display().to_string();
    let (ok, out, err) = run(args(&[
        "admin",
        "broadcast",
        "create",
        "--text",
        &file,
        "--segment",
        "with-balance",
        "--button",
        "Buy=https://t.me/neurocards_test_bot?start=buy",
    ]))
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("the test went to 1 of 1 admins"), "{out}");
    let test = rig
        .telegram
        .sent(ADMIN_ID)
        .into_iter()
        .find(|message| message.text.as_deref() == Some(TEXT))
        .expect("the test at the admin");
    assert!(test
        .reply_markup
        .is_some_and(|markup| markup.to_string().contains("start=buy")));
    let id: String = out
        .split_whitespace()
        .nth(1)
        .expect("the broadcast id")
        .to_owned();

    let (ok, out, _) = run(args(&["admin", "broadcast", "start", &id]))
        .await
        .unwrap();
    assert!(ok && out.contains("being sent to 0 users"), "{out}");
    let (ok, out, _) = run(args(&["admin", "broadcast", "status", &id]))
        .await
        .unwrap();
    assert!(
        ok && out.contains("(with-balance): sending; 0 recipients"),
        "{out}"
    );
    let (ok, out, _) = run(args(&["admin", "broadcast", "cancel", &id]))
        .await
        .unwrap();
    assert!(ok && out.contains("cancelled"), "{out}");
    let (ok, _, err) = run(args(&[
        "admin",
        "broadcast",
        "create",
        "--text",
        &file,
        "--segment",
        "nobody",
    ]))
    .await
    .unwrap();
    assert!(!ok && err.contains("--segment"), "{err}");
}
