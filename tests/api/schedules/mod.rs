//! Schedules on real sprites and the operator's jobs, against the real server: a
//! `*/1 * * * *` command wakes an idle-paused sprite twice in two minutes and lets it go
//! idle again; runs are refused and recorded when the budget is exhausted, the sprite
//! is paused for budget, the last run is still going or the token was revoked; a
//! checkpoint schedule makes checkpoints; `0 9 * * 1` reports Mondays; tenants never see
//! each other's; compaction keeps `/v1/usage` totals, the month closes, pruning forgets
//! old idempotency keys and keeps the last runs.
mod api;
mod jobs;
mod runs;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_metering::period::days_from_civil;
use serde_json::{json, Value};

use crate::helpers::{expect_status, App};

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unix seconds of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`, and its weekday
/// (0 = Sunday), computed without the server's code.
pub fn parse_utc(t: &str) -> (i64, i64) {
    assert!(t.len() == 20 && t.ends_with('Z'), "not RFC 3339 UTC: {t}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let days = days_from_civil(n(0..4), n(5..7) as u32, n(8..10) as u32);
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    // 1970-01-01 was a Thursday.
    (secs, (days + 4).rem_euclid(7))
}

pub async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

pub async fn create_sprite(app: &App, token: &str, name: &str, idle_timeout_s: u64) {
    let body = json!({"name": name, "disk_mb": 128, "idle_timeout_s": idle_timeout_s});
    expect_status(app.post("/v1/sprites", token, body).await, 201).await;
}

pub async fn wait_paused(app: &App, token: &str, name: &str, reason: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = sprite(app, token, name).await;
        if s["state"] == "paused" && s["pause_reason"] == reason {
            return s;
        }
        assert!(Instant::now() < deadline, "never paused ({reason}): {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn add(app: &App, token: &str, name: &str, body: Value) -> Value {
    let path = format!("/v1/sprites/{name}/schedules");
    expect_status(app.post(&path, token, body).await, 201).await
}

pub async fn list(app: &App, token: &str, name: &str) -> Vec<Value> {
    let path = format!("/v1/sprites/{name}/schedules");
    let body = expect_status(app.get(&path, token).await, 200).await;
    body["schedules"].as_array().unwrap().clone()
}

/// The finished runs of schedule `id`, oldest first.
pub async fn finished_runs(app: &App, token: &str, name: &str, id: &str) -> Vec<Value> {
    let schedules = list(app, token, name).await;
    let schedule = schedules
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("schedule {id} missing: {schedules:?}"));
    let mut runs: Vec<Value> = schedule["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "running")
        .cloned()
        .collect();
    runs.reverse();
    runs
}

/// Waits until schedule `id` has `n` finished runs; returns them, oldest first.
pub async fn wait_runs(
    app: &App,
    token: &str,
    name: &str,
    id: &str,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let runs = finished_runs(app, token, name, id).await;
        if runs.len() >= n {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} runs: {runs:?}",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
