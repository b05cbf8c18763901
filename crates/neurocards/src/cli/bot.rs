//! `neurocards bot` and `neurocards run`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;

use super::worker::{build_worker, cancel_on_signal};
use crate::bot::{BotContext, BotRunner};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::store::Store;
use crate::telegram::{redact_token, Telegram};
use crate::templates::Templates;

/// The process's one Telegram client: the dialog, the worker and the summaries share its
/// rate budget.
pub fn build_telegram(config: &Config) -> anyhow::Result<Telegram> {
    let token = config.require_bot_token()?;
    Telegram::new(token, &config.telegram_api_url).context("building the Telegram client")
}

/// Builds the dialog from the configuration; asks Telegram who the bot is.
pub async fn build_bot(
    config: &Config,
    store: Store,
    telegram: &Telegram,
) -> anyhow::Result<BotRunner> {
    let token = config.require_bot_token()?;
    if config.webhook_url.is_some() {
        tracing::warn!(
            "WEBHOOK_URL is set, but webhooks are not supported yet: using long polling"
        );
    }
    let catalogue = Catalogue::load(config.models_file.as_deref())?;
    let templates = Templates::load(config.templates_file.as_deref(), &catalogue)?;
    let bot = telegram.throttled();
    let me = bot
        .get_me()
        .await
        .map_err(|err| anyhow::anyhow!(redact_token(&err.to_string(), token.expose_secret())))
        .context("asking Telegram who the bot is (is BOT_TOKEN right?)")?;
    let context = BotContext {
        store,
        catalogue: Arc::new(catalogue),
        templates: Arc::new(templates),
        telegram: telegram.clone(),
        admin_ids: config.admin_ids.clone(),
        free_credits: config.free_credits,
        max_photo_bytes: config.max_photo_mb * 1024 * 1024,
        bot_username: me.username.clone().unwrap_or_default(),
    };
    tracing::info!(bot = %context.bot_username, "bot ready");
    Ok(BotRunner::new(bot, context))
}

pub async fn run_bot(config: &Config, store: Store) -> anyhow::Result<()> {
    let telegram = build_telegram(config)?;
    let bot = build_bot(config, store, &telegram).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    bot.run(shutdown).await;
    Ok(())
}

/// The default deployment: the dialog, the worker pool and the HTTP server in one process,
/// living and dying together.
pub async fn run_all(config: &Config, store: Store) -> anyhow::Result<()> {
    let telegram = build_telegram(config)?;
    let bot = build_bot(config, store.clone(), &telegram).await?;
    let worker = build_worker(config, store.clone(), telegram).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let callback_auth = config
        .kie_webhook_hmac_key
        .clone()
        .map(crate::http::callback_auth::CallbackAuth::new);
    let router = crate::http::router(store, worker.wakeups(), callback_auth);
    let http = tokio::spawn({
        let (addr, shutdown) = (config.http_addr, shutdown.clone());
        async move {
            crate::http::serve(addr, router, shutdown)
                .await
                .with_context(|| format!("serving HTTP on {addr} (HTTP_ADDR)"))
        }
    });
    let working = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            Arc::clone(&worker)
                .run(shutdown)
                .await
                .context("running the worker")
        }
    });
    let chatting = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            bot.run(shutdown).await;
            Ok(())
        }
    });
    let stop_within = config.shutdown_grace + Duration::from_secs(15);
    super::supervise::supervise(
        shutdown,
        vec![
            ("bot", chatting),
            ("worker", working),
            ("http server", http),
        ],
        stop_within,
    )
    .await
}
