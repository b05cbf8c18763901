//! Model states and the shared create limit, on both engines.

use std::time::Duration;

use neurocards::store::{CreateSlot, Engine, StoreOptions};

use crate::harness::TestDb;

crate::both_engines!(
    a_model_is_marked_unavailable_once_and_enabled_again,
    a_create_slot_counts_until_kie_answered_and_then_from_the_answer,
    concurrent_takers_never_take_more_slots_than_the_limit,
);

async fn a_model_is_marked_unavailable_once_and_enabled_again(engine: Engine) {
    let db = TestDb::new(engine).await;
    assert!(db.store.unavailable_models().await.unwrap().is_empty());
    assert!(
        !db.store.enable_model("kling-2.6").await.unwrap(),
        "never retired"
    );

    // Five videos fail at once: exactly one call changes the state (and alerts).
    let mut changed = 0;
    for _ in 0..5 {
        if db
            .store
            .mark_model_unavailable("kling-2.6", "This interface is temporarily paused")
            .await
            .unwrap()
        {
            changed += 1;
        }
    }
    assert_eq!(changed, 1);
    let states = db.store.model_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert!(!states[0].is_available());
    assert_eq!(
        states[0].reason.as_deref(),
        Some("This interface is temporarily paused")
    );
    assert!(db
        .store
        .unavailable_models()
        .await
        .unwrap()
        .contains("kling-2.6"));

    assert!(db.store.enable_model("kling-2.6").await.unwrap());
    assert!(db.store.unavailable_models().await.unwrap().is_empty());
    // Retired again later: alerted again.
    assert!(db
        .store
        .mark_model_unavailable("kling-2.6", "gone again")
        .await
        .unwrap());
}

async fn a_create_slot_counts_until_kie_answered_and_then_from_the_answer(engine: Engine) {
    let db = TestDb::new(engine).await;
    let window = Duration::from_secs(1); // 1.1 s with the margin
    let take = || db.store.take_create_slot("acct", 2, window);
    let CreateSlot::Taken(first) = take().await.unwrap() else {
        panic!("the window is empty");
    };
    let CreateSlot::Taken(_second) = take().await.unwrap() else {
        panic!("two fit");
    };
    assert!(matches!(take().await.unwrap(), CreateSlot::Wait(_)));

    // Requests still waiting for KIE's answer count however long ago their slot was taken:
    // they may arrive at KIE any moment.
    db.clock.advance(Duration::from_secs(5));
    assert!(matches!(take().await.unwrap(), CreateSlot::Wait(_)));

    // Answered now: the slot counts from now, for one window.
    db.store.settle_create_slot(first).await.unwrap();
    db.clock.advance(Duration::from_millis(1000));
    match take().await.unwrap() {
        CreateSlot::Wait(wait) => assert!(wait <= Duration::from_millis(100), "{wait:?}"),
        CreateSlot::Taken(_) => panic!("the answered slot is still in its window"),
    }
    db.clock.advance(Duration::from_millis(101));
    let CreateSlot::Taken(third) = take().await.unwrap() else {
        panic!("the answered slot left the window");
    };
    db.store.settle_create_slot(third).await.unwrap();

    // A slot whose process died in flight stops counting after the longest request.
    db.clock.advance(Duration::from_secs(125));
    let CreateSlot::Taken(_) = take().await.unwrap() else {
        panic!("the abandoned slot was dropped");
    };
}

/// Every worker process takes slots of the same account at once. Here they all queue
/// behind another holder of the account (a row lock on PostgreSQL, the write lock on
/// SQLite) and go in the moment it lets go: each must count the slots the ones before it
/// took while it waited, so exactly `limit` are taken.
async fn concurrent_takers_never_take_more_slots_than_the_limit(engine: Engine) {
    let options = StoreOptions {
        max_connections: 16,
        ..StoreOptions::default()
    };
    let db = TestDb::with_options(engine, options).await;
    const LIMIT: u32 = 30;
    let window = Duration::from_secs(10);
    let CreateSlot::Taken(_) = db
        .store
        .take_create_slot("shared", LIMIT, window)
        .await
        .unwrap()
    else {
        panic!("the window is empty");
    };
    let mut holder = match engine {
        Engine::Postgres => {
            let mut tx = db.store.pool().begin().await.unwrap();
            sqlx::query("SELECT name FROM kie_accounts WHERE name = 'shared' FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx
        }
        Engine::Sqlite => db.store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap(),
    };
    let takers: Vec<_> = (0..60)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.take_create_slot("shared", LIMIT, window).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("SELECT 1").execute(&mut *holder).await.unwrap();
    holder.commit().await.unwrap();
    let mut taken = 1;
    for taker in takers {
        match taker.await.unwrap().unwrap() {
            CreateSlot::Taken(_) => taken += 1,
            CreateSlot::Wait(wait) => assert!(wait > Duration::ZERO, "{wait:?}"),
        }
    }
    assert_eq!(taken, LIMIT);
    // Another account has a window of its own.
    assert!(matches!(
        db.store
            .take_create_slot("other", LIMIT, window)
            .await
            .unwrap(),
        CreateSlot::Taken(_)
    ));
}
