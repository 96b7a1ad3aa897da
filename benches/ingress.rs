//! Sprites' URLs against the direct path, in one run: a request through the sprite's URL
//! on a warm keep-alive connection beside the same request made inside the sprite to
//! itself; a request to an idle-paused sprite (wake included); and requests per second
//! on one keep-alive connection (and on eight) under `wrk`.
//!
//! `cargo bench --bench ingress` (needs runsc, the default image and wrk).

#![allow(clippy::print_stdout)]

mod support;
#[path = "support/wrk.rs"]
mod wrk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::percentile;

/// The server the sprite runs (the ingress tests' own).
const SERVER: &str = include_str!("../tests/api/ingress/server.py");
const WARM: usize = 300;
const WAKES: usize = 5;

/// Requests made inside the sprite to itself on one keep-alive connection: each
/// request's milliseconds, one per line.
const INSIDE: &str = r#"
import http.client, time
c = http.client.HTTPConnection("127.0.0.1", 8080)
for i in range(300):
    t = time.perf_counter()
    c.request("GET", "/")
    c.getresponse().read()
    print((time.perf_counter() - t) * 1000)
"#;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let server = support::start_server(&[]).await;
    let token = support::signup(&server.url).await;
    let api = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        api.request(method, format!("{}{path}", server.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let sprite: Value = call(
        reqwest::Method::POST,
        "/v1/sprites",
        json!({"name": "web", "url_auth": "public", "idle_timeout_s": 0}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let url = sprite["url"].as_str().unwrap().to_string();
    api.put(format!(
        "{}/v1/sprites/web/files?path=/srv/server.py",
        server.url
    ))
    .bearer_auth(&token)
    .body(SERVER)
    .send()
    .await
    .unwrap();
    let exec = |script: String| {
        let call = call(
            reqwest::Method::POST,
            "/v1/sprites/web/exec",
            json!({"cmd": ["sh", "-c", script], "timeout_s": 600}),
        );
        async move {
            let answer: Value = call.await.unwrap().json().await.unwrap();
            answer["stdout"].as_str().unwrap_or_default().to_string()
        }
    };
    exec("(setsid nohup python3 /srv/server.py 8080 >/dev/null 2>&1 &); sleep 1".into()).await;

    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let host = reqwest::Url::parse(&url).unwrap();
    let host_header = format!("{}:{}", host.host_str().unwrap(), host.port().unwrap());
    let browser = reqwest::Client::builder()
        .resolve(host.host_str().unwrap(), addr)
        .build()
        .unwrap();
    println!("A sprite's URL vs the sprite calling itself, {WARM} requests each");
    let mut through = Vec::new();
    for _ in 0..WARM {
        let started = Instant::now();
        let body = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello from the sprite\n");
        through.push(started.elapsed());
    }
    let mut inside: Vec<Duration> = exec(format!("python3 -c '{INSIDE}'"))
        .await
        .lines()
        .filter_map(|l| l.parse::<f64>().ok())
        .map(|v| Duration::from_secs_f64(v / 1e3))
        .collect();
    assert!(!inside.is_empty(), "the in-sprite client printed nothing");
    let (t50, i50) = (percentile(&mut through, 0.5), percentile(&mut inside, 0.5));
    println!(
        "warm request           url p50 {:>7.2} ms p95 {:>7.2} ms | inside p50 {:>7.2} ms p95 {:>7.2} ms | ratio p50 {:.2}x",
        ms(t50),
        ms(percentile(&mut through, 0.95)),
        ms(i50),
        ms(percentile(&mut inside, 0.95)),
        ms(t50) / ms(i50)
    );

    // From idle-paused: the request wakes it.
    call(
        reqwest::Method::PATCH,
        "/v1/sprites/web",
        json!({"idle_timeout_s": 1}),
    )
    .await
    .unwrap();
    let mut woken = Vec::new();
    for _ in 0..WAKES {
        loop {
            let sprite: Value = call(reqwest::Method::GET, "/v1/sprites/web", json!({}))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if sprite["pause_reason"] == "idle" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A fresh client: a paused sprite's pooled connections are the server's, not ours.
        let cold = reqwest::Client::builder()
            .resolve(host.host_str().unwrap(), addr)
            .build()
            .unwrap();
        let started = Instant::now();
        let response = cold.get(&url).send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        woken.push(started.elapsed());
    }
    println!(
        "from idle-paused       url p50 {:>7.2} ms max {:>7.2} ms ({WAKES} wakes) | warm p50 {:>7.2} ms",
        ms(percentile(&mut woken, 0.5)),
        ms(percentile(&mut woken, 1.0)),
        ms(t50),
    );
    call(
        reqwest::Method::PATCH,
        "/v1/sprites/web",
        json!({"idle_timeout_s": 0}),
    )
    .await
    .unwrap();
    browser.get(&url).send().await.unwrap();

    for connections in [1, 8] {
        let figures = wrk::wrk(&[
            "-t1".into(),
            format!("-c{connections}"),
            "-d8s".into(),
            "--latency".into(),
            "-H".into(),
            format!("Host: {host_header}"),
            server.url.clone(),
        ]);
        println!("keep-alive, wrk -c{connections}    {figures}");
    }
    let inside_rps = 1000.0 / ms(i50);
    println!("inside, one connection ≈ {inside_rps:.0} requests/s (1 / its p50)");
    call(reqwest::Method::DELETE, "/v1/sprites/web", json!({}))
        .await
        .unwrap();
}
