//! The `corral` binary: the server (`serve`), the base image builder (`image`), the
//! in-sprite agent (`agent`), and the command-line client (every other command).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use corral_api::config::Config;

/// Corral: sandbox sprites with hard spend caps.
#[derive(Parser)]
#[command(name = "corral", version, after_help = corral_cli::AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: corral_cli::Global,
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
    /// Build (or rebuild) the sandbox base image from Debian packages.
    #[command(subcommand)]
    Image(ImageCommand),
    #[command(flatten)]
    Client(corral_cli::Command),
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

fn main() -> anyhow::Result<()> {
    // Inside a sprite the same binary is the agent: no runtime, no CLI parsing.
    if std::env::args().nth(1).as_deref() == Some("agent") {
        std::process::exit(vmm_driver::agent::main());
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Serve { config } => {
                corral_api::telemetry::init();
                corral_api::run(Config::load(config.as_deref())?).await?;
                Ok::<i32, anyhow::Error>(0)
            }
            Command::Image(ImageCommand::Build { dir }) => build_image(dir).await,
            Command::Client(command) => Ok(corral_cli::main(cli.global, command).await),
        }
    })?;
    drop(runtime);
    std::process::exit(code)
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
