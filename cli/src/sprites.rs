//! Sprite lifecycle commands: `create`, `ls`, `show`, `pause`, `resume`, `rm`.

use clap::Args;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::Client;
use super::output::{self, field, int};
use super::progress::Spinner;

#[derive(Args)]
pub struct CreateArgs {
    /// The sprite's name.
    name: String,
    /// Virtual CPUs (server default when omitted).
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory in MB.
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Disk in MB.
    #[arg(long)]
    disk_mb: Option<u64>,
    /// The image to make it from (`corral image ls`; the server's default when omitted).
    #[arg(long)]
    image: Option<String>,
    /// Bandwidth through the way out, megabits per second (at most the server's).
    #[arg(long)]
    network_mbps: Option<u64>,
    /// Seconds without activity before the sprite pauses itself (0 = never).
    #[arg(long)]
    idle_timeout_s: Option<u64>,
    /// The port inside the sprite its URL reaches (default 8080).
    #[arg(long)]
    http_port: Option<u64>,
    /// Let anyone open the sprite's URL (default: tokens with sprites:http and links).
    #[arg(long)]
    public: bool,
    /// Makes repeating this create safe: the server answers a repeat with the first
    /// result (default: a fresh key, reused only by this run's own retries).
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// Tries of a create whose request never got an answer (the key makes them safe).
const CREATE_TRIES: u32 = 3;

pub async fn create(client: &Client, args: CreateArgs, json: bool) -> anyhow::Result<i32> {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    if let Some(image) = &args.image {
        body.insert("image".into(), json!(image));
    }
    if args.public {
        body.insert("url_auth".into(), json!("public"));
    }
    let optional = [
        ("cpus", args.cpus.map(u64::from)),
        ("memory_mb", args.memory_mb),
        ("disk_mb", args.disk_mb),
        ("idle_timeout_s", args.idle_timeout_s),
        ("network_mbps", args.network_mbps),
        ("http_port", args.http_port),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    let key = args
        .idempotency_key
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let body = Value::Object(body);
    let spinner = Spinner::start(format!("creating {}", args.name), None);
    let mut attempt = 1;
    let sprite = loop {
        let request = client
            .request(Method::POST, client.endpoint(&["v1", "sprites"]))
            .header("Idempotency-Key", &key)
            .json(&body);
        match request.send().await {
            Ok(response) => break client.answer(response).await?,
            // Only when no answer came: an error answer is final.
            Err(e) if attempt < CREATE_TRIES && (e.is_connect() || e.is_request()) => {
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            Err(e) => return Err(client.transport(e)),
        }
    };
    spinner.finish();
    if json {
        output::json(&sprite);
    } else {
        println!("created {} ({})", field(&sprite, "name"), sizes(&sprite));
    }
    Ok(0)
}

pub async fn list(client: &Client, json: bool) -> anyhow::Result<i32> {
    let answer = client.get(&["v1", "sprites"], &[]).await?;
    if json {
        output::json(&answer);
        return Ok(0);
    }
    let sprites = answer
        .get("sprites")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if sprites.is_empty() {
        eprintln!("no sprites yet: `corral create NAME` makes one");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = sprites
        .iter()
        .map(|s| {
            vec![
                field(s, "name"),
                state(s),
                field(s, "image"),
                field(s, "cpus"),
                mb(s, "memory_mb"),
                disk(s),
                idle(s),
                output::money(s, "cost_nanos"),
                output::time(s, "last_active_at"),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "STATE",
            "IMAGE",
            "CPUS",
            "MEMORY",
            "DISK",
            "IDLE PAUSE",
            "COST",
            "LAST ACTIVE",
        ],
        &rows,
    );
    Ok(0)
}

pub async fn show(client: &Client, name: &str, json: bool) -> anyhow::Result<i32> {
    let sprite = client.get(&["v1", "sprites", name], &[]).await?;
    print_sprite(&sprite, json);
    Ok(0)
}

pub async fn pause(client: &Client, name: &str, json: bool) -> anyhow::Result<i32> {
    let spinner = Spinner::start(format!("pausing {name}"), None);
    let sprite = client
        .call(Method::POST, &["v1", "sprites", name, "pause"], None)
        .await?;
    spinner.finish();
    if json {
        output::json(&sprite);
    } else {
        println!("paused {name}");
    }
    Ok(0)
}

pub async fn resume(client: &Client, name: &str, json: bool) -> anyhow::Result<i32> {
    let spinner = Spinner::start(format!("resuming {name}"), None);
    let sprite = client
        .call(Method::POST, &["v1", "sprites", name, "resume"], None)
        .await?;
    spinner.finish();
    if json {
        output::json(&sprite);
    } else {
        println!("resumed {name} ({})", state(&sprite));
    }
    Ok(0)
}

pub async fn remove(client: &Client, name: &str, json: bool) -> anyhow::Result<i32> {
    let spinner = Spinner::start(format!("removing {name}"), None);
    client
        .call(Method::DELETE, &["v1", "sprites", name], None)
        .await?;
    spinner.finish();
    // The answer is empty (204): `--json` prints nothing, the exit code says it.
    if !json {
        println!("removed {name}");
    }
    Ok(0)
}

/// One sprite as a key/value block (or its JSON).
pub fn print_sprite(sprite: &Value, json: bool) {
    if json {
        output::json(sprite);
        return;
    }
    let mut lines = vec![
        ("name", field(sprite, "name")),
        ("state", state(sprite)),
        ("image", field(sprite, "image")),
        ("cpus", field(sprite, "cpus")),
        ("memory", mb(sprite, "memory_mb")),
        ("disk", disk(sprite)),
        ("idle pause", idle(sprite)),
        ("created", output::time(sprite, "created_at")),
        ("last active", output::time(sprite, "last_active_at")),
        ("created by", field(sprite, "created_by_token")),
        ("cost", output::money(sprite, "cost_nanos")),
    ];
    // Fields beyond the documented ones (e.g. what kept it awake) are shown as they come.
    const SHOWN: [&str; 13] = [
        "name",
        "image",
        "state",
        "pause_reason",
        "cpus",
        "memory_mb",
        "disk_mb",
        "disk_used_bytes",
        "idle_timeout_s",
        "created_at",
        "last_active_at",
        "created_by_token",
        "cost_nanos",
    ];
    let extra: Vec<(String, String)> = sprite
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| !SHOWN.contains(&key.as_str()) && !value.is_object())
        .map(|(key, value)| (key.replace('_', " "), output::text(value)))
        .collect();
    lines.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    output::pairs(&lines);
}

fn state(sprite: &Value) -> String {
    match sprite.get("pause_reason").and_then(Value::as_str) {
        Some(reason) if !reason.is_empty() => format!("{} ({reason})", field(sprite, "state")),
        _ => field(sprite, "state"),
    }
}

fn mb(sprite: &Value, key: &str) -> String {
    match int(sprite, key) {
        Some(mb) => format!("{mb} MB"),
        None => "-".into(),
    }
}

fn disk(sprite: &Value) -> String {
    match int(sprite, "disk_used_bytes") {
        Some(used) => format!(
            "{} of {}",
            output::bytes(used.max(0) as u64),
            mb(sprite, "disk_mb")
        ),
        None => mb(sprite, "disk_mb"),
    }
}

fn idle(sprite: &Value) -> String {
    match int(sprite, "idle_timeout_s") {
        Some(0) => "never".into(),
        Some(s) => format!("after {s} s"),
        None => "-".into(),
    }
}

fn sizes(sprite: &Value) -> String {
    format!(
        "{} vCPU, {} memory, {} disk, idle pause {}",
        field(sprite, "cpus"),
        mb(sprite, "memory_mb"),
        mb(sprite, "disk_mb"),
        idle(sprite)
    )
}
