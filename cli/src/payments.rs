//! `billing` (show), `billing topup AMOUNT`, `billing auto-recharge on|off` and
//! `billing portal`: paying through Stripe (prepaid credit or metered invoices). The budget and usage commands are in
//! `billing.rs`; this file holds what talks to Stripe through Corral.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field, money};

#[derive(Args)]
pub struct BillingArgs {
    #[command(subcommand)]
    action: Option<BillingAction>,
}

#[derive(Subcommand)]
enum BillingAction {
    /// Buy prepaid credit: prints a Stripe Checkout link (metered mode: add a card).
    Topup {
        /// Dollars of credit, e.g. 25 or 25.50 (ignored in metered mode).
        amount: Option<String>,
    },
    /// Prints a link to Stripe's billing portal (cards, invoices).
    Portal,
    /// Prepaid: charge the saved card when the balance runs low.
    #[command(name = "auto-recharge")]
    AutoRecharge {
        #[command(subcommand)]
        action: RechargeAction,
    },
}

#[derive(Subcommand)]
enum RechargeAction {
    /// Turn it on: when the balance falls below BELOW dollars, charge AMOUNT dollars.
    On {
        /// Dollars, e.g. 5 or 5.50.
        #[arg(long)]
        below: String,
        /// Dollars, e.g. 20.
        #[arg(long)]
        amount: String,
    },
    /// Turn it off.
    Off,
}

pub async fn run(client: &Client, args: BillingArgs, json: bool) -> anyhow::Result<i32> {
    let answer = match args.action {
        None => {
            let b = client.get(&["v1", "billing"], &[]).await?;
            if !json {
                show(&b);
                return Ok(0);
            }
            b
        }
        Some(BillingAction::Topup { amount }) => {
            let body = match amount {
                Some(a) => json!({ "amount_usd": a }),
                None => json!({}),
            };
            let url = client
                .call(Method::POST, &["v1", "billing", "checkout"], Some(&body))
                .await?;
            if !json {
                println!("open this link to pay: {}", field(&url, "url"));
                return Ok(0);
            }
            url
        }
        Some(BillingAction::AutoRecharge { action }) => {
            let body = match action {
                RechargeAction::On { below, amount } => {
                    json!({"enabled": true, "below_usd": below, "amount_usd": amount})
                }
                RechargeAction::Off => json!({"enabled": false}),
            };
            let a = client
                .call(
                    Method::PUT,
                    &["v1", "billing", "auto_recharge"],
                    Some(&body),
                )
                .await?;
            if !json {
                output::pairs(&recharge_rows(&a));
                return Ok(0);
            }
            a
        }
        Some(BillingAction::Portal) => {
            let url = client
                .call(Method::POST, &["v1", "billing", "portal"], Some(&json!({})))
                .await?;
            if !json {
                println!("{}", field(&url, "url"));
                return Ok(0);
            }
            url
        }
    };
    output::json(&answer);
    Ok(0)
}

fn show(b: &Value) {
    let mut rows = vec![
        ("mode", field(b, "mode")),
        ("payment", field(b, "payment_state")),
    ];
    match b["mode"].as_str() {
        Some("prepaid") => {
            rows.push(("balance", money(b, "balance_nanos")));
            rows.push(("credit bought", money(b, "credited_nanos")));
            rows.extend(recharge_rows(&b["auto_recharge"]));
        }
        Some("metered") => {
            rows.push(("this period", money(b, "invoice_estimate_nanos")));
            let e = &b["meter_events"];
            rows.push((
                "meter events",
                format!(
                    "{} sent, {} waiting, {} refused",
                    field(e, "sent"),
                    field(e, "pending"),
                    field(e, "rejected")
                ),
            ));
        }
        _ => {}
    }
    if b["suspends_at"].is_string() {
        rows.push(("sprites pause at", field(b, "suspends_at")));
    }
    output::pairs(&rows);
}

/// Auto-recharge as rows: on (below → amount) or off (and why), and the last recharge.
fn recharge_rows(a: &Value) -> Vec<(&'static str, String)> {
    let state = if a["enabled"] == true {
        format!(
            "on: below {} charge {}",
            money(a, "below_nanos"),
            money(a, "amount_nanos")
        )
    } else if a["off_reason"].is_string() {
        format!("off ({})", field(a, "off_reason"))
    } else {
        "off".into()
    };
    let mut rows = vec![("auto-recharge", state)];
    let last = &a["last"];
    if last.is_object() {
        rows.push((
            "last recharge",
            format!(
                "#{} {} {}",
                field(last, "seq"),
                money(last, "amount_nanos"),
                field(last, "state")
            ),
        ));
    }
    rows
}
