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
    // Nobody is talking: deliveries may take all but one send of the window.
    for chat in 0..29 {
        assert_eq!(
            take(chat, Lane::Bulk).await,
            SharedTurn::At(start),
            "send {chat}"
        );
    }
    assert_eq!(
        take(29, Lane::Bulk).await,
        SharedTurn::Wait {
            until: start + 1020,
            by_chat: false
        }
    );
    // The one left is a person's.
    assert_eq!(take(100, Lane::Dialog).await, SharedTurn::At(start));
    assert!(matches!(
        take(101, Lane::Dialog).await,
        SharedTurn::Wait { by_chat: false, .. }
    ));
    // A chat already written to waits for its own second. A person's answer keeps its place
    // there: a delivery to that chat from another process comes after it.
    db.clock.advance(Duration::from_millis(1030));
    assert_eq!(take(100, Lane::Dialog).await, SharedTurn::At(start + 1100));
    assert_eq!(
        take(100, Lane::Bulk).await,
        SharedTurn::Wait {
            until: start + 2200,
            by_chat: true
        }
    );

    // The window has moved; a person was answered within two seconds, so deliveries keep
    // to 24 of the 30, the reserved answer among them.
    for chat in 200..223 {
        assert_eq!(
            take(chat, Lane::Bulk).await,
            SharedTurn::At(start + 1030),
            "send {chat}"
        );
    }
    assert!(matches!(
        take(223, Lane::Bulk).await,
        SharedTurn::Wait { by_chat: false, .. }
    ));
    assert_eq!(take(300, Lane::Dialog).await, SharedTurn::At(start + 1030));
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
    // Another process asking now finds the window full of the first one's sends.
    let other = db
        .store
        .take_telegram_send(&SystemClock, &Limits::default(), 99, Lane::Bulk, false)
        .await
        .unwrap();
    assert!(
        matches!(other, SharedTurn::Wait { by_chat: false, .. }),
        "{other:?}"
    );
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
    // Chat 5 twice: its second message must wait for the chat's second.
    let chats: Vec<i64> = (0..40).chain([5]).collect();
    let turns = db
        .store
        .take_telegram_sends(&db.clock, &limits, &chats, Lane::Bulk, false)
        .await
        .unwrap();

    assert_eq!(turns.len(), chats.len());
    assert!(turns[..29]
        .iter()
        .all(|turn| *turn == SharedTurn::At(start)));
    assert!(turns[29..40].iter().all(|turn| *turn
        == SharedTurn::Wait {
            until: start + 1020,
            by_chat: false
        }));
    assert_eq!(
        turns[40],
        SharedTurn::Wait {
            until: start + 1100,
            by_chat: true
        }
    );
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM telegram_sends")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 29, "only the granted sends are counted");
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
    let budget = Arc::new(Budget::shared(Limits::default(), db.store.clone()));
    // 58 messages at once, two to each of 29 chats: they ask in batches, by the real clock,
    // and all go within about 1.1 s (the rows stay for 2 s).
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
