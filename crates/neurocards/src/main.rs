use std::process::ExitCode;

use clap::Parser;
use neurocards::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    neurocards::telemetry::init();
    let cli = Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
