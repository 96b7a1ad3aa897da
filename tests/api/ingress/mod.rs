//! Sprites' URLs and tunnels with real sprites: a server in the sprite answers through
//! its URL (private by default, opened by a sprites:http token or a link's cookie, never
//! by another tenant's), an idle sprite wakes on a request, a budget-paused one answers
//! 402 and stays paused, WebSockets and large bodies pass with bounded memory, and
//! `corral proxy` carries a TCP conversation.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{expect_status, App};

mod tunnels;

/// The server the tests run in their sprites.
const SERVER: &str = include_str!("server.py");

/// Creates `name` and starts the test server in it on `port`; answers its view.
pub async fn sprite_with_server(
    app: &App,
    token: &str,
    name: &str,
    port: u16,
    extra: Value,
) -> Value {
    let mut body = json!({"name": name, "memory_mb": 256, "disk_mb": 512});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    expect_status(app.post("/v1/sprites", token, body).await, 201).await;
    let put = app
        .request(
            Method::PUT,
            &format!("/v1/sprites/{name}/files?path=/srv/server.py"),
            Some(token),
        )
        .body(SERVER)
        .send()
        .await
        .unwrap();
    expect_status(put, 204).await;
    start_listening(
        app,
        token,
        name,
        &format!("python3 /srv/server.py {port}"),
        port,
    )
    .await;
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

/// Starts `command` in the background in the sprite and waits until `port` accepts.
pub async fn start_listening(app: &App, token: &str, name: &str, command: &str, port: u16) {
    let script = format!(
        "(setsid nohup {command} >/tmp/server.log 2>&1 &); \
         for i in $(seq 100); do \
           python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}))' 2>/dev/null && exit 0; \
           sleep 0.1; \
         done; cat /tmp/server.log; exit 1"
    );
    app.sh_ok(token, name, &script).await;
}

/// A client that reaches sprites' host names at the server (as `*.localhost` does in a
/// browser), without following redirects.
pub fn browser(app: &App, url: &str) -> reqwest::Client {
    let server: SocketAddr = app.url.trim_start_matches("http://").parse().unwrap();
    let host = reqwest::Url::parse(url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    reqwest::Client::builder()
        .resolve(&host, server)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn url_of(sprite: &Value) -> String {
    sprite["url"].as_str().expect("a url").to_string()
}

#[tokio::test]
async fn a_private_sprite_opens_to_its_tenant_only() {
    let app = App::spawn().await;
    let (_, alice) = app.signup("alice@example.com").await;
    let (_, bob) = app.signup("bob@example.com").await;
    let web = sprite_with_server(&app, &alice, "web", 8080, json!({})).await;
    let url = url_of(&web);
    assert_eq!(web["url_auth"], "sprite", "{web}");
    assert!(url.contains(".sprites.localhost:"), "{url}");
    let client = browser(&app, &url);

    // No credentials: 401, in words.
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("private"));

    // A session holds sprites:http; the sprite never sees the token.
    let page = client
        .get(format!("{url}/headers"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.text().await.unwrap();
    assert!(!headers.contains("authorization"), "{headers}");
    assert!(headers.contains("x-forwarded-for: 127.0.0.1"), "{headers}");
    assert!(headers.contains("x-forwarded-proto: http"), "{headers}");
    let host = reqwest::Url::parse(&url).unwrap();
    let host = format!("{}:{}", host.host_str().unwrap(), host.port().unwrap());
    assert!(
        headers.contains(&format!("x-forwarded-host: {host}")),
        "{headers}"
    );

    // A token without the scope is refused; one with it opens the sprite.
    let narrow = app
        .mint(&alice, json!({"name": "ro", "scopes": ["sprites:read"]}))
        .await;
    let narrow = narrow["token"].as_str().unwrap();
    let forbidden = client.get(&url).bearer_auth(narrow).send().await.unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let http = app
        .mint(&alice, json!({"name": "http", "scopes": ["sprites:http"]}))
        .await;
    let http = http["token"].as_str().unwrap();
    let ok = client.get(&url).bearer_auth(http).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "hello from the sprite\n");

    // Another tenant's token is no credential for it.
    let stranger = client.get(&url).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        expect_status(
            app.post("/v1/sprites/web/url/link", &bob, json!({})).await,
            404
        )
        .await["code"],
        "not_found"
    );

    // A link sets a cookie for this host and sends the browser to the clean URL.
    let link = expect_status(
        app.post("/v1/sprites/web/url/link", &alice, json!({}))
            .await,
        200,
    )
    .await;
    let link = link["url"].as_str().unwrap();
    assert!(link.starts_with(&url), "{link}");
    let landing = client.get(link).send().await.unwrap();
    assert_eq!(landing.status(), StatusCode::SEE_OTHER);
    assert_eq!(landing.headers()[LOCATION], "/");
    let set = landing.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && !set.to_ascii_lowercase().contains("domain="),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let with_cookie = client
        .get(format!("{url}/headers"))
        .header(COOKIE, format!("theme=dark; {cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let seen = with_cookie.text().await.unwrap();
    assert!(
        seen.contains("cookie: theme=dark") && !seen.contains("corral_sprite"),
        "{seen}"
    );
    // A forged or reused-elsewhere pass opens nothing.
    let tampered = link.replace("pass=", "pass=x");
    assert_eq!(
        client.get(&tampered).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Bob's sprite of the same name has another host; Alice's cookie does not open it.
    let bobs = sprite_with_server(&app, &bob, "web", 8080, json!({})).await;
    let bobs_url = url_of(&bobs);
    assert_ne!(bobs_url, url);
    let other = browser(&app, &bobs_url);
    let crossed = other
        .get(&bobs_url)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), StatusCode::UNAUTHORIZED);
    let crossed = other
        .get(&bobs_url)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), StatusCode::UNAUTHORIZED);

    // Public: anyone; the switch is a PATCH.
    let public = expect_status(
        app.request(Method::PATCH, "/v1/sprites/web", Some(&alice))
            .json(&json!({"url_auth": "public"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(public["url_auth"], "public");
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    // curl with the Host header, against the server's own address.
    let output = Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Host: {host}"),
            &format!("{}/", app.url),
        ])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello from the sprite\n"
    );

    // Nothing on the port: 502 saying so; a deleted sprite: 404.
    let moved = app
        .request(Method::PATCH, "/v1/sprites/web", Some(&alice))
        .json(&json!({"http_port": 9999}))
        .send()
        .await
        .unwrap();
    expect_status(moved, 200).await;
    let empty = client.get(&url).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_GATEWAY);
    assert!(empty
        .text()
        .await
        .unwrap()
        .contains("nothing in it answers on port 9999"));
    expect_status(app.delete("/v1/sprites/web", &alice).await, 204).await;
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_idle_sprite_wakes_on_a_request() {
    let app = App::spawn().await;
    let (_, token) = app.signup("idle@example.com").await;
    let web = sprite_with_server(
        &app,
        &token,
        "nap",
        8080,
        json!({"idle_timeout_s": 1, "url_auth": "public"}),
    )
    .await;
    let url = url_of(&web);
    let client = browser(&app, &url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sprite = expect_status(app.get("/v1/sprites/nap", &token).await, 200).await;
        if sprite["pause_reason"] == "idle" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sprite never idled: {sprite}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.text().await.unwrap(), "hello from the sprite\n");
    let sprite = expect_status(app.get("/v1/sprites/nap", &token).await, 200).await;
    assert_eq!(sprite["state"], "running", "{sprite}");
    assert_eq!(sprite["last_activity"], "http", "{sprite}");
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("corral_sprite_wakes_total 1"), "{metrics}");

    // An open WebSocket keeps it awake past its idle timeout; it idles once closed.
    let host = reqwest::Url::parse(&url).unwrap();
    let host = format!("{}:{}", host.host_str().unwrap(), host.port().unwrap());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            app.url.trim_start_matches("http://")
        ))
        .unwrap();
    request.headers_mut().insert(HOST, host.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    for round in 0..4 {
        socket
            .send(Message::Text(format!("ping {round}").into()))
            .await
            .unwrap();
        let answer = socket.next().await.unwrap().unwrap();
        assert_eq!(answer, Message::Text(format!("echo: ping {round}").into()));
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let sprite = expect_status(app.get("/v1/sprites/nap", &token).await, 200).await;
    assert_eq!(
        sprite["state"], "running",
        "an open connection keeps it awake: {sprite}"
    );
    socket.close(None).await.unwrap();
    drop(socket);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sprite = expect_status(app.get("/v1/sprites/nap", &token).await, 200).await;
        if sprite["pause_reason"] == "idle" {
            break;
        }
        assert!(Instant::now() < deadline, "it never idled again: {sprite}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_budget_paused_sprite_answers_402_and_stays_paused() {
    let app = crate::money::spawn(&[]).await;
    let (_, token) = app.signup("broke@example.com").await;
    crate::money::set_budget(
        &app,
        &token,
        // Room for the server to start (its readiness probe runs Python in the sprite),
        // then `yes` spends the rest within seconds.
        json!({"cap_nanos": 6 * crate::money::CPU_PRICE}),
    )
    .await;
    let web = sprite_with_server(
        &app,
        &token,
        "hog",
        8080,
        json!({"idle_timeout_s": 0, "url_auth": "public"}),
    )
    .await;
    crate::money::start_yes(&app, &token, "hog").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sprite = crate::money::sprite(&app, &token, "hog").await;
        if sprite["pause_reason"] == "budget" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cap never paused it: {sprite}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = url_of(&web);
    let answer = browser(&app, &url).get(&url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(answer.text().await.unwrap().contains("paused (budget)"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sprite = crate::money::sprite(&app, &token, "hog").await;
    assert_eq!(sprite["state"], "paused", "{sprite}");
    assert_eq!(sprite["pause_reason"], "budget", "{sprite}");
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn large_bodies_stream_with_flat_memory_and_are_metered() {
    let app = App::spawn_with(&[("CORRAL_NETWORK_MBPS", "4000")]).await;
    let (_, token) = app.signup("big@example.com").await;
    let web = sprite_with_server(&app, &token, "big", 8080, json!({"url_auth": "public"})).await;
    let url = url_of(&web);
    let client = browser(&app, &url);
    let pid = app.pid();
    let before = rss_kib(pid);
    const SIZE: u64 = 200 << 20;
    let mut response = client
        .get(format!("{url}/bytes/{SIZE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(SIZE));
    let (mut got, mut peak) = (0u64, before);
    while let Some(chunk) = response.chunk().await.unwrap() {
        got += chunk.len() as u64;
        peak = peak.max(rss_kib(pid));
    }
    assert_eq!(got, SIZE);
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 64,
        "the server grew by {grew_mib} MiB during a 200 MiB download"
    );

    // An upload streams the other way, whole.
    let upload: Vec<u8> = (0..(32u32 << 20)).map(|i| (i % 251) as u8).collect();
    let sent = client
        .post(format!("{url}/upload"))
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    let answer = sent.text().await.unwrap();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(&upload));
    assert_eq!(answer, format!("{} {digest}\n", upload.len()));

    // Both count as the sprite's network bytes.
    let log = expect_status(app.get("/v1/sprites/big/network/log", &token).await, 200).await;
    let sent: u64 = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["bytes_out"].as_u64().unwrap_or(0))
        .sum();
    assert!(sent >= SIZE, "the log counts what the sprite sent: {log}");
}
