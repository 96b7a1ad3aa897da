//! `prices` and `alerts`: the price table in force, and the spend alerts sent or queued.

use serde_json::Value;

use super::client::Client;
use super::output::{self, field, int};

pub async fn prices(client: &Client, json: bool) -> anyhow::Result<i32> {
    let prices = client.get(&["v1", "prices"], &[]).await?;
    if json {
        output::json(&prices);
        return Ok(0);
    }
    let per = |key: &str, unit: &str| match int(&prices, key) {
        Some(n) => format!("{} {unit}", output::usd(n)),
        None => "-".into(),
    };
    output::pairs(&[
        ("cpu", per("cpu_nanos_per_cpu_s", "per CPU-second used")),
        ("memory", per("memory_nanos_per_gb_s", "per GB-second")),
        (
            "disk",
            per("disk_nanos_per_gb_month", "per GB-month stored"),
        ),
        ("currency", field(&prices, "currency")),
        ("metered every", format!("{} ms", field(&prices, "tick_ms"))),
        (
            "runway to start",
            format!("{} s of full-speed running", field(&prices, "min_runway_s")),
        ),
    ]);
    Ok(0)
}

pub async fn alerts(client: &Client, json: bool) -> anyhow::Result<i32> {
    let answer = client.get(&["v1", "alerts"], &[]).await?;
    if json {
        output::json(&answer);
        return Ok(0);
    }
    let list = answer
        .get("alerts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        eprintln!("no alerts yet");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                output::time(a, "created_at"),
                field(a, "scope"),
                format!("{}%", field(a, "threshold_pct")),
                field(a, "to_email"),
                field(a, "state"),
                field(a, "subject"),
            ]
        })
        .collect();
    output::table(&["CREATED", "SCOPE", "AT", "TO", "STATE", "SUBJECT"], &rows);
    Ok(0)
}
