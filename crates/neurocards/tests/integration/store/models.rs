//! Model states and the shared create limit, on both engines.

use std::time::Duration;

use neurocards::store::{CreateSlot, Engine, StoreOptions};

use crate::harness::TestDb;

crate::both_engines!(
    a_model_is_marked_unavailable_once_and_enabled_again,
    a_create_slot_counts_until_kie_answered_and_then_from_the_answer,
    concurrent_takers_never_take_more_slots_than_the_limit,
    a_batch_takes_the_room_the_window_has_and_waits_for_the_rest,
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
    // Single slots and batches of up to four (a worker process asking for all its jobs).
    let takers: Vec<_> = (0..60)
        .map(|taker| {
            let store = db.store.clone();
            let wanted = taker % 5;
            tokio::spawn(async move {
                store
                    .take_create_slots("shared", LIMIT, window, wanted)
                    .await
                    .map(|slots| (wanted, slots))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("SELECT 1").execute(&mut *holder).await.unwrap();
    holder.commit().await.unwrap();
    let mut taken = 1;
    let mut ids = std::collections::HashSet::new();
    for taker in takers {
        let (wanted, slots) = taker.await.unwrap().unwrap();
        assert!(slots.taken.len() <= wanted as usize);
        if slots.taken.len() < wanted as usize {
            assert!(slots.wait > Duration::ZERO, "{slots:?}");
        }
        taken += slots.taken.len() as u32;
        ids.extend(slots.taken);
    }
    assert_eq!(taken, LIMIT);
    assert_eq!(
        ids.len() as u32,
        LIMIT - 1,
        "every slot has an id of its own"
    );
    // Another account has a window of its own.
    assert!(matches!(
        db.store
            .take_create_slot("other", LIMIT, window)
            .await
            .unwrap(),
        CreateSlot::Taken(_)
    ));
}

async fn a_batch_takes_the_room_the_window_has_and_waits_for_the_rest(engine: Engine) {
    let db = TestDb::new(engine).await;
    let window = Duration::from_secs(1); // 1.1 s with the margin
    let first = db
        .store
        .take_create_slots("acct", 5, window, 3)
        .await
        .unwrap();
    assert_eq!(first.taken.len(), 3);
    assert_eq!(first.wait, Duration::ZERO, "all that was wanted was taken");
    let second = db
        .store
        .take_create_slots("acct", 5, window, 4)
        .await
        .unwrap();
    assert_eq!(second.taken.len(), 2, "two places were left");
    // Every slot is still waiting for KIE's answer: ask again shortly.
    assert_eq!(second.wait, Duration::from_millis(100));
    for slot in first.taken.iter().chain(&second.taken) {
        db.store.settle_create_slot(*slot).await.unwrap();
    }
    db.clock.advance(Duration::from_millis(600));
    let full = db
        .store
        .take_create_slots("acct", 5, window, 2)
        .await
        .unwrap();
    assert!(full.taken.is_empty());
    assert_eq!(
        full.wait,
        Duration::from_millis(500),
        "the answered slots leave the window 1.1 s after their answer"
    );
    db.clock.advance(Duration::from_millis(500));
    let again = db
        .store
        .take_create_slots("acct", 5, window, 7)
        .await
        .unwrap();
    assert_eq!(again.taken.len(), 5, "the whole window is free again");
    let none = db
        .store
        .take_create_slots("acct", 5, window, 0)
        .await
        .unwrap();
    assert!(none.taken.is_empty());
}
