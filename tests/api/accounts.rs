//! Signup, login, `/v1/me`, and the token tree: minting, narrowing, revocation.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{expect_problem, expect_status, App};

#[tokio::test]
async fn signup_login_me_and_token_lifecycle() {
    let app = App::spawn().await;
    let (tenant_id, session) = app.signup("Ada@Example.com").await;

    // Login with the same e-mail in another case gives a fresh session.
    let login = app
        .request(Method::POST, "/v1/login", None)
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let login = expect_status(login, 200).await;
    let session2 = login["token"].as_str().unwrap();
    assert!(login["expires_at"].as_str().unwrap().ends_with('Z'));

    let me = expect_status(app.get("/v1/me", session2).await, 200).await;
    assert_eq!(me["tenant_id"], tenant_id.as_str());
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["org"], "Acme");
    assert_eq!(me["token"]["kind"], "session");
    assert_eq!(me["token"]["scopes"].as_array().unwrap().len(), 11);

    // A second signup with the same address is a conflict.
    let again = app
        .request(Method::POST, "/v1/signup", None)
        .json(&json!({"email": "ada@example.com", "password": "another password", "org": "X"}))
        .send()
        .await
        .unwrap();
    expect_problem(again, 409, "conflict").await;

    // Mint, list, use, revoke.
    let minted = app
        .mint(&session, json!({"name": "ci", "scopes": ["sprites:read", "tokens:create"], "budget_nanos": 5000}))
        .await;
    let ci = minted["token"].as_str().unwrap();
    assert_eq!(minted["parent_id"], serde_json::Value::Null);
    assert_eq!(minted["budget_nanos"], 5000);
    let me = expect_status(app.get("/v1/me", ci).await, 200).await;
    assert_eq!(me["token"]["id"], minted["id"]);
    assert_eq!(
        me["token"]["scopes"],
        json!(["sprites:read", "tokens:create"])
    );

    let list = expect_status(app.get("/v1/tokens", &session).await, 200).await;
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "sessions are not listed: {list}");
    assert_eq!(tokens[0]["name"], "ci");
    assert!(
        tokens[0].get("token").is_none(),
        "the secret is never listed again"
    );
    assert!(!list.to_string().contains(ci));

    let id = minted["id"].as_str().unwrap();
    expect_status(app.delete(&format!("/v1/tokens/{id}"), &session).await, 204).await;
    expect_problem(app.get("/v1/me", ci).await, 401, "unauthorized").await;
    let list = expect_status(app.get("/v1/tokens", &session).await, 200).await;
    assert_eq!(list["tokens"][0]["revoked"], true);
}

#[tokio::test]
async fn login_with_wrong_password_or_unknown_email_says_the_same() {
    let app = App::spawn().await;
    app.signup("bob@example.com").await;
    let mut details = Vec::new();
    for (email, password) in [
        ("bob@example.com", "wrong password"),
        ("nobody@example.com", "correct horse battery"),
    ] {
        let response = app
            .request(Method::POST, "/v1/login", None)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        details.push(expect_problem(response, 401, "unauthorized").await["detail"].clone());
    }
    assert_eq!(
        details[0], details[1],
        "the answer must not reveal which e-mails exist"
    );
}

#[tokio::test]
async fn child_tokens_are_never_wider_than_their_parent() {
    let app = App::spawn().await;
    let (_, session) = app.signup("carol@example.com").await;
    let parent = app
        .mint(
            &session,
            json!({"name": "parent", "scopes": ["sprites:read", "exec", "tokens:create"],
                   "expires_in_s": 3600, "budget_nanos": 1000, "sprites": ["web", "db"]}),
        )
        .await;
    let parent_token = parent["token"].as_str().unwrap();

    for (body, needle) in [
        (
            json!({"name": "c", "scopes": ["sprites:write"]}),
            "sprites:write",
        ),
        (
            json!({"name": "c", "scopes": ["exec"], "expires_in_s": 7200}),
            "outlive",
        ),
        (
            json!({"name": "c", "scopes": ["exec"], "budget_nanos": 1001}),
            "budget",
        ),
        (
            json!({"name": "c", "scopes": ["exec"], "sprites": ["other"]}),
            "other",
        ),
    ] {
        let refused = expect_problem(
            app.post("/v1/tokens", parent_token, body.clone()).await,
            403,
            "forbidden",
        )
        .await;
        assert!(
            refused["detail"].as_str().unwrap().contains(needle),
            "{body} → {refused}"
        );
    }

    // Narrower is fine, and inherits the parent's expiry and sprite list.
    let child = app
        .mint(
            parent_token,
            json!({"name": "child", "scopes": ["exec", "tokens:create"], "budget_nanos": 400}),
        )
        .await;
    assert_eq!(child["parent_id"], parent["id"]);
    assert_eq!(child["expires_at"], parent["expires_at"]);
    assert_eq!(child["sprites"], json!(["web", "db"]));
    let child_token = child["token"].as_str().unwrap();
    let grandchild = app
        .mint(
            child_token,
            json!({"name": "grandchild", "scopes": ["exec"]}),
        )
        .await;
    let grandchild_token = grandchild["token"].as_str().unwrap();

    // A child sees its own subtree, not its parent.
    let seen = expect_status(app.get("/v1/tokens", child_token).await, 200).await;
    let names: Vec<_> = seen["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["child", "grandchild"]);
    // ... and cannot revoke its parent (it is not its to see).
    let parent_id = parent["id"].as_str().unwrap();
    expect_problem(
        app.delete(&format!("/v1/tokens/{parent_id}"), child_token)
            .await,
        404,
        "not_found",
    )
    .await;
    // A token without tokens:create cannot mint at all.
    expect_problem(
        app.post(
            "/v1/tokens",
            grandchild_token,
            json!({"name": "x", "scopes": ["exec"]}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // Revoking the parent kills the whole tree.
    expect_status(
        app.delete(&format!("/v1/tokens/{parent_id}"), &session)
            .await,
        204,
    )
    .await;
    for token in [parent_token, child_token, grandchild_token] {
        expect_problem(app.get("/v1/me", token).await, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn serve_help_lists_every_setting_with_its_default() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "CORRAL_DATA_DIR",
        "./corral-data",
        "CORRAL_LISTEN",
        "127.0.0.1:8080",
        "CORRAL_TICK_MS",
        "CORRAL_PRICE_CPU_NANOS_PER_CPU_S",
        "CORRAL_SMTP_URL",
    ] {
        assert!(help.contains(needle), "missing {needle} in:\n{help}");
    }
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let app = App::spawn().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let openapi = app
        .client
        .get(format!("{}/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    let openapi = expect_status(openapi, 200).await;
    for path in [
        "/v1/signup",
        "/v1/login",
        "/v1/me",
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/v1/images",
        "/v1/images/{name}",
        "/v1/sprites/{name}/images",
        "/v1/sprites/{name}/fork",
        "/v1/sprites/{name}/export",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.signup("dora@example.com").await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(
            r#"corral_http_requests_total{method="POST",route="/v1/signup",status="201"} 1"#
        ),
        "{metrics}"
    );
}
