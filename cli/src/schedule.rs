//! `schedule add|ls|rm`: commands or checkpoints on a sprite on a cron schedule
//! (five-field crontab in UTC), with the last runs.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: `corral schedule add SPRITE "0 3 * * *" -- CMD ARGS…`, or
    /// `--checkpoint` instead of a command. Crontab in UTC (Sunday is 0 or 7), or
    /// @hourly, @daily, @weekly, @monthly, @yearly.
    Add {
        /// The sprite's name.
        sprite: String,
        /// When: five-field crontab in UTC, quoted.
        cron: String,
        /// Take a checkpoint instead of running a command.
        #[arg(long, conflicts_with = "cmd")]
        checkpoint: bool,
        /// A note (a checkpoint schedule's checkpoints carry it).
        #[arg(long)]
        comment: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// A sprite's schedules: when they run next and how their last run went.
    Ls {
        /// The sprite's name.
        sprite: String,
    },
    /// Delete a schedule.
    Rm {
        /// The sprite's name.
        sprite: String,
        /// The schedule's id (`corral schedule ls`).
        id: String,
    },
}

/// What a schedule does, in a word or a command line a shell would read back the same.
fn action(s: &Value) -> String {
    if s["checkpoint"] == true {
        return "checkpoint".into();
    }
    s["cmd"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as one shell word: as it is when nothing in it is special, else single-quoted.
fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// How the last run went: `ok exit 0`, `refused: …`, `failed: …`, or `-`.
fn last_run(s: &Value) -> String {
    let Some(run) = s["last_runs"].as_array().and_then(|r| r.first()) else {
        return "-".into();
    };
    let when = output::time(run, "started_at");
    let how = match run["outcome"].as_str().unwrap_or_default() {
        "ok" if run["checkpoint_id"].is_string() => {
            format!("ok checkpoint {}", field(run, "checkpoint_id"))
        }
        "ok" => format!("ok exit {}", field(run, "exit_code")),
        "refused" => format!("refused: {}", field(run, "refused_reason")),
        "failed" => format!("failed: {}", field(run, "error")),
        other => other.to_string(),
    };
    format!("{when} {how}")
}

pub async fn run(client: &Client, command: ScheduleCommand, json: bool) -> anyhow::Result<i32> {
    match command {
        ScheduleCommand::Add {
            sprite,
            cron,
            checkpoint,
            comment,
            cmd,
        } => {
            anyhow::ensure!(
                checkpoint || !cmd.is_empty(),
                "give a command after `--`, or --checkpoint"
            );
            let mut body = if checkpoint {
                json!({ "cron": cron, "checkpoint": true })
            } else {
                json!({ "cron": cron, "cmd": cmd })
            };
            if let Some(comment) = comment {
                body["comment"] = json!(comment);
            }
            let made = client
                .call(
                    Method::POST,
                    &["v1", "sprites", &sprite, "schedules"],
                    Some(&body),
                )
                .await?;
            if json {
                output::json(&made);
                return Ok(0);
            }
            println!(
                "added schedule {} on {sprite}: {}",
                field(&made, "id"),
                action(&made)
            );
            for next in made["next_runs"].as_array().into_iter().flatten() {
                println!("  next: {}", next.as_str().unwrap_or_default());
            }
        }
        ScheduleCommand::Ls { sprite } => {
            let list = client
                .get(&["v1", "sprites", &sprite, "schedules"], &[])
                .await?;
            if json {
                output::json(&list);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list["schedules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    // The first of the next times ("-" when there is none).
                    let next = output::time(&json!({ "t": s["next_runs"][0] }), "t");
                    vec![
                        field(s, "id"),
                        field(s, "cron"),
                        action(s),
                        next,
                        last_run(s),
                    ]
                })
                .collect();
            output::table(&["ID", "CRON (UTC)", "DOES", "NEXT", "LAST RUN"], &rows);
        }
        ScheduleCommand::Rm { sprite, id } => {
            client
                .call(
                    Method::DELETE,
                    &["v1", "sprites", &sprite, "schedules", &id],
                    None,
                )
                .await?;
            if !json {
                println!("deleted schedule {id} of {sprite}");
            }
        }
    }
    Ok(0)
}
