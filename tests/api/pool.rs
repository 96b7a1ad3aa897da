//! The warm pool with real gVisor machines: a machine made ahead and handed to tenant B
//! carries nothing of tenant A's; the pool refills after a burst of creates, which an
//! exhausted pool still serves cold; a pool of 0 still creates; pool machines are
//! neither billed nor counted in a tenant's limits, and a pooled sprite is metered from
//! its hand-over; a clean stop removes the pool's machines and keeps the sprites'.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{expect_problem_naming, expect_status, App};

/// Machines ready in the pool, and creates served by the pool and cold, from `/metrics`.
async fn pool_stats(app: &App) -> (u64, u64, u64) {
    let text = app.metrics_text().await;
    let value = |prefix: &str| {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    (
        value("corral_warm_pool_ready{"),
        value("corral_sprite_creates_total{machine=\"pool\"}"),
        value("corral_sprite_creates_total{machine=\"cold\"}"),
    )
}

/// Waits until `ready` machines are in the pool.
async fn until_ready(app: &App, ready: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if pool_stats(app).await.0 >= ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool did not reach {ready} machines: {:?}\n{}",
            pool_stats(app).await,
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(app: &App, token: &str, name: &str) -> Value {
    let created = expect_status(
        app.post("/v1/sprites", token, json!({"name": name})).await,
        201,
    )
    .await;
    assert_eq!(created["state"], "running", "{created}");
    created
}

/// Every process's command line in the sprite, one a line.
async fn processes(app: &App, token: &str, sprite: &str) -> String {
    let out = app
        .sh_ok(
            token,
            sprite,
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        )
        .await;
    out["stdout"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_pool_machine_handed_to_b_carries_nothing_of_a() {
    let app = App::spawn_with(&[("CORRAL_WARM_POOL", "1")]).await;
    let (_, a) = app.signup("a@pool.io").await;
    let (_, b) = app.signup("b@pool.io").await;
    until_ready(&app, 1).await;

    create(&app, &a, "work").await;
    assert_eq!(pool_stats(&app).await.1, 1, "A's sprite came from the pool");
    app.sh_ok(
        &a,
        "work",
        "echo a-secret > /root/a.txt && echo a-tmp > /tmp/a.txt && \
         (nohup sleep 4242 >/dev/null 2>&1 &)",
    )
    .await;
    assert!(processes(&app, &a, "work").await.contains("sleep 4242"));
    // A is done with it: were machines ever given out twice, B would get this one.
    expect_status(app.delete("/v1/sprites/work", &a).await, 204).await;

    until_ready(&app, 1).await;
    create(&app, &b, "work").await;
    assert_eq!(pool_stats(&app).await.1, 2, "B's sprite came from the pool");
    let out = app
        .exec_ok(&b, "work", &["sh", "-c", "cat /root/a.txt /tmp/a.txt"])
        .await;
    assert_ne!(out["exit_code"], 0, "{out}");
    assert!(!out["stdout"].as_str().unwrap().contains("a-"), "{out}");
    let seen = processes(&app, &b, "work").await;
    assert!(!seen.contains("4242"), "A's process in B's sprite:\n{seen}");
    // B's sprite is B's alone and works.
    app.sh_ok(&b, "work", "echo b > /root/b.txt && cat /root/b.txt")
        .await;
}

#[tokio::test]
async fn the_pool_refills_after_a_burst_and_is_neither_billed_nor_counted() {
    let app = App::spawn_with(&[("CORRAL_WARM_POOL", "2"), ("CORRAL_TICK_MS", "200")]).await;
    let (_, token) = app.signup("burst@pool.io").await;
    until_ready(&app, 2).await;
    // Ticks go by with two machines ready: the tenant pays nothing for them.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let budget = expect_status(app.get("/v1/budget", &token).await, 200).await;
    assert_eq!(budget["spent_nanos"], 0, "{budget}");

    // Nor do they count in its limits: four running sprites allowed, four created
    // while two more machines sit ready.
    expect_status(
        app.put("/v1/limits", &token, json!({"max_running_sprites": 4}))
            .await,
        200,
    )
    .await;

    // A burst of four: two from the pool, two made cold.
    let burst = ["b1", "b2", "b3", "b4"].map(|name| {
        let (app, token) = (&app, &token);
        async move { create(app, token, name).await }
    });
    futures_util::future::join_all(burst).await;
    let (_, warm, cold) = pool_stats(&app).await;
    assert_eq!((warm, cold), (2, 2), "two from the pool, two cold");
    expect_problem_naming(
        app.post("/v1/sprites", &token, json!({"name": "b5"})).await,
        403,
        "limit_exceeded",
        "max_running_sprites",
    )
    .await;

    until_ready(&app, 2).await;
    expect_status(app.delete("/v1/sprites/b4", &token).await, 204).await;
    create(&app, &token, "b5").await;
    assert_eq!(
        pool_stats(&app).await.1,
        3,
        "after the refill, from the pool"
    );
    for name in ["b1", "b2", "b3", "b5"] {
        let out = app.exec_ok(&token, name, &["echo", name]).await;
        assert_eq!(out["stdout"], format!("{name}\n"), "{out}");
    }
}

#[tokio::test]
async fn an_empty_pool_still_creates() {
    let app = App::spawn_with(&[("CORRAL_WARM_POOL", "0")]).await;
    let (_, token) = app.signup("empty@pool.io").await;
    create(&app, &token, "cold").await;
    let out = app.exec_ok(&token, "cold", &["echo", "made cold"]).await;
    assert_eq!(out["stdout"], "made cold\n");
    let (ready, warm, cold) = pool_stats(&app).await;
    assert_eq!((ready, warm, cold), (0, 0, 1));
    // A shape the pool does not hold is made cold too, with the pool on.
    let app = App::spawn_with(&[("CORRAL_WARM_POOL", "1")]).await;
    let (_, token) = app.signup("shape@pool.io").await;
    until_ready(&app, 1).await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "big", "disk_mb": 256}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(pool_stats(&app).await, (1, 0, 1));
}

/// The machines on the host under a server's data directory.
fn machines_on_host(app: &App) -> usize {
    std::fs::read_dir(app.path().join("machines/machines"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_clean_stop_removes_the_pool_and_keeps_the_sprites() {
    let mut app = App::spawn_with(&[("CORRAL_WARM_POOL", "2")]).await;
    let (_, token) = app.signup("stop@pool.io").await;
    until_ready(&app, 2).await;
    create(&app, &token, "kept").await;
    until_ready(&app, 2).await;
    assert_eq!(machines_on_host(&app), 3, "two ready and the sprite's");
    app.stop();
    assert!(
        app.log()
            .contains("removed the warm pool's machines removed=2"),
        "{}",
        app.log()
    );
    assert_eq!(
        machines_on_host(&app),
        1,
        "only the sprite's machine is left"
    );
}

/// CPU time billed to `sprite` so far, ns.
async fn cpu_billed(app: &App, token: &str, sprite: &str) -> i64 {
    let usage = crate::money::usage(app, token, &format!("by=day&sprite={sprite}")).await;
    usage["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cpu_ns"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_pooled_sprite_is_metered_from_its_hand_over_and_paused_before_the_cap() {
    use crate::money::{int, set_budget, settle, tenant_spend, until_paused, CPU_PRICE};
    let app = crate::money::spawn(&[("CORRAL_WARM_POOL", "1".into())]).await;
    let (_, token) = app.signup("meter@pool.io").await;
    until_ready(&app, 1).await;

    // One sprite from the pool and one made cold, each paused as soon as it answers:
    // the cold one's bill holds its boot, the pooled one's starts at the hand-over.
    create(&app, &token, "warm").await;
    assert_eq!(pool_stats(&app).await.1, 1, "from the pool");
    expect_status(
        app.post("/v1/sprites/warm/pause", &token, json!({})).await,
        200,
    )
    .await;
    let cold = json!({"name": "cold", "disk_mb": 1000});
    expect_status(app.post("/v1/sprites", &token, cold).await, 201).await;
    expect_status(
        app.post("/v1/sprites/cold/pause", &token, json!({})).await,
        200,
    )
    .await;
    settle().await;
    let (warm_ns, cold_ns) = (
        cpu_billed(&app, &token, "warm").await,
        cpu_billed(&app, &token, "cold").await,
    );
    eprintln!("CPU billed from create to pause: pooled {warm_ns} ns, cold {cold_ns} ns");
    assert!(cold_ns > 0, "the cold sprite's boot is billed");
    assert!(
        warm_ns * 2 < cold_ns,
        "the pooled sprite was billed for its making: {warm_ns} ns vs {cold_ns} ns cold"
    );

    // Metered for real: spinning, it is paused before the tenant's cap.
    let now = crate::money::budget(&app, &token).await;
    let committed = int(&now, "spent_nanos") + int(&now, "storage_reserved_nanos");
    let cap = committed + 3 * CPU_PRICE;
    set_budget(&app, &token, json!({"cap_nanos": cap})).await;
    expect_status(
        app.post("/v1/sprites/warm/resume", &token, json!({})).await,
        200,
    )
    .await;
    crate::money::start_yes(&app, &token, "warm").await;
    let run = until_paused(&app, &token, "warm", || tenant_spend(&app, &token)).await;
    assert!(run.max_spent <= cap, "spent {} of {cap}", run.max_spent);
    assert!(
        cpu_billed(&app, &token, "warm").await > 500_000_000,
        "the spin was billed"
    );
}
