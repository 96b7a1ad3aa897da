//! `secrets add|ls|rm`: values sprites use without ever holding them. The value is read
//! from stdin (or a prompt), never from the command line.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Add (or replace) a secret; its value is read from stdin. Sprites see
    /// `CORRAL_SECRET_<NAME>`, a placeholder that becomes the value only on its way to
    /// the hosts named.
    Add {
        /// A-Z, 0-9 and _.
        name: String,
        /// Where it may go (`api.example.com`, `*.example.com`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        hosts: Vec<String>,
        /// A header to add to requests to those hosts (e.g. Authorization).
        #[arg(long)]
        header: Option<String>,
        /// The header's value, `{}` standing for the secret (default `Bearer {}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// List secrets: names, hosts and placeholders, never values.
    Ls,
    /// Delete a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
}

fn read_value() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("value (not shown again): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!value.is_empty(), "no value on stdin");
    Ok(value)
}

pub async fn run(client: &Client, command: SecretsCommand, json: bool) -> anyhow::Result<i32> {
    match command {
        SecretsCommand::Add {
            name,
            hosts,
            header,
            format,
        } => {
            let mut body = json!({ "name": name, "value": read_value()?, "hosts": hosts });
            if let Some(header) = header {
                body["header"] = json!(header);
            }
            if let Some(format) = format {
                body["format"] = json!(format);
            }
            let added = client
                .call(Method::POST, &["v1", "secrets"], Some(&body))
                .await?;
            if json {
                output::json(&added);
            } else {
                println!(
                    "added {}: sprites see ${} = {}",
                    field(&added, "name"),
                    field(&added, "env"),
                    field(&added, "placeholder")
                );
            }
        }
        SecretsCommand::Ls => {
            let list = client.get(&["v1", "secrets"], &[]).await?;
            if json {
                output::json(&list);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list["secrets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    let hosts: Vec<String> = s["hosts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect();
                    vec![
                        field(s, "name"),
                        hosts.join(","),
                        field(s, "env"),
                        field(s, "placeholder"),
                    ]
                })
                .collect();
            output::table(&["NAME", "HOSTS", "ENV", "PLACEHOLDER"], &rows);
        }
        SecretsCommand::Rm { name } => {
            client
                .call(Method::DELETE, &["v1", "secrets", &name], None)
                .await?;
            if !json {
                println!("deleted secret {name}");
            }
        }
    }
    Ok(0)
}
