use neurocards::store::{Breach, Engine};

use crate::harness::{place, user_with, worker, TestDb};

crate::both_engines!(
    the_check_reports_each_kind_of_breach,
    the_check_matches_payments_to_their_ledger_rows
);

async fn the_check_reports_each_kind_of_breach(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 5).await;
    let placed = place(&db.store, user, 2).await;
    let w = worker(&db.store, "w1").await;
    db.store.claim_jobs(&w, 2).await.unwrap();
    assert!(db.store.check_invariants().await.unwrap().is_empty());

    // Break the data by hand, as only a bug or a manual edit could.
    let pool = db.store.pool();
    sqlx::query("UPDATE users SET credits = credits + 100 WHERE id = 1")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET status = 'failed' WHERE id = $1")
        .bind(placed.job_ids[0].0)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(placed.job_ids[1].0)
        .execute(pool)
        .await
        .unwrap();

    let breaches = db.store.check_invariants().await.unwrap();

    assert!(
        breaches.contains(&Breach::BalanceDiffersFromLedger {
            user,
            credits: 103,
            ledger_sum: 3
        }),
        "{breaches:?}"
    );
    assert!(
        breaches.contains(&Breach::FailedJobRefundCount {
            job: placed.job_ids[0],
            refunds: 0
        }),
        "{breaches:?}"
    );
    assert!(
        breaches.contains(&Breach::OrderJobCountMismatch {
            order: placed.order_id,
            video_count: 2,
            jobs: 1
        }),
        "{breaches:?}"
    );
    assert!(
        breaches.contains(&Breach::FinishedJobStillHeld {
            job: placed.job_ids[0],
            status: "failed".into()
        }),
        "{breaches:?}"
    );
    assert_eq!(breaches.len(), 4, "{breaches:?}");
}

async fn the_check_matches_payments_to_their_ledger_rows(engine: Engine) {
    let db = TestDb::new(engine).await;
    let user = user_with(&db.store, 1, 0).await;
    let payment = neurocards::store::NewPayment {
        charge_id: "ch-1",
        user,
        package_id: "start",
        stars: 100,
        credits: 5,
    };
    db.store.record_payment(&payment).await.unwrap();
    assert!(db.store.check_invariants().await.unwrap().is_empty());

    // A payment recorded by hand without its credit, as only a bug could.
    sqlx::query(
        "INSERT INTO payments (charge_id, user_id, package_id, stars, credits, created_at)
         VALUES ('ch-2', 1, 'start', 100, 5, 0)",
    )
    .execute(db.store.pool())
    .await
    .unwrap();

    let breaches = db.store.check_invariants().await.unwrap();
    assert_eq!(
        breaches,
        [Breach::PaymentLedgerMismatch {
            charge_id: "ch-2".into(),
            credits: 5,
            credited: 0,
            taken_back: 0,
        }]
    );
}
