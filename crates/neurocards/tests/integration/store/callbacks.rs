//! KIE callbacks noted by the receiving process for the workers, on both engines.

use std::time::Duration;

use neurocards::store::Engine;

use crate::harness::TestDb;

crate::both_engines!(noted_callbacks_are_read_from_a_moment_on_and_forgotten_later);

async fn noted_callbacks_are_read_from_a_moment_on_and_forgotten_later(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (none, start) = db.store.kie_callbacks_since(0).await.unwrap();
    assert!(none.is_empty());

    db.clock.advance(Duration::from_secs(1));
    db.store.note_kie_callback("task-a").await.unwrap();
    db.clock.advance(Duration::from_secs(1));
    db.store.note_kie_callback("task-b").await.unwrap();
    let (tasks, now) = db.store.kie_callbacks_since(start).await.unwrap();
    assert_eq!(tasks, ["task-a", "task-b"]);
    assert_eq!(now, start + 2000);

    // Only what came after the last look, and a repeat counts from its latest moment.
    let (tasks, _) = db.store.kie_callbacks_since(now).await.unwrap();
    assert!(tasks.is_empty(), "{tasks:?}");
    db.clock.advance(Duration::from_secs(1));
    db.store.note_kie_callback("task-a").await.unwrap();
    let (tasks, _) = db.store.kie_callbacks_since(now).await.unwrap();
    assert_eq!(tasks, ["task-a"]);

    // task-b (noted at start + 2 s) goes; task-a, noted again at start + 3 s, stays.
    let forgotten = db.store.forget_kie_callbacks(start + 2500).await.unwrap();
    assert_eq!(forgotten, 1);
    let (tasks, _) = db.store.kie_callbacks_since(0).await.unwrap();
    assert_eq!(tasks, ["task-a"]);
}
