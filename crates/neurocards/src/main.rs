use std::process::ExitCode;

use clap::Parser;
use neurocards::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints a conversation: only warnings and errors interrupt it.
    match cli.command {
        Some(cli::Command::Demo) => neurocards::telemetry::init_with_default("warn"),
        _ => neurocards::telemetry::init(),
    }
    match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
