use neurocards::store::Engine;

use crate::harness::TestDb;

crate::both_engines!(a_dialog_survives_a_restart_and_can_be_cleared);

async fn a_dialog_survives_a_restart_and_can_be_cleared(engine: Engine) {
    let db = TestDb::new(engine).await;
    db.store
        .set_dialog(10, r#"{"step":"choose_template"}"#)
        .await
        .unwrap();
    db.store
        .set_dialog(10, r#"{"step":"choose_count"}"#)
        .await
        .unwrap();

    let restarted = db.reopen().await;

    assert_eq!(
        restarted.dialog(10).await.unwrap().as_deref(),
        Some(r#"{"step":"choose_count"}"#)
    );
    assert_eq!(restarted.dialog(11).await.unwrap(), None);
    assert!(restarted.remove_dialog(10).await.unwrap());
    assert!(!restarted.remove_dialog(10).await.unwrap());
    assert_eq!(db.store.dialog(10).await.unwrap(), None);
}
