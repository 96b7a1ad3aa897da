//! What an adversarial run found in the API's rules, each fixed and held here: logout
//! ends the session; an Idempotency-Key answers only its own request, once, under
//! concurrency; a budgeted token runs only sprites its budget pays for; one scope's
//! admissions do not eat another's runway; restore obeys the scaling limits; a refused
//! limits change saves nothing; a create whose client vanished still finishes.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{expect_problem, expect_status, App};
use crate::money::{spawn, CPU_PRICE, SCOPES};

#[tokio::test]
async fn logout_ends_the_session_and_nothing_else() {
    let app = App::spawn().await;
    let (_, session) = app.signup("bye@example.com").await;
    let api = app
        .mint(&session, json!({"name": "ci", "scopes": ["sprites:read"]}))
        .await;
    let api = api["token"].as_str().unwrap().to_string();
    // An API token is not a session: it is revoked with DELETE /v1/tokens/{id}.
    expect_problem(
        app.post("/v1/logout", &api, json!({})).await,
        422,
        "validation",
    )
    .await;
    expect_status(app.post("/v1/logout", &session, json!({})).await, 204).await;
    expect_problem(app.get("/v1/me", &session).await, 401, "unauthorized").await;
    expect_problem(
        app.post("/v1/logout", &session, json!({})).await,
        401,
        "unauthorized",
    )
    .await;
    // Tokens minted during the session keep working.
    expect_status(app.get("/v1/sprites", &api).await, 200).await;
}

fn create(name: &str) -> Value {
    json!({"name": name, "cpus": 1, "memory_mb": 128, "disk_mb": 64})
}

#[tokio::test]
async fn an_idempotency_key_answers_only_its_own_request() {
    let app = App::spawn().await;
    let (_, session) = app.signup("keys@example.com").await;
    let with_key = |token: &str, key: &str, body: Value| {
        app.request(reqwest::Method::POST, "/v1/sprites", Some(token))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = expect_status(with_key(&session, "k-r2", create("r2")).await.unwrap(), 201).await;
    let again = expect_status(with_key(&session, "k-r2", create("r2")).await.unwrap(), 200).await;
    assert_eq!(first["name"], again["name"]);
    // A token limited to r1 replaying r2's key learns nothing about r2.
    let r1_only = app
        .mint(
            &session,
            json!({"name": "r1", "scopes": ["sprites:read", "sprites:write"], "sprites": ["r1"]}),
        )
        .await;
    let r1_only = r1_only["token"].as_str().unwrap().to_string();
    let refused = expect_problem(
        with_key(&r1_only, "k-r2", create("r1")).await.unwrap(),
        422,
        "validation",
    )
    .await;
    assert!(!refused.to_string().contains("r2"), "{refused}");
    // Concurrent creates sharing a key make one sprite, whatever the names.
    let (a, b, c) = tokio::join!(
        with_key(&session, "k-race", create("race-a")),
        with_key(&session, "k-race", create("race-a")),
        with_key(&session, "k-race", create("race-b")),
    );
    let statuses: Vec<u16> = [&a, &b, &c]
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    let listed = expect_status(app.get("/v1/sprites", &session).await, 200).await;
    let names: Vec<&str> = listed["sprites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("race")).count(),
        1,
        "one sprite per key: {names:?}"
    );
}

#[tokio::test]
async fn a_budgeted_token_runs_only_what_its_budget_pays_for() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("reach@example.com").await;
    expect_status(
        app.post("/v1/sprites", &session, create("theirs")).await,
        201,
    )
    .await;
    let budgeted = app
        .mint(
            &session,
            json!({"name": "ci", "scopes": SCOPES.iter().chain(&["exec", "files", "checkpoints"]).collect::<Vec<_>>(), "budget_nanos": 20 * CPU_PRICE}),
        )
        .await;
    let budgeted = budgeted["token"].as_str().unwrap().to_string();
    // A child of it carries no budget of its own, and is still bound by its parent's.
    let child = app
        .mint(
            &budgeted,
            json!({"name": "child", "scopes": ["exec", "sprites:write"]}),
        )
        .await;
    let child = child["token"].as_str().unwrap().to_string();
    let spin = json!({"cmd": ["sh", "-c", "timeout 2 sh -c 'while :; do :; done'; echo done"]});
    for token in [&budgeted, &child] {
        let refused = expect_problem(
            app.post("/v1/sprites/theirs/exec", token, spin.clone())
                .await,
            403,
            "forbidden",
        )
        .await;
        assert!(
            refused["detail"].as_str().unwrap().contains("budget"),
            "{refused}"
        );
        expect_problem(
            app.post("/v1/sprites/theirs/resume", token, json!({}))
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    expect_problem(
        app.request(
            reqwest::Method::PUT,
            "/v1/sprites/theirs/files?path=/root/x",
            Some(&budgeted),
        )
        .body("x")
        .send()
        .await
        .unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_problem(
        app.post("/v1/sprites/theirs/checkpoints", &budgeted, json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;
    // Its own sprite, and its child's: fine, and the spend lands on the token.
    expect_status(
        app.post("/v1/sprites", &budgeted, create("mine")).await,
        201,
    )
    .await;
    let out = expect_status(
        app.post("/v1/sprites/mine/exec", &child, spin.clone())
            .await,
        200,
    )
    .await;
    assert_eq!(out["stdout"], "done\n", "{out}");
    // Reading is not running: the view of the session's sprite is still there.
    expect_status(app.get("/v1/sprites/theirs", &budgeted).await, 200).await;
}

#[tokio::test]
async fn one_scopes_admissions_do_not_eat_another_scopes_runway() {
    // The token can afford one sprite's runway (1 s of one vCPU), not two.
    let app = spawn(&[]).await;
    let (_, session) = app.signup("runway2@example.com").await;
    let token = app
        .mint(
            &session,
            json!({"name": "one", "scopes": SCOPES, "budget_nanos": CPU_PRICE * 3 / 2}),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_string();
    expect_status(
        app.post("/v1/sprites", &session, create("by-session"))
            .await,
        201,
    )
    .await;
    // Right after: the session's sprite counts against the tenant, not against the token.
    expect_status(
        app.post("/v1/sprites", &token, create("by-token")).await,
        201,
    )
    .await;
    // A second of the token's own does not fit beside its first.
    expect_problem(
        app.post("/v1/sprites", &token, create("by-token-2")).await,
        402,
        "token_budget_exhausted",
    )
    .await;
}

#[tokio::test]
async fn restore_obeys_the_scaling_limits_and_refused_limits_save_nothing() {
    let app = App::spawn().await;
    let (_, session) = app.signup("limits@example.com").await;
    let before = expect_status(app.get("/v1/limits", &session).await, 200).await;
    // One valid field beside one refused: nothing is saved.
    expect_problem(
        app.put(
            "/v1/limits",
            &session,
            json!({"max_running_sprites": 1, "max_total_cpus": 1_000_000}),
        )
        .await,
        403,
        "limit_exceeded",
    )
    .await;
    expect_problem(
        app.put(
            "/v1/limits",
            &session,
            json!({"max_running_sprites": 1, "default_idle_timeout_s": -5}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let after = expect_status(app.get("/v1/limits", &session).await, 200).await;
    assert_eq!(before, after, "a refused change saved something");

    let set = expect_status(
        app.put("/v1/limits", &session, json!({"max_running_sprites": 1}))
            .await,
        200,
    )
    .await;
    assert_eq!(set["max_running_sprites"], 1);
    expect_status(app.post("/v1/sprites", &session, create("a")).await, 201).await;
    let checkpoint = expect_status(
        app.post("/v1/sprites/a/checkpoints", &session, json!({}))
            .await,
        201,
    )
    .await;
    let id = checkpoint["id"].as_i64().map_or_else(
        || checkpoint["id"].as_str().unwrap().to_string(),
        |n| n.to_string(),
    );
    expect_status(
        app.post("/v1/sprites/a/pause", &session, json!({})).await,
        200,
    )
    .await;
    expect_status(app.post("/v1/sprites", &session, create("b")).await, 201).await;
    expect_problem(
        app.post("/v1/sprites/a/resume", &session, json!({})).await,
        403,
        "limit_exceeded",
    )
    .await;
    expect_problem(
        app.post(
            &format!("/v1/sprites/a/checkpoints/{id}/restore"),
            &session,
            json!({}),
        )
        .await,
        403,
        "limit_exceeded",
    )
    .await;
    let a = expect_status(app.get("/v1/sprites/a", &session).await, 200).await;
    assert_eq!(a["state"], "paused", "{a}");
}

#[tokio::test]
async fn a_create_whose_client_vanished_still_finishes() {
    let app = App::spawn().await;
    let (_, session) = app.signup("gone@example.com").await;
    let body = create("orphan").to_string();
    let addr = app.url.trim_start_matches("http://").to_string();
    let request = format!(
        "POST /v1/sprites HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {session}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        // Hang up while the machine is being made.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = app.get("/v1/sprites/orphan", &session).await;
            if got.status() == 200 {
                let sprite: Value = got.json().await.unwrap();
                assert_eq!(sprite["state"], "creating", "too late to hang up: {sprite}");
                break;
            }
            assert!(Instant::now() < deadline, "the create never started");
        }
        // The client hangs up (its half-close is what the server notices).
        stream.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = app.get("/v1/sprites/orphan", &session).await;
        if got.status() == 200 {
            let sprite: Value = got.json().await.unwrap();
            if sprite["state"] == "running" {
                break;
            }
            assert_eq!(sprite["state"], "creating", "{sprite}");
        }
        assert!(Instant::now() < deadline, "the create never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = expect_status(
        app.post(
            "/v1/sprites/orphan/exec",
            &session,
            json!({"cmd": ["true"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["exit_code"], 0);
}

#[tokio::test]
async fn bad_input_found_by_the_adversarial_run_is_a_4xx_problem() {
    let app = App::spawn().await;
    let (_, session) = app.signup("bad@example.com").await;
    expect_status(app.post("/v1/sprites", &session, create("box")).await, 201).await;
    let put = |path: String| {
        app.request(
            reqwest::Method::PUT,
            &format!("/v1/sprites/box/files?path={path}"),
            Some(&session),
        )
        .body("data")
        .send()
    };
    let long = format!("/root/{}", "n".repeat(300));
    expect_problem(put(long.clone()).await.unwrap(), 422, "validation").await;
    expect_problem(
        put("/.corral/planted".into()).await.unwrap(),
        422,
        "validation",
    )
    .await;
    let loops = json!({"cmd": ["sh", "-c", "cd /root && ln -s b a && ln -s a b"]});
    expect_status(app.post("/v1/sprites/box/exec", &session, loops).await, 200).await;
    expect_problem(
        app.get("/v1/sprites/box/files?path=/root/a", &session)
            .await,
        422,
        "validation",
    )
    .await;
    expect_problem(
        app.get(&format!("/v1/sprites/box/files?path={long}"), &session)
            .await,
        422,
        "validation",
    )
    .await;

    // A WebSocket exec with bad parameters is refused before the upgrade.
    for query in ["cmd=ls&cwd=relative", "cmd=", "cmd=ls&timeout_s=0"] {
        let refused = app
            .request(
                reqwest::Method::GET,
                &format!("/v1/sprites/box/exec/ws?{query}"),
                Some(&session),
            )
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        expect_problem(refused, 422, "validation").await;
    }

    // A URL hyper refuses by itself still answers problem+json (sent raw: the HTTP
    // client refuses to send such a URL at all).
    let addr = app.url.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let path = format!("/v1/sprites?x={}", "a".repeat(100_000));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 414 "), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).expect("a problem+json body");
    assert_eq!(body["code"], "uri_too_long");
    assert_eq!(body["status"], 414);
}
