//! The webhook's durable inbox: stored once per update id, one chat's updates in order, a
//! checkout behind nobody, claims that go stale when their process dies, and several
//! processes sharing it.

use std::time::Duration;

use neurocards::store::{Engine, InboxUpdate};

use crate::harness::TestDb;

crate::both_engines!(
    an_update_is_stored_once_however_often_it_arrives,
    a_chats_updates_are_claimed_one_at_a_time_in_order_and_a_checkout_waits_for_nobody,
    a_claim_left_by_a_dead_process_is_taken_over_and_the_dead_cannot_mark_it,
    two_processes_never_claim_the_same_update,
    processed_updates_are_forgotten_after_the_keep_time,
    a_polled_batch_is_stored_whole_and_repeats_in_it_are_ignored,
);

const STALE: Duration = Duration::from_secs(30);

fn ids(claimed: &[InboxUpdate]) -> Vec<i64> {
    claimed.iter().map(|update| update.update_id).collect()
}

async fn an_update_is_stored_once_however_often_it_arrives(engine: Engine) {
    let db = TestDb::new(engine).await;
    assert!(db
        .store
        .inbox_put(1, Some(10), r#"{"update_id":1}"#)
        .await
        .unwrap());
    assert!(!db
        .store
        .inbox_put(1, Some(10), r#"{"update_id":1}"#)
        .await
        .unwrap());
    assert_eq!(db.store.inbox_backlog().await.unwrap(), 1);
    let claimed = db.store.inbox_claim("a", 10, STALE).await.unwrap();
    assert_eq!(ids(&claimed), [1]);
    assert_eq!(claimed[0].body, r#"{"update_id":1}"#);
    assert!(db.store.inbox_done(&claimed[0]).await.unwrap());
    // A repeat after processing is still recognised.
    assert!(!db
        .store
        .inbox_put(1, Some(10), r#"{"update_id":1}"#)
        .await
        .unwrap());
    assert!(db
        .store
        .inbox_claim("a", 10, STALE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.store.inbox_backlog().await.unwrap(), 0);
}

async fn a_chats_updates_are_claimed_one_at_a_time_in_order_and_a_checkout_waits_for_nobody(
    engine: Engine,
) {
    let db = TestDb::new(engine).await;
    for (id, chat) in [
        (1, Some(10)),
        (2, Some(10)),
        (3, Some(20)),
        (4, Some(10)),
        (5, None),
    ] {
        db.store.inbox_put(id, chat, "{}").await.unwrap();
    }
    let first = db.store.inbox_claim("a", 10, STALE).await.unwrap();
    assert_eq!(
        ids(&first),
        [1, 3, 5],
        "the head of each chat, and the checkout"
    );
    assert!(
        db.store
            .inbox_claim("a", 10, STALE)
            .await
            .unwrap()
            .is_empty(),
        "chat 10's next waits until its first is done"
    );
    db.store.inbox_done(&first[0]).await.unwrap();
    let next = db.store.inbox_claim("a", 10, STALE).await.unwrap();
    assert_eq!(ids(&next), [2]);
    db.store.inbox_done(&next[0]).await.unwrap();
    assert_eq!(
        ids(&db.store.inbox_claim("a", 10, STALE).await.unwrap()),
        [4]
    );
}

async fn a_claim_left_by_a_dead_process_is_taken_over_and_the_dead_cannot_mark_it(engine: Engine) {
    let db = TestDb::new(engine).await;
    db.store.inbox_put(1, Some(10), "{}").await.unwrap();
    let dead = db.store.inbox_claim("dead", 10, STALE).await.unwrap();
    assert_eq!(ids(&dead), [1]);

    // A claim renewed in time stays with its holder.
    db.clock.advance(Duration::from_secs(20));
    assert!(db.store.inbox_renew(&dead[0]).await.unwrap());
    db.clock.advance(Duration::from_secs(20));
    assert!(db
        .store
        .inbox_claim("live", 10, STALE)
        .await
        .unwrap()
        .is_empty());

    // Not renewed for longer than the stale time: another process takes it over.
    db.clock.advance(Duration::from_secs(11));
    let live = db.store.inbox_claim("live", 10, STALE).await.unwrap();
    assert_eq!(ids(&live), [1]);
    assert!(!db.store.inbox_renew(&dead[0]).await.unwrap());
    assert!(
        !db.store.inbox_done(&dead[0]).await.unwrap(),
        "the old claim is void"
    );
    assert!(db.store.inbox_done(&live[0]).await.unwrap());
    assert_eq!(db.store.inbox_backlog().await.unwrap(), 0);
}

async fn two_processes_never_claim_the_same_update(engine: Engine) {
    let db = TestDb::new(engine).await;
    for id in 1..=40 {
        // Twenty chats with two updates each.
        db.store.inbox_put(id, Some(id % 20), "{}").await.unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut rounds = 0;
    while seen.len() < 40 {
        rounds += 1;
        assert!(rounds < 20, "the inbox never drained: {seen:?}");
        let (a, b) = tokio::join!(
            db.store.inbox_claim("a", 7, STALE),
            db.store.inbox_claim("b", 7, STALE)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        for update in a.iter().chain(&b) {
            assert!(
                seen.insert(update.update_id),
                "claimed twice: {}",
                update.update_id
            );
            assert!(db.store.inbox_done(update).await.unwrap());
        }
    }
}

async fn processed_updates_are_forgotten_after_the_keep_time(engine: Engine) {
    let db = TestDb::new(engine).await;
    db.store.inbox_put(1, Some(10), "{}").await.unwrap();
    db.store.inbox_put(2, Some(20), "{}").await.unwrap();
    let claimed = db.store.inbox_claim("a", 1, STALE).await.unwrap();
    db.store.inbox_done(&claimed[0]).await.unwrap();
    let keep = Duration::from_secs(24 * 3600);
    assert_eq!(db.store.inbox_forget_processed(keep).await.unwrap(), 0);
    db.clock.advance(keep + Duration::from_secs(1));
    assert_eq!(db.store.inbox_forget_processed(keep).await.unwrap(), 1);
    assert_eq!(
        db.store.inbox_backlog().await.unwrap(),
        1,
        "pending ones stay"
    );
}

async fn a_polled_batch_is_stored_whole_and_repeats_in_it_are_ignored(engine: Engine) {
    let db = TestDb::new(engine).await;
    db.store.inbox_put(2, Some(20), "first copy").await.unwrap();
    let batch: Vec<(i64, Option<i64>, String)> = (1..=3)
        .map(|id| (id, Some(id * 10), format!("update {id}")))
        .collect();
    db.store.inbox_put_all(&batch).await.unwrap();
    // The same batch again (the poller retrying after it lost the answer) adds nothing.
    db.store.inbox_put_all(&batch).await.unwrap();
    db.store.inbox_put_all(&[]).await.unwrap();
    assert_eq!(db.store.inbox_backlog().await.unwrap(), 3);
    let claimed = db.store.inbox_claim("a", 10, STALE).await.unwrap();
    let mut bodies: Vec<(i64, String)> = claimed
        .iter()
        .map(|update| (update.update_id, update.body.clone()))
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            (1, "update 1".to_owned()),
            (2, "first copy".to_owned()),
            (3, "update 3".to_owned())
        ]
    );
}
