//! Token budgets: a token's own, a parent's over its child; tenant isolation of usage.

use serde_json::{json, Value};

use super::*;
use crate::helpers::{expect_problem, expect_problem_naming, expect_status};

#[tokio::test]
async fn token_budgets_pause_what_the_token_and_its_children_created() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("tokens@example.com").await;

    // A token's own budget: room for the sprite's whole disk reserved to the month's
    // end (about $0.84 at these prices) and a couple of seconds of spinning.
    let budget_nanos = 3 * CPU_PRICE;
    let ci = app
        .mint(
            &session,
            json!({"name": "ci", "scopes": SCOPES, "budget_nanos": budget_nanos}),
        )
        .await;
    let (ci_token, ci_id) = (ci["token"].as_str().unwrap(), ci["id"].as_str().unwrap());
    spin(&app, ci_token, "ci-box").await;
    let run = until_paused(&app, ci_token, "ci-box", || {
        token_spend(&app, ci_token, ci_id)
    })
    .await;
    eprintln!(
        "token budget: paused after {:?}, max spent {} of {budget_nanos}",
        run.took, run.max_spent
    );
    expect_problem_naming(
        app.post(
            "/v1/sprites/ci-box/exec",
            ci_token,
            json!({"cmd": ["true"]}),
        )
        .await,
        402,
        "token_budget_exhausted",
        ci_id,
    )
    .await;
    let spent = listed_spent(&app, &session, ci_id).await;
    assert!(spent > 0 && spent <= budget_nanos, "{spent}");
    // The tenant is not out of money: the token's budget paused it, not the cap.
    let tenant = budget(&app, &session).await;
    assert!(int(&tenant, "available_nanos") > 90 * CPU_PRICE, "{tenant}");
    assert_eq!(
        tenant["state"], "paused",
        "one sprite waits for resume_paused"
    );

    // A child without a budget of its own spends its parent's.
    let parent = app
        .mint(
            &session,
            json!({"name": "parent", "scopes": SCOPES, "budget_nanos": budget_nanos}),
        )
        .await;
    let (parent_token, parent_id) = (
        parent["token"].as_str().unwrap(),
        parent["id"].as_str().unwrap(),
    );
    let child = app
        .mint(parent_token, json!({"name": "child", "scopes": SCOPES}))
        .await;
    let (child_token, child_id) = (
        child["token"].as_str().unwrap(),
        child["id"].as_str().unwrap(),
    );
    assert_eq!(child["parent_id"], parent_id);
    spin(&app, child_token, "child-box").await;
    let run = until_paused(&app, child_token, "child-box", || {
        token_spend(&app, child_token, parent_id)
    })
    .await;
    eprintln!(
        "parent budget: paused after {:?}, max spent {} of {budget_nanos}",
        run.took, run.max_spent
    );
    expect_problem_naming(
        app.post(
            "/v1/sprites/child-box/exec",
            child_token,
            json!({"cmd": ["true"]}),
        )
        .await,
        402,
        "token_budget_exhausted",
        parent_id,
    )
    .await;
    let parent_spent = listed_spent(&app, &session, parent_id).await;
    let child_spent = listed_spent(&app, &session, child_id).await;
    assert!(parent_spent <= budget_nanos, "{parent_spent}");
    assert!(
        (parent_spent - child_spent).abs() < 10_000_000,
        "{parent_spent} {child_spent}"
    );

    // Without CORRAL_SMTP_URL the alerts stay queued: one per token scope and threshold.
    let alerts = expect_status(app.get("/v1/alerts", &session).await, 200).await;
    let alerts = alerts["alerts"].as_array().unwrap().clone();
    for id in [ci_id, parent_id] {
        let scope = format!("token:{id}");
        let mine: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["scope"] == scope.as_str())
            .collect();
        assert!(mine.iter().any(|a| a["threshold_pct"] == 100), "{alerts:?}");
        let mut pcts: Vec<i64> = mine.iter().map(|a| int(a, "threshold_pct")).collect();
        pcts.sort_unstable();
        pcts.dedup();
        assert_eq!(pcts.len(), mine.len(), "once each: {alerts:?}");
    }
    assert!(
        alerts
            .iter()
            .all(|a| a["state"] == "queued" && a["attempts"] == 0),
        "{alerts:?}"
    );
    assert_eq!(metric(&app, "corral_outbox_sent_total").await, 0);
    assert!(metric(&app, "corral_outbox_backlog").await >= 2);

    // Tenant isolation: B sees none of A's usage, spend or alerts.
    let report = usage(&app, &session, "by=minute").await;
    let names: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sprite"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ci-box") && names.contains(&"child-box"),
        "{report}"
    );
    let (_, b) = app.signup("other@example.com").await;
    for query in ["by=minute", "by=day", "by=hour&sprite=ci-box"] {
        let theirs = usage(&app, &b, query).await;
        assert_eq!(theirs["rows"], json!([]), "{theirs}");
        assert_eq!(theirs["total_nanos"], 0);
    }
    assert_eq!(budget(&app, &b).await["spent_nanos"], 0);
    let alerts = expect_status(app.get("/v1/alerts", &b).await, 200).await;
    assert_eq!(alerts["alerts"], json!([]));
    expect_problem(app.get("/v1/sprites/ci-box", &b).await, 404, "not_found").await;
}
