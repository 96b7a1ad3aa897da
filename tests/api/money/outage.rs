//! kill -9 of the server while sprites spin: the CPU the cgroup counted during the
//! outage is billed at restart, and a scope that cannot pay for all of it is billed up
//! to its cap, never past it, and paused at once.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::helpers::expect_status;

/// The machine directories of the server's sprites.
fn machines(app: &App) -> HashSet<String> {
    std::fs::read_dir(app.path().join("machines/machines"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Spins a sprite and returns its machine id.
async fn spin_machine(app: &App, token: &str, name: &str) -> String {
    let before = machines(app);
    spin(app, token, name).await;
    let new: Vec<String> = machines(app).difference(&before).cloned().collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new[0].clone()
}

/// CPU time the machine's cgroup has counted, ns (read straight from the host).
fn cgroup_cpu_ns(machine: &str) -> u64 {
    let path = Path::new("/sys/fs/cgroup/cpuacct/corral")
        .join(machine)
        .join("cpuacct.usage");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// CPU time billed to a sprite so far, ns.
async fn billed_cpu_ns(app: &App, token: &str, name: &str) -> u64 {
    let report = usage(app, token, &format!("by=minute&sprite={name}")).await;
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cpu_ns"].as_u64().unwrap())
        .sum()
}

async fn wait_spending(app: &App, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while int(&budget(app, token).await, "spent_nanos") < CPU_PRICE / 4 {
        assert!(Instant::now() < deadline, "nothing metered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cpu_that_ran_while_the_server_was_killed_is_billed_within_the_cap() {
    // The test finds a sprite's machine as the new one on disk: no pool machines.
    let mut app = spawn(&[("CORRAL_WARM_POOL", "0".into())]).await;
    // Rich pays for everything that ran; Poor has about $2 left when the server dies.
    let (_, rich) = app.signup("rich@example.com").await;
    let (_, poor) = app.signup("poor@example.com").await;
    set_budget(&app, &rich, json!({"cap_nanos": 60 * CPU_PRICE})).await;
    set_budget(&app, &poor, json!({"cap_nanos": 60 * CPU_PRICE})).await;
    let rich_machine = spin_machine(&app, &rich, "rich").await;
    let poor_machine = spin_machine(&app, &poor, "poor").await;
    wait_spending(&app, &rich).await;
    wait_spending(&app, &poor).await;
    let b = budget(&app, &poor).await;
    // 2.5 CPU-seconds left, and as much again as slow ticks on a busy host have widened
    // the rule's window past tick plus pause latency: the rule must not pause Poor
    // before the kill (after the restart no tick is remembered, so the bare window holds).
    let widened =
        metric(&app, "corral_meter_rule_window_milliseconds").await - (TICK_MS + PAUSE_LATENCY_MS);
    let poor_cap = int(&b, "spent_nanos")
        + int(&b, "storage_reserved_nanos")
        + 2 * CPU_PRICE
        + CPU_PRICE / 2
        + CPU_PRICE * widened.max(0) / 1000;
    set_budget(&app, &poor, json!({"cap_nanos": poor_cap})).await;

    let billed_before_kill = billed_cpu_ns(&app, &rich, "rich").await;
    app.kill9();
    let killed_at = (cgroup_cpu_ns(&rich_machine), cgroup_cpu_ns(&poor_machine));
    // Long enough for both to run seconds of CPU even on a busy 2-core host.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let ran_rich = cgroup_cpu_ns(&rich_machine);
    let poor_at_restart = cgroup_cpu_ns(&poor_machine);
    let ran_poor = poor_at_restart - killed_at.1;
    // The sprites really ran while nothing metered them (this is what must be billed).
    assert!(
        ran_rich - killed_at.0 > 3_000_000_000 && ran_poor > 3_000_000_000,
        "rich ran {} ns, poor {ran_poor} ns in an 8 s outage",
        ran_rich - killed_at.0
    );
    eprintln!(
        "outage: rich ran {} ns, poor {ran_poor} ns while the server was down",
        ran_rich - killed_at.0
    );
    app.start().await;

    // Poor: paused for budget at the first tick (not a window or two later, once what
    // it had left was used up) ...
    let run = until_paused(&app, &poor, "poor", || tenant_spend(&app, &poor)).await;
    let after_restart = cgroup_cpu_ns(&poor_machine) - poor_at_restart;
    eprintln!(
        "outage: poor ran {ran_poor} ns while down, {after_restart} ns after; paused {:?} after the server answered",
        run.took
    );
    assert!(
        run.took < Duration::from_secs(1),
        "paused {:?} after the restart",
        run.took
    );

    // Rich: all the CPU its cgroup counted during the outage is billed (without the
    // catch-up only one window of it would be), and never more than ran.
    settle().await;
    let billed = billed_cpu_ns(&app, &rich, "rich").await;
    let ran = cgroup_cpu_ns(&rich_machine);
    let outage = ran_rich - killed_at.0;
    eprintln!(
        "outage: rich ran {outage} ns while down; billed {} ns since the kill ({billed} of {ran} ns in all)",
        billed - billed_before_kill
    );
    assert!(
        billed <= ran,
        "billed {billed} ns, more than the {ran} ns that ran"
    );
    assert!(
        billed - billed_before_kill >= outage,
        "ran {outage} ns while down, billed {} ns since: the outage was not billed",
        billed - billed_before_kill
    );
    let (spent, cap, _) = tenant_spend(&app, &rich).await;
    assert!(spent <= cap);
    // Rich runs on after the restart (thawed once the first tick had metered it).
    let before = cgroup_cpu_ns(&rich_machine);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cgroup_cpu_ns(&rich_machine) - before > 100_000_000,
        "rich is not running after the restart"
    );

    // ... and billed up to its cap, not past it.
    settle().await;
    let b = budget(&app, &poor).await;
    let committed = int(&b, "spent_nanos") + int(&b, "storage_reserved_nanos");
    assert!(committed <= poor_cap, "{b}");
    // What it had left was billed (but for the window the rule keeps) — not written off.
    assert!(committed >= poor_cap - CPU_PRICE, "{b}");
    let s = sprite(&app, &poor, "poor").await;
    assert_eq!(
        (s["state"].as_str(), s["pause_reason"].as_str()),
        (Some("paused"), Some("budget"))
    );
    expect_status(app.delete("/v1/sprites/rich", &rich).await, 204).await;
    expect_status(app.delete("/v1/sprites/poor", &poor).await, 204).await;
}
