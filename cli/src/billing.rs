//! `budget` (show, `budget set`) and `usage`: the spend cap and what was metered.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::Client;
use super::output::{self, field, int};

#[derive(Args)]
pub struct BudgetArgs {
    #[command(subcommand)]
    action: Option<BudgetAction>,
}

#[derive(Subcommand)]
enum BudgetAction {
    /// Change the cap, the alert thresholds or where alerts go.
    Set {
        /// The monthly cap in dollars (e.g. 25.00).
        #[arg(long, value_parser = output::parse_usd, conflicts_with = "cap_nanos")]
        cap_usd: Option<i64>,
        /// The monthly cap in nano-dollars.
        #[arg(long)]
        cap_nanos: Option<i64>,
        /// Percentages of the cap that send an alert (e.g. 50,80,100).
        #[arg(long, value_delimiter = ',')]
        thresholds: Option<Vec<u32>>,
        /// Where alerts are e-mailed (`""`: back to the account's address).
        #[arg(long)]
        alert_email: Option<String>,
        /// Then resume the sprites the budget paused that fit under it now.
        #[arg(long)]
        resume_paused: bool,
    },
}

#[derive(Args)]
pub struct UsageArgs {
    /// Rows per minute, hour or day.
    #[arg(long, value_enum)]
    by: Option<Granularity>,
    /// Only this sprite.
    #[arg(long)]
    sprite: Option<String>,
    /// From this time (RFC 3339; default: the start of the billing period).
    #[arg(long)]
    from: Option<String>,
    /// Until this time (RFC 3339; default: now).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

pub async fn budget(client: &Client, args: BudgetArgs, json: bool) -> anyhow::Result<i32> {
    let budget = match args.action {
        None => client.get(&["v1", "budget"], &[]).await?,
        Some(BudgetAction::Set {
            cap_usd,
            cap_nanos,
            thresholds,
            alert_email,
            resume_paused,
        }) => {
            let mut body = Map::new();
            if let Some(cap) = cap_usd.or(cap_nanos) {
                body.insert("cap_nanos".into(), json!(cap));
            }
            if let Some(thresholds) = thresholds {
                body.insert("thresholds_pct".into(), json!(thresholds));
            }
            if let Some(email) = alert_email {
                body.insert("alert_email".into(), json!(email));
            }
            anyhow::ensure!(
                !body.is_empty() || resume_paused,
                "say what to change: --cap-usd, --cap-nanos, --thresholds, --alert-email or --resume-paused"
            );
            if resume_paused {
                body.insert("resume_paused".into(), json!(true));
            }
            client
                .call(Method::PUT, &["v1", "budget"], Some(&Value::Object(body)))
                .await?
        }
    };
    if json {
        output::json(&budget);
        return Ok(0);
    }
    print_budget(&budget);
    Ok(0)
}

fn print_budget(budget: &Value) {
    let burn = match int(budget, "burn_nanos_per_s") {
        Some(n) => format!(
            "{}/s ({}/h)",
            output::usd(n),
            output::usd(n.saturating_mul(3600))
        ),
        None => "-".into(),
    };
    let thresholds = match budget.get("thresholds_pct").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|t| format!("{}%", output::text(t)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    };
    let cap = match budget.get("cap_nanos") {
        Some(Value::Null) => "none (no limit)".into(),
        _ => output::money(budget, "cap_nanos"),
    };
    let mut lines = vec![
        (
            "period",
            format!(
                "{} to {}",
                output::time(budget, "period_start"),
                output::time(budget, "period_end")
            ),
        ),
        ("cap", cap),
        ("spent", output::money(budget, "spent_nanos")),
        (
            "storage reserved",
            output::money(budget, "storage_reserved_nanos"),
        ),
        ("available", output::money(budget, "available_nanos")),
        ("burn", burn),
        ("runs out", output::time(budget, "exhausts_at")),
        ("alerts at", thresholds),
        ("alert e-mail", field(budget, "alert_email")),
        ("state", field(budget, "state")),
    ];
    if let Some(n) = int(budget, "paused_for_budget").filter(|n| *n > 0) {
        lines.push(("paused for budget", format!("{n} sprite(s)")));
    }
    // The calling token's own budgets (and its ancestors'), when it has any.
    let tokens = budget.get("tokens").and_then(Value::as_array);
    let token_lines: Vec<String> = tokens
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}: {} spent of {}",
                field(t, "scope"),
                output::money(t, "spent_nanos"),
                output::money(t, "cap_nanos")
            )
        })
        .collect();
    for line in &token_lines {
        lines.push(("token budget", line.clone()));
    }
    if let Some(resumed) = budget.get("resumed").and_then(Value::as_array) {
        lines.push(("resumed", output::text(&Value::Array(resumed.clone()))));
    }
    let still: Vec<String> = budget
        .get("still_paused")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} ({}: {})",
                field(s, "sprite"),
                field(s, "code"),
                field(s, "detail")
            )
        })
        .collect();
    for line in &still {
        lines.push(("still paused", line.clone()));
    }
    output::pairs(&lines);
}

pub async fn usage(client: &Client, args: UsageArgs, json: bool) -> anyhow::Result<i32> {
    let mut query = Vec::new();
    if let Some(by) = args.by {
        query.push(("by", by.as_str().to_string()));
    }
    for (key, value) in [
        ("sprite", args.sprite),
        ("from", args.from),
        ("to", args.to),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let usage = client.get(&["v1", "usage"], &query).await?;
    if json {
        output::json(&usage);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = usage
        .get("rows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                output::time(r, "start"),
                field(r, "sprite"),
                scaled(r, "cpu_ns", 1e9),
                scaled(r, "memory_byte_s", 1e9),
                scaled(r, "disk_byte_s", 1e9),
                output::bytes(r["network_bytes"].as_u64().unwrap_or(0)),
                output::money(r, "cost_nanos"),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no usage in this period");
    } else {
        output::table(
            &[
                "START",
                "SPRITE",
                "CPU S",
                "MEMORY GB·S",
                "DISK GB·S",
                "NETWORK",
                "COST",
            ],
            &rows,
        );
    }
    println!("total {}", output::money(&usage, "total_nanos"));
    Ok(0)
}

/// A metered quantity in a larger unit, for reading (money is never shown this way).
fn scaled(row: &Value, key: &str, unit: f64) -> String {
    match row.get(key).and_then(Value::as_f64) {
        Some(v) => format!("{:.3}", v / unit),
        None => "-".into(),
    }
}
