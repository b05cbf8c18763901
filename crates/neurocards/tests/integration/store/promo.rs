//! Promo codes in the store: once per user, never beyond the uses (two users racing for the
//! last use: one wins), not after expiry or once disabled, and wrong codes slowed down.

use std::time::Duration;

use neurocards::clock::Clock;
use neurocards::store::{Engine, Redemption};

use crate::harness::{assert_invariants_hold, user_with, TestDb};

crate::both_engines!(
    a_code_credits_each_user_once_and_never_beyond_its_uses,
    two_users_racing_for_the_last_use_get_one_credit_between_them,
    an_expired_or_disabled_code_credits_nobody_and_guessing_is_slowed_down,
);

const WINDOW: Duration = Duration::from_secs(600);

async fn a_code_credits_each_user_once_and_never_beyond_its_uses(engine: Engine) {
    let db = TestDb::new(engine).await;
    let (a, b, c) = (
        user_with(&db.store, 1, 0).await,
        user_with(&db.store, 2, 1).await,
        user_with(&db.store, 3, 0).await,
    );
    assert!(db
        .store
        .create_promo("SPRING", 5, Some(2), None)
        .await
        .unwrap());
    assert!(
        !db.store
            .create_promo("SPRING", 9, None, None)
            .await
            .unwrap(),
        "exists"
    );

    assert_eq!(
        db.store.redeem_promo(a, "SPRING", 5, WINDOW).await.unwrap(),
        Redemption::Credited {
            credits: 5,
            balance: 5
        }
    );
    assert_eq!(
        db.store.redeem_promo(a, "SPRING", 5, WINDOW).await.unwrap(),
        Redemption::AlreadyRedeemed
    );
    assert_eq!(
        db.store.redeem_promo(b, "SPRING", 5, WINDOW).await.unwrap(),
        Redemption::Credited {
            credits: 5,
            balance: 6
        }
    );
    assert_eq!(
        db.store.redeem_promo(c, "SPRING", 5, WINDOW).await.unwrap(),
        Redemption::NotValid,
        "used up"
    );
    let codes = db.store.promo_codes().await.unwrap();
    assert_eq!((codes[0].used, codes[0].max_uses), (2, Some(2)));
    let ledger = db.store.ledger(a, 5).await.unwrap();
    assert_eq!(ledger[0].kind.as_str(), "promo");
    assert_invariants_hold(&db.store).await;
}

async fn two_users_racing_for_the_last_use_get_one_credit_between_them(engine: Engine) {
    let db = TestDb::new(engine).await;
    for round in 0..5 {
        let code = format!("LAST{round}");
        db.store
            .create_promo(&code, 3, Some(1), None)
            .await
            .unwrap();
        let first = user_with(&db.store, 100 + round * 2, 0).await;
        let second = user_with(&db.store, 101 + round * 2, 0).await;
        let (x, y) = tokio::join!(
            db.store.redeem_promo(first, &code, 5, WINDOW),
            db.store.redeem_promo(second, &code, 5, WINDOW)
        );
        let credited = [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|outcome| matches!(outcome, Redemption::Credited { .. }))
            .count();
        assert_eq!(credited, 1, "round {round}");
        let total =
            db.store.balance(first).await.unwrap() + db.store.balance(second).await.unwrap();
        assert_eq!(total, 3, "round {round}");
    }
    assert_invariants_hold(&db.store).await;
}

async fn an_expired_or_disabled_code_credits_nobody_and_guessing_is_slowed_down(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 0).await;
    let soon = db.clock.now_millis() + 60_000;
    db.store
        .create_promo("BRIEF", 2, None, Some(soon))
        .await
        .unwrap();
    db.store.create_promo("OFF", 2, None, None).await.unwrap();
    assert!(db.store.disable_promo("OFF").await.unwrap());
    assert!(!db.store.disable_promo("NOPE").await.unwrap());
    db.clock.advance(Duration::from_secs(61));

    for code in ["BRIEF", "OFF", "NOPE", "WRONG"] {
        assert_eq!(
            db.store.redeem_promo(user, code, 5, WINDOW).await.unwrap(),
            Redemption::NotValid,
            "{code}"
        );
    }
    // The fifth wrong code in ten minutes: from now on nothing is looked up, not even a
    // good code.
    db.store.create_promo("GOOD", 1, None, None).await.unwrap();
    assert_eq!(
        db.store
            .redeem_promo(user, "AGAIN", 5, WINDOW)
            .await
            .unwrap(),
        Redemption::NotValid
    );
    assert_eq!(
        db.store
            .redeem_promo(user, "GOOD", 5, WINDOW)
            .await
            .unwrap(),
        Redemption::TooManyTries
    );
    db.clock.advance(WINDOW + Duration::from_secs(1));
    assert_eq!(
        db.store
            .redeem_promo(user, "GOOD", 5, WINDOW)
            .await
            .unwrap(),
        Redemption::Credited {
            credits: 1,
            balance: 1
        }
    );
}
