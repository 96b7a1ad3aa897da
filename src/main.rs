//! The `corral` binary: the server, the command-line client, and the in-sprite agent.

fn main() -> anyhow::Result<()> {
    // Inside a sprite the same binary is the agent: no runtime, no CLI parsing.
    if std::env::args().nth(1).as_deref() == Some("agent") {
        std::process::exit(vmm_driver::agent::main());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(corral_api::cli::main())?;
    drop(runtime);
    std::process::exit(code)
}
