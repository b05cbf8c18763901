use std::process::ExitCode;

use clap::Parser;
use neurocards::cli::{self, Cli};
use neurocards::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read before the configuration, whose own errors are logged in this format.
    let _ = dotenvy::dotenv();
    let format = match LogFormat::parse(std::env::var("LOG_FORMAT").ok().as_deref()) {
        Ok(format) => format,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The demo prints a conversation: only warnings and errors interrupt it.
    match cli.command {
        Some(cli::Command::Demo) => telemetry::init_with_default(format, "warn"),
        _ => telemetry::init(format),
    }
    match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
