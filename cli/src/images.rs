//! Images through the API: `image ls`, `image save`, `image rm`; and the commands that
//! make something of a sprite: `fork` and `export`.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, field, int};
use super::progress::Spinner;

/// The client's `image` commands (`image build` is the server host's own).
#[derive(Subcommand)]
pub enum ImageCommand {
    /// List the images you may create sprites from: the operator's and your own.
    Ls,
    /// Save a sprite's files as an image of your own.
    Save {
        /// The sprite to save.
        sprite: String,
        /// The new image's name.
        name: String,
    },
    /// Delete one of your images (kept while sprites made from it still exist).
    Rm {
        /// The image's name.
        name: String,
    },
}

pub async fn run(client: &Client, command: ImageCommand, json: bool) -> anyhow::Result<i32> {
    match command {
        ImageCommand::Ls => list(client, json).await,
        ImageCommand::Save { sprite, name } => save(client, &sprite, &name, json).await,
        ImageCommand::Rm { name } => remove(client, &name, json).await,
    }
}

async fn list(client: &Client, json: bool) -> anyhow::Result<i32> {
    let answer = client.get(&["v1", "images"], &[]).await?;
    if json {
        output::json(&answer);
        return Ok(0);
    }
    let images = answer
        .get("images")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                field(i, "name"),
                field(i, "owner"),
                output::bytes(int(i, "size_bytes").unwrap_or(0).max(0) as u64),
                describe(i),
                output::time(i, "created_at"),
            ]
        })
        .collect();
    output::table(&["NAME", "OWNER", "SIZE", "WHAT", "MADE"], &rows);
    if let Some(default) = answer.get("default").and_then(Value::as_str) {
        eprintln!("sprites are made from {default:?} unless `corral create --image NAME`");
    }
    Ok(0)
}

/// What an image holds: its packages, or the sprite it was saved from.
fn describe(image: &Value) -> String {
    if let Some(sprite) = image.get("source_sprite").and_then(Value::as_str) {
        return format!("saved from sprite {sprite}");
    }
    let packages: Vec<&str> = image
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match packages.len() {
        0 => "Debian bookworm, minimal".into(),
        n if n <= 6 => packages.join(", "),
        n => format!("{}, … ({n} packages)", packages[..6].join(", ")),
    }
}

async fn save(client: &Client, sprite: &str, name: &str, json: bool) -> anyhow::Result<i32> {
    let spinner = Spinner::start(format!("saving {sprite} as image {name}"), None);
    let image = client
        .call(
            Method::POST,
            &["v1", "sprites", sprite, "images"],
            Some(&json!({ "name": name })),
        )
        .await?;
    spinner.finish();
    if json {
        output::json(&image);
    } else {
        println!(
            "saved {sprite} as image {name} ({}): `corral create NEW --image {name}`",
            output::bytes(int(&image, "size_bytes").unwrap_or(0).max(0) as u64)
        );
    }
    Ok(0)
}

async fn remove(client: &Client, name: &str, json: bool) -> anyhow::Result<i32> {
    let answer = client
        .call(Method::DELETE, &["v1", "images", name], None)
        .await?;
    if json {
        output::json(&answer);
    } else if answer.get("state").and_then(Value::as_str) == Some("deleting") {
        println!("deleted image {name}; its files stay until the sprites made from it are deleted");
    } else {
        println!("deleted image {name}");
    }
    Ok(0)
}

/// `fork SPRITE NEW`: a new sprite with the same disk and memory.
pub async fn fork(client: &Client, sprite: &str, name: &str, json: bool) -> anyhow::Result<i32> {
    let spinner = Spinner::start(format!("forking {sprite} into {name}"), None);
    let forked = client
        .call(
            Method::POST,
            &["v1", "sprites", sprite, "fork"],
            Some(&json!({ "name": name })),
        )
        .await?;
    spinner.finish();
    if json {
        output::json(&forked);
    } else {
        println!("forked {sprite} into {name}: its processes run on in both");
    }
    Ok(0)
}

/// `export SPRITE FILE`: the sprite as an OCI image archive.
pub async fn export(client: &Client, sprite: &str, file: PathBuf) -> anyhow::Result<i32> {
    let url = client.endpoint(&["v1", "sprites", sprite, "export"]);
    let spinner = Spinner::start(format!("exporting {sprite}"), None);
    let response = client.send(client.request(Method::GET, url)).await?;
    let got = super::files::to_file(client, response, &file, &spinner.counter()).await?;
    spinner.finish();
    println!(
        "wrote {} to {}: an OCI image archive (`skopeo copy oci-archive:{} …`, `podman load -i {}`)",
        output::bytes(got),
        file.display(),
        file.display(),
        file.display()
    );
    Ok(0)
}
