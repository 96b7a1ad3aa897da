//! The `corral` binary: the server, the command-line client, the in-sprite agent, and
//! the base-image builder.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // Inside a sprite the same binary is the agent: no runtime, no CLI parsing.
    if args.get(1).map(String::as_str) == Some("agent") {
        std::process::exit(vmm_driver::agent::main());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let code = if args.get(1).map(String::as_str) == Some("image") {
        runtime.block_on(image(&args[2..]))?
    } else {
        runtime.block_on(corral_api::cli::main())?
    };
    drop(runtime);
    std::process::exit(code)
}

/// `corral image build [--dir DIR]`: builds (or rebuilds) the sandbox base image.
async fn image(args: &[String]) -> anyhow::Result<i32> {
    let usage = "usage: corral image build [--dir DIR]   (default DIR: $CORRAL_IMAGE_DIR, else $CORRAL_DATA_DIR/images, else ./corral-data/images)";
    let dir = match args {
        [build] if build == "build" => std::env::var_os("CORRAL_IMAGE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CORRAL_DATA_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "./corral-data".into())
                    .join("images")
            }),
        [build, flag, dir] if build == "build" && flag == "--dir" => dir.into(),
        _ => {
            eprintln!("{usage}");
            return Ok(2);
        }
    };
    let started = std::time::Instant::now();
    let built = vmm_driver::gvisor::image::build(&dir, |line| eprintln!("  {line}")).await?;
    eprintln!(
        "base image ready at {} ({:.0} s)",
        built.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
