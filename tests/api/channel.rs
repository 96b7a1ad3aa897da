//! The agent's host channel against a hostile sprite (issue 9, item 1): commands do not
//! inherit it, and a program that floods it or writes garbage into it through
//! `/proc/1/fd` moves the server's memory by no more than a stated bound, while other
//! sprites and tenants carry on.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{expect_status, App};

/// The most the server's resident memory may grow while one sprite floods its WebSocket
/// exec (client reading nothing) and another writes garbage into its agent's stream.
/// The queues are bounded to a few MiB per call (see `vmm-driver/TRUST.md`); the rest is
/// allocator slack. Before the fix the flood alone grew it by ~500 MiB.
pub const RSS_BOUND_MIB: u64 = 64;

async fn create(app: &App, token: &str, name: &str) {
    let body = json!({"name": name, "disk_mb": 256, "idle_timeout_s": 0});
    expect_status(app.post("/v1/sprites", token, body).await, 201).await;
}

/// The pid of the app's `corral serve` (the one whose data directory is the app's).
pub fn server_pid(app: &App) -> u32 {
    let want = format!("CORRAL_DATA_DIR={}", app.path().display());
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let is_serve = cmdline.split(|b| *b == 0).any(|a| a == b"serve");
        let ours = environ.split(|b| *b == 0).any(|v| v == want.as_bytes());
        if is_serve && ours {
            return pid;
        }
    }
    panic!("the server's process was not found");
}

/// Resident memory of a process, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Opens a WebSocket exec by hand and then never reads from it: the client a hostile
/// tenant would write to make the server buffer output.
async fn websocket_that_reads_nothing(app: &App, token: &str, path: &str) -> tokio::net::TcpStream {
    let addr = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    // Read only the answer's head (the 101), byte by byte, and nothing after it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("101 answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "answer: {head}");
    stream
}

#[tokio::test]
async fn an_ordinary_command_finds_no_channel_fd_open() {
    let app = App::spawn().await;
    let (_, token) = app.signup("fds@example.com").await;
    create(&app, &token, "plain").await;
    let out = app
        .exec_ok(
            &token,
            "plain",
            &["sh", "-c", "ls -l /proc/self/fd/ | tail -n +2"],
        )
        .await;
    let listing = out["stdout"].as_str().unwrap();
    assert!(!listing.contains("socket"), "an fd is a socket:\n{listing}");
    // 0-2 are the command's pipes and 3 is the directory `ls` reads: nothing else.
    let fds: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split(" -> ").next()?.split_whitespace().last())
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "listing:\n{listing}");
    // Nor does a command started by a command (a shell's child).
    let out = app
        .exec_ok(&token, "plain", &["sh", "-c", "sh -c 'ls /proc/self/fd'"])
        .await;
    assert_eq!(out["stdout"], "0\n1\n2\n3\n");
}

/// Frames a hostile program forges: an exit with code 42 for each of the first
/// channels, then garbage (a frame kind that does not exist).
fn forged_frames() -> Vec<u8> {
    let exit = br#"{"code":42,"timed_out":false,"truncated":false}"#;
    let mut out = Vec::new();
    for chan in 1u32..64 {
        out.extend_from_slice(&(exit.len() as u32).to_le_bytes());
        out.push(18);
        out.extend_from_slice(&chan.to_le_bytes());
        out.extend_from_slice(exit);
    }
    out.extend_from_slice(&[8, 0, 0, 0, 99, 1, 0, 0, 0]);
    out.extend_from_slice(b"garbage!");
    out
}

#[tokio::test]
async fn a_hostile_sprite_moves_server_memory_within_the_bound_and_touches_no_one_else() {
    let app = App::spawn().await;
    let (_, hostile) = app.signup("hostile@example.com").await;
    let (_, calm) = app.signup("calm@example.com").await;
    create(&app, &hostile, "flood").await;
    create(&app, &hostile, "forger").await;
    create(&app, &calm, "calm").await;
    for (token, name) in [(&hostile, "flood"), (&hostile, "forger"), (&calm, "calm")] {
        app.exec_ok(token, name, &["true"]).await;
    }
    let pid = server_pid(&app);
    let baseline = rss_kib(pid);

    // 512 MiB of output for a client that reads nothing.
    let flood = "/v1/sprites/flood/exec/ws?cmd=head&cmd=-c&cmd=536870912&cmd=/dev/zero";
    let _silent = websocket_that_reads_nothing(&app, &hostile, flood).await;

    // Forged exit frames, garbage and then 64 MiB of noise into every socket the agent
    // (pid 1) holds, from a program running as root in the sprite.
    let put = app
        .request(
            reqwest::Method::PUT,
            "/v1/sprites/forger/files?path=/root/frames",
            Some(&hostile),
        )
        .body(forged_frames())
        .send()
        .await
        .expect("put");
    expect_status(put, 204).await;
    // gVisor shows the agent's stream as `host:[N]`; fd 2 is the agent's console log.
    let attack = "n=0; for f in /proc/1/fd/*; do \
        case ${f##*/}:$(readlink $f) in 2:*) ;; *:host:*|*:socket*) n=$((n+1)); \
        (cat /root/frames; head -c 67108864 /dev/urandom) > $f & ;; esac; \
        done; wait; echo $n";
    let forger = {
        let (app_url, token, client) = (app.url.clone(), hostile.clone(), app.client.clone());
        tokio::spawn(async move {
            client
                .post(format!("{app_url}/v1/sprites/forger/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["sh", "-c", attack], "timeout_s": 20}))
                .send()
                .await
                .expect("attack")
        })
    };

    // Meanwhile another tenant's command runs its full course and says what it said.
    let started = Instant::now();
    let genuine = {
        let (app_url, token, client) = (app.url.clone(), calm.clone(), app.client.clone());
        tokio::spawn(async move {
            client
                .post(format!("{app_url}/v1/sprites/calm/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["sh", "-c", "sleep 3; echo genuine"]}))
                .send()
                .await
                .expect("genuine")
        })
    };
    let mut peak = baseline;
    while started.elapsed() < Duration::from_secs(8) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let genuine = expect_status(genuine.await.unwrap(), 200).await;
    assert_eq!(genuine["exit_code"], 0, "{genuine}");
    assert_eq!(genuine["stdout"], "genuine\n");
    assert!(started.elapsed() >= Duration::from_secs(3));

    // The attacking call ends. The agent's stream is a socket, which cannot be opened
    // through /proc (ENXIO, as on Linux); had a write got through, the host would have
    // closed the stream for the broken protocol and said so.
    let attacked = forger.await.unwrap();
    let status = attacked.status().as_u16();
    let body = attacked.text().await.unwrap();
    eprintln!("attacking call: {status} {body}");
    let refused = status == 200 && body.contains("No such device or address");
    let noticed = app.log().contains("agent broke the protocol");
    assert!(refused || noticed, "{status} {body}\n{}", app.log());
    if status == 200 {
        let answer: Value = serde_json::from_str(&body).unwrap();
        let reached: u32 = answer["stdout"].as_str().unwrap().trim().parse().unwrap();
        assert!(
            reached >= 2,
            "the agent's stream fds were not found: {body}"
        );
    }

    let grown_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!("server RSS: baseline {baseline} KiB, peak {peak} KiB, grown {grown_mib} MiB");
    assert!(
        grown_mib <= RSS_BOUND_MIB,
        "the server grew by {grown_mib} MiB (bound {RSS_BOUND_MIB} MiB)"
    );
    // The hostile sprite is usable again (a fresh agent beside init), and so is the
    // other tenant's.
    let out = app.exec_ok(&hostile, "forger", &["echo", "back"]).await;
    assert_eq!(out["stdout"], "back\n");
    assert_eq!(out["exit_code"], 0);
    let out = app.exec_ok(&calm, "calm", &["echo", "fine"]).await;
    assert_eq!(out["stdout"], "fine\n");
    let calm_view = expect_status(app.get("/v1/sprites/calm", &calm).await, 200).await;
    assert_eq!(calm_view["state"], "running");
}

async fn put_file(app: &App, token: &str, sprite: &str, path: &str, body: Vec<u8>) {
    let put = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/sprites/{sprite}/files?path={path}"),
            Some(token),
        )
        .body(body)
        .send()
        .await
        .expect("put");
    expect_status(put, 204).await;
}

/// A hostile agent: root in the sprite mounts its own program over `/.corral`, so the
/// agent the host starts after a restart of the server is that program. It floods
/// 64 MiB of well-formed output for the first call, then garbage.
#[tokio::test]
async fn a_planted_agent_that_floods_then_breaks_the_protocol_is_contained() {
    let mut app = App::spawn().await;
    let (_, hostile) = app.signup("planted@example.com").await;
    let (_, calm) = app.signup("bystander@example.com").await;
    create(&app, &hostile, "planted").await;
    create(&app, &calm, "calm").await;

    let mut frame = (256u32 << 10).to_le_bytes().to_vec();
    frame.push(16); // stdout
    frame.extend_from_slice(&1u32.to_le_bytes()); // the first call after a restart
    frame.extend_from_slice(&[b'z'; 256 << 10]);
    put_file(&app, &hostile, "planted", "/root/fake/frame", frame).await;
    let garbage = b"\x08\x00\x00\x00\x63\x01\x00\x00\x00garbage!".to_vec();
    put_file(&app, &hostile, "planted", "/root/fake/garbage", garbage).await;
    let script =
        "#!/bin/sh\ni=0\nwhile [ $i -lt 256 ]; do cat /root/fake/frame; i=$((i+1)); done\n\
                  cat /root/fake/garbage\nexec sleep 3600\n";
    put_file(&app, &hostile, "planted", "/root/fake/agent", script.into()).await;
    let planted = app.exec_ok(&hostile,
        "planted",
        &["sh", "-c", "chmod +x /root/fake/agent && mount --bind /root/fake /.corral && head -1 /.corral/agent"],
    )
    .await;
    assert_eq!(planted["stdout"], "#!/bin/sh\n", "{planted}");

    // The server restarts; the sandboxes keep running.
    app.stop();
    app.start().await;
    app.exec_ok(&calm, "calm", &["true"]).await;
    let pid = server_pid(&app);
    let baseline = rss_kib(pid);

    let call = {
        let (url, token, client) = (app.url.clone(), hostile.clone(), app.client.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/v1/sprites/planted/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["true"], "timeout_s": 20}))
                .send()
                .await
                .expect("exec")
        })
    };
    let mut peak = baseline;
    while !call.is_finished() {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = call.await.unwrap();
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("broke the protocol"), "{body}");

    let grown_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!("planted agent: baseline {baseline} KiB, peak {peak} KiB, grown {grown_mib} MiB");
    assert!(
        grown_mib <= RSS_BOUND_MIB,
        "the server grew by {grown_mib} MiB (bound {RSS_BOUND_MIB} MiB)"
    );
    // Nobody else noticed.
    let out = app.exec_ok(&calm, "calm", &["echo", "fine"]).await;
    assert_eq!(out["stdout"], "fine\n");
    let view = expect_status(app.get("/v1/sprites/planted", &hostile).await, 200).await;
    assert_eq!(view["state"], "running", "{view}");
}
