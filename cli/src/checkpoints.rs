//! `checkpoint create|ls|restore|rm`: saved states of a sprite.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field, int};
use super::progress::Spinner;
use super::sprites;

#[derive(Subcommand)]
pub enum CheckpointCommand {
    /// Save the sprite's current state.
    Create {
        /// The sprite's name.
        name: String,
        /// A note to remember it by.
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// List a sprite's checkpoints.
    Ls {
        /// The sprite's name.
        name: String,
    },
    /// Bring the sprite back to a checkpoint.
    Restore {
        /// The sprite's name.
        name: String,
        /// The checkpoint's id.
        id: String,
    },
    /// Delete a checkpoint.
    Rm {
        /// The sprite's name.
        name: String,
        /// The checkpoint's id.
        id: String,
    },
}

pub async fn run(client: &Client, command: CheckpointCommand, json: bool) -> anyhow::Result<i32> {
    match command {
        CheckpointCommand::Create { name, comment } => {
            let body = match comment {
                Some(comment) => json!({ "comment": comment }),
                None => json!({}),
            };
            let spinner = Spinner::start(format!("checkpointing {name}"), None);
            let checkpoint = client
                .call(
                    Method::POST,
                    &["v1", "sprites", &name, "checkpoints"],
                    Some(&body),
                )
                .await?;
            spinner.finish();
            if json {
                output::json(&checkpoint);
            } else {
                println!(
                    "checkpoint {} of {name} ({})",
                    field(&checkpoint, "id"),
                    size(&checkpoint)
                );
            }
        }
        CheckpointCommand::Ls { name } => {
            let answer = client
                .get(&["v1", "sprites", &name, "checkpoints"], &[])
                .await?;
            if json {
                output::json(&answer);
                return Ok(0);
            }
            let list = answer
                .get("checkpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                eprintln!("{name} has no checkpoints");
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        field(c, "id"),
                        output::time(c, "created_at"),
                        size(c),
                        field(c, "comment"),
                    ]
                })
                .collect();
            output::table(&["ID", "CREATED", "SIZE", "COMMENT"], &rows);
        }
        CheckpointCommand::Restore { name, id } => {
            let spinner = Spinner::start(format!("restoring {name} to {id}"), None);
            let sprite = client
                .call(
                    Method::POST,
                    &["v1", "sprites", &name, "checkpoints", &id, "restore"],
                    None,
                )
                .await?;
            spinner.finish();
            if json {
                sprites::print_sprite(&sprite, true);
            } else {
                println!("restored {name} to checkpoint {id}");
            }
        }
        CheckpointCommand::Rm { name, id } => {
            client
                .call(
                    Method::DELETE,
                    &["v1", "sprites", &name, "checkpoints", &id],
                    None,
                )
                .await?;
            if !json {
                println!("removed checkpoint {id} of {name}");
            }
        }
    }
    Ok(0)
}

fn size(checkpoint: &Value) -> String {
    int(checkpoint, "size_bytes")
        .map(|b| output::bytes(b.max(0) as u64))
        .unwrap_or_else(|| "-".into())
}
