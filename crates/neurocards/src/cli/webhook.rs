//! `neurocards webhook set|info|delete`: the webhook's registration with Telegram, made by
//! the operator once per deployment. The processes never register or remove the webhook by
//! themselves on start and stop: during a rolling deploy the old and new processes overlap,
//! and one stopping would switch the webhook off under the other.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use secrecy::ExposeSecret;
use teloxide::payloads::{DeleteWebhookSetters, SetWebhookSetters};
use teloxide::prelude::Requester;
use teloxide::types::WebhookInfo;

use crate::bot::ALLOWED_UPDATES;
use crate::config::{Config, Webhook};
use crate::telegram::redact_token;

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Register WEBHOOK_URL with WEBHOOK_SECRET, every update kind the bot handles and
    /// WEBHOOK_MAX_CONNECTIONS. Updates Telegram holds are kept.
    Set,
    /// What Telegram knows of the webhook: its URL, pending updates, the last error.
    Info,
    /// Remove the webhook (back to long polling). Updates Telegram holds are kept.
    Delete,
}

pub async fn run(config: &Config, action: WebhookAction) -> anyhow::Result<ExitCode> {
    let token = config.require_bot_token()?;
    let bot = crate::app::telegram_client(config)?.dialog_bot();
    let redact = |err: teloxide::RequestError| {
        anyhow::anyhow!(redact_token(&err.to_string(), token.expose_secret()))
    };
    match action {
        WebhookAction::Set => {
            let webhook = config.webhook.as_ref().context(
                "WEBHOOK_URL is not set: set it (and WEBHOOK_SECRET) to the address Telegram posts to",
            )?;
            register(&bot, webhook)
                .await
                .map_err(redact)
                .context("registering the webhook with Telegram")?;
            println!(
                "Webhook set: Telegram posts updates to {} (up to {} connections).",
                webhook.url, webhook.max_connections
            );
        }
        WebhookAction::Info => {
            let info = bot
                .get_webhook_info()
                .await
                .map_err(redact)
                .context("asking Telegram about the webhook")?;
            print!("{}", describe(&info));
        }
        WebhookAction::Delete => {
            bot.delete_webhook()
                .drop_pending_updates(false)
                .await
                .map_err(redact)
                .context("removing the webhook")?;
            println!("Webhook removed: the bot reads updates by long polling again.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// setWebhook with everything the bot needs; pending updates are kept.
pub async fn register(
    bot: &teloxide::Bot,
    webhook: &Webhook,
) -> Result<(), teloxide::RequestError> {
    bot.set_webhook(webhook.url.clone())
        .secret_token(webhook.secret.expose_secret())
        .allowed_updates(ALLOWED_UPDATES.to_vec())
        .max_connections(webhook.max_connections)
        .drop_pending_updates(false)
        .await
        .map(|_| ())
}

/// getWebhookInfo as an operator reads it.
pub fn describe(info: &WebhookInfo) -> String {
    let mut text = match &info.url {
        Some(url) => format!("Webhook: {url}\n"),
        None => "Webhook: none (long polling)\n".to_owned(),
    };
    text.push_str(&format!(
        "Updates waiting at Telegram: {}\n",
        info.pending_update_count
    ));
    if let Some(max) = info.max_connections {
        text.push_str(&format!("Connections at most: {max}\n"));
    }
    if let Some(updates) = &info.allowed_updates {
        let names: Vec<String> = updates
            .iter()
            .map(|kind| {
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("{kind:?}"))
            })
            .collect();
        text.push_str(&format!("Update kinds: {}\n", names.join(", ")));
    }
    match (&info.last_error_date, &info.last_error_message) {
        (Some(at), Some(message)) => {
            text.push_str(&format!("Last error: {message} ({at})\n"));
        }
        (None, Some(message)) => text.push_str(&format!("Last error: {message}\n")),
        _ => text.push_str("Last error: none\n"),
    }
    text
}
