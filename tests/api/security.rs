//! Hostile callers: forged, expired and revoked tokens, brute force, malformed input.

use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{expect_problem, App};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_revoked_and_garbage_tokens_are_refused() {
    let app = App::spawn().await;
    let (_, session) = app.signup("eve@example.com").await;
    let claims = claims_of(&session);
    let real_key = std::fs::read(app.path().join("jwt.key")).unwrap();

    let mut tampered_sig = session.clone();
    let last = tampered_sig.pop().unwrap();
    tampered_sig.push(if last == 'A' { 'B' } else { 'A' });

    let mut wider = claims.clone();
    wider["sub"] = json!("someone-else");
    let parts: Vec<&str> = session.split('.').collect();
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64(wider.to_string().as_bytes()),
        parts[2]
    );

    let alg_none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let other_key = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"not the server's key at all...."),
    )
    .unwrap();
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(1_000_000_000);
    let expired = encode(
        &Header::default(),
        &expired_claims,
        &EncodingKey::from_secret(&real_key),
    )
    .unwrap();
    // Correctly signed with the real key, but not a token the server issued.
    let mut unknown_claims = claims.clone();
    unknown_claims["jti"] = json!("0000000000000000");
    let unknown = encode(
        &Header::default(),
        &unknown_claims,
        &EncodingKey::from_secret(&real_key),
    )
    .unwrap();

    for (what, header) in [
        ("tampered signature", format!("Bearer {tampered_sig}")),
        ("tampered payload", format!("Bearer {tampered_payload}")),
        ("alg none", format!("Bearer {alg_none}")),
        ("another key", format!("Bearer {other_key}")),
        ("expired", format!("Bearer {expired}")),
        ("never issued", format!("Bearer {unknown}")),
        ("garbage", "Bearer not-a-token".to_string()),
        ("wrong scheme", format!("Basic {session}")),
        ("empty", "Bearer ".to_string()),
    ] {
        let response = app
            .client
            .get(format!("{}/v1/me", app.url))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        let body = expect_problem(response, 401, "unauthorized").await;
        assert!(!body.to_string().contains("panicked"), "{what}: {body}");
    }
    let missing = app
        .client
        .get(format!("{}/v1/me", app.url))
        .send()
        .await
        .unwrap();
    expect_problem(missing, 401, "unauthorized").await;

    // A correctly signed token that was revoked.
    let minted = app
        .mint(&session, json!({"name": "t", "scopes": ["exec"]}))
        .await;
    let id = minted["id"].as_str().unwrap();
    app.delete(&format!("/v1/tokens/{id}"), &session).await;
    expect_problem(
        app.get("/v1/me", minted["token"].as_str().unwrap()).await,
        401,
        "unauthorized",
    )
    .await;
    // The real session still works.
    assert_eq!(app.get("/v1/me", &session).await.status(), 200);
}

#[tokio::test]
async fn login_brute_force_is_rate_limited() {
    let app = App::spawn().await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let response = app
            .request(Method::POST, "/v1/login", None)
            .json(&json!({"email": "victim@example.com", "password": "guess guess"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        statuses.push(status);
        if status == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            expect_problem(response, 429, "rate_limited").await;
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(statuses.len() >= 5, "limited too early: {statuses:?}");
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_never_a_5xx() {
    let app = App::spawn().await;
    let (_, session) = app.signup("frank@example.com").await;
    let raw = |method: Method, path: &str, body: &str| {
        app.request(method, path, Some(&session))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed",
            raw(Method::POST, "/v1/tokens", "{\"name\": "),
            422,
            "validation",
        ),
        (
            "wrong types",
            raw(
                Method::POST,
                "/v1/tokens",
                r#"{"name": 5, "scopes": "exec"}"#,
            ),
            422,
            "validation",
        ),
        (
            "missing fields",
            raw(Method::POST, "/v1/tokens", r#"{"name": "x"}"#),
            422,
            "validation",
        ),
        (
            "unknown scope",
            raw(
                Method::POST,
                "/v1/tokens",
                r#"{"name": "x", "scopes": ["root"]}"#,
            ),
            422,
            "validation",
        ),
        (
            "no scopes",
            raw(Method::POST, "/v1/tokens", r#"{"name": "x", "scopes": []}"#),
            422,
            "validation",
        ),
        (
            "empty name",
            raw(
                Method::POST,
                "/v1/tokens",
                r#"{"name": " ", "scopes": ["exec"]}"#,
            ),
            422,
            "validation",
        ),
        (
            "negative budget",
            raw(
                Method::POST,
                "/v1/tokens",
                r#"{"name": "x", "scopes": ["exec"], "budget_nanos": -1}"#,
            ),
            422,
            "validation",
        ),
        (
            "zero lifetime",
            raw(
                Method::POST,
                "/v1/tokens",
                r#"{"name": "x", "scopes": ["exec"], "expires_in_s": 0}"#,
            ),
            422,
            "validation",
        ),
        (
            "not json",
            app.request(Method::POST, "/v1/tokens", Some(&session))
                .header("content-type", "text/plain")
                .body("hi"),
            422,
            "validation",
        ),
        (
            "bad e-mail",
            app.request(Method::POST, "/v1/signup", None)
                .json(&json!({"email": "nope", "password": "long enough", "org": "x"})),
            422,
            "validation",
        ),
        (
            "short password",
            app.request(Method::POST, "/v1/signup", None)
                .json(&json!({"email": "a@b.io", "password": "short", "org": "x"})),
            422,
            "validation",
        ),
        (
            "unknown path",
            app.request(Method::GET, "/v1/nothing-here", Some(&session)),
            404,
            "not_found",
        ),
        (
            "wrong method",
            app.request(Method::PATCH, "/v1/tokens", Some(&session)),
            405,
            "not_found",
        ),
        (
            "unknown token id",
            app.request(Method::DELETE, "/v1/tokens/does-not-exist", Some(&session)),
            404,
            "not_found",
        ),
        // Last, on a client of its own: the server answers 413 before reading the
        // whole body and closes that connection.
        (
            "oversize",
            reqwest::Client::new()
                .post(format!("{}/v1/tokens", app.url))
                .bearer_auth(&session)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"name": "{}", "scopes": ["exec"]}}"#,
                    "x".repeat(2 << 20)
                )),
            413,
            "payload_too_large",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = response.status().as_u16();
        assert!(got < 500, "{what} gave {got}");
        let body = expect_problem(response, status, code).await;
        assert!(
            !body["detail"].as_str().unwrap().contains("sqlx"),
            "{what} leaks internals: {body}"
        );
    }
}
