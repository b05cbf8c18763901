//! The command line: `neurocards migrate`, `neurocards admin …`.

pub mod admin;
pub mod broadcast;
mod demo;
pub mod payments;
mod signal;
pub mod webhook;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{App, Role};
use crate::config::Config;
use crate::store::Store;

pub use admin::AdminCommand;

#[derive(Debug, Parser)]
#[command(
    name = "neurocards",
    version,
    about = "Telegram bot that turns a product photo into short marketing videos",
    long_about = "Telegram bot that turns a product photo into short marketing videos.\n\n\
                  Configuration comes from environment variables (and a .env file); see the README."
)]
pub struct Cli {
    #[command(subcommand)]
    /// Without a command: `run`.
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bot, worker pool and HTTP server in one process: the default deployment, and what
    /// `neurocards` without a command does.
    Run,
    /// The Telegram dialog alone: long polling, or the webhook when WEBHOOK_URL is set
    /// (several such processes behind a load balancer share its inbox).
    Bot,
    /// The whole system on this machine with no tokens: both APIs emulated on 127.0.0.1,
    /// SQLite in a temporary directory, and a scripted user going through the flow.
    Demo,
    /// A soak under faults on PostgreSQL: one bot and several worker processes against the
    /// emulators, workers SIGKILLed, the database cut, KIE and Telegram failing; then checks
    /// that no credit, video or summary was lost or doubled. Exits non-zero when one was.
    Chaos(crate::chaos::ChaosArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Run the generation worker pool alone (any number, on any machines, sharing one
    /// PostgreSQL database). Stops cleanly on SIGTERM, handing its jobs back.
    Worker,
    /// The Telegram webhook's registration: `set` (WEBHOOK_URL, WEBHOOK_SECRET), `info`,
    /// `delete`. Run once per deployment, not by the processes themselves.
    Webhook {
        #[command(subcommand)]
        action: webhook::WebhookAction,
    },
    /// Operator commands: credits, the queue, jobs, keys, invariant checks.
    #[command(subcommand)]
    Admin(AdminCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Demo = command {
        return demo::run().await.map(|()| ExitCode::SUCCESS);
    }
    if let Command::Chaos(args) = command {
        return crate::chaos::run(args).await;
    }
    let config = Config::from_env().context("reading the configuration")?;
    let role = match command {
        Command::Run => Some(Role::All),
        Command::Bot => Some(Role::Bot),
        Command::Worker => Some(Role::Worker),
        _ => None,
    };
    if let Some(role) = role {
        return serve(&config, role).await.map(|()| ExitCode::SUCCESS);
    }
    if let Command::Webhook { action } = command {
        return webhook::run(&config, action).await;
    }
    let store = Store::connect(&config.database_url, config.store.clone()).await?;
    let outcome = match command {
        Command::Migrate => {
            println!("Database {} is up to date.", config.database_url.redacted());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run
        | Command::Bot
        | Command::Worker
        | Command::Demo
        | Command::Chaos(_)
        | Command::Webhook { .. } => Ok(ExitCode::SUCCESS),
        Command::Admin(admin::AdminCommand::Models { action }) => {
            let catalogue = crate::catalogue::Catalogue::load(config.models_file.as_deref())?;
            admin::models(&store, &catalogue, action).await
        }
        Command::Admin(admin::AdminCommand::Payments {
            action: Some(payments::PaymentsAction::Reconcile),
        }) => payments::reconcile(&crate::app::billing(&config, store.clone())?).await,
        Command::Admin(admin::AdminCommand::Broadcast { action }) => {
            broadcast::run(&config, &store, action).await
        }
        Command::Admin(admin::AdminCommand::RefundPayment { charge_id, force }) => {
            let billing = crate::app::billing(&config, store.clone())?;
            payments::refund(&billing, &charge_id, force).await
        }
        Command::Admin(command) => admin::run(&store, command).await,
    };
    store.close().await;
    outcome
}

/// `run`, `bot` and `worker`: the parts of `role` until SIGTERM or until one of them fails.
async fn serve(config: &Config, role: Role) -> anyhow::Result<()> {
    let app = App::build(config, role).await?;
    let store = app.store().clone();
    tokio::spawn(signal::cancel_on_signal(app.shutdown()));
    let outcome = app.run().await;
    store.close().await;
    outcome
}
