//! `stripe-standin`: serves the stand-in for Stripe's API on `STRIPE_STANDIN_LISTEN`
//! (default 127.0.0.1:12111), accepting the key in `STRIPE_STANDIN_KEY` (default
//! `sk_test_standin`). Prints its address on one line, then serves until killed.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let listen =
        std::env::var("STRIPE_STANDIN_LISTEN").unwrap_or_else(|_| "127.0.0.1:12111".into());
    let key = std::env::var("STRIPE_STANDIN_KEY").unwrap_or_else(|_| "sk_test_standin".into());
    let (addr, _standin) = stripe_standin::spawn(&listen, &key).await?;
    // The one line a script starting it reads (its address).
    use std::io::Write;
    writeln!(
        std::io::stdout(),
        "stripe stand-in listening on http://{addr}"
    )?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
