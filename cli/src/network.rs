//! `policy` (show, `policy set`) and `netlog`: the network rules of a sprite or of the
//! whole tenant, and what a sprite's connections were allowed or refused.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field};

#[derive(Args)]
pub struct PolicyArgs {
    /// The sprite (omit for the tenant's default, used when none of a sprite's rules
    /// match).
    sprite: Option<String>,
    #[command(subcommand)]
    action: Option<PolicyAction>,
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Replace the rules: `--allow pypi.org,*.python.org --deny '*' --include
    /// package-registries`; the most specific domain wins.
    Set {
        /// Domains to allow (`name`, `*.name` for its subdomains, `*` for everything);
        /// `name:443` for one port.
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
        /// Domains to deny, as for --allow.
        #[arg(long, value_delimiter = ',')]
        deny: Vec<String>,
        /// Presets to include (`package-registries`).
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
    },
}

fn rule(domain: &str, action: &str) -> Value {
    match domain.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() && !name.is_empty() => {
            json!({"domain": name, "action": action, "ports": [port.parse::<u16>().unwrap_or(0)]})
        }
        _ => json!({"domain": domain, "action": action}),
    }
}

pub async fn policy(client: &Client, args: PolicyArgs, json: bool) -> anyhow::Result<i32> {
    let path: Vec<&str> = match &args.sprite {
        Some(name) => vec!["v1", "sprites", name, "policy", "network"],
        None => vec!["v1", "policy", "network"],
    };
    let view = match args.action {
        None => client.get(&path, &[]).await?,
        Some(PolicyAction::Set {
            allow,
            deny,
            include,
        }) => {
            let mut rules: Vec<Value> = include.iter().map(|p| json!({"include": p})).collect();
            rules.extend(allow.iter().map(|d| rule(d, "allow")));
            rules.extend(deny.iter().map(|d| rule(d, "deny")));
            client
                .call(Method::PUT, &path, Some(&json!({ "rules": rules })))
                .await?
        }
    };
    if json {
        output::json(&view);
        return Ok(0);
    }
    let whose = args
        .sprite
        .as_deref()
        .map_or("the tenant's default".to_string(), |s| {
            format!("sprite {s}")
        });
    print_rules(&format!("rules of {whose}"), &view["effective"]);
    if let Some(tenant) = view.get("tenant").filter(|t| t.is_array()) {
        print_rules("then the tenant's default", tenant);
    }
    println!("then the operator's default: {}", field(&view, "default"));
    Ok(0)
}

fn print_rules(title: &str, rules: &Value) {
    let rules = rules.as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        println!("{title}: none");
        return;
    }
    println!("{title}:");
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let ports = r["ports"]
                .as_array()
                .map(|p| p.iter().map(output::text).collect::<Vec<_>>().join(","))
                .unwrap_or_else(|| "any".into());
            let from = r["from"]
                .as_str()
                .map(|f| format!("preset {f}"))
                .unwrap_or_default();
            vec![field(r, "action"), field(r, "domain"), ports, from]
        })
        .collect();
    output::table(&["ACTION", "DOMAIN", "PORTS", "FROM"], &rows);
}

pub async fn netlog(client: &Client, sprite: &str, json: bool) -> anyhow::Result<i32> {
    let log = client
        .get(&["v1", "sprites", sprite, "network", "log"], &[])
        .await?;
    if json {
        output::json(&log);
        return Ok(0);
    }
    let entries = log["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        eprintln!("no connections yet");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let verdict = match (e["allowed"].as_bool(), e["open"].as_bool()) {
                (Some(true), Some(true)) => "open",
                (Some(true), _) => "allowed",
                _ => "refused",
            };
            let bytes = |k: &str| output::bytes(e[k].as_u64().unwrap_or(0));
            vec![
                output::time(e, "at"),
                format!("{}:{}", field(e, "host"), field(e, "port")),
                verdict.into(),
                bytes("bytes_out"),
                bytes("bytes_in"),
                field(e, "rule"),
            ]
        })
        .collect();
    output::table(&["AT", "TO", "VERDICT", "SENT", "RECEIVED", "WHY"], &rows);
    Ok(0)
}
