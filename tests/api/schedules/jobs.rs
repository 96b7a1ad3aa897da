//! The operator's jobs, fired by their cron: ledger compaction, period close, pruning.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::helpers::{expect_problem, expect_status, App};

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
async fn prune_forgets_old_idempotency_keys_and_keeps_the_last_runs() {
    let fire_in = 12;
    let at = once_in(fire_in);
    let app = App::spawn_with(&[
        ("CORRAL_JOB_PRUNE", &at),
        ("CORRAL_IDEMPOTENCY_KEEP_H", "0"),
        ("CORRAL_SCHEDULE_RUNS_KEPT", "2"),
    ])
    .await;
    let started = Instant::now();
    let (_, token) = app.signup("prune@example.com").await;
    let create = || {
        app.request(reqwest::Method::POST, "/v1/sprites", Some(&token))
            .header("idempotency-key", "k-prune")
            .json(&json!({"name": "keyed", "disk_mb": 128, "idle_timeout_s": 0}))
            .send()
    };
    expect_status(create().await.unwrap(), 201).await;
    // Remembered: the same answer again.
    expect_status(create().await.unwrap(), 200).await;
    let made = add(
        &app,
        &token,
        "keyed",
        json!({"cron": "@yearly", "cmd": ["true"]}),
    )
    .await;
    let id: i64 = made["id"].as_str().unwrap().parse().unwrap();
    let pool = corral_metering::db::sqlite::open(&app.path().join("corral.db"), 1)
        .await
        .unwrap();
    for n in 0..8i64 {
        sqlx::query(
            "INSERT INTO schedule_runs (schedule_id, started_ms, finished_ms, outcome, exit_code, \
             output_tail) VALUES (?, ?, ?, 'ok', ?, ?)",
        )
        .bind(id)
        .bind(1_700_000_000_000 + n * 60_000)
        .bind(1_700_000_000_000 + n * 60_000 + 5)
        .bind(n)
        .bind(format!("run {n}\n"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let shown = |list: Vec<Value>| -> Vec<i64> {
        list[0]["last_runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["exit_code"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(shown(list(&app, &token, "keyed").await), [7, 6, 5, 4, 3]);
    assert!(
        started.elapsed() < Duration::from_secs(fire_in as u64 - 3),
        "setup too slow"
    );

    let deadline = Instant::now() + Duration::from_secs(fire_in as u64 + 20);
    loop {
        let metrics = app.metrics_text().await;
        if metrics.contains("corral_job_runs_total{job=\"prune\"} 1") {
            assert!(
                metrics.contains("corral_job_failures_total{job=\"prune\"} 0"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "prune never ran:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(shown(list(&app, &token, "keyed").await), [7, 6]);
    // The key is forgotten: the same request is a new create, whose name is taken.
    expect_problem(create().await.unwrap(), 409, "conflict").await;
    expect_status(app.delete("/v1/sprites/keyed", &token).await, 204).await;
}

#[test]
fn a_bad_job_time_stops_the_start_naming_the_job() {
    for (key, value, says) in [
        (
            "CORRAL_JOB_PRUNE",
            "61 * * * *",
            "job prune: cron \"61 * * * *\": minute 61",
        ),
        ("CORRAL_JOB_LEDGER_COMPACT", "@reboot", "job ledger-compact"),
        (
            "CORRAL_SCHEDULE_SECONDS",
            "yes",
            "CORRAL_SCHEDULE_SECONDS must be on or off",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("serve")
            .env("CORRAL_DATA_DIR", data.path())
            .env("CORRAL_LISTEN", "127.0.0.1:0")
            .env("CORRAL_IMAGE_DIR", crate::machines::image_dir())
            .env(key, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}={value} started");
        assert!(stderr.contains(says), "{key}={value}: {stderr}");
        assert!(!data.path().join("corral.addr").exists(), "it listened");
    }
}
