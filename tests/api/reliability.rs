//! A sprite's calls against a dying or frozen sandbox (issue 9, items 9, 10 and 11):
//! a sandbox killed for memory comes back with its disk and says why, a call into a
//! sprite that gets paused answers, a FIFO does not hang a file read, and a JSON exec
//! whose client went away leaves no process behind.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{expect_problem, expect_status, App};

async fn create(app: &App, token: &str, name: &str, memory_mb: u32) {
    let body = json!({"name": name, "disk_mb": 256, "memory_mb": memory_mb, "idle_timeout_s": 0});
    expect_status(app.post("/v1/sprites", token, body).await, 201).await;
}

/// The command lines of the processes in the sprite that contain `needle`, read from a
/// second exec through `/proc`.
async fn processes_with(app: &App, token: &str, sprite: &str, needle: &str) -> Vec<String> {
    let script = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done";
    let out = app.exec_ok(token, sprite, &["sh", "-c", script]).await;
    out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle) && !l.contains("/proc/[0-9]"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_sprite_killed_for_memory_comes_back_with_its_disk_and_says_why() {
    let app = App::spawn().await;
    let (_, token) = app.signup("oom@example.com").await;
    create(&app, &token, "hog", 128).await;
    let put = app
        .request(
            reqwest::Method::PUT,
            "/v1/sprites/hog/files?path=/root/keep",
            Some(&token),
        )
        .body("kept across the crash")
        .send()
        .await
        .expect("put");
    expect_status(put, 204).await;

    // `tail` keeps a line without newlines whole: 1 GiB of zeros outgrows 128 MiB and
    // the host's OOM killer takes the whole sandbox.
    let started = Instant::now();
    let hog = app
        .exec(&token, "hog", &["sh", "-c", "head -c 1G /dev/zero | tail"])
        .await;
    let body = expect_problem(hog, 409, "conflict").await;
    let detail = body["detail"].as_str().unwrap();
    eprintln!("hog answered after {:?}: {detail}", started.elapsed());
    assert!(detail.contains("out of memory"), "{detail}");
    assert!(detail.contains("restarted"), "{detail}");

    let view = expect_status(app.get("/v1/sprites/hog", &token).await, 200).await;
    assert_eq!(view["state"], "running", "{view}");
    let activity = view["last_activity"].as_str().unwrap();
    assert!(activity.starts_with("restart: out of memory"), "{view}");

    let out = app.exec_ok(&token, "hog", &["cat", "/root/keep"]).await;
    assert_eq!(out["stdout"], "kept across the crash");
    let out = app.exec_ok(&token, "hog", &["echo", "alive"]).await;
    assert_eq!(out["stdout"], "alive\n");
}

/// How long after its sprite is paused an exec in flight answers, at most.
const PAUSE_ANSWER: Duration = Duration::from_secs(2);

#[tokio::test]
async fn an_exec_into_a_sprite_that_gets_paused_answers_naming_the_pause() {
    let app = App::spawn().await;
    let (_, token) = app.signup("paused@example.com").await;
    create(&app, &token, "frozen", 256).await;
    let running = {
        let (url, token, client) = (app.url.clone(), token.clone(), app.client.clone());
        tokio::spawn(async move {
            let response = client
                .post(format!("{url}/v1/sprites/frozen/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["sleep", "4242"]}))
                .send()
                .await
                .expect("exec");
            (Instant::now(), response)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused = app
        .post("/v1/sprites/frozen/pause", &token, json!({}))
        .await;
    let paused_at = Instant::now();
    let view = expect_status(paused, 200).await;
    assert_eq!(view["pause_reason"], "user");

    let (answered_at, response) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the exec into the paused sprite did not answer")
        .unwrap();
    let waited = answered_at.saturating_duration_since(paused_at);
    eprintln!("answered {waited:?} after the pause");
    assert!(
        waited <= PAUSE_ANSWER,
        "answered {waited:?} after the pause"
    );
    let body = expect_problem(response, 409, "conflict").await;
    assert!(
        body["detail"].as_str().unwrap().contains("paused (user)"),
        "{body}"
    );

    // The abandoned command is killed once the sprite runs again.
    let resumed = app
        .post("/v1/sprites/frozen/resume", &token, json!({}))
        .await;
    expect_status(resumed, 200).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(&app, &token, "frozen", "sleep 4242").await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reading_or_writing_a_fifo_answers_instead_of_hanging() {
    let app = App::spawn().await;
    let (_, token) = app.signup("fifo@example.com").await;
    create(&app, &token, "pipes", 256).await;
    app.exec_ok(&token, "pipes", &["mkfifo", "/root/pipe"])
        .await;

    let started = Instant::now();
    let read = app
        .request(
            reqwest::Method::GET,
            "/v1/sprites/pipes/files?path=/root/pipe",
            Some(&token),
        )
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the read of a FIFO hung");
    let body = expect_problem(read, 422, "validation").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{body}"
    );
    let write = app
        .request(
            reqwest::Method::PUT,
            "/v1/sprites/pipes/files?path=/root/pipe",
            Some(&token),
        )
        .body("x")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the write of a FIFO hung");
    expect_problem(write, 422, "validation").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The sprite is fine afterwards.
    let out = app.exec_ok(&token, "pipes", &["echo", "ok"]).await;
    assert_eq!(out["stdout"], "ok\n");
}

#[tokio::test]
async fn a_json_exec_whose_client_goes_away_leaves_no_process() {
    let app = App::spawn().await;
    let (_, token) = app.signup("gone@example.com").await;
    create(&app, &token, "left", 256).await;
    let abandoned = {
        let request = app
            .request(reqwest::Method::POST, "/v1/sprites/left/exec", Some(&token))
            .json(&json!({"cmd": ["sleep", "4343"]}));
        tokio::spawn(async move { request.send().await })
    };
    // It runs...
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with(&app, &token, "left", "sleep 4343")
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...until its client goes away (dropping the request closes the connection).
    abandoned.abort();
    assert!(abandoned.await.is_err_and(|e| e.is_cancelled()));

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(&app, &token, "left", "sleep 4343").await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
