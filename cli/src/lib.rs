//! The `corral` command line's client commands: a client of the HTTP API
//! (../shared/API.md), one file per command group. The `corral` binary adds `serve`,
//! `image` and `agent` beside them.

// The CLI's output is its purpose: printing to stdout is what these modules are for.
#![allow(clippy::print_stdout)]

mod account;
mod billing;
mod checkpoints;
mod client;
mod config;
mod exec;
mod files;
mod images;
mod limits;
mod network;
mod output;
mod payments;
mod prices;
mod progress;
mod schedule;
mod secrets;
mod sprites;
mod terminal;
mod token_budget;
mod tokens;
mod urls;
mod ws;

use clap::{Args, Subcommand};

pub use images::ImageCommand;

/// What `corral --help` says after the commands.
pub const AFTER_HELP: &str = "\
`login` and `signup` keep the server's URL and the session token in
$XDG_CONFIG_HOME/corral/config.toml (else ~/.config/corral/config.toml), readable by
you only; --url/CORRAL_URL and --token/CORRAL_TOKEN override them.

A failure prints one line, `error: <code>: <detail>`, and exits 1 (2 for a mistake in
the command line); `exec` and `console` exit with the command's own code.";

/// Options every client command takes.
#[derive(Args, Clone)]
pub struct Global {
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

/// The client commands.
#[derive(Subcommand)]
pub enum Command {
    /// Create an account and save its session token.
    Signup(account::SignupArgs),
    /// Log in and save the session token.
    Login(account::LoginArgs),
    /// End the session on the server and forget the saved token.
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
    /// An interactive shell in a sprite: a real terminal (raw mode, resizes followed)
    /// when run from one, line mode when stdin is a pipe.
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
    /// Make a new sprite with the same disk and memory as a running one (its processes
    /// run on in both).
    Fork {
        /// The sprite to fork.
        sprite: String,
        /// The new sprite's name.
        name: String,
    },
    /// Write a sprite's filesystem to FILE as an OCI image archive (for skopeo, podman).
    Export {
        /// The sprite's name.
        sprite: String,
        /// The archive to write.
        file: std::path::PathBuf,
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
    /// API tokens: mint, list, revoke, change a budget.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Show the spend cap and what is left of it; `budget set` changes it.
    Budget(billing::BudgetArgs),
    /// Metered usage and its cost.
    Usage(billing::UsageArgs),
    /// Paying through Stripe: the balance or this period's invoice; `billing topup
    /// AMOUNT`, `billing portal`.
    Billing(payments::BillingArgs),
    /// Show the scaling limits and the default idle timeout; `limits set` changes them.
    Limits(limits::LimitsArgs),
    /// The price table in force.
    Prices,
    /// Network rules of a sprite (or of the tenant); `policy [SPRITE] set` replaces them.
    Policy(network::PolicyArgs),
    /// Secrets sprites use without holding them: add (value on stdin), ls, rm.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Commands or checkpoints on a cron schedule (crontab in UTC): add, ls, rm.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// A sprite's recent connections: allowed or refused, by which rule, bytes each way.
    Netlog {
        /// The sprite's name.
        sprite: String,
    },
    /// Spend alerts sent or queued.
    Alerts,
    /// A sprite's URL and who may open it; `--public`/`--private`/`--port` change it,
    /// `--link` prints a link that opens a private one in a browser.
    Url(urls::UrlArgs),
    /// Forward a local port to a port inside a sprite: `proxy SPRITE [LOCAL:]REMOTE`
    /// (psql, ssh, a debugger…); wakes an idle sprite.
    Proxy(urls::ProxyArgs),
}

/// Lets a closed pipe end the client quietly, as it ends `cat` or `ls`
/// (`corral usage | head` must not panic on its next line). Rust ignores SIGPIPE; the
/// server and the agent keep that (a vanished peer is an error to handle there).
pub fn quiet_on_closed_pipe() {
    // SAFETY: restoring a signal's default action takes no pointers and runs before
    // any thread of ours starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Runs a client command; returns the process exit code. A failure prints one line,
/// whatever the cause: the problem's code and detail, or the error's chain.
pub async fn main(global: Global, command: Command) -> i32 {
    match run(global, command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            1
        }
    }
}

/// Runs an `image` client command (`corral image ls|save|rm`).
pub async fn image(global: Global, command: ImageCommand) -> i32 {
    let run = async {
        let client = client::Client::from_global(&global)?;
        client.require_token()?;
        images::run(&client, command, global.json).await
    };
    match run.await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            1
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
        Command::Fork { sprite, name } => images::fork(&authed()?, &sprite, &name, json).await,
        Command::Export { sprite, file } => images::export(&authed()?, &sprite, file).await,
        Command::Exec(args) => exec::exec(&authed()?, args, json).await,
        Command::Console(args) => exec::console(&authed()?, args).await,
        Command::Url(args) => urls::url(&authed()?, args, json).await,
        Command::Proxy(args) => urls::proxy(&authed()?, args).await,
        Command::Cp(args) => files::copy(&authed()?, args).await,
        Command::Checkpoint(command) => checkpoints::run(&authed()?, command, json).await,
        Command::Tokens(command) => tokens::run(&authed()?, command, json).await,
        Command::Budget(args) => billing::budget(&authed()?, args, json).await,
        Command::Usage(args) => billing::usage(&authed()?, args, json).await,
        Command::Billing(args) => payments::run(&authed()?, args, json).await,
        Command::Limits(args) => limits::run(&authed()?, args, json).await,
        Command::Prices => prices::prices(&authed()?, json).await,
        Command::Policy(args) => network::policy(&authed()?, args, json).await,
        Command::Netlog { sprite } => network::netlog(&authed()?, &sprite, json).await,
        Command::Secrets(command) => secrets::run(&authed()?, command, json).await,
        Command::Schedule(command) => schedule::run(&authed()?, command, json).await,
        Command::Alerts => prices::alerts(&authed()?, json).await,
    }
}
