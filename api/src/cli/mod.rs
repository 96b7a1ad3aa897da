//! The `corral` command line: `serve` runs the server; the other subcommands are a
//! client of the HTTP API (../shared/API.md), one file per command group.

// The CLI's output is its purpose: printing to stdout is what these modules are for.
#![allow(clippy::print_stdout)]

mod account;
mod billing;
mod checkpoints;
mod client;
mod config;
mod exec;
mod files;
mod limits;
mod output;
mod prices;
mod progress;
mod sprites;
mod tokens;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// Corral: sandbox sprites with hard spend caps.
#[derive(Parser)]
#[command(name = "corral", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
`login` and `signup` keep the server's URL and the session token in
$XDG_CONFIG_HOME/corral/config.toml (else ~/.config/corral/config.toml), readable by
you only; --url/CORRAL_URL and --token/CORRAL_TOKEN override them.

A failure prints one line, `error: <code>: <detail>`, and exits 1 (2 for a mistake in
the command line); `exec` and `console` exit with the command's own code.";

/// Options every client command takes.
#[derive(Args, Clone)]
pub(crate) struct Global {
    /// The server's address (default: the one saved by `login`, else http://127.0.0.1:8080).
    #[arg(long, env = "CORRAL_URL", global = true)]
    url: Option<String>,
    /// The bearer token (default: the one saved by `login` for that server).
    #[arg(long, env = "CORRAL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print the server's raw JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
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
    /// Build (or rebuild) the sandbox base image from Debian packages.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create an account and save its session token.
    Signup(account::SignupArgs),
    /// Log in and save the session token.
    Login(account::LoginArgs),
    /// Forget the saved token.
    Logout,
    /// Show who the token belongs to and what it may do.
    Whoami,
    /// Create a sprite.
    Create(sprites::CreateArgs),
    /// List sprites.
    Ls,
    /// Show one sprite.
    Show {
        /// The sprite's name.
        name: String,
    },
    /// Run a command in a sprite, streaming its output; exits with its exit code.
    ///
    /// Output streams over a WebSocket as it comes, and local stdin is forwarded. With
    /// --json the command runs buffered instead and the answer
    /// (`{exit_code, stdout, stderr, …}`) is printed when it is done.
    Exec(exec::ExecArgs),
    /// An interactive shell in a sprite (line mode: no terminal on the sprite side).
    Console(exec::ConsoleArgs),
    /// Pause a sprite (it stops costing CPU and memory).
    Pause {
        /// The sprite's name.
        name: String,
    },
    /// Resume a paused sprite.
    Resume {
        /// The sprite's name.
        name: String,
    },
    /// Delete a sprite with its disk and checkpoints.
    Rm {
        /// The sprite's name.
        name: String,
    },
    /// Copy a file to or from a sprite: `cp LOCAL NAME:/abs/path` or `cp NAME:/abs/path LOCAL`.
    Cp(files::CpArgs),
    /// Checkpoints of a sprite's disk and memory.
    #[command(subcommand)]
    Checkpoint(checkpoints::CheckpointCommand),
    /// API tokens: mint, list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Show the spend cap and what is left of it; `budget set` changes it.
    Budget(billing::BudgetArgs),
    /// Metered usage and its cost.
    Usage(billing::UsageArgs),
    /// Show the scaling limits and the default idle timeout; `limits set` changes them.
    Limits(limits::LimitsArgs),
    /// The price table in force.
    Prices,
    /// Spend alerts sent or queued.
    Alerts,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Run debootstrap into the image directory, showing its progress.
    Build {
        /// Where images are kept (default: $CORRAL_IMAGE_DIR, else DATA_DIR/images).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Builds the base image where the server will look for it.
async fn build_image(dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let dir = match dir {
        Some(dir) => dir,
        None => Config::load(None)?.image_dir(),
    };
    let started = std::time::Instant::now();
    let built = vmm_driver::gvisor::image::build(&dir, |line| eprintln!("  {line}")).await?;
    eprintln!(
        "base image ready at {} in {:.0} s",
        built.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Runs the command line; returns the process exit code.
pub async fn main() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            crate::telemetry::init();
            let config = Config::load(config.as_deref())?;
            crate::run(config).await?;
            return Ok(0);
        }
        Command::Image(ImageCommand::Build { dir }) => return build_image(dir).await,
        _ => {}
    }
    match run(cli.global, cli.command).await {
        Ok(code) => Ok(code),
        Err(error) => {
            // One line, whatever the cause: the problem's code and detail, or the chain.
            eprintln!("error: {}", one_line(&error));
            Ok(1)
        }
    }
}

fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

async fn run(global: Global, command: Command) -> anyhow::Result<i32> {
    let json = global.json;
    // Every command but the account ones needs a token; say so before any request.
    let authed = || -> anyhow::Result<client::Client> {
        let client = client::Client::from_global(&global)?;
        client.require_token()?;
        Ok(client)
    };
    match command {
        Command::Serve { .. } | Command::Image(_) => unreachable!("handled in main"),
        Command::Signup(args) => account::signup(&global, args).await,
        Command::Login(args) => account::login(&global, args).await,
        Command::Logout => account::logout(&global).await,
        Command::Whoami => account::whoami(&authed()?, json).await,
        Command::Create(args) => sprites::create(&authed()?, args, json).await,
        Command::Ls => sprites::list(&authed()?, json).await,
        Command::Show { name } => sprites::show(&authed()?, &name, json).await,
        Command::Pause { name } => sprites::pause(&authed()?, &name, json).await,
        Command::Resume { name } => sprites::resume(&authed()?, &name, json).await,
        Command::Rm { name } => sprites::remove(&authed()?, &name, json).await,
        Command::Exec(args) => exec::exec(&authed()?, args, json).await,
        Command::Console(args) => exec::console(&authed()?, args).await,
        Command::Cp(args) => files::copy(&authed()?, args).await,
        Command::Checkpoint(command) => checkpoints::run(&authed()?, command, json).await,
        Command::Tokens(command) => tokens::run(&authed()?, command, json).await,
        Command::Budget(args) => billing::budget(&authed()?, args, json).await,
        Command::Usage(args) => billing::usage(&authed()?, args, json).await,
        Command::Limits(args) => limits::run(&authed()?, args, json).await,
        Command::Prices => prices::prices(&authed()?, json).await,
        Command::Alerts => prices::alerts(&authed()?, json).await,
    }
}
