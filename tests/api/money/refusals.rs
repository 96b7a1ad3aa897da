//! No runway: 402 on create for the tenant and for a token; 422s that name the field;
//! scopes; the OpenAPI document; checkpoints reserved like disk.

use serde_json::json;

use super::*;
use crate::helpers::{expect_problem, expect_status};

#[tokio::test]
async fn no_runway_refuses_creates_and_bad_input_is_named() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("runway@example.com").await;
    let prices = expect_status(app.get("/v1/prices", &session).await, 200).await;
    assert_eq!(int(&prices, "cpu_nanos_per_cpu_s"), CPU_PRICE);
    assert_eq!(int(&prices, "tick_ms"), TICK_MS);

    // Less than one second of one vCPU left: no create.
    set_budget(&app, &session, json!({"cap_nanos": CPU_PRICE / 2})).await;
    let body = json!({"name": "nope", "cpus": 1, "memory_mb": 128});
    let refused = expect_problem(
        app.post("/v1/sprites", &session, body.clone()).await,
        402,
        "budget_exhausted",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    // The runway is the configured second, or the rule's window when slow ticks on a
    // busy host have widened it past that (whole seconds).
    let runway_s: u64 = detail
        .split(" s minimum runway")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no runway named: {detail}"));
    assert!(runway_s >= 1 && detail.contains("resets at"), "{detail}");
    let listed = expect_status(app.get("/v1/sprites", &session).await, 200).await;
    assert_eq!(listed["sprites"], json!([]));
    // The budget says so before anyone tries a start (what the web page's badge shows).
    let shown = expect_status(app.get("/v1/budget", &session).await, 200).await;
    let why = shown["start_refused"].as_str().unwrap_or_default();
    assert!(why.contains("minimum runway"), "{shown}");
    let b = set_budget(&app, &session, json!({"cap_nanos": 0})).await;
    assert_eq!(b["state"], "exhausted", "{b}");
    expect_problem(
        app.post("/v1/sprites", &session, body.clone()).await,
        402,
        "budget_exhausted",
    )
    .await;

    // Enough for the tenant, not for the token.
    let b = set_budget(&app, &session, json!({"cap_nanos": 100 * CPU_PRICE})).await;
    let shown = expect_status(app.get("/v1/budget", &session).await, 200).await;
    assert_eq!(shown["start_refused"], json!(null), "{b} {shown}");
    let poor = app
        .mint(
            &session,
            json!({"name": "poor", "scopes": SCOPES, "budget_nanos": CPU_PRICE / 3}),
        )
        .await;
    let poor = poor["token"].as_str().unwrap();
    expect_problem(
        app.post("/v1/sprites", poor, body).await,
        402,
        "token_budget_exhausted",
    )
    .await;

    // Bad input is a 422 that says what is wrong.
    for bad in [
        json!({"cap_nanos": -1}),
        json!({"cap_nanos": "lots"}),
        json!({"thresholds_pct": [0]}),
        json!({"thresholds_pct": [50, 101]}),
        json!({"alert_email": "not-an-address"}),
        json!({"cap": 5}),
    ] {
        expect_problem(
            app.put("/v1/budget", &session, bad).await,
            422,
            "validation",
        )
        .await;
    }
    for query in [
        "by=week",
        "from=yesterday",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "by=minute&from=2020-01-01T00:00:00Z",
        "sprite=Not_A_Name",
    ] {
        expect_problem(
            app.get(&format!("/v1/usage?{query}"), &session).await,
            422,
            "validation",
        )
        .await;
    }
    // Thresholds are kept sorted and once each; "" goes back to the account address.
    let b = set_budget(
        &app,
        &session,
        json!({"thresholds_pct": [90, 10, 90], "alert_email": ""}),
    )
    .await;
    assert_eq!(b["thresholds_pct"], json!([10, 90]));
    assert_eq!(b["alert_email"], "runway@example.com");

    // Scopes: reading money needs budget or billing; resuming sprites needs sprites:write.
    let exec_only = app
        .mint(&session, json!({"name": "x", "scopes": ["exec"]}))
        .await;
    let exec_only = exec_only["token"].as_str().unwrap();
    for path in ["/v1/budget", "/v1/usage", "/v1/alerts"] {
        expect_problem(app.get(path, exec_only).await, 403, "forbidden").await;
    }
    assert_eq!(app.get("/v1/prices", exec_only).await.status(), 200);
    let budget_only = app
        .mint(&session, json!({"name": "b", "scopes": ["budget"]}))
        .await;
    let budget_only = budget_only["token"].as_str().unwrap();
    expect_problem(
        app.put("/v1/budget", budget_only, json!({"resume_paused": true}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let openapi = expect_status(
        app.client
            .get(format!("{}/v1/openapi.json", app.url))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    for path in ["/v1/budget", "/v1/usage", "/v1/prices", "/v1/alerts"] {
        assert!(openapi["paths"][path].is_object(), "{path} not documented");
    }
    let anonymous = app
        .request(reqwest::Method::GET, "/v1/budget", None)
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn two_creates_before_the_next_tick_share_one_runway() {
    // A long tick: the meter has not seen the first sprite when the second is asked for.
    let app = spawn(&[("CORRAL_TICK_MS", "5000".into())]).await;
    let (_, session) = app.signup("race@example.com").await;
    // The runway is at least the meter's window (5.3 s, so 6 s): room for one and a half.
    set_budget(&app, &session, json!({"cap_nanos": CPU_PRICE * 9})).await;
    let body = |name: &str| json!({"name": name, "cpus": 1, "memory_mb": 128, "disk_mb": 256});
    expect_status(app.post("/v1/sprites", &session, body("first")).await, 201).await;
    let refused = expect_problem(
        app.post("/v1/sprites", &session, body("second")).await,
        402,
        "budget_exhausted",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("runway"),
        "{refused}"
    );
    expect_status(app.delete("/v1/sprites/first", &session).await, 204).await;
}

#[tokio::test]
async fn checkpoints_count_as_stored_bytes() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("stored@example.com").await;
    let body =
        json!({"name": "keep", "cpus": 1, "memory_mb": 256, "disk_mb": 256, "idle_timeout_s": 0});
    expect_status(app.post("/v1/sprites", &session, body).await, 201).await;
    settle().await;
    let before = budget(&app, &session).await;
    let checkpoint = expect_status(
        app.post(
            "/v1/sprites/keep/checkpoints",
            &session,
            json!({"comment": "money"}),
        )
        .await,
        201,
    )
    .await;
    let size = int(&checkpoint, "size_bytes");
    assert!(size > 100_000, "{checkpoint}");
    settle().await;
    let after = budget(&app, &session).await;
    // Keeping `size` more bytes to the end of the period, priced like any disk.
    let remaining_ms = (Period::containing(now_ms()).end_ms - now_ms()) as i128;
    let expected = (size as i128 * disk_price() as i128 * remaining_ms
        / (1_000_000_000 * 2_628_000_000)) as i64;
    let grew = int(&after, "storage_reserved_nanos") - int(&before, "storage_reserved_nanos");
    assert!(
        grew >= expected * 9 / 10,
        "reservation grew {grew}, a checkpoint of {size} bytes needs {expected}: {before} -> {after}"
    );
    expect_status(app.delete("/v1/sprites/keep", &session).await, 204).await;
}
