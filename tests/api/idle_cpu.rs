//! Busy is not idle: a sprite whose processes use CPU is not paused as idle when no API
//! call came for its idle timeout; a quiet one beside it is, and says why.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{expect_status, App};

async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

#[tokio::test]
async fn a_sprite_busy_on_its_cpu_is_not_paused_as_idle_and_a_quiet_one_is() {
    let app = App::spawn_with(&[
        ("CORRAL_IDLE_CPU_BUSY_PCT", "5"),
        ("CORRAL_IDLE_CPU_WINDOW_S", "3"),
    ])
    .await;
    let (_, token) = app.signup("busy@example.com").await;
    for name in ["busy", "calm"] {
        let body = json!({"name": name, "idle_timeout_s": 4, "disk_mb": 128});
        expect_status(app.post("/v1/sprites", &token, body).await, 201).await;
    }
    // A CPU loop started in the background: the exec call returns at once.
    app.sh_ok(
        &token,
        "busy",
        "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 &",
    )
    .await;
    let start = Instant::now();

    // The quiet one pauses after its timeout, and says why in words.
    loop {
        let calm = sprite(&app, &token, "calm").await;
        if calm["state"] == "paused" {
            assert_eq!(calm["pause_reason"], "idle", "{calm}");
            let why = calm["pause_why"].as_str().unwrap_or_default();
            assert!(
                why.starts_with("idle: no exec, file or terminal use for 4 s")
                    && why.contains("CPU under 5 %"),
                "{calm}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "calm never paused: {calm}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The busy one has had no API call for three of its timeouts and still runs:
    // its CPU kept it awake.
    while start.elapsed() < Duration::from_secs(13) {
        let busy = sprite(&app, &token, "busy").await;
        assert_eq!(busy["state"], "running", "a busy sprite was paused: {busy}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let busy = sprite(&app, &token, "busy").await;
    assert_eq!(busy["last_activity"], "cpu", "{busy}");
    assert!(busy["pause_why"].is_null(), "{busy}");

    for name in ["busy", "calm"] {
        expect_status(
            app.delete(&format!("/v1/sprites/{name}"), &token).await,
            204,
        )
        .await;
    }
}
