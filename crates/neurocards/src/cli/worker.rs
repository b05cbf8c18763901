//! `neurocards worker`: the generation worker pool alone, for scaling out.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::kie::{KeyPool, KieClient};
use crate::store::Store;
use crate::telegram::Telegram;
use crate::worker::{Worker, WorkerSettings};

/// Builds a worker from the configuration: its KIE keys, client and Telegram sender.
pub async fn build_worker(
    config: &Config,
    store: Store,
    telegram: Telegram,
) -> anyhow::Result<Arc<Worker>> {
    let keys = config.require_kie_keys()?;
    let pool = KeyPool::start(keys, config.kie.status_per_second, store.clone())
        .await
        .context("registering the KIE keys")?;
    let kie = KieClient::with_user_agent(
        config.kie_api_url.clone(),
        config.kie_upload_url.clone(),
        config.kie.request_timeout,
        &config.kie_user_agent,
    )
    .context("building the KIE client")?;
    Worker::new(
        store,
        kie,
        pool,
        telegram,
        WorkerSettings::from_config(config),
    )
    .context("building the worker")
}

pub async fn run(config: &Config, store: Store) -> anyhow::Result<()> {
    let worker = build_worker(config, store, super::bot::build_telegram(config)?).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    worker.run(shutdown).await.context("running the worker")
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested");
    token.cancel();
}
