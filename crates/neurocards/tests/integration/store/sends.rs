//! The bot token's send budget shared by the processes of a deployment, on both engines.

use std::sync::Arc;
use std::time::Duration;

use neurocards::domain::send_budget::{Lane, Limits, Turn};
use neurocards::store::Engine;
use neurocards::telegram::budget::Budget;

use crate::harness::TestDb;

crate::both_engines!(
    the_token_budget_counts_every_sender_and_keeps_the_dialog_its_place,
    a_budget_shared_through_the_store_counts_its_sends_there,
);

async fn the_token_budget_counts_every_sender_and_keeps_the_dialog_its_place(engine: Engine) {
    let db = TestDb::new(engine).await;
    let limits = Limits::default();
    let take = |chat: i64, lane: Lane| {
        let store = db.store.clone();
        let limits = limits.clone();
        async move { store.take_telegram_send(&limits, chat, lane).await.unwrap() }
    };
    let start = db.store.now_millis();
    // Nobody is talking: deliveries may take all but one send of the window.
    for chat in 0..29 {
        assert_eq!(take(chat, Lane::Bulk).await, Turn::Now, "send {chat}");
    }
    assert_eq!(
        take(29, Lane::Bulk).await,
        Turn::Wait {
            until: start + 1020,
            by_chat: false
        }
    );
    // The one left is a person's.
    assert_eq!(take(100, Lane::Dialog).await, Turn::Now);
    assert!(matches!(take(101, Lane::Dialog).await, Turn::Wait { .. }));
    // A chat already written to waits for its own second, whatever the lane.
    db.clock.advance(Duration::from_millis(1030));
    assert_eq!(
        take(100, Lane::Dialog).await,
        Turn::Wait {
            until: start + 1100,
            by_chat: true
        }
    );

    // The window has moved; a person was answered within two seconds, so deliveries keep
    // to 24 of the 30.
    for chat in 200..224 {
        assert_eq!(take(chat, Lane::Bulk).await, Turn::Now, "send {chat}");
    }
    assert!(matches!(take(224, Lane::Bulk).await, Turn::Wait { .. }));
    assert_eq!(take(300, Lane::Dialog).await, Turn::Now);

    // The sends of long ago are forgotten, not kept.
    db.clock.advance(Duration::from_secs(10));
    assert_eq!(take(1, Lane::Bulk).await, Turn::Now);
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
        .take_telegram_send(&Limits::default(), 99, Lane::Bulk)
        .await
        .unwrap();
    assert!(
        matches!(other, Turn::Wait { by_chat: false, .. }),
        "{other:?}"
    );
}
