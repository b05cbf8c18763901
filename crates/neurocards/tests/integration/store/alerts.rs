//! The alert gate every process shares: one alert of a kind per period, a count of those
//! held back, and one winner when processes race.

use std::time::Duration;

use neurocards::store::Engine;

use crate::harness::TestDb;

crate::both_engines!(
    a_kind_goes_out_once_per_period_with_a_count_of_those_held_back,
    of_processes_racing_for_the_same_alert_one_sends_it,
);

const EVERY: Duration = Duration::from_secs(900);

async fn a_kind_goes_out_once_per_period_with_a_count_of_those_held_back(engine: Engine) {
    let db = TestDb::new(engine).await;
    let gate = &db.store;
    assert_eq!(gate.admit_alert("queue", EVERY).await.unwrap(), Some(0));
    db.clock.advance(Duration::from_secs(60));
    assert_eq!(gate.admit_alert("queue", EVERY).await.unwrap(), None);
    assert_eq!(gate.admit_alert("queue", EVERY).await.unwrap(), None);
    // Another kind is not held back by this one.
    assert_eq!(gate.admit_alert("worker", EVERY).await.unwrap(), Some(0));
    db.clock.advance(EVERY);
    assert_eq!(
        gate.admit_alert("queue", EVERY).await.unwrap(),
        Some(2),
        "two held back"
    );
    assert_eq!(gate.admit_alert("queue", EVERY).await.unwrap(), None);
}

async fn of_processes_racing_for_the_same_alert_one_sends_it(engine: Engine) {
    let db = TestDb::new(engine).await;
    for round in 0..3 {
        let results =
            futures::future::join_all((0..4).map(|_| db.store.admit_alert("key", EVERY))).await;
        let sent = results
            .into_iter()
            .map(|result| result.unwrap())
            .filter(Option::is_some)
            .count();
        assert_eq!(sent, 1, "round {round}");
        db.clock.advance(EVERY);
    }
}
