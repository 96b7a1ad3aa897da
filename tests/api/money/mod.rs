//! Hard caps end to end with real gVisor sprites and inflated prices: a sprite spinning
//! `yes` is paused for budget before its tenant cap or token budget is crossed, refuses
//! work with 402 until the cap is raised, keeps paying for its disk within the
//! reservation, survives a kill -9 of the server with a consistent ledger; threshold
//! alerts are queued once and delivered to a real SMTP peer on loopback.
mod crash;
mod disk;
mod mail_order;
mod outage;
mod refusals;
pub mod smtp;
mod tenant;
mod tokens;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_metering::period::Period;
use serde_json::{json, Value};

use crate::helpers::{expect_status, App};

/// $1 per CPU-second: a sprite spinning one vCPU burns about a dollar a second.
pub const CPU_PRICE: i64 = 1_000_000_000;
/// The tick and pause latency the tests run with: the rule's window is 500 ms.
pub const TICK_MS: i64 = 200;
pub const PAUSE_LATENCY_MS: i64 = 300;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A disk price at which 64 MB stored to the end of this month reserves about 20
/// cents, whatever day of the month the test runs on.
fn disk_price() -> i64 {
    let remaining = (Period::containing(now_ms()).end_ms - now_ms()).max(60_000) as i128;
    let target: i128 = 200_000_000;
    (target * 1_000_000_000 * 2_628_000_000 / (64_000_000 * remaining)) as i64
}

/// Inflated prices, a fast tick, a 1 s runway; `extra` on top.
pub async fn spawn(extra: &[(&str, String)]) -> App {
    let mut env: Vec<(String, String)> = vec![
        ("CORRAL_TICK_MS".into(), TICK_MS.to_string()),
        (
            "CORRAL_PAUSE_LATENCY_MS".into(),
            PAUSE_LATENCY_MS.to_string(),
        ),
        (
            "CORRAL_PRICE_CPU_NANOS_PER_CPU_S".into(),
            CPU_PRICE.to_string(),
        ),
        (
            "CORRAL_PRICE_DISK_NANOS_PER_GB_MONTH".into(),
            disk_price().to_string(),
        ),
        ("CORRAL_MIN_RUNWAY_S".into(), "1".into()),
        ("CORRAL_DEFAULT_IDLE_TIMEOUT_S".into(), "0".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    App::spawn_with(&refs).await
}

pub async fn budget(app: &App, token: &str) -> Value {
    expect_status(app.get("/v1/budget", token).await, 200).await
}

pub async fn set_budget(app: &App, token: &str, body: Value) -> Value {
    expect_status(app.put("/v1/budget", token, body).await, 200).await
}

pub async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

pub async fn usage(app: &App, token: &str, query: &str) -> Value {
    expect_status(app.get(&format!("/v1/usage?{query}"), token).await, 200).await
}

pub fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Lets the tick after a pause bill what ran between its decision and the pause.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(3 * TICK_MS as u64)).await;
}

/// Creates a one-vCPU sprite, stores 16 MB on its disk and starts `yes` spinning in it.
pub async fn spin(app: &App, token: &str, name: &str) {
    let created = expect_status(
        app.post(
            "/v1/sprites",
            token,
            json!({"name": name, "cpus": 1, "memory_mb": 512, "disk_mb": 256, "idle_timeout_s": 0}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["state"], "running", "{created}");
    let out = expect_status(
        app.post(
            &format!("/v1/sprites/{name}/exec"),
            token,
            json!({"cmd": ["sh", "-c", "dd if=/dev/zero of=/root/ballast bs=1M count=16 2>/dev/null && sync && (nohup yes >/dev/null 2>&1 &)"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
}

/// Starts `yes` in the background in `name`. Near a cap the rule may pause the sprite
/// while this call starts (a loaded host runs the set-up slower): that is the goal too.
pub async fn start_yes(app: &App, token: &str, name: &str) {
    let spin = app
        .exec(token, name, &["sh", "-c", "(nohup yes >/dev/null 2>&1 &)"])
        .await;
    if spin.status() != reqwest::StatusCode::OK {
        let text = spin.text().await.unwrap();
        assert!(text.contains("paused (budget)"), "{text}");
    }
}

/// What a scope looked like while its sprite ran until paused.
pub struct Run {
    /// Most spent seen at any poll.
    pub max_spent: i64,
    /// From the first poll where the next window no longer fit to the pause being seen.
    pub exhausted_to_paused: Option<Duration>,
    /// From the start of the spin to the pause being seen.
    pub took: Duration,
}

/// Polls `spent` (read by `read`, with its cap) until the sprite is paused for
/// budget, asserting on every poll that spend never passes the cap.
pub async fn until_paused<F, Fut>(app: &App, token: &str, name: &str, mut read: F) -> Run
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (i64, i64, i64)>,
{
    let started = Instant::now();
    let (mut max_spent, mut exhausted_at) = (0, None);
    loop {
        let (spent, cap, available) = read().await;
        assert!(spent <= cap, "spent {spent} passed the cap {cap}");
        max_spent = max_spent.max(spent);
        // One window of one vCPU flat out: when less than that is left, the rule acts.
        let window = CPU_PRICE * (TICK_MS + PAUSE_LATENCY_MS) / 1000;
        if available < window && exhausted_at.is_none() {
            exhausted_at = Some(Instant::now());
        }
        let s = sprite(app, token, name).await;
        if s["state"] == "paused" {
            assert_eq!(s["pause_reason"], "budget", "{s}");
            return Run {
                max_spent,
                exhausted_to_paused: exhausted_at.map(|t| t.elapsed()),
                took: started.elapsed(),
            };
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not paused in 30 s: {s} spent {spent} of {cap}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tenant's (spent, cap, available); the usage report must never pass the cap either.
pub async fn tenant_spend(app: &App, token: &str) -> (i64, i64, i64) {
    let b = budget(app, token).await;
    let total = int(&usage(app, token, "by=minute").await, "total_nanos");
    assert!(
        total <= int(&b, "cap_nanos"),
        "usage {total} passed the cap: {b}"
    );
    (
        int(&b, "spent_nanos"),
        int(&b, "cap_nanos"),
        int(&b, "available_nanos"),
    )
}

pub async fn metric(app: &App, name: &str) -> i64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// A token's own budget as the token sees it in `GET /v1/budget`: (spent, cap, available).
pub async fn token_spend(app: &App, token: &str, id: &str) -> (i64, i64, i64) {
    let b = budget(app, token).await;
    let scope = format!("token:{id}");
    let t = b["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == scope.as_str())
        .unwrap_or_else(|| panic!("no budget of {scope} in {b}"))
        .clone();
    (
        int(&t, "spent_nanos"),
        int(&t, "cap_nanos"),
        int(&t, "available_nanos"),
    )
}

/// A token's spend as `GET /v1/tokens` lists it.
pub async fn listed_spent(app: &App, session: &str, id: &str) -> i64 {
    let list = expect_status(app.get("/v1/tokens", session).await, 200).await;
    let t = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    int(&t, "spent_nanos")
}

pub const SCOPES: [&str; 6] = [
    "sprites:read",
    "sprites:write",
    "exec",
    "tokens:create",
    "budget",
    "billing",
];
