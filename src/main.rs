//! The `corral` binary: the server (`serve`), the image builder (`image build`), the
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
    /// Images: build them on this host; list, save and delete them through the API.
    #[command(subcommand)]
    Image(ImageCommand),
    #[command(flatten)]
    Client(corral_cli::Command),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build (or rebuild) an image on this host from Debian packages, showing progress.
    ///
    /// Without --from, debootstrap makes Debian bookworm's minimal base; --packages are
    /// then installed with apt inside it. `corral image build default` alone builds the
    /// practical developer image (over `minimal`, built first if missing).
    Build {
        /// The image's name (`minimal`, `default`, or any other).
        name: String,
        /// Debian packages to install, comma-separated.
        #[arg(long, value_delimiter = ',')]
        packages: Vec<String>,
        /// Start from this image instead of a fresh debootstrap.
        #[arg(long)]
        from: Option<String>,
        /// Where images are kept (default: $CORRAL_IMAGE_DIR, else DATA_DIR/images).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(corral_cli::ImageCommand),
}

fn main() -> anyhow::Result<()> {
    // Inside a sprite the same binary is the agent: no runtime, no CLI parsing.
    if std::env::args().nth(1).as_deref() == Some("agent") {
        std::process::exit(vmm_driver::agent::main());
    }
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Client(_) | Command::Image(ImageCommand::Client(_))
    ) {
        corral_cli::quiet_on_closed_pipe();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Serve { config } => {
                corral_api::telemetry::init();
                corral_api::run(Config::load(config.as_deref())?).await?;
                Ok::<i32, anyhow::Error>(0)
            }
            Command::Image(ImageCommand::Build {
                name,
                packages,
                from,
                dir,
            }) => build_image(name, packages, from, dir).await,
            Command::Image(ImageCommand::Client(command)) => {
                Ok(corral_cli::image(cli.global, command).await)
            }
            Command::Client(command) => Ok(corral_cli::main(cli.global, command).await),
        }
    })?;
    drop(runtime);
    std::process::exit(code)
}

/// Builds an image where the server will look for it.
async fn build_image(
    name: String,
    packages: Vec<String>,
    from: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<i32> {
    use vmm_driver::gvisor::image;
    let dir = match dir {
        Some(dir) => dir,
        None => Config::load(None)?.image_dir(),
    };
    let mut requests = vec![image::BuildRequest {
        name,
        packages,
        from,
    }];
    if requests[0].name == image::DEFAULT
        && requests[0].packages.is_empty()
        && requests[0].from.is_none()
    {
        requests[0] = image::BuildRequest::default_image();
        if image::current(&dir, image::MINIMAL).is_err() {
            requests.insert(0, image::BuildRequest::minimal());
        }
    }
    for request in requests {
        let started = std::time::Instant::now();
        eprintln!("==> building image {:?} in {}", request.name, dir.display());
        let built = image::build(&dir, &request, |line| eprintln!("  {line}")).await?;
        eprintln!(
            "image {:?} ready at {} in {:.0} s",
            request.name,
            built.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}
