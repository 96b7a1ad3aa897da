//! `tokens create|ls|revoke|budget`: API tokens minted from the current one.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::Client;
use super::output::{self, field};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Mint a token; its secret is printed once, now.
    Create {
        /// A name to tell it by.
        name: String,
        /// Scopes it holds (repeat or separate with commas): sprites:read,
        /// sprites:write, exec, files, checkpoints, tokens:create, billing, budget.
        #[arg(long = "scope", short = 's', value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Lifetime in seconds (default: the server's longest).
        #[arg(long)]
        expires_in_s: Option<u64>,
        /// A spend cap of its own per billing period, in dollars (e.g. 5.00).
        #[arg(long, value_parser = output::parse_usd, conflicts_with = "budget_nanos")]
        budget_usd: Option<i64>,
        /// The same cap in nano-dollars.
        #[arg(long)]
        budget_nanos: Option<i64>,
        /// Limit it to these sprites (repeat or separate with commas).
        #[arg(long = "sprite", value_delimiter = ',')]
        sprites: Vec<String>,
    },
    /// List the tokens this token may see.
    Ls,
    /// Revoke a token and every token minted from it.
    Revoke {
        /// The token's id.
        id: String,
    },
    /// Raise or lower a token's budget, within the budgets of the tokens above it.
    Budget {
        /// The token's id.
        id: String,
        /// Dollars per billing period (e.g. 5.00), or `none` for no budget of its own.
        amount: String,
    },
}

pub async fn run(client: &Client, command: TokensCommand, json: bool) -> anyhow::Result<i32> {
    match command {
        TokensCommand::Create {
            name,
            scopes,
            expires_in_s,
            budget_usd,
            budget_nanos,
            sprites,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("scopes".into(), json!(scopes));
            if let Some(s) = expires_in_s {
                body.insert("expires_in_s".into(), json!(s));
            }
            if let Some(nanos) = budget_usd.or(budget_nanos) {
                body.insert("budget_nanos".into(), json!(nanos));
            }
            if !sprites.is_empty() {
                body.insert("sprites".into(), json!(sprites));
            }
            let token = client
                .call(Method::POST, &["v1", "tokens"], Some(&Value::Object(body)))
                .await?;
            if json {
                output::json(&token);
                return Ok(0);
            }
            output::pairs(&[
                ("id", field(&token, "id")),
                ("name", field(&token, "name")),
                ("scopes", field(&token, "scopes")),
                ("sprites", field(&token, "sprites")),
                ("budget", output::money(&token, "budget_nanos")),
                ("expires", output::time(&token, "expires_at")),
                ("token", field(&token, "token")),
            ]);
            eprintln!("keep the token now: it is not shown again");
        }
        TokensCommand::Ls => {
            let answer = client.get(&["v1", "tokens"], &[]).await?;
            if json {
                output::json(&answer);
                return Ok(0);
            }
            let list = answer
                .get("tokens")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    let status = if t.get("revoked").and_then(Value::as_bool) == Some(true) {
                        "revoked"
                    } else {
                        "active"
                    };
                    vec![
                        field(t, "id"),
                        field(t, "name"),
                        field(t, "kind"),
                        status.into(),
                        field(t, "scopes"),
                        field(t, "parent_id"),
                        output::money(t, "budget_nanos"),
                        output::money(t, "spent_nanos"),
                        output::time(t, "expires_at"),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID", "NAME", "KIND", "STATUS", "SCOPES", "PARENT", "BUDGET", "SPENT",
                    "EXPIRES",
                ],
                &rows,
            );
        }
        TokensCommand::Budget { id, amount } => {
            return super::token_budget::run(client, &id, &amount, json).await;
        }
        TokensCommand::Revoke { id } => {
            client
                .call(Method::DELETE, &["v1", "tokens", &id], None)
                .await?;
            if !json {
                println!("revoked {id} and the tokens minted from it");
            }
        }
    }
    Ok(0)
}
