//! What changed for tokens with the web page's fixes: a budget raised or lowered with
//! `PATCH /v1/tokens/{id}` within the ancestors' rules, names unique per tenant, the
//! last-used date, logout ending the session on the server, weak passwords refused.

use serde_json::json;

use crate::helpers::{expect_problem, expect_problem_naming, expect_status, App};

async fn patch(app: &App, token: &str, id: &str, body: serde_json::Value) -> reqwest::Response {
    app.request(
        reqwest::Method::PATCH,
        &format!("/v1/tokens/{id}"),
        Some(token),
    )
    .json(&body)
    .send()
    .await
    .expect("patch")
}

#[tokio::test]
async fn a_tokens_budget_changes_within_its_parents_rules() {
    let app = App::spawn().await;
    let (_, session) = app.signup("budget@example.com").await;
    let parent = app
        .mint(
            &session,
            json!({"name": "parent", "scopes": ["tokens:create", "sprites:read"], "budget_nanos": 3_000_000_000_i64}),
        )
        .await;
    let parent_secret = parent["token"].as_str().unwrap();
    let child = app
        .mint(
            parent_secret,
            json!({"name": "child", "scopes": ["sprites:read"], "budget_nanos": 1_000_000_000_i64}),
        )
        .await;
    let child_id = child["id"].as_str().unwrap();

    // The parent raises and lowers its child, up to what the parent has left.
    let raised = expect_status(
        patch(
            &app,
            parent_secret,
            child_id,
            json!({"budget_nanos": 2_500_000_000_i64}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(raised["budget_nanos"], 2_500_000_000_i64);
    expect_problem_naming(
        patch(&app, parent_secret, child_id, json!({"budget_nanos": 4_000_000_000_i64})).await,
        403,
        "forbidden",
        "child's budget can be at most $3.000000: the token it was minted with, parent, has $3.000000 left",
    )
    .await;
    // A token cannot raise its own budget, and a child cannot touch its parent.
    let parent_id = parent["id"].as_str().unwrap();
    expect_problem(
        patch(
            &app,
            parent_secret,
            parent_id,
            json!({"budget_nanos": 9_000_000_000_i64}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_problem(
        patch(
            &app,
            child["token"].as_str().unwrap(),
            parent_id,
            json!({"budget_nanos": 0}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // The session may change any of the tenant's tokens; null removes the budget.
    let none = expect_status(
        patch(&app, &session, parent_id, json!({"budget_nanos": null})).await,
        200,
    )
    .await;
    assert!(none["budget_nanos"].is_null(), "{none}");
    expect_problem(
        patch(&app, &session, child_id, json!({})).await,
        422,
        "validation",
    )
    .await;
    expect_problem(
        patch(&app, &session, child_id, json!({"budget_nanos": -1})).await,
        422,
        "validation",
    )
    .await;

    // Another tenant's token is not found.
    let (_, other) = app.signup("other@example.com").await;
    expect_problem(
        patch(&app, &other, child_id, json!({"budget_nanos": 0})).await,
        404,
        "not_found",
    )
    .await;

    let listed = expect_status(app.get("/v1/tokens", &session).await, 200).await;
    let child_row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == child_id)
        .unwrap()
        .clone();
    assert_eq!(child_row["budget_nanos"], 2_500_000_000_i64, "{child_row}");
}

#[tokio::test]
async fn token_names_are_unique_and_rows_say_when_they_were_used() {
    let app = App::spawn().await;
    let (_, session) = app.signup("names@example.com").await;
    let first = app
        .mint(&session, json!({"name": "ci", "scopes": ["sprites:read"]}))
        .await;
    assert!(first["last_used_at"].is_null(), "{first}");
    expect_problem_naming(
        app.post(
            "/v1/tokens",
            &session,
            json!({"name": "ci", "scopes": ["sprites:read"]}),
        )
        .await,
        409,
        "conflict",
        "a token named \"ci\" already exists",
    )
    .await;
    // Used once: the list says when.
    expect_status(
        app.get("/v1/sprites", first["token"].as_str().unwrap())
            .await,
        200,
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let listed = expect_status(app.get("/v1/tokens", &session).await, 200).await;
        let row = &listed["tokens"][0];
        assert!(row["created_at"].is_string(), "{row}");
        if row["last_used_at"].is_string() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never marked used: {row}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Once revoked, the name is free again.
    expect_status(
        app.delete(
            &format!("/v1/tokens/{}", first["id"].as_str().unwrap()),
            &session,
        )
        .await,
        204,
    )
    .await;
    app.mint(&session, json!({"name": "ci", "scopes": ["sprites:read"]}))
        .await;
}

#[tokio::test]
async fn logout_ends_the_session_and_weak_passwords_are_refused() {
    let app = App::spawn().await;
    let (_, session) = app.signup("logout@example.com").await;
    expect_status(app.post("/v1/logout", &session, json!({})).await, 204).await;
    expect_problem(app.get("/v1/me", &session).await, 401, "unauthorized").await;

    for (password, why) in [
        ("Password123", "common passwords"),
        ("abababab", "repeats the same few characters"),
        ("seven77", "at least 8 characters"),
    ] {
        let answer = app
            .request(reqwest::Method::POST, "/v1/signup", None)
            .json(&json!({"email": "weak@example.com", "password": password, "org": "Weak"}))
            .send()
            .await
            .expect("signup");
        expect_problem_naming(answer, 422, "validation", why).await;
    }
}
