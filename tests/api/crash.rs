//! kill -9 of the server mid-checkpoint and mid-restore, and a sandbox that crashes:
//! after a restart nothing half-made is left — no checkpoint of size 0 listed, no
//! `.tmp` or `.restore` copies on the host, the per-sprite limit counting only real
//! checkpoints — and a deleted sprite leaves no cgroup directory behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{expect_problem_naming, expect_status, App};

const LIMIT: usize = 3;

/// Files under `dir` whose names end `.tmp` or `.restore`, skipping the mounted disk
/// and root of each machine (the sprite's own files are its business).
fn half_made(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || name.ends_with(".restore") {
            out.push(path.clone());
        }
        let mounted = name == "root" || name == "disk";
        if entry.file_type().is_ok_and(|t| t.is_dir()) && !mounted {
            half_made(&path, out);
        }
    }
}

fn assert_nothing_half_made(app: &App) {
    let mut found = Vec::new();
    half_made(app.path(), &mut found);
    assert!(found.is_empty(), "left behind: {found:?}");
}

async fn checkpoints(app: &App, token: &str) -> Vec<Value> {
    let list = expect_status(app.get("/v1/sprites/c/checkpoints", token).await, 200).await;
    list["checkpoints"].as_array().unwrap().clone()
}

/// The machine id of the server's only sprite.
fn machine(app: &App) -> String {
    let dirs: Vec<String> = std::fs::read_dir(app.path().join("machines/machines"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn cgroup_dirs(machine: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join("corral").join(machine))
        .filter(|p| p.exists())
        .collect()
}

/// Sends `path` as a POST and kills the server `after` it was sent.
async fn kill_during(app: &mut App, token: &str, path: &str, after: Duration) {
    let request = app
        .client
        .post(format!("{}{path}", app.url))
        .bearer_auth(token)
        .json(&json!({}))
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(after).await;
    app.kill9();
    let _ = in_flight.await;
}

#[tokio::test]
async fn kill_9_mid_checkpoint_and_mid_restore_leaves_nothing_half_made() {
    let mut app = App::spawn_with(&[
        ("CORRAL_MAX_CHECKPOINTS_PER_SPRITE", "3"),
        ("CORRAL_DEFAULT_IDLE_TIMEOUT_S", "0"),
        // The test finds the sprite's machine as the only one on disk.
        ("CORRAL_WARM_POOL", "0"),
    ])
    .await;
    let (_, token) = app.signup("crash@example.com").await;
    expect_status(
        app.post("/v1/sprites", &token, json!({"name": "c", "disk_mb": 512}))
            .await,
        201,
    )
    .await;
    // 100 MB of data that does not compress: a checkpoint takes a while to copy.
    app.sh_ok(
        &token,
        "c",
        "dd if=/dev/urandom of=/root/data bs=1M count=100 2>/dev/null && sync",
    )
    .await;
    let id = machine(&app);

    // Killed at several points of a checkpoint: before, during and after the copy.
    for ms in [40, 90, 150, 250] {
        kill_during(
            &mut app,
            &token,
            "/v1/sprites/c/checkpoints",
            Duration::from_millis(ms),
        )
        .await;
        app.start().await;
        assert_nothing_half_made(&app);
        for c in checkpoints(&app, &token).await {
            assert!(c["size_bytes"].as_i64().unwrap() > 0, "listed: {c}");
            // Whatever is listed restores.
            let restored = expect_status(
                app.post(
                    &format!(
                        "/v1/sprites/c/checkpoints/{}/restore",
                        c["id"].as_str().unwrap()
                    ),
                    &token,
                    json!({}),
                )
                .await,
                200,
            )
            .await;
            assert_eq!(restored["state"], "running", "{restored}");
        }
        app.sh_ok(&token, "c", "test -s /root/data").await;
    }

    // The limit counts only real checkpoints.
    let real = checkpoints(&app, &token).await.len();
    assert!(real < LIMIT, "{real} checkpoints survived the kills");
    for _ in real..LIMIT {
        expect_status(
            app.post("/v1/sprites/c/checkpoints", &token, json!({}))
                .await,
            201,
        )
        .await;
    }
    expect_problem_naming(
        app.post("/v1/sprites/c/checkpoints", &token, json!({}))
            .await,
        403,
        "limit_exceeded",
        "max_checkpoints_per_sprite",
    )
    .await;

    // Killed mid-restore: the copy of the disk being put back is removed, the sprite
    // runs again on a whole disk.
    let first = checkpoints(&app, &token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for ms in [30, 80] {
        kill_during(
            &mut app,
            &token,
            &format!("/v1/sprites/c/checkpoints/{first}/restore"),
            Duration::from_millis(ms),
        )
        .await;
        app.start().await;
        assert_nothing_half_made(&app);
        app.sh_ok(&token, "c", "test -s /root/data").await;
    }
    assert_eq!(checkpoints(&app, &token).await.len(), LIMIT);

    // A sandbox that crashes (its processes killed behind Corral's back), then the
    // sprite deleted: no cgroup directory of it is left in any hierarchy.
    assert!(!cgroup_dirs(&id).is_empty(), "a running sprite has cgroups");
    let procs =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/corral/{id}/cgroup.procs")).unwrap();
    for pid in procs.split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server finds the sandbox gone on the next exec.
    let _ = app
        .post("/v1/sprites/c/exec", &token, json!({"cmd": ["true"]}))
        .await;
    expect_status(app.delete("/v1/sprites/c", &token).await, 204).await;
    assert!(cgroup_dirs(&id).is_empty(), "left: {:?}", cgroup_dirs(&id));
}
