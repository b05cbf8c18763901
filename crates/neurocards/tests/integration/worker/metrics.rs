//! `/metrics`: what happened in the process, in Prometheus' text format, read from memory and
//! from the periodic snapshot of the database.

use std::time::Duration;

use neurocards::store::Engine;
use neurocards::worker::Wakeups;

use super::rig::Rig;

crate::both_engines!(metrics_show_orders_videos_kie_and_telegram_requests_and_the_queue);

async fn metrics_show_orders_videos_kie_and_telegram_requests_and_the_queue(engine: Engine) {
    // The recorder is the test process's own: other tests add to the counters too, so the
    // figures are checked as present and positive, not as exact.
    let handle = neurocards::metrics::install().expect("the process's metrics recorder");
    let mut rig = Rig::start(engine).await;
    let user = rig.user(901, 2, "en").await;
    let order = rig.order(user, 2, "a lamp glows on a desk").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(order.order_id, Duration::from_secs(30))
        .await;
    neurocards::metrics::snapshot(rig.store()).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/metrics",
        listener.local_addr().expect("an address")
    );
    let router =
        neurocards::http::router(rig.store().clone(), Wakeups::default(), None, Some(handle));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let response = reqwest::get(&url).await.expect("scraping /metrics");
    assert!(response.status().is_success());
    let text = response.text().await.expect("the metrics text");
    server.abort();

    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        value("neurocards_videos_total{") >= 1.0,
        "no videos counted:\n{text}"
    );
    assert!(text.contains("outcome=\"delivered\""), "{text}");
    assert!(value("neurocards_kie_requests_total{") >= 2.0, "{text}");
    assert!(text.contains("endpoint=\"create\""), "{text}");
    assert!(
        value("neurocards_kie_request_seconds_count") >= 2.0,
        "{text}"
    );
    assert!(
        value("neurocards_telegram_requests_total{") >= 2.0,
        "{text}"
    );
    assert!(
        value("neurocards_order_to_video_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("neurocards_jobs{status=\"delivered\"}"),
        "{text}"
    );
    assert!(text.contains("neurocards_live_workers"), "{text}");
    assert!(
        text.contains("neurocards_kie_key_state{key=\"key-test-key\"} 0"),
        "the key is healthy: {text}"
    );
    assert!(text.contains("neurocards_models_unavailable 0"), "{text}");
    assert!(text.contains("neurocards_inbox_backlog 0"), "{text}");
}
