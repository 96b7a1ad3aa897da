//! Runs: a minute schedule waking an idle sprite, refusals (budget, a run still going, a
//! revoked token), checkpoint schedules.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::helpers::{expect_problem, expect_status, App};

#[tokio::test]
async fn a_minute_schedule_wakes_an_idle_sprite_twice_and_lets_it_go_idle() {
    let app = App::spawn().await;
    let (_, token) = app.signup("cron@example.com").await;
    create_sprite(&app, &token, "nightly", 2).await;
    wait_paused(&app, &token, "nightly", "idle").await;

    let cmd = json!([
        "sh",
        "-c",
        "echo ran-at-$(date +%s); echo to-stderr >&2; exit 3"
    ]);
    let made = add(
        &app,
        &token,
        "nightly",
        json!({"cron": "*/1 * * * *", "cmd": cmd, "comment": "every minute"}),
    )
    .await;
    assert_eq!(made["cron"], "*/1 * * * *");
    assert_eq!(made["cron_expressions"], json!(["0 * * * * *"]));
    assert_eq!(made["cmd"], cmd);
    assert_eq!(made["checkpoint"], false);
    let next: Vec<i64> = made["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| parse_utc(t.as_str().unwrap()).0)
        .collect();
    assert_eq!(next.len(), 3, "{made}");
    let now = now_s();
    assert!(next[0] > now - 1 && next[0] <= now + 60, "{made}");
    assert!(next.iter().all(|t| t % 60 == 0), "{made}");
    assert_eq!([next[1] - next[0], next[2] - next[1]], [60, 60], "{made}");

    // Mondays at nine, checked against our own calendar arithmetic.
    let monday = add(
        &app,
        &token,
        "nightly",
        json!({"cron": "0 9 * * 1", "cmd": ["true"]}),
    )
    .await;
    let mondays: Vec<(i64, i64)> = monday["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| parse_utc(t.as_str().unwrap()))
        .collect();
    assert_eq!(mondays.len(), 3);
    for (secs, weekday) in &mondays {
        assert_eq!(*weekday, 1, "{monday}");
        assert_eq!(secs.rem_euclid(86_400), 9 * 3600, "{monday}");
    }
    assert_eq!(mondays[1].0 - mondays[0].0, 7 * 86_400);
    let id = made["id"].as_str().unwrap().to_string();

    // The first run wakes the idle sprite; it pauses for idle again afterwards.
    let runs = wait_runs(&app, &token, "nightly", &id, 1, Duration::from_secs(75)).await;
    let first = &runs[0];
    assert_eq!(first["outcome"], "ok", "{first}");
    assert_eq!(first["exit_code"], 3, "{first}");
    let tail = first["output_tail"].as_str().unwrap();
    assert!(
        tail.contains("ran-at-") && tail.contains("to-stderr"),
        "{first}"
    );
    assert!(first["finished_at"].is_string(), "{first}");
    let after = wait_paused(&app, &token, "nightly", "idle").await;
    assert_eq!(after["last_activity"], "exec", "{after}");

    // And the second, a minute later, wakes it again.
    let runs = wait_runs(&app, &token, "nightly", &id, 2, Duration::from_secs(75)).await;
    assert_eq!(runs[1]["outcome"], "ok", "{runs:?}");
    assert_eq!(runs[1]["exit_code"], 3, "{runs:?}");
    let gap = parse_utc(runs[1]["started_at"].as_str().unwrap()).0
        - parse_utc(runs[0]["started_at"].as_str().unwrap()).0;
    assert!((58..=62).contains(&gap), "runs {gap} s apart: {runs:?}");
    // Each started within two seconds of its minute (the runner looks every second).
    for run in &runs {
        let late = parse_utc(run["started_at"].as_str().unwrap()).0 % 60;
        assert!(late <= 2, "started {late} s late: {run}");
    }
    wait_paused(&app, &token, "nightly", "idle").await;
    let metrics = app.metrics_text().await;
    let ok_runs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("corral_schedule_runs_total{outcome=\"ok\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no schedule run counter:\n{metrics}"));
    assert!(ok_runs >= 2, "{metrics}");
    assert!(
        metrics.contains("corral_job_runs_total{job=\"period-close\"}"),
        "{metrics}"
    );

    // Delete one; the rest vanish with their sprite.
    let monday_id = monday["id"].as_str().unwrap();
    let path = format!("/v1/sprites/nightly/schedules/{monday_id}");
    expect_status(app.delete(&path, &token).await, 204).await;
    expect_problem(app.delete(&path, &token).await, 404, "not_found").await;
    assert_eq!(list(&app, &token, "nightly").await.len(), 1);
    expect_status(app.delete("/v1/sprites/nightly", &token).await, 204).await;
    create_sprite(&app, &token, "nightly", 0).await;
    assert!(list(&app, &token, "nightly").await.is_empty());
    expect_status(app.delete("/v1/sprites/nightly", &token).await, 204).await;
}

#[tokio::test]
async fn runs_are_refused_and_recorded_when_the_budget_is_exhausted() {
    let app = App::spawn_with(&[("CORRAL_SCHEDULE_SECONDS", "on")]).await;
    let (_, token) = app.signup("broke-cron@example.com").await;
    create_sprite(&app, &token, "napper", 1).await;
    create_sprite(&app, &token, "worker", 0).await;
    wait_paused(&app, &token, "napper", "idle").await;
    let capped = expect_status(
        app.put("/v1/budget", &token, json!({"cap_nanos": 0})).await,
        200,
    )
    .await;
    assert_eq!(capped["state"], "exhausted", "{capped}");
    // The meter pauses the running one for budget.
    wait_paused(&app, &token, "worker", "budget").await;

    let every_2s = json!({"cron": "*/2 * * * * *", "cmd": ["sh", "-c", "echo should-not-run"]});
    let idle_id = add(&app, &token, "napper", every_2s.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let budget_id = add(&app, &token, "worker", every_2s).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = wait_runs(&app, &token, "napper", &idle_id, 2, Duration::from_secs(20)).await;
    for run in &runs {
        assert_eq!(run["outcome"], "refused", "{run}");
        let why = run["refused_reason"].as_str().unwrap();
        assert!(why.contains("budget_exhausted"), "{run}");
        assert_eq!(run["exit_code"], Value::Null, "{run}");
        assert_eq!(run["output_tail"], Value::Null, "{run}");
    }
    let runs = wait_runs(
        &app,
        &token,
        "worker",
        &budget_id,
        2,
        Duration::from_secs(20),
    )
    .await;
    for run in &runs {
        assert_eq!(run["outcome"], "refused", "{run}");
        let why = run["refused_reason"].as_str().unwrap();
        assert!(why.contains("paused (budget)"), "{run}");
    }
    // Nothing woke: both stay paused as they were.
    wait_paused(&app, &token, "napper", "idle").await;
    wait_paused(&app, &token, "worker", "budget").await;

    // With money again the idle one runs at its next time; the refused times were not
    // queued up behind it.
    expect_status(
        app.put(
            "/v1/budget",
            &token,
            json!({"cap_nanos": 100_000_000_000i64}),
        )
        .await,
        200,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let ran = loop {
        let runs = finished_runs(&app, &token, "napper", &idle_id).await;
        if let Some(ok) = runs.iter().find(|r| r["outcome"] == "ok") {
            break ok.clone();
        }
        assert!(Instant::now() < deadline, "never ran: {runs:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(ran["exit_code"], 0, "{ran}");
    assert_eq!(ran["output_tail"], "should-not-run\n", "{ran}");
    let path = format!("/v1/sprites/napper/schedules/{idle_id}");
    expect_status(app.delete(&path, &token).await, 204).await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("corral_schedule_runs_total{outcome=\"refused\"}"),
        "{metrics}"
    );
    for name in ["napper", "worker"] {
        expect_status(
            app.delete(&format!("/v1/sprites/{name}"), &token).await,
            204,
        )
        .await;
    }
}

#[tokio::test]
async fn a_checkpoint_schedule_makes_checkpoints() {
    let app = App::spawn_with(&[("CORRAL_SCHEDULE_SECONDS", "on")]).await;
    let (_, token) = app.signup("snap-cron@example.com").await;
    create_sprite(&app, &token, "snappy", 0).await;
    app.sh_ok(&token, "snappy", "echo kept > /root/state").await;
    let made = add(
        &app,
        &token,
        "snappy",
        json!({"cron": "*/3 * * * * *", "checkpoint": true, "comment": "scheduled"}),
    )
    .await;
    let id = made["id"].as_str().unwrap();
    let runs = wait_runs(&app, &token, "snappy", id, 1, Duration::from_secs(20)).await;
    expect_status(
        app.delete(&format!("/v1/sprites/snappy/schedules/{id}"), &token)
            .await,
        204,
    )
    .await;
    let run = &runs[0];
    assert_eq!(run["outcome"], "ok", "{run}");
    let checkpoint = run["checkpoint_id"].as_str().unwrap();
    let listed = expect_status(app.get("/v1/sprites/snappy/checkpoints", &token).await, 200).await;
    let found = listed["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == checkpoint)
        .unwrap_or_else(|| panic!("{checkpoint} not in {listed}"));
    assert_eq!(found["comment"], "scheduled");
    assert!(found["size_bytes"].as_i64().unwrap() > 0, "{found}");
    expect_status(app.delete("/v1/sprites/snappy", &token).await, 204).await;
}

#[tokio::test]
async fn a_run_still_going_or_a_revoked_token_is_refused_not_queued() {
    let app = App::spawn_with(&[("CORRAL_SCHEDULE_SECONDS", "on")]).await;
    let (_, session) = app.signup("slow-cron@example.com").await;
    create_sprite(&app, &session, "slow", 0).await;
    let minted = app
        .mint(
            &session,
            json!({"name": "cron-bot", "scopes": ["schedules", "exec", "sprites:read"]}),
        )
        .await;
    let bot = minted["token"].as_str().unwrap();

    // Every second, a command that takes three: the times in between are refused.
    let slow = add(
        &app,
        bot,
        "slow",
        json!({"cron": "* * * * * *", "cmd": ["sh", "-c", "sleep 3; echo done"]}),
    )
    .await;
    let id = slow["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let runs = finished_runs(&app, bot, "slow", id).await;
        if runs.iter().any(|r| r["outcome"] == "ok")
            && runs.iter().any(|r| r["outcome"] == "refused")
        {
            break runs;
        }
        assert!(Instant::now() < deadline, "{runs:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let refused = runs.iter().find(|r| r["outcome"] == "refused").unwrap();
    assert_eq!(
        refused["refused_reason"], "the previous run is still going",
        "{refused}"
    );
    let ok = runs.iter().find(|r| r["outcome"] == "ok").unwrap();
    assert_eq!(ok["output_tail"], "done\n", "{ok}");

    // The token that made it is revoked: its schedule stops, each time recorded.
    let revoke = format!("/v1/tokens/{}", minted["id"].as_str().unwrap());
    expect_status(app.delete(&revoke, &session).await, 204).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = finished_runs(&app, &session, "slow", id).await;
        let last = runs.last().unwrap();
        if last["refused_reason"] == "the API token that made this schedule was revoked" {
            break;
        }
        assert!(Instant::now() < deadline, "{runs:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    expect_status(app.delete("/v1/sprites/slow", &session).await, 204).await;
}
