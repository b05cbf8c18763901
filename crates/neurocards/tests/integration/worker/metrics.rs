//! `/metrics`: what happened in the process, in Prometheus' text format, read from memory and
//! from the periodic snapshot of the database.

use std::time::Duration;

use neurocards::store::Engine;
use neurocards::worker::Wakeups;

use super::rig::Rig;

crate::both_engines!(
    metrics_show_orders_videos_kie_and_telegram_requests_and_the_queue,
    a_worker_process_serves_its_metrics_at_worker_http_addr,
);

async fn a_worker_process_serves_its_metrics_at_worker_http_addr(engine: Engine) {
    let rig = Rig::start(engine).await;
    let mut config = rig.config.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    config.worker_http_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let overrides = neurocards::app::Overrides {
        store: Some(rig.store().clone()),
        ..Default::default()
    };
    let app = neurocards::app::App::build_with(&config, neurocards::app::Role::Worker, overrides)
        .await
        .expect("a worker process");
    let stop = app.shutdown();
    let running = tokio::spawn(app.run());

    // The worker registers, the snapshot counts it, the scrape shows it.
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = match reqwest::get(&url).await {
            Ok(response) if response.status().is_success() => {
                response.text().await.unwrap_or_default()
            }
            _ => String::new(),
        };
        if text
            .lines()
            .any(|line| line.starts_with("neurocards_live_workers ") && !line.ends_with(" 0"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live worker in /metrics: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("/healthz answers");
    assert!(health.status().is_success());
    stop.cancel();
    running.await.expect("the process ends").expect("cleanly");
}

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
