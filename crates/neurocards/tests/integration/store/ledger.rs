use neurocards::domain::{LedgerKind, UserId};
use neurocards::store::{Engine, StoreError};

use crate::harness::{assert_invariants_hold, user_with, TestDb};

crate::both_engines!(
    a_new_user_gets_the_free_credits_once,
    grants_and_take_backs_are_ledger_rows_and_never_go_below_zero,
    granting_to_an_unknown_user_is_refused,
    a_known_user_keeps_credits_and_gets_a_fresh_name_and_language,
);

async fn a_new_user_gets_the_free_credits_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = UserId(42);

    let (first, created) = db
        .store
        .register_user(user, Some("anna"), "ru", 3)
        .await
        .unwrap();
    let (again, created_again) = db
        .store
        .register_user(user, Some("anna"), "ru", 3)
        .await
        .unwrap();

    assert!(created && !created_again);
    assert_eq!(first.credits, 3);
    assert_eq!(again.credits, 3);
    let ledger = db.store.ledger(user, 10).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!((ledger[0].kind, ledger[0].delta), (LedgerKind::Grant, 3));
    assert_invariants_hold(&db.store).await;
}

async fn grants_and_take_backs_are_ledger_rows_and_never_go_below_zero(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 7, 0).await;

    assert_eq!(db.store.grant(user, 10, Some("promo")).await.unwrap(), 10);
    assert_eq!(db.store.grant(user, -4, Some("mistake")).await.unwrap(), 6);
    let refused = db.store.grant(user, -7, Some("too much")).await;

    assert!(
        matches!(
            refused,
            Err(StoreError::InsufficientCredits {
                balance: 6,
                needed: 7,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(db.store.balance(user).await.unwrap(), 6);
    let ledger = db.store.ledger(user, 10).await.unwrap();
    let deltas: Vec<i64> = ledger.iter().map(|entry| entry.delta).collect();
    assert_eq!(
        deltas,
        [-4, 10],
        "newest first, and nothing for the refused take-back"
    );
    assert_eq!(ledger[0].reason.as_deref(), Some("mistake"));
    assert_invariants_hold(&db.store).await;
}

async fn granting_to_an_unknown_user_is_refused(engine: Engine) {
    let db = TestDb::new(engine).await;

    let refused = db.store.grant(UserId(404), 5, None).await;

    assert!(
        matches!(refused, Err(StoreError::UnknownUser(UserId(404)))),
        "{refused:?}"
    );
    assert!(db.store.user(UserId(404)).await.unwrap().is_none());
}

async fn a_known_user_keeps_credits_and_gets_a_fresh_name_and_language(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 9, 2).await;

    let (updated, created) = db
        .store
        .register_user(user, Some("new_name"), "en", 100)
        .await
        .unwrap();

    assert!(!created);
    assert_eq!(updated.username.as_deref(), Some("new_name"));
    assert_eq!(updated.language, "en");
    assert_eq!(updated.credits, 2, "free credits are for new users only");
}
