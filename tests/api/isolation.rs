//! Tenants never see each other: tenant B gets 404 for every object of tenant A.

use serde_json::json;

use crate::helpers::{expect_problem, expect_status, App};

#[tokio::test]
async fn another_tenants_objects_are_not_found() {
    let app = App::spawn().await;
    let (tenant_a, a) = app.signup("a@tenant.io").await;
    let (_, b) = app.signup("b@tenant.io").await;
    let token_a = app
        .mint(&a, json!({"name": "a-ci", "scopes": ["exec"]}))
        .await;
    let id_a = token_a["id"].as_str().unwrap();

    // B lists no tokens of A and cannot revoke one.
    let listed = expect_status(app.get("/v1/tokens", &b).await, 200).await;
    assert_eq!(listed["tokens"], json!([]));
    expect_problem(
        app.delete(&format!("/v1/tokens/{id_a}"), &b).await,
        404,
        "not_found",
    )
    .await;
    // B's /v1/me is B's.
    let me = expect_status(app.get("/v1/me", &b).await, 200).await;
    assert_ne!(me["tenant_id"], tenant_a.as_str());
    // A's token still works.
    assert_eq!(
        app.get("/v1/me", token_a["token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn another_tenants_sprites_and_checkpoints_are_not_found() {
    let app = App::spawn().await;
    let (_, a) = app.signup("a@sprites.io").await;
    let (_, b) = app.signup("b@sprites.io").await;
    expect_status(
        app.post("/v1/sprites", &a, json!({"name": "secret", "disk_mb": 128}))
            .await,
        201,
    )
    .await;
    let checkpoint = expect_status(
        app.post("/v1/sprites/secret/checkpoints", &a, json!({}))
            .await,
        201,
    )
    .await;
    let cp = checkpoint["id"].as_str().unwrap();

    let listed = expect_status(app.get("/v1/sprites", &b).await, 200).await;
    assert_eq!(listed["sprites"], json!([]));
    let calls = [
        (reqwest::Method::GET, "/v1/sprites/secret".to_string(), None),
        (
            reqwest::Method::DELETE,
            "/v1/sprites/secret".to_string(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/v1/sprites/secret/pause".to_string(),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            "/v1/sprites/secret/resume".to_string(),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            "/v1/sprites/secret/exec".to_string(),
            Some(json!({"cmd": ["true"]})),
        ),
        (
            reqwest::Method::GET,
            "/v1/sprites/secret/files?path=/etc/hostname".to_string(),
            None,
        ),
        (
            reqwest::Method::PUT,
            "/v1/sprites/secret/files?path=/tmp/x".to_string(),
            None,
        ),
        (
            reqwest::Method::GET,
            "/v1/sprites/secret/checkpoints".to_string(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/v1/sprites/secret/checkpoints".to_string(),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/sprites/secret/checkpoints/{cp}/restore"),
            Some(json!({})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/sprites/secret/checkpoints/{cp}"),
            None,
        ),
    ];
    for (method, path, body) in calls {
        let mut request = app.request(method.clone(), &path, Some(&b));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        expect_problem(response, 404, "not_found").await;
    }
    // B can use the same name for its own sprite.
    expect_status(
        app.post("/v1/sprites", &b, json!({"name": "secret", "disk_mb": 128}))
            .await,
        201,
    )
    .await;
    let mine = expect_status(app.get("/v1/sprites/secret/checkpoints", &b).await, 200).await;
    assert_eq!(mine["checkpoints"], json!([]));
    // A's sprite is untouched.
    assert_eq!(
        expect_status(app.get("/v1/sprites/secret", &a).await, 200).await["state"],
        "running"
    );
    expect_status(app.delete("/v1/sprites/secret", &a).await, 204).await;
    expect_status(app.delete("/v1/sprites/secret", &b).await, 204).await;
}
