//! Disk writes as fast as a sprite can make them never commit a tenant past its cap:
//! every sprite's whole disk is reserved to the period's end from its creation, so a
//! cap that cannot hold the disk refuses the sprite, and one that can is never passed
//! by `dd`; the sprite is paused for budget with its data kept.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::helpers::{expect_problem, expect_status};

/// $0.10 per CPU-second here, so the disk's reservation (about $3.4 for 1 GiB) is what
/// the cap is mostly spent on.
const CPU: i64 = CPU_PRICE / 10;

#[tokio::test]
async fn dd_at_full_speed_never_commits_past_the_cap() {
    let app = spawn(&[("CORRAL_PRICE_CPU_NANOS_PER_CPU_S", CPU.to_string())]).await;
    let (_, token) = app.signup("dd@example.com").await;
    let create =
        json!({"name": "dd", "cpus": 1, "memory_mb": 256, "disk_mb": 1024, "idle_timeout_s": 0});

    // A $1 cap cannot hold a 1 GiB disk to the month's end: no sprite to fill.
    set_budget(&app, &token, json!({"cap_nanos": CPU_PRICE})).await;
    let refused = expect_problem(
        app.post("/v1/sprites", &token, create.clone()).await,
        402,
        "budget_exhausted",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("disk"),
        "{refused}"
    );

    // With room for the disk and about $1 of running, it is created...
    set_budget(&app, &token, json!({"cap_nanos": 100 * CPU_PRICE})).await;
    let created = expect_status(app.post("/v1/sprites", &token, create).await, 201).await;
    assert_eq!(created["state"], "running", "{created}");
    settle().await;
    let b = budget(&app, &token).await;
    let reserved_at_start = int(&b, "storage_reserved_nanos");
    // ... its whole disk reserved, not the few KiB it stores.
    assert!(reserved_at_start > 3 * CPU_PRICE, "{b}");
    let cap = int(&b, "spent_nanos") + reserved_at_start + CPU_PRICE;
    set_budget(&app, &token, json!({"cap_nanos": cap})).await;

    // ... then fills 900 MB as fast as it can and spins.
    app.sh_ok(
        &token,
        "dd",
        "(nohup sh -c 'dd if=/dev/zero of=/root/big bs=1M count=900 conv=fsync 2>/dev/null; \
         yes' >/dev/null 2>&1 &)",
    )
    .await;
    let started = Instant::now();
    let (mut max_reserved, mut max_disk) = (0, 0);
    loop {
        let b = budget(&app, &token).await;
        let (spent, reserved) = (int(&b, "spent_nanos"), int(&b, "storage_reserved_nanos"));
        assert!(spent + reserved <= cap, "committed past the cap: {b}");
        max_reserved = max_reserved.max(reserved);
        let s = sprite(&app, &token, "dd").await;
        max_disk = max_disk.max(int(&s, "disk_used_bytes"));
        if s["state"] == "paused" {
            assert_eq!(s["pause_reason"], "budget", "{s}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not paused in 120 s: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "dd: disk grew to {max_disk} bytes in {:?}; reservation {reserved_at_start} -> at most {max_reserved}",
        started.elapsed()
    );
    // The writes grew the disk, not the reservation (it held the whole disk already).
    assert!(max_disk > 100_000_000, "dd wrote only {max_disk} bytes");
    assert!(
        max_reserved <= reserved_at_start,
        "reservation grew from {reserved_at_start} to {max_reserved}"
    );
    settle().await;
    let b = budget(&app, &token).await;
    assert!(
        int(&b, "spent_nanos") + int(&b, "storage_reserved_nanos") <= cap,
        "{b}"
    );

    // The data is kept: raise the cap, resume, and find what dd wrote.
    let paused_disk = int(&sprite(&app, &token, "dd").await, "disk_used_bytes");
    assert!(paused_disk > 100_000_000, "{paused_disk}");
    set_budget(&app, &token, json!({"cap_nanos": 100 * CPU_PRICE})).await;
    expect_status(
        app.post("/v1/sprites/dd/resume", &token, json!({})).await,
        200,
    )
    .await;
    let out = app.sh_ok(&token, "dd", "stat -c %s /root/big").await;
    let size: i64 = out["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(size > 100_000_000, "{out}");
    expect_status(app.delete("/v1/sprites/dd", &token).await, 204).await;
}
