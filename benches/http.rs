//! The HTTP path against the driver called directly, in one run: sprite create, the
//! exec round trip and keystroke echo on a terminal (a key typed into `cat` on a
//! terminal until its echo is back: the console's feel), the way out (a request's time to
//! first byte and a 200 MiB download through the sprite's proxy beside the same from the
//! host directly), then `GET /v1/sprites` with 100
//! sprites under `wrk`.
//!
//! `cargo bench --bench http` (needs runsc, the default image and wrk: the set-up command
//! installs them).

#![allow(clippy::print_stdout)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vmm_driver::{DriverConfig, ExecRequest, ImageRef, MachineId, MachineSpec};

const RUNS: usize = 20;

mod support;
#[path = "support/wrk.rs"]
mod wrk;

use support::{image_dir, percentile, Server};

fn report(what: &str, http: &mut [Duration], direct: &mut [Duration]) {
    let (h50, h95) = (percentile(http, 0.5), percentile(http, 0.95));
    let (d50, d95) = (percentile(direct, 0.5), percentile(direct, 0.95));
    println!(
        "{what:<22} http p50 {:>8.2} ms p95 {:>8.2} ms | driver p50 {:>8.2} ms p95 {:>8.2} ms | ratio p50 {:.2}x",
        h50.as_secs_f64() * 1e3,
        h95.as_secs_f64() * 1e3,
        d50.as_secs_f64() * 1e3,
        d95.as_secs_f64() * 1e3,
        h50.as_secs_f64() / d50.as_secs_f64()
    );
}

/// An HTTP server on loopback: `/` answers a few bytes, `/big` 200 MiB.
async fn upstream() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let size: usize = if head.starts_with(b"GET /big") {
                    200 << 20
                } else {
                    5
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let chunk = vec![b'x'; 1 << 20];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if conn.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    port
}

/// `curl`'s own timings (time to first byte, total, bytes) from its `-w` output.
fn curl_times(out: &str) -> (f64, f64, f64) {
    let f: Vec<f64> = out
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    (f[0], f[1], f[2])
}

const CURL_TIMES: &str =
    "-sS -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}'";

/// Requests through the sprite's proxy beside the same from the host, in one run.
async fn network(url: &str, token: &str, port: u16) {
    let client = reqwest::Client::new();
    let exec = |script: String| {
        let client = client.clone();
        async move {
            let answer: Value = client
                .post(format!("{url}/v1/sprites/b0/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["sh", "-c", script], "timeout_s": 600}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["stdout"].as_str().unwrap_or_default().to_string()
        }
    };
    let host = |script: String| {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let direct_url = format!("http://127.0.0.1:{port}");
    let (mut proxied, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let out = exec(format!("curl {CURL_TIMES} http://up.test/")).await;
        proxied.push(Duration::from_secs_f64(curl_times(&out).0));
        let out = host(format!("curl --noproxy '*' {CURL_TIMES} {direct_url}/"));
        direct.push(Duration::from_secs_f64(curl_times(&out).0));
    }
    let (p50, d50) = (percentile(&mut proxied, 0.5), percentile(&mut direct, 0.5));
    println!(
        "request, first byte    proxied p50 {:>8.2} ms p95 {:>8.2} ms | direct p50 {:>8.2} ms | ratio p50 {:.2}x",
        p50.as_secs_f64() * 1e3,
        percentile(&mut proxied, 0.95).as_secs_f64() * 1e3,
        d50.as_secs_f64() * 1e3,
        p50.as_secs_f64() / d50.as_secs_f64()
    );
    let (_, total, bytes) =
        curl_times(&exec(format!("curl {CURL_TIMES} http://up.test/big")).await);
    let through = bytes / total / 1e6;
    let (_, total, bytes) = curl_times(&host(format!(
        "curl --noproxy '*' {CURL_TIMES} {direct_url}/big"
    )));
    let straight = bytes / total / 1e6;
    println!(
        "download 200 MiB       proxied {through:>8.1} MB/s | direct {straight:>8.1} MB/s | ratio {:.2}x",
        through / straight
    );
}

async fn start_server(upstream_port: u16) -> Server {
    // The way out reaches this process's upstream on loopback, unthrottled and unpriced
    // (so 100 sprites' bandwidth is no runway to reserve): the benchmark measures the
    // carriage, not the bill.
    support::start_server(&[
        ("CORRAL_PRICE_NETWORK_NANOS_PER_GB", "0".into()),
        ("CORRAL_EGRESS_ALLOW_RANGES", "127.0.0.0/8".into()),
        (
            "CORRAL_EGRESS_RESOLVE",
            format!("up.test=127.0.0.1:{upstream_port}"),
        ),
        ("CORRAL_NETWORK_MBPS", "100000".into()),
    ])
    .await
}

#[tokio::main]
async fn main() {
    let upstream_port = upstream().await;
    let server = start_server(upstream_port).await;
    let client = reqwest::Client::new();
    let token = support::signup(&server.url).await;
    let post = |path: String, body: Value| {
        client
            .post(format!("{}{path}", server.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };

    // The driver called directly, in this process, beside the server.
    let state = tempfile::tempdir().unwrap();
    let driver = vmm_driver::from_config(&DriverConfig {
        kind: "gvisor".into(),
        state_dir: state.path().to_path_buf(),
        image_dir: image_dir(),
        agent_path: env!("CARGO_BIN_EXE_corral").into(),
    })
    .await
    .expect("gvisor backend");

    println!("Corral HTTP path vs the driver called directly, {RUNS} runs each");
    let (mut http_create, mut direct_create) = (Vec::new(), Vec::new());
    let (mut http_exec, mut direct_exec) = (Vec::new(), Vec::new());
    let mut direct_ids = Vec::new();
    for i in 0..RUNS {
        let started = Instant::now();
        let response = post(
            "/v1/sprites".into(),
            json!({"name": format!("b{i}"), "disk_mb": 128, "memory_mb": 128}),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        http_create.push(started.elapsed());

        let id = MachineId::from_key(rand_key(i));
        let spec = MachineSpec {
            id: id.clone(),
            image: ImageRef::Operator("default".into()),
            cpus: 1,
            memory_mb: 128,
            disk_mb: 128,
        };
        let started = Instant::now();
        driver.create(&spec).await.unwrap();
        driver.start(&id).await.unwrap();
        direct_create.push(started.elapsed());
        direct_ids.push(id);
    }
    for i in 0..RUNS * 5 {
        let name = format!("b{}", i % RUNS);
        let started = Instant::now();
        let response = post(format!("/v1/sprites/{name}/exec"), json!({"cmd": ["true"]}))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        http_exec.push(started.elapsed());

        let request = ExecRequest {
            argv: vec!["true".into()],
            max_output_bytes: 1 << 20,
            ..Default::default()
        };
        let started = Instant::now();
        driver.exec(&direct_ids[i % RUNS], request).await.unwrap();
        direct_exec.push(started.elapsed());
    }
    report("create (to running)", &mut http_create, &mut direct_create);
    report("exec round trip", &mut http_exec, &mut direct_exec);
    let (mut http_echo, mut direct_echo) = (
        ws_echo(&server.url, &token, "b0").await,
        driver_echo(&driver, &direct_ids[0]).await,
    );
    report("keystroke echo (tty)", &mut http_echo, &mut direct_echo);
    network(&server.url, &token, upstream_port).await;
    for id in &direct_ids {
        driver.destroy(id).await.unwrap();
    }

    // 100 sprites, then an authenticated list under load.
    for i in RUNS..100 {
        let response = post(
            "/v1/sprites".into(),
            json!({"name": format!("b{i}"), "disk_mb": 64, "memory_mb": 64}),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 201);
    }
    let figures = wrk::wrk(&[
        "-t2".into(),
        "-c32".into(),
        "-d10s".into(),
        "--latency".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        format!("{}/v1/sprites", server.url),
    ]);
    println!("GET /v1/sprites (100 sprites, wrk -t2 -c32 -d10s): {figures}");
    use futures_util::StreamExt;
    futures_util::stream::iter(0..100)
        .map(|i| {
            client
                .delete(format!("{}/v1/sprites/b{i}", server.url))
                .bearer_auth(&token)
                .send()
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

const KEYSTROKES: usize = 100;

/// Keys typed into `cat` on a terminal over the exec WebSocket, each timed until its
/// echo arrives.
async fn ws_echo(url: &str, token: &str, sprite: &str) -> Vec<Duration> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let url = format!(
        "{}/v1/sprites/{sprite}/exec/ws?cmd=cat&tty=1",
        url.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut times = Vec::new();
    for i in 0..KEYSTROKES {
        let key = b'a' + (i % 26) as u8;
        let started = Instant::now();
        socket.send(Message::binary(vec![0, key])).await.unwrap();
        loop {
            match socket.next().await {
                Some(Ok(Message::Binary(frame))) if frame[0] == 1 && frame[1..].contains(&key) => {
                    break
                }
                Some(Ok(_)) => {}
                other => panic!("the echo never came: {other:?}"),
            }
        }
        times.push(started.elapsed());
    }
    let _ = socket.close(None).await;
    times
}

/// The same keys through the driver's stream, in-process.
async fn driver_echo(
    driver: &std::sync::Arc<dyn vmm_driver::Driver>,
    id: &MachineId,
) -> Vec<Duration> {
    let request = ExecRequest {
        argv: vec!["cat".into()],
        tty: Some(vmm_driver::TtySize { rows: 24, cols: 80 }),
        ..Default::default()
    };
    let mut stream = driver.exec_stream(id, request).await.unwrap();
    let mut times = Vec::new();
    for i in 0..KEYSTROKES {
        let key = b'a' + (i % 26) as u8;
        let started = Instant::now();
        stream.stdin.send(vec![key]).await.unwrap();
        loop {
            match stream.events.recv().await {
                Some(vmm_driver::ExecEvent::Stdout(bytes)) if bytes.contains(&key) => break,
                Some(vmm_driver::ExecEvent::Exit(code)) => panic!("cat exited with {code}"),
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
        times.push(started.elapsed());
    }
    times
}

/// A key no sprite of the server will have (its ids are random too).
fn rand_key(i: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (nanos ^ 0x5bd1_e995_u64.wrapping_mul(i as u64 + 1)) >> 1
}
