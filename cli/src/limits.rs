//! `limits` (show, `limits set`): the tenant's scaling limits, which may only be
//! lowered below the operator's maximums, and its default idle timeout.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::Client;
use super::output::{self, field};

/// The limits, in the order they are shown, with how each reads.
const LIMITS: [(&str, &str); 6] = [
    ("max_running_sprites", "running sprites"),
    ("max_total_cpus", "vCPUs, all running sprites"),
    ("max_total_memory_mb", "memory MB, all running sprites"),
    ("max_disk_mb_per_sprite", "disk MB per sprite"),
    ("max_checkpoints_per_sprite", "checkpoints per sprite"),
    (
        "default_idle_timeout_s",
        "idle seconds before a pause (0 = never)",
    ),
];

#[derive(Args)]
pub struct LimitsArgs {
    #[command(subcommand)]
    action: Option<LimitsAction>,
}

#[derive(Subcommand)]
enum LimitsAction {
    /// Lower (or restore up to the operator's maximum) one or more limits.
    Set {
        /// Running sprites at once.
        #[arg(long)]
        max_running_sprites: Option<i64>,
        /// vCPUs of all running sprites together.
        #[arg(long)]
        max_total_cpus: Option<i64>,
        /// Memory (MB) of all running sprites together.
        #[arg(long)]
        max_total_memory_mb: Option<i64>,
        /// Disk (MB) of one sprite.
        #[arg(long)]
        max_disk_mb_per_sprite: Option<i64>,
        /// Checkpoints kept per sprite.
        #[arg(long)]
        max_checkpoints_per_sprite: Option<i64>,
        /// Idle seconds before a new sprite pauses, unless it sets its own (0 = never).
        #[arg(long)]
        default_idle_timeout_s: Option<i64>,
    },
}

pub async fn run(client: &Client, args: LimitsArgs, json: bool) -> anyhow::Result<i32> {
    let limits = match args.action {
        None => client.get(&["v1", "limits"], &[]).await?,
        Some(LimitsAction::Set {
            max_running_sprites,
            max_total_cpus,
            max_total_memory_mb,
            max_disk_mb_per_sprite,
            max_checkpoints_per_sprite,
            default_idle_timeout_s,
        }) => {
            let given = [
                max_running_sprites,
                max_total_cpus,
                max_total_memory_mb,
                max_disk_mb_per_sprite,
                max_checkpoints_per_sprite,
                default_idle_timeout_s,
            ];
            let body: Map<String, Value> = LIMITS
                .iter()
                .zip(given)
                .filter_map(|((key, _), value)| Some(((*key).to_string(), json!(value?))))
                .collect();
            anyhow::ensure!(
                !body.is_empty(),
                "say which limit to change, e.g. --max-running-sprites 2"
            );
            client
                .call(Method::PUT, &["v1", "limits"], Some(&Value::Object(body)))
                .await?
        }
    };
    if json {
        output::json(&limits);
        return Ok(0);
    }
    let lines: Vec<(&str, String)> = LIMITS
        .iter()
        .map(|(key, label)| (*label, field(&limits, key)))
        .collect();
    output::pairs(&lines);
    Ok(0)
}
