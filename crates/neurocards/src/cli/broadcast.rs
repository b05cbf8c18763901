//! `neurocards admin broadcast …`: a message to a segment of the users. `create` stores a
//! draft and sends it to the admins as a test; `start` fixes the recipients and lets the
//! workers send it (25 a second, resumable, nobody twice); `cancel` stops it; `status`
//! shows how far it got.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::config::Config;
use crate::store::{Segment, Store};

#[derive(Debug, Subcommand)]
pub enum BroadcastAction {
    /// Store a draft and send it to ADMIN_IDS as a test.
    Create {
        /// A text file with the message.
        #[arg(long)]
        text: std::path::PathBuf,
        /// all, paid, active-7d or with-balance.
        #[arg(long, default_value = "all")]
        segment: String,
        /// A link button under the message: TEXT=URL.
        #[arg(long)]
        button: Option<String>,
    },
    /// Send a draft to its segment (the workers send it).
    Start { id: i64 },
    /// Stop a broadcast; those not reached yet get nothing.
    Cancel { id: i64 },
    /// How far a broadcast got.
    Status { id: i64 },
}

pub async fn run(
    config: &Config,
    store: &Store,
    action: BroadcastAction,
) -> anyhow::Result<ExitCode> {
    match action {
        BroadcastAction::Create {
            text,
            segment,
            button,
        } => {
            let message = std::fs::read_to_string(&text)
                .with_context(|| format!("reading {}", text.display()))?;
            let message = message.trim();
            if message.is_empty() || message.chars().count() > 4096 {
                eprintln!("The message must be 1 to 4096 characters.");
                return Ok(ExitCode::FAILURE);
            }
            let Some(segment) = Segment::parse(&segment) else {
                eprintln!("--segment is one of all, paid, active-7d, with-balance.");
                return Ok(ExitCode::FAILURE);
            };
            let button = match button.as_deref().map(parse_button) {
                Some(Some(button)) => Some(button),
                Some(None) => {
                    eprintln!("--button takes TEXT=URL, with an http:// or https:// URL.");
                    return Ok(ExitCode::FAILURE);
                }
                None => None,
            };
            let id = store
                .create_broadcast(
                    message,
                    button
                        .as_ref()
                        .map(|(label, url)| (label.as_str(), url.as_str())),
                    segment,
                )
                .await
                .context("storing the broadcast")?;
            let telegram = crate::app::telegram_client(config)?;
            let markup = button.and_then(|(label, url)| {
                let url = url::Url::parse(&url).ok()?;
                Some(InlineKeyboardMarkup::new(vec![vec![
                    InlineKeyboardButton::url(label, url),
                ]]))
            });
            let mut tested = 0;
            for admin in &config.admin_ids {
                match telegram.send_text(*admin, message, markup.clone()).await {
                    Ok(_) => tested += 1,
                    Err(err) => eprintln!("The test to admin {admin} was not sent: {err}"),
                }
            }
            println!(
                "Broadcast {id} ({}) stored; the test went to {tested} of {} admins. \
                 Send it with: neurocards admin broadcast start {id}",
                segment.as_str(),
                config.admin_ids.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        BroadcastAction::Start { id } => match store.start_broadcast(id).await? {
            Some(recipients) => {
                println!("Broadcast {id} is being sent to {recipients} users by the workers.");
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("Broadcast {id} is not a draft (unknown, started or cancelled).");
                Ok(ExitCode::FAILURE)
            }
        },
        BroadcastAction::Cancel { id } => {
            if store.cancel_broadcast(id).await? {
                println!("Broadcast {id} is cancelled.");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("Broadcast {id} is not a draft or being sent.");
                Ok(ExitCode::FAILURE)
            }
        }
        BroadcastAction::Status { id } => match store.broadcast_status(id).await? {
            Some(status) => {
                println!(
                    "Broadcast {id} ({}): {}; {} recipients, {} sent, {} had blocked the bot, {} failed, {} to go.",
                    status.segment,
                    status.state,
                    status.recipients,
                    status.sent,
                    status.blocked,
                    status.failed,
                    status.pending
                );
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("There is no broadcast {id}.");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

/// `TEXT=URL` with a web URL.
fn parse_button(text: &str) -> Option<(String, String)> {
    let (label, url) = text.split_once('=')?;
    let (label, url) = (label.trim(), url.trim());
    let parsed = url::Url::parse(url).ok()?;
    let web = matches!(parsed.scheme(), "http" | "https");
    (!label.is_empty() && web).then(|| (label.to_owned(), url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_is_text_equals_a_web_url() {
        assert_eq!(
            parse_button("Open the shop=https://example.com/shop?a=b"),
            Some((
                "Open the shop".to_owned(),
                "https://example.com/shop?a=b".to_owned()
            ))
        );
        assert_eq!(parse_button("no url"), None);
        assert_eq!(parse_button("=https://example.com"), None);
        assert_eq!(parse_button("x=javascript:alert(1)"), None);
    }
}
