//! The `corral` binary: the server, the command-line client, and the in-sprite agent.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(corral_api::cli::main())?;
    drop(runtime);
    std::process::exit(code)
}
