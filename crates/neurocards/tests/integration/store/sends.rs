//! The bot token's send budget shared by the processes of a deployment, on both engines.

use std::sync::Arc;
use std::time::Duration;

use neurocards::clock::SystemClock;
use neurocards::domain::send_budget::{Lane, Limits, SharedTurn};
use neurocards::store::Engine;
use neurocards::telegram::budget::Budget;

use crate::harness::TestDb;

crate::both_engines!(
    the_token_budget_counts_every_sender_and_keeps_the_dialog_its_place,
    a_budget_shared_through_the_store_counts_its_sends_there,
    without_the_database_a_process_sends_by_its_own_budget,
    sends_asked_together_get_the_turns_they_would_one_by_one,
    many_messages_of_one_process_never_overfill_the_window,
);

async fn the_token_budget_counts_every_sender_and_keeps_the_dialog_its_place(engine: Engine) {
    let db = TestDb::new(engine).await;
    let limits = Limits::default();
    let take = |chat: i64, lane: Lane| {
        let store = db.store.clone();
        let limits = limits.clone();
        let clock = db.clock.clone();
        async move {
            store
                .take_telegram_send(&clock, &limits, chat, lane, false)
                .await
                .unwrap()
        }
    };
    let start = db.store.now_millis();
    // Nobody is talking: deliveries take the whole second spread evenly, one send every
    // 1,020 ms / 30 = 34 ms: one now, the next moment reserved a step ahead, and then the
    // asker comes back when that moment comes.
    assert_eq!(take(0, Lane::Bulk).await, SharedTurn::At(start));
    assert_eq!(take(1, Lane::Bulk).await, SharedTurn::At(start + 34));
    assert_eq!(
        take(2, Lane::Bulk).await,
        SharedTurn::Wait {
            until: start + 34,
            by_chat: false
        }
    );
    for chat in 2..30 {
        db.clock.advance(Duration::from_millis(34));
        assert_eq!(
            take(chat, Lane::Bulk).await,
            SharedTurn::At(start + 34 * chat),
            "send {chat}"
        );
    }
    // Thirty in the window: the next delivery waits for the oldest to leave it...
    assert_eq!(
        take(30, Lane::Bulk).await,
        SharedTurn::Wait {
            until: start + 1020,
            by_chat: false
        }
    );
    // ...and so does a person who starts talking now, for 68 ms.
    assert_eq!(
        take(100, Lane::Dialog).await,
        SharedTurn::Wait {
            until: start + 1020,
            by_chat: false
        }
    );
    db.clock.advance(Duration::from_millis(68));
    assert_eq!(take(100, Lane::Dialog).await, SharedTurn::At(start + 1020));
    // A chat already written to waits for its own second. A person's answer keeps its place
    // there: a delivery to that chat from another process comes after it.
    db.clock.advance(Duration::from_millis(30));
    assert_eq!(take(100, Lane::Dialog).await, SharedTurn::At(start + 2120));
    assert_eq!(
        take(100, Lane::Bulk).await,
        SharedTurn::Wait {
            until: start + 3220,
            by_chat: true
        }
    );

    // The window has moved; a person was answered within two seconds, so deliveries keep
    // to 24 of the 30, the reserved answer among them, and go without spacing.
    db.clock.advance(Duration::from_millis(1050));
    let now = start + 2100;
    for chat in 200..223 {
        assert_eq!(
            take(chat, Lane::Bulk).await,
            SharedTurn::At(now),
            "send {chat}"
        );
    }
    assert!(matches!(
        take(223, Lane::Bulk).await,
        SharedTurn::Wait { by_chat: false, .. }
    ));
    assert_eq!(take(300, Lane::Dialog).await, SharedTurn::At(now));
    // A delivery holds back while its process has an answer waiting.
    let held = db
        .store
        .take_telegram_send(&db.clock, &limits, 400, Lane::Bulk, true)
        .await
        .unwrap();
    assert!(
        matches!(held, SharedTurn::Wait { by_chat: false, .. }),
        "{held:?}"
    );

    // The sends of long ago are forgotten, not kept.
    db.clock.advance(Duration::from_secs(10));
    assert_eq!(
        take(1, Lane::Bulk).await,
        SharedTurn::At(db.store.now_millis())
    );
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM telegram_sends")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 1);
}

async fn a_budget_shared_through_the_store_counts_its_sends_there(engine: Engine) {
    let db = TestDb::new(engine).await;
    let bot = Arc::new(Budget::shared(Limits::default(), db.store.clone()));
    for chat in 0..29 {
        bot.acquire(chat, Lane::Bulk).await;
    }
    let (counted, latest): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), MAX(at) FROM telegram_sends")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(counted, 29, "every send is counted in the database");
    // Another process asking now keeps its distance from the first one's sends.
    let other = db
        .store
        .take_telegram_send(&SystemClock, &Limits::default(), 99, Lane::Bulk, false)
        .await
        .unwrap();
    match other {
        SharedTurn::At(at) => assert!(at >= latest + 34, "{at} after {latest}"),
        SharedTurn::Wait { by_chat, .. } => assert!(!by_chat),
    }
}

async fn without_the_database_a_process_sends_by_its_own_budget(engine: Engine) {
    let db = TestDb::new(engine).await;
    let budget = Budget::shared(Limits::default(), db.store.clone());
    db.store.close().await;
    // Every message still gets its turn (the process's own), none waits for the database.
    let sent = tokio::time::timeout(Duration::from_secs(10), async {
        for chat in 0..40 {
            budget.acquire(chat, Lane::Bulk).await;
        }
    })
    .await;
    assert!(sent.is_ok(), "the sends waited for a database that is gone");
}

async fn sends_asked_together_get_the_turns_they_would_one_by_one(engine: Engine) {
    let db = TestDb::new(engine).await;
    let limits = Limits::default();
    let start = db.store.now_millis();
    // Chat 0 twice: its second message must wait for the chat's second.
    let chats: Vec<i64> = [0].into_iter().chain(0..40).collect();
    let turns = db
        .store
        .take_telegram_sends(&db.clock, &limits, &chats, Lane::Bulk, false)
        .await
        .unwrap();

    assert_eq!(turns.len(), chats.len());
    assert_eq!(turns[0], SharedTurn::At(start));
    assert_eq!(
        turns[1],
        SharedTurn::Wait {
            until: start + 1100,
            by_chat: true
        }
    );
    // Nobody talking: the next moment, a step ahead, and the rest come back then.
    assert_eq!(turns[2], SharedTurn::At(start + 34));
    assert!(turns[3..].iter().all(|turn| *turn
        == SharedTurn::Wait {
            until: start + 34,
            by_chat: false
        }));
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM telegram_sends")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 2, "only the granted sends are counted");
    // Another process asking now finds the window full.
    let other = db
        .store
        .take_telegram_send(&db.clock, &limits, 99, Lane::Bulk, false)
        .await
        .unwrap();
    assert!(matches!(other, SharedTurn::Wait { by_chat: false, .. }));
}

async fn many_messages_of_one_process_never_overfill_the_window(engine: Engine) {
    let db = TestDb::new(engine).await;
    // The rows of sends are kept as long as the dialog's quiet lasts: long enough here for
    // every send of the test to be counted however slowly the machine runs it.
    let limits = Limits {
        dialog_quiet: Duration::from_secs(60),
        ..Limits::default()
    };
    let budget = Arc::new(Budget::shared(limits, db.store.clone()));
    // 58 messages at once, two to each of 29 chats: they ask in batches, by the real clock,
    // and go 34 ms apart, each chat's second at least 1.1 s after its first.
    let sends: Vec<_> = (0..58)
        .map(|n| {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.acquire(n % 29, Lane::Bulk).await })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }

    let mut times: Vec<(i64, i64)> =
        sqlx::query_as("SELECT at, chat FROM telegram_sends ORDER BY at")
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(times.len(), 58, "every message got its turn, once");
    times.sort();
    for (i, (start, _)) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|(at, _)| *at < start + 1020)
            .count();
        assert!(
            in_window <= 30,
            "{in_window} sends within 1.02 s of {start}"
        );
    }
    for chat in 0..29 {
        let sent: Vec<i64> = times
            .iter()
            .filter(|(_, to)| *to == chat)
            .map(|(at, _)| *at)
            .collect();
        assert!(
            sent.len() == 2 && sent[1] - sent[0] >= 1100,
            "chat {chat}: {sent:?}"
        );
    }
}
