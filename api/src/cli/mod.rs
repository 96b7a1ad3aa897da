//! The `corral` command line: `serve` runs the server; the other subcommands are a
//! client of the HTTP API.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Corral: sandbox sprites with hard spend caps.
#[derive(Parser)]
#[command(name = "corral", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, metering, web pages).
    #[command(after_help = Config::help())]
    Serve {
        /// A TOML file of settings (keys below); environment variables override it.
        #[arg(long, env = "CORRAL_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn main() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            crate::telemetry::init();
            let config = Config::load(config.as_deref())?;
            crate::run(config).await?;
            Ok(0)
        }
    }
}
