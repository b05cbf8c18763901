//! Runs one emulator as a process, for the demo and for black-box tests: prints its base URL
//! on stdout, then serves until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use emulators::kie::{KieAccount, KieConfig, KieEmulator};
use emulators::telegram::{TelegramConfig, TelegramEmulator};

#[derive(Debug, Parser)]
#[command(
    name = "neurocards-emulators",
    about = "Local fakes of the KIE API and the Telegram Bot API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The KIE API (tasks, callbacks, uploads, credits).
    Kie {
        #[arg(long)]
        port: u16,
        /// Time a task spends in each of waiting, queuing and generating.
        #[arg(long, default_value_t = 300)]
        stage_delay_ms: u64,
        #[arg(long, default_value = "test-key")]
        key: String,
        #[arg(long, default_value_t = 1_000_000)]
        credits: i64,
        /// Sign callbacks with this webhook HMAC key.
        #[arg(long, visible_alias = "callback-hmac-key")]
        hmac_key: Option<String>,
        /// Answer HTTP 403 "error code: 1010" to clients whose User-Agent contains this
        /// (case-insensitive); repeatable. Clients without a User-Agent are always refused.
        #[arg(long = "refuse-user-agent", value_name = "FRAGMENT")]
        refused_user_agents: Vec<String>,
        /// Callbacks carry `data.task_id` instead of `data.taskId`.
        #[arg(long)]
        callback_task_id_snake_case: bool,
        /// Start with this model retired ("temporarily paused"); repeatable.
        #[arg(long = "pause-model", value_name = "MODEL")]
        paused_models: Vec<String>,
        /// Credits charged per accepted task.
        #[arg(long, default_value_t = 1)]
        cost_per_task: i64,
    },
    /// The Telegram Bot API.
    Telegram {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "123456:TEST-TOKEN")]
        token: String,
        /// Answer 429 beyond Telegram's flood limits.
        #[arg(long)]
        enforce_limits: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries only the base URL, for scripts to read.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    match Cli::parse().command {
        Command::Kie {
            port,
            stage_delay_ms,
            key,
            credits,
            hmac_key,
            refused_user_agents,
            callback_task_id_snake_case,
            paused_models,
            cost_per_task,
        } => {
            let config = KieConfig {
                accounts: vec![KieAccount {
                    name: "main".to_owned(),
                    keys: vec![key],
                    credits,
                }],
                stage_delay: Duration::from_millis(stage_delay_ms),
                callback_hmac_key: hmac_key,
                refused_user_agents,
                callback_task_id_snake_case,
                cost_per_task,
                ..KieConfig::default()
            };
            let emulator = KieEmulator::start_on(local(port), config)
                .await
                .context("starting the KIE emulator")?;
            for model in &paused_models {
                emulator.pause_model(model);
            }
            println!("{}", emulator.base_url());
            wait_for_ctrl_c().await?;
            emulator.shutdown();
        }
        Command::Telegram {
            port,
            token,
            enforce_limits,
        } => {
            let config = TelegramConfig {
                token,
                enforce_limits,
                ..TelegramConfig::default()
            };
            let emulator = TelegramEmulator::start_on(local(port), config)
                .await
                .context("starting the Telegram emulator")?;
            println!("{}", emulator.base_url());
            wait_for_ctrl_c().await?;
            emulator.shutdown();
        }
    }
    Ok(())
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

async fn wait_for_ctrl_c() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}
