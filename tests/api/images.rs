//! Images end to end on real sprites: the default image's tools, a tenant image saved
//! from a sprite (private, billed, deleted only when nothing stands on it), fork (a
//! running counter goes on in both, admitted like a create), and export (an OCI archive
//! that skopeo copies, holding the sprite's file).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{expect_problem, expect_problem_naming, expect_status, App};

fn names(list: &Value) -> Vec<String> {
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

async fn create(app: &App, token: &str, body: Value) -> Value {
    expect_status(app.post("/v1/sprites", token, body).await, 201).await
}

#[tokio::test]
async fn tenant_images_are_saved_used_private_billed_and_deleted_when_free() {
    let app = App::spawn().await;
    let (_, a) = app.signup("a@images.io").await;
    let (_, b) = app.signup("b@images.io").await;

    let listed = expect_status(app.get("/v1/images", &a).await, 200).await;
    assert_eq!(listed["default"], "default");
    assert!(names(&listed).starts_with(&["default".into(), "minimal".into()]));

    // A create without `image` gets the developer image, and says so.
    let dev = create(&app, &a, json!({"name": "dev", "disk_mb": 256})).await;
    assert_eq!(dev["image"], "default");
    let tools = app
        .sh_ok(
            &a,
            "dev",
            "python3 -c 'print(6*7)' && git init -q /tmp/r && curl --version | head -1 && ps -e | head -1",
        )
        .await;
    let out = tools["stdout"].as_str().unwrap();
    assert!(out.starts_with("42\n") && out.contains("curl 7"), "{out}");
    let bare = create(
        &app,
        &a,
        json!({"name": "bare", "image": "minimal", "disk_mb": 128}),
    )
    .await;
    assert_eq!(bare["image"], "minimal");
    let missing = app.exec_ok(&a, "bare", &["python3", "-V"]).await;
    assert_eq!(
        missing["exit_code"], 127,
        "minimal has no python3: {missing}"
    );
    expect_status(app.delete("/v1/sprites/bare", &a).await, 204).await;
    expect_problem_naming(
        app.post("/v1/sprites", &a, json!({"name": "x", "image": "nope"}))
            .await,
        422,
        "validation",
        "default, minimal",
    )
    .await;

    // Save, then make a sprite from it: it starts with every file.
    app.sh_ok(&a, "dev", "echo template > /root/t.txt && rm /etc/issue")
        .await;
    let saved = expect_status(
        app.post("/v1/sprites/dev/images", &a, json!({"name": "tmpl"}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        (saved["owner"].clone(), saved["state"].clone()),
        (json!("tenant"), json!("ready"))
    );
    assert_eq!(saved["source_sprite"], "dev");
    assert!(saved["size_bytes"].as_u64().unwrap() > 0);
    for (name, status, code) in [
        ("tmpl", 409, "conflict"),
        ("default", 409, "conflict"),
        ("Bad Name", 422, "validation"),
    ] {
        expect_problem(
            app.post("/v1/sprites/dev/images", &a, json!({"name": name}))
                .await,
            status,
            code,
        )
        .await;
    }
    let copy = create(
        &app,
        &a,
        json!({"name": "copy", "image": "tmpl", "disk_mb": 256}),
    )
    .await;
    assert_eq!(copy["image"], "tmpl");
    let seen = app
        .sh_ok(
            &a,
            "copy",
            "cat /root/t.txt; test -e /etc/issue || echo gone",
        )
        .await;
    assert_eq!(seen["stdout"], "template\ngone\n");

    // Another tenant never sees, uses or deletes it.
    let theirs = expect_status(app.get("/v1/images", &b).await, 200).await;
    assert!(!names(&theirs).contains(&"tmpl".to_string()), "{theirs}");
    let refused = expect_problem(
        app.post("/v1/sprites", &b, json!({"name": "steal", "image": "tmpl"}))
            .await,
        422,
        "validation",
    )
    .await;
    assert!(
        !refused["detail"].as_str().unwrap().contains("tmpl,"),
        "{refused}"
    );
    expect_problem(app.delete("/v1/images/tmpl", &b).await, 404, "not_found").await;
    expect_problem(app.delete("/v1/images/default", &b).await, 403, "forbidden").await;

    // Its bytes are billed as stored data.
    let mut billed = false;
    for _ in 0..50 {
        let usage = expect_status(app.get("/v1/usage?by=hour", &a).await, 200).await;
        billed = usage["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["sprite"] == "image:tmpl" && r["disk_byte_s"].as_i64().unwrap_or(0) > 0);
        if billed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(billed, "the image's bytes are in the usage report");

    // Deleted while a sprite stands on it: gone from the list, files kept until then.
    let deleted = expect_status(app.delete("/v1/images/tmpl", &a).await, 200).await;
    assert_eq!(
        deleted,
        json!({"name": "tmpl", "state": "deleting", "sprites": 1})
    );
    assert!(
        !names(&expect_status(app.get("/v1/images", &a).await, 200).await).contains(&"tmpl".into())
    );
    expect_problem(
        app.post("/v1/sprites", &a, json!({"name": "late", "image": "tmpl"}))
            .await,
        422,
        "validation",
    )
    .await;
    let layers = app.path().join("machines/images");
    let held = |dir: &std::path::Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        held(&layers),
        1,
        "the image's files stay while copy stands on them"
    );
    assert_eq!(
        app.sh_ok(&a, "copy", "cat /root/t.txt").await["stdout"],
        "template\n"
    );
    expect_status(app.delete("/v1/sprites/copy", &a).await, 204).await;
    assert_eq!(
        held(&layers),
        0,
        "the last sprite on it took its files along"
    );
    expect_status(app.delete("/v1/sprites/dev", &a).await, 204).await;
}

/// The loop's counter: read again while a read falls between the file's truncation
/// and its write.
async fn counter(app: &App, token: &str, sprite: &str) -> u64 {
    let mut last = Value::Null;
    for _ in 0..50 {
        let out = app.sh_ok(token, sprite, "cat /tmp/counter").await;
        if let Some(n) = out["stdout"].as_str().and_then(|s| s.trim().parse().ok()) {
            return n;
        }
        last = out;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no counter: {last}")
}

#[tokio::test]
async fn a_fork_runs_on_with_the_same_memory_and_is_admitted_like_a_create() {
    let app = App::spawn().await;
    let (_, a) = app.signup("fork@images.io").await;
    create(
        &app,
        &a,
        json!({"name": "src", "disk_mb": 256, "idle_timeout_s": 0}),
    )
    .await;
    app.sh_ok(
        &a,
        "src",
        "echo on-disk > /root/d.txt; nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done' >/dev/null 2>&1 &",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let forked = expect_status(
        app.post("/v1/sprites/src/fork", &a, json!({"name": "twin"}))
            .await,
        201,
    )
    .await;
    assert_eq!(
        (forked["name"].clone(), forked["state"].clone()),
        (json!("twin"), json!("running"))
    );
    assert_eq!(
        (forked["image"].clone(), forked["disk_mb"].clone()),
        (json!("default"), json!(256))
    );
    let (t1, s1) = (
        counter(&app, &a, "twin").await,
        counter(&app, &a, "src").await,
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (t2, s2) = (
        counter(&app, &a, "twin").await,
        counter(&app, &a, "src").await,
    );
    assert!(
        t1 > 0 && t2 > t1 && s2 > s1,
        "twin {t1}->{t2}, src {s1}->{s2}"
    );
    assert_eq!(
        app.sh_ok(&a, "twin", "cat /root/d.txt").await["stdout"],
        "on-disk\n"
    );

    expect_problem(
        app.post("/v1/sprites/src/fork", &a, json!({"name": "twin"}))
            .await,
        409,
        "conflict",
    )
    .await;
    expect_status(
        app.put("/v1/limits", &a, json!({"max_running_sprites": 2}))
            .await,
        200,
    )
    .await;
    expect_problem_naming(
        app.post("/v1/sprites/src/fork", &a, json!({"name": "third"}))
            .await,
        403,
        "limit_exceeded",
        "max_running_sprites",
    )
    .await;
    expect_status(
        app.put("/v1/limits", &a, json!({"max_running_sprites": 10}))
            .await,
        200,
    )
    .await;
    expect_status(
        app.put("/v1/budget", &a, json!({"cap_nanos": 0})).await,
        200,
    )
    .await;
    expect_problem(
        app.post("/v1/sprites/src/fork", &a, json!({"name": "third"}))
            .await,
        402,
        "budget_exhausted",
    )
    .await;
    let listed = expect_status(app.get("/v1/sprites", &a).await, 200).await;
    assert_eq!(listed["sprites"].as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn an_export_is_an_oci_archive_that_skopeo_copies() {
    let app = App::spawn().await;
    let (_, a) = app.signup("export@images.io").await;
    let (_, b) = app.signup("other@images.io").await;
    create(&app, &a, json!({"name": "ship", "disk_mb": 256})).await;
    app.sh_ok(&a, "ship", "echo shipped > /root/app.txt").await;
    expect_problem(
        app.get("/v1/sprites/ship/export", &b).await,
        404,
        "not_found",
    )
    .await;

    let response = app.get("/v1/sprites/ship/export", &a).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let length: u64 = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Streamed to a file, as a client with little memory would.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("ship.tar");
    let mut file = std::fs::File::create(&archive).unwrap();
    let mut chunks = response.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        got += chunk.len() as u64;
        std::io::Write::write_all(&mut file, &chunk).unwrap();
    }
    assert_eq!(got, length);

    // skopeo checks every digest and size while it copies.
    let out = work.path().join("out");
    let copied = std::process::Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("dir:{}", out.display()))
        .output()
        .expect("skopeo (apt-get install skopeo)");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config: Value = serde_json::from_slice(&std::fs::read(out.join(config)).unwrap()).unwrap();
    assert_eq!(config["config"]["Cmd"], json!(["/bin/bash"]));
    let file = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(out.join(layer))
        .arg("./root/app.txt")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&file.stdout), "shipped\n");
    // The sprite runs on.
    app.sh_ok(&a, "ship", "true").await;
}
