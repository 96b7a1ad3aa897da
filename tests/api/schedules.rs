//! Schedules on real sprites and the operator's jobs, against the real server: a
//! `*/1 * * * *` command wakes an idle-paused sprite twice in two minutes and lets it go
//! idle again; runs are refused and recorded when the budget is exhausted or the sprite
//! is paused for budget; a checkpoint schedule makes checkpoints; `0 9 * * 1` reports
//! Mondays; tenants never see each other's; compaction keeps `/v1/usage` totals.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_metering::period::days_from_civil;
use serde_json::{json, Value};

use crate::helpers::{expect_problem, expect_problem_naming, expect_status, App};

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unix seconds of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`, and its weekday
/// (0 = Sunday), computed without the server's code.
fn parse_utc(t: &str) -> (i64, i64) {
    assert!(t.len() == 20 && t.ends_with('Z'), "not RFC 3339 UTC: {t}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let days = days_from_civil(n(0..4), n(5..7) as u32, n(8..10) as u32);
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    // 1970-01-01 was a Thursday.
    (secs, (days + 4).rem_euclid(7))
}

async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

async fn create_sprite(app: &App, token: &str, name: &str, idle_timeout_s: u64) {
    let body = json!({"name": name, "disk_mb": 128, "idle_timeout_s": idle_timeout_s});
    expect_status(app.post("/v1/sprites", token, body).await, 201).await;
}

async fn wait_paused(app: &App, token: &str, name: &str, reason: &str) -> Value {
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

async fn add(app: &App, token: &str, name: &str, body: Value) -> Value {
    let path = format!("/v1/sprites/{name}/schedules");
    expect_status(app.post(&path, token, body).await, 201).await
}

async fn list(app: &App, token: &str, name: &str) -> Vec<Value> {
    let path = format!("/v1/sprites/{name}/schedules");
    let body = expect_status(app.get(&path, token).await, 200).await;
    body["schedules"].as_array().unwrap().clone()
}

/// The finished runs of schedule `id`, oldest first.
async fn finished_runs(app: &App, token: &str, name: &str, id: &str) -> Vec<Value> {
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
async fn wait_runs(
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
async fn schedules_are_checked_scoped_and_private_to_their_tenant() {
    let app = App::spawn().await;
    let (_, alice) = app.signup("alice-cron@example.com").await;
    let (_, bob) = app.signup("bob-cron@example.com").await;
    create_sprite(&app, &alice, "mine", 0).await;
    let path = "/v1/sprites/mine/schedules";
    for (body, needle) in [
        (json!({"cron": "61 * * * *", "cmd": ["true"]}), "minute 61"),
        (json!({"cron": "* * * *", "cmd": ["true"]}), "4 fields"),
        (
            json!({"cron": "*/5 * * * * *", "cmd": ["true"]}),
            "six fields",
        ),
        (json!({"cron": "@reboot", "cmd": ["true"]}), "@reboot"),
        (
            json!({"cron": "0 0 30 2 *", "cmd": ["true"]}),
            "never fires",
        ),
        (json!({"cron": "@daily"}), "either cmd"),
        (
            json!({"cron": "@daily", "cmd": ["true"], "checkpoint": true}),
            "either cmd",
        ),
        (json!({"cron": "@daily", "cmd": []}), "program"),
    ] {
        expect_problem_naming(
            app.post(path, &alice, body).await,
            422,
            "validation",
            needle,
        )
        .await;
    }
    let made = add(
        &app,
        &alice,
        "mine",
        json!({"cron": "@daily", "cmd": ["true"]}),
    )
    .await;
    assert_eq!(made["cron_expressions"], json!(["0 0 0 * * *"]));
    let id = made["id"].as_str().unwrap();
    // Crontab's "day of month OR day of week": two of the crate's expressions.
    let either = add(
        &app,
        &alice,
        "mine",
        json!({"cron": "0 12 1 * mon", "cmd": ["true"]}),
    )
    .await;
    assert_eq!(
        either["cron_expressions"],
        json!(["0 0 12 1 * *", "0 0 12 * * MON"])
    );
    for t in either["next_runs"].as_array().unwrap() {
        let (secs, weekday) = parse_utc(t.as_str().unwrap());
        let (_, _, day) = corral_metering::period::civil_from_days(secs / 86_400);
        assert!(day == 1 || weekday == 1, "{either}");
    }
    let gone = format!(
        "/v1/sprites/mine/schedules/{}",
        either["id"].as_str().unwrap()
    );
    expect_status(app.delete(&gone, &alice).await, 204).await;

    // The calls and their bodies are in the OpenAPI document.
    let doc = expect_status(app.get("/v1/openapi.json", &alice).await, 200).await;
    let paths = &doc["paths"];
    assert!(
        paths["/v1/sprites/{name}/schedules"]["post"].is_object(),
        "{paths}"
    );
    assert!(
        paths["/v1/sprites/{name}/schedules"]["get"].is_object(),
        "{paths}"
    );
    assert!(
        paths["/v1/sprites/{name}/schedules/{id}"]["delete"].is_object(),
        "{paths}"
    );
    let schema = &doc["components"]["schemas"]["ScheduleView"]["properties"];
    assert!(
        schema["next_runs"].is_object() && schema["last_runs"].is_object(),
        "{schema}"
    );

    // Bob sees nothing of Alice's, and cannot delete it.
    expect_problem(app.get(path, &bob).await, 404, "not_found").await;
    let body = json!({"cron": "@daily", "cmd": ["true"]});
    expect_problem(app.post(path, &bob, body).await, 404, "not_found").await;
    let one = format!("{path}/{id}");
    expect_problem(app.delete(&one, &bob).await, 404, "not_found").await;
    create_sprite(&app, &bob, "mine", 0).await;
    assert!(list(&app, &bob, "mine").await.is_empty());
    expect_problem(app.delete(&one, &bob).await, 404, "not_found").await;
    assert_eq!(list(&app, &alice, "mine").await.len(), 1);

    // The scope: without `schedules` nothing; a command needs `exec`, a checkpoint
    // `checkpoints`.
    let no_scope = app
        .mint(
            &alice,
            json!({"name": "plain", "scopes": ["sprites:read", "exec"]}),
        )
        .await;
    let no_scope = no_scope["token"].as_str().unwrap();
    expect_problem_naming(app.get(path, no_scope).await, 403, "forbidden", "schedules").await;
    let snapper = app
        .mint(
            &alice,
            json!({"name": "snap", "scopes": ["schedules", "checkpoints"]}),
        )
        .await;
    let snapper = snapper["token"].as_str().unwrap();
    let body = json!({"cron": "@hourly", "cmd": ["true"]});
    expect_problem_naming(
        app.post(path, snapper, body).await,
        403,
        "forbidden",
        "exec",
    )
    .await;
    add(
        &app,
        snapper,
        "mine",
        json!({"cron": "@hourly", "checkpoint": true}),
    )
    .await;
    let shown = list(&app, snapper, "mine").await;
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[1]["checkpoint"], true);
    assert_eq!(shown[1]["cmd"], Value::Null);
    expect_problem(
        app.delete(&format!("{path}/nope"), &alice).await,
        404,
        "not_found",
    )
    .await;
    for (token, name) in [(&alice, "mine"), (&bob, "mine")] {
        expect_status(app.delete(&format!("/v1/sprites/{name}"), token).await, 204).await;
    }
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

/// The live sprite's minute rows, once the meter has written one.
async fn live_minutes(app: &App, token: &str) -> Vec<Value> {
    let path = "/v1/usage?by=minute&sprite=live";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = expect_status(app.get(path, token).await, 200).await;
        let rows = body["rows"].as_array().unwrap().clone();
        if !rows.is_empty() {
            return rows;
        }
        assert!(Instant::now() < deadline, "no ledger rows: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A six-field (seconds) cron firing once, `secs` from now.
fn once_in(secs: i64) -> String {
    let t = now_s() + secs;
    let sod = t.rem_euclid(86_400);
    format!("{} {} {} * * *", sod % 60, sod / 60 % 60, sod / 3600)
}

#[tokio::test]
async fn compaction_keeps_usage_totals_and_the_period_closes() {
    let fire_in = 25;
    let at = once_in(fire_in);
    let app = App::spawn_with(&[
        ("CORRAL_JOB_LEDGER_COMPACT", &at),
        ("CORRAL_JOB_PERIOD_CLOSE", &at),
    ])
    .await;
    let started = Instant::now();
    let (tenant, token) = app.signup("compact@example.com").await;
    create_sprite(&app, &token, "live", 0).await;

    // Three hours of minute rows 40 days ago, with sub-second byte·ms remainders.
    let hour_ms = 3_600_000i64;
    let old = (now_s() * 1000 - 40 * 86_400_000) / hour_ms * hour_ms;
    let pool = corral_metering::db::sqlite::open(&app.path().join("corral.db"), 1)
        .await
        .unwrap();
    for m in 0..180i64 {
        for (sprite_id, name) in [(900_001i64, "old-one"), (900_002, "old-two")] {
            sqlx::query(
                "INSERT INTO usage_minutes (minute_ms, sprite_id, tenant_id, sprite_name, cpu_ns, \
                 memory_byte_ms, disk_byte_ms, network_bytes, cost_nanos) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(old + m * 60_000)
            .bind(sprite_id)
            .bind(&tenant)
            .bind(name)
            .bind(1_000_000 + m * sprite_id % 977)
            .bind(512_000_123 + m * 7_919)
            .bind(2_000_000_999 - m * 31)
            .bind(m * 3)
            .bind(10_000 + m * 17 + sprite_id % 5)
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    let window = |by: &str| {
        let from = old / 1000;
        let fmt = |s: i64| {
            let (y, mo, d) = corral_metering::period::civil_from_days(s.div_euclid(86_400));
            let sod = s.rem_euclid(86_400);
            format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            )
        };
        format!(
            "/v1/usage?by={by}&from={}&to={}",
            fmt(from),
            fmt(from + 4 * 3600)
        )
    };
    let read = |by: &'static str| {
        let (app, token, path) = (&app, &token, window(by));
        async move { expect_status(app.get(&path, token).await, 200).await }
    };
    let (hours, days, minutes) = (read("hour").await, read("day").await, read("minute").await);
    assert_eq!(
        minutes["rows"].as_array().unwrap().len(),
        360,
        "compacted too early"
    );
    let live_before = live_minutes(&app, &token).await;
    assert!(
        started.elapsed() < Duration::from_secs(fire_in as u64 - 5),
        "setup too slow"
    );

    // The job fires once; then the minutes are hours and nothing a report sums moved.
    let deadline = Instant::now() + Duration::from_secs(fire_in as u64 + 30);
    loop {
        let metrics = app.metrics_text().await;
        if metrics.contains("corral_job_runs_total{job=\"ledger-compact\"} 1") {
            assert!(
                metrics.contains("corral_job_failures_total{job=\"ledger-compact\"} 0"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(read("hour").await, hours);
    assert_eq!(read("day").await, days);
    // The month of those rows was closed with the ledger's total (the live sprite's
    // month is still open).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.metrics_text().await;
        if metrics.contains("corral_job_runs_total{job=\"period-close\"} 1") {
            assert!(
                metrics.contains("corral_job_failures_total{job=\"period-close\"} 0"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no period close:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let closed: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(ledger_nanos), 0) FROM period_closes WHERE tenant_id = ?",
    )
    .bind(&tenant)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(closed.0 >= 1, "{closed:?}");
    assert_eq!(Some(closed.1), minutes["total_nanos"].as_i64());
    pool.close().await;
    let after = read("minute").await;
    assert_eq!(after["total_nanos"], minutes["total_nanos"]);
    assert_eq!(after["rows"].as_array().unwrap().len(), 6, "{after}");
    assert!(hours["total_nanos"].as_i64().unwrap() > 0);
    // The live sprite's recent minutes stay minutes: every one finished before the
    // job is there unchanged.
    let live_after = live_minutes(&app, &token).await;
    assert!(live_after.len() >= live_before.len(), "{live_after:?}");
    for row in &live_before[..live_before.len() - 1] {
        assert!(live_after.contains(row), "{row} gone from {live_after:?}");
    }
    expect_status(app.delete("/v1/sprites/live", &token).await, 204).await;
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
