//! `tokens budget ID AMOUNT`: raise or lower a token's budget (`none`: no budget of its
//! own), within the rules of the tokens it was minted from.

use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field};

/// Sends the new budget of token `id`: dollars such as `5.00`, or `none`.
pub async fn run(client: &Client, id: &str, amount: &str, json: bool) -> anyhow::Result<i32> {
    let budget = if amount.eq_ignore_ascii_case("none") {
        Value::Null
    } else {
        json!(output::parse_usd(amount).map_err(anyhow::Error::msg)?)
    };
    let token = client
        .call(
            Method::PATCH,
            &["v1", "tokens", id],
            Some(&json!({ "budget_nanos": budget })),
        )
        .await?;
    if json {
        output::json(&token);
        return Ok(0);
    }
    output::pairs(&[
        ("id", field(&token, "id")),
        ("name", field(&token, "name")),
        ("budget", output::money(&token, "budget_nanos")),
        ("spent", output::money(&token, "spent_nanos")),
    ]);
    Ok(0)
}
