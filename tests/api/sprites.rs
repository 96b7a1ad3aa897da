//! The whole life of a real gVisor sprite over HTTP: create, exec, files, pause,
//! resume, checkpoints, idle pause with transparent wake, limits, delete.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{expect_problem, expect_problem_naming, expect_status, App};

async fn exec(app: &App, token: &str, sprite: &str, cmd: &[&str]) -> Value {
    let response = app
        .post(
            &format!("/v1/sprites/{sprite}/exec"),
            token,
            json!({"cmd": cmd}),
        )
        .await;
    expect_status(response, 200).await
}

async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

#[tokio::test]
async fn a_sprite_lives_and_dies_over_http() {
    let app = App::spawn().await;
    let (_, token) = app.signup("life@example.com").await;

    let created = expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "dev", "disk_mb": 256}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["state"], "running");
    assert_eq!(created["cpus"], 1);
    assert_eq!(created["disk_mb"], 256);
    assert_eq!(created["idle_timeout_s"], 60);

    let out = exec(
        &app,
        &token,
        "dev",
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
    )
    .await;
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["stdout"], "hello\n");
    assert_eq!(out["stderr"], "oops\n");
    let out = expect_status(
        app.post(
            "/v1/sprites/dev/exec",
            &token,
            json!({"cmd": ["cat"], "stdin": "piped", "env": {"A": "1"}, "cwd": "/etc"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["stdout"], "piped");
    let out = expect_status(
        app.post(
            "/v1/sprites/dev/exec",
            &token,
            json!({"cmd": ["sleep", "30"], "timeout_s": 1}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["timed_out"], true, "{out}");

    // Files: binary-safe both ways.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let put = app
        .request(
            reqwest::Method::PUT,
            "/v1/sprites/dev/files?path=/root/blob.bin",
            Some(&token),
        )
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    expect_status(put, 204).await;
    let got = app
        .get("/v1/sprites/dev/files?path=/root/blob.bin", &token)
        .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    expect_problem(
        app.get("/v1/sprites/dev/files?path=/root/missing", &token)
            .await,
        404,
        "not_found",
    )
    .await;
    expect_problem(
        app.get("/v1/sprites/dev/files?path=relative", &token).await,
        422,
        "validation",
    )
    .await;

    // Pause and resume keep the disk.
    let paused = expect_status(
        app.post("/v1/sprites/dev/pause", &token, json!({})).await,
        200,
    )
    .await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["pause_reason"], "user");
    expect_problem(
        app.post("/v1/sprites/dev/exec", &token, json!({"cmd": ["true"]}))
            .await,
        409,
        "conflict",
    )
    .await;
    let resumed = expect_status(
        app.post("/v1/sprites/dev/resume", &token, json!({})).await,
        200,
    )
    .await;
    assert_eq!(resumed["state"], "running");
    assert_eq!(
        exec(&app, &token, "dev", &["md5sum", "/root/blob.bin"]).await["exit_code"],
        0
    );

    // Checkpoint, change things, restore: the change is gone, the process survives.
    exec(
        &app,
        &token,
        "dev",
        &[
            "sh",
            "-c",
            "nohup sleep 1000 >/dev/null 2>&1 & echo $! > /root/pid; echo before > /root/state",
        ],
    )
    .await;
    let checkpoint = expect_status(
        app.post(
            "/v1/sprites/dev/checkpoints",
            &token,
            json!({"comment": "clean"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(checkpoint["comment"], "clean");
    assert!(checkpoint["size_bytes"].as_i64().unwrap() > 0);
    exec(
        &app,
        &token,
        "dev",
        &["sh", "-c", "echo after > /root/state; touch /root/new"],
    )
    .await;
    let id = checkpoint["id"].as_str().unwrap();
    let listed = expect_status(app.get("/v1/sprites/dev/checkpoints", &token).await, 200).await;
    assert_eq!(listed["checkpoints"].as_array().unwrap().len(), 1);
    let restored = expect_status(
        app.post(
            &format!("/v1/sprites/dev/checkpoints/{id}/restore"),
            &token,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(restored["state"], "running");
    assert_eq!(
        exec(&app, &token, "dev", &["cat", "/root/state"]).await["stdout"],
        "before\n"
    );
    assert_eq!(
        exec(&app, &token, "dev", &["test", "-e", "/root/new"]).await["exit_code"],
        1
    );
    assert_eq!(
        exec(
            &app,
            &token,
            "dev",
            &["sh", "-c", "kill -0 $(cat /root/pid)"]
        )
        .await["exit_code"],
        0,
        "the process survives restore"
    );
    expect_status(
        app.delete(&format!("/v1/sprites/dev/checkpoints/{id}"), &token)
            .await,
        204,
    )
    .await;

    let listed = expect_status(app.get("/v1/sprites", &token).await, 200).await;
    assert_eq!(listed["sprites"][0]["name"], "dev");
    expect_status(app.delete("/v1/sprites/dev", &token).await, 204).await;
    expect_problem(app.get("/v1/sprites/dev", &token).await, 404, "not_found").await;
    // The name is free again.
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "dev", "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    expect_status(app.delete("/v1/sprites/dev", &token).await, 204).await;
}

#[tokio::test]
async fn an_idle_sprite_pauses_and_wakes_on_exec() {
    let app = App::spawn().await;
    let (_, token) = app.signup("idle@example.com").await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "nap", "idle_timeout_s": 1, "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = sprite(&app, &token, "nap").await;
        if s["state"] == "paused" {
            assert_eq!(s["pause_reason"], "idle");
            break;
        }
        assert!(Instant::now() < deadline, "never paused: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = exec(&app, &token, "nap", &["echo", "awake"]).await;
    assert_eq!(out["stdout"], "awake\n");
    let s = sprite(&app, &token, "nap").await;
    assert_eq!(s["state"], "running");
    assert_eq!(s["last_activity"], "exec");
    expect_status(app.delete("/v1/sprites/nap", &token).await, 204).await;
}

#[tokio::test]
async fn limits_refuse_with_their_name_and_cannot_be_raised() {
    let app = App::spawn_with(&[
        ("CORRAL_MAX_RUNNING_SPRITES", "2"),
        ("CORRAL_MAX_CHECKPOINTS_PER_SPRITE", "1"),
    ])
    .await;
    let (_, token) = app.signup("limits@example.com").await;
    let limits = expect_status(app.get("/v1/limits", &token).await, 200).await;
    assert_eq!(limits["max_running_sprites"], 2);
    expect_problem_naming(
        app.put("/v1/limits", &token, json!({"max_running_sprites": 3}))
            .await,
        403,
        "limit_exceeded",
        "max_running_sprites",
    )
    .await;
    let lowered = expect_status(
        app.put(
            "/v1/limits",
            &token,
            json!({"max_running_sprites": 1, "max_total_cpus": 2}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(lowered["max_running_sprites"], 1);

    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "one", "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    expect_problem_naming(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "two", "disk_mb": 128}),
        )
        .await,
        403,
        "limit_exceeded",
        "max_running_sprites",
    )
    .await;
    expect_problem_naming(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "big", "disk_mb": 1_000_000}),
        )
        .await,
        403,
        "limit_exceeded",
        "max_disk_mb_per_sprite",
    )
    .await;
    // Paused sprites do not count; resuming past the limit is refused.
    expect_status(
        app.post("/v1/sprites/one/pause", &token, json!({})).await,
        200,
    )
    .await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "two", "disk_mb": 128, "cpus": 2}),
        )
        .await,
        201,
    )
    .await;
    expect_problem_naming(
        app.post("/v1/sprites/one/resume", &token, json!({})).await,
        403,
        "limit_exceeded",
        "max_running_sprites",
    )
    .await;
    expect_status(
        app.post("/v1/sprites/two/checkpoints", &token, json!({}))
            .await,
        201,
    )
    .await;
    expect_problem_naming(
        app.post("/v1/sprites/two/checkpoints", &token, json!({}))
            .await,
        403,
        "limit_exceeded",
        "max_checkpoints_per_sprite",
    )
    .await;
    for name in ["one", "two"] {
        expect_status(
            app.delete(&format!("/v1/sprites/{name}"), &token).await,
            204,
        )
        .await;
    }
}

#[tokio::test]
async fn concurrent_creates_and_execs_and_idempotency() {
    let app = App::spawn().await;
    let (_, token) = app.signup("race@example.com").await;
    let body = json!({"name": "same", "disk_mb": 128});
    let (a, b) = tokio::join!(
        app.post("/v1/sprites", &token, body.clone()),
        app.post("/v1/sprites", &token, body.clone())
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);

    let runs = (0..8).map(|i| {
        let app = &app;
        let token = &token;
        async move {
            exec(
                app,
                token,
                "same",
                &["sh", "-c", &format!("sleep 0.2; echo {i}")],
            )
            .await
        }
    });
    let outputs = futures_util::future::join_all(runs).await;
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(out["stdout"], format!("{i}\n"));
    }

    let keyed = |key: &'static str| {
        app.request(reqwest::Method::POST, "/v1/sprites", Some(&token))
            .header("idempotency-key", key)
            .json(&json!({"name": "keyed", "disk_mb": 128}))
    };
    expect_status(keyed("k1").send().await.unwrap(), 201).await;
    let again = expect_status(keyed("k1").send().await.unwrap(), 200).await;
    assert_eq!(again["name"], "keyed");

    // A delete during an exec ends the exec cleanly.
    let long = app.post(
        "/v1/sprites/same/exec",
        &token,
        json!({"cmd": ["sleep", "60"]}),
    );
    let delete = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.delete("/v1/sprites/same", &token).await
    };
    let (long, deleted) = tokio::join!(long, delete);
    assert_eq!(deleted.status(), 204);
    let status = long.status().as_u16();
    assert!(
        status == 409 || status == 200,
        "exec during delete ended with {status}"
    );
    expect_status(app.delete("/v1/sprites/keyed", &token).await, 204).await;
}

#[tokio::test]
async fn restart_after_kill_9_reconciles_sprites() {
    let mut app = App::spawn().await;
    let (_, token) = app.signup("crash@example.com").await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "keep", "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "nap", "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    exec(
        &app,
        &token,
        "keep",
        &["sh", "-c", "echo data > /root/file"],
    )
    .await;
    expect_status(
        app.post("/v1/sprites/nap/pause", &token, json!({})).await,
        200,
    )
    .await;
    app.kill9();
    app.start().await;
    assert_eq!(
        exec(&app, &token, "keep", &["cat", "/root/file"]).await["stdout"],
        "data\n"
    );
    assert_eq!(sprite(&app, &token, "nap").await["state"], "paused");
    expect_status(
        app.post("/v1/sprites/nap/resume", &token, json!({})).await,
        200,
    )
    .await;
    for name in ["keep", "nap"] {
        expect_status(
            app.delete(&format!("/v1/sprites/{name}"), &token).await,
            204,
        )
        .await;
    }
    assert!(app.log().contains("reconciled"), "{}", app.log());
}

#[tokio::test]
async fn nothing_runs_while_corral_is_stopped() {
    let mut app = App::spawn().await;
    let (_, token) = app.signup("down@example.com").await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "ticker", "disk_mb": 128}),
        )
        .await,
        201,
    )
    .await;
    let loop_cmd = "nohup sh -c 'while true; do date +%s%N >> /root/ticks; sleep 0.05; done' >/dev/null 2>&1 &";
    exec(&app, &token, "ticker", &["sh", "-c", loop_cmd]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.stop();
    let stopped = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = std::time::SystemTime::now();
    app.start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticks = exec(&app, &token, "ticker", &["cat", "/root/ticks"]).await;
    let nanos =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let (quiet_from, quiet_to) = (nanos(stopped) + 300_000_000, nanos(restarted) - 100_000_000);
    let ticks: Vec<u128> = ticks["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        ticks.iter().any(|t| *t < quiet_from),
        "the loop ran before the stop"
    );
    assert!(
        ticks.iter().any(|t| *t > quiet_to),
        "the loop runs again after the restart"
    );
    let while_down = ticks
        .iter()
        .filter(|t| (quiet_from..quiet_to).contains(*t))
        .count();
    assert_eq!(
        while_down, 0,
        "the sprite ran unmetered while Corral was stopped"
    );
    expect_status(app.delete("/v1/sprites/ticker", &token).await, 204).await;
}
