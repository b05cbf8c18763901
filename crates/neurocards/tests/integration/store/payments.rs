//! Stars payments in the store: credited exactly once per charge id, refunds taken back at
//! most once and never below a zero balance, and `check_invariants` matching payments to
//! their ledger rows.

use neurocards::domain::{LedgerKind, UserId};
use neurocards::store::{Engine, NewPayment, StoreError};

use crate::harness::{assert_invariants_hold, place, user_with, TestDb};

crate::both_engines!(
    a_payment_credits_once_however_often_it_is_recorded,
    two_payments_of_one_invoice_credit_twice,
    racing_deliveries_of_one_payment_credit_once,
    a_refund_takes_the_credits_back_once,
    a_refund_after_spending_takes_what_is_left,
    an_unknown_payment_cannot_be_refunded,
);

fn payment(charge_id: &str, user: UserId) -> NewPayment<'_> {
    NewPayment {
        charge_id,
        user,
        package_id: "standard",
        stars: 350,
        credits: 20,
    }
}

async fn a_payment_credits_once_however_often_it_is_recorded(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 2).await;
    let first = db
        .store
        .record_payment(&payment("ch-1", user))
        .await
        .unwrap();
    assert!(first.credited_now);
    assert_eq!(first.balance, 22);
    let again = db
        .store
        .record_payment(&payment("ch-1", user))
        .await
        .unwrap();
    assert!(!again.credited_now, "a repeated update credited again");
    assert_eq!(again.balance, 22);
    let ledger = db.store.ledger(user, 10).await.unwrap();
    let purchases: Vec<_> = ledger
        .iter()
        .filter(|entry| entry.kind == LedgerKind::Purchase)
        .collect();
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0].payment_id.as_deref(), Some("ch-1"));
    assert_invariants_hold(&db.store).await;
}

async fn two_payments_of_one_invoice_credit_twice(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 0).await;
    db.store
        .record_payment(&payment("ch-a", user))
        .await
        .unwrap();
    let second = db
        .store
        .record_payment(&payment("ch-b", user))
        .await
        .unwrap();
    assert!(second.credited_now);
    assert_eq!(second.balance, 40);
    assert_eq!(db.store.payments_of(user, 10).await.unwrap().len(), 2);
    assert_invariants_hold(&db.store).await;
}

async fn racing_deliveries_of_one_payment_credit_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 0).await;
    let racers = (0..8).map(|_| {
        let store = db.store.clone();
        tokio::spawn(async move { store.record_payment(&payment("ch-race", user)).await })
    });
    let mut credited = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap().credited_now {
            credited += 1;
        }
    }
    assert_eq!(credited, 1);
    assert_eq!(db.store.balance(user).await.unwrap(), 20);
    assert_invariants_hold(&db.store).await;
}

async fn a_refund_takes_the_credits_back_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 3).await;
    db.store
        .record_payment(&payment("ch-1", user))
        .await
        .unwrap();
    let refund = db.store.record_payment_refund("ch-1").await.unwrap();
    assert!(refund.recorded_now);
    assert_eq!((refund.taken_back, refund.balance), (20, 3));
    let again = db.store.record_payment_refund("ch-1").await.unwrap();
    assert!(!again.recorded_now, "a second refund took credits again");
    assert_eq!((again.taken_back, again.balance), (20, 3));
    let stored = db
        .store
        .payment("ch-1")
        .await
        .unwrap()
        .expect("the payment");
    assert!(stored.refunded_at.is_some());
    assert_eq!(stored.refunded_credits, Some(20));
    assert_invariants_hold(&db.store).await;
}

async fn a_refund_after_spending_takes_what_is_left(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 0).await;
    db.store
        .record_payment(&payment("ch-1", user))
        .await
        .unwrap();
    // 15 of the 20 credits are spent on three orders of five videos.
    for _ in 0..3 {
        place(&db.store, user, 5).await;
    }
    let refund = db.store.record_payment_refund("ch-1").await.unwrap();
    assert_eq!((refund.taken_back, refund.balance), (5, 0));
    assert_eq!(
        db.store
            .payment("ch-1")
            .await
            .unwrap()
            .and_then(|p| p.refunded_credits),
        Some(5)
    );
    assert_invariants_hold(&db.store).await;
}

async fn an_unknown_payment_cannot_be_refunded(engine: Engine) {
    let db = TestDb::new(engine).await;
    let refused = db.store.record_payment_refund("no-such-charge").await;
    assert!(
        matches!(refused, Err(StoreError::UnknownPayment(ref id)) if id == "no-such-charge"),
        "{refused:?}"
    );
}
