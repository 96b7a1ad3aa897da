//! What the billing and schedules browser tests share about reading the page.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use fantoccini::{Client, Locator};

/// How long a card may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

/// Waits until `css` shows text for which `ok` holds (the card re-renders: a stale
/// element is found again).
pub async fn text_where(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return Ok(text);
        }
        ensure!(Instant::now() < deadline, "{css} shows {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
