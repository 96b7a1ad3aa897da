//! Network out of a sprite, end to end: real sprites reach real HTTP and HTTPS servers
//! on this host's loopback through the agent's proxy and the server's gateway (made
//! reachable only by the test-only `CORRAL_EGRESS_ALLOW_RANGES` and
//! `CORRAL_EGRESS_RESOLVE`); rules allow and deny by name with the rule in the answer;
//! private addresses stay refused under `allow *`; a policy change cuts an open stream;
//! the log names every decision with its bytes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{expect_problem, expect_status, App};

/// A small HTTP server on loopback: `/` answers a greeting; `/slow` sends a line every
/// 100 ms for a minute (a stream to cut).
async fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
                let head = String::from_utf8_lossy(&head).to_string();
                if head.starts_with("GET /headers") {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                        head.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    return;
                }
                if head.starts_with("GET /big") {
                    let size = 3_000_000;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.write_all(&vec![b'x'; size]).await;
                    return;
                }
                if head.starts_with("GET /slow") {
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                        .await;
                    for i in 0..600 {
                        if conn
                            .write_all(format!("tick {i}\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    return;
                }
                let body = format!(
                    "hello from upstream; you sent: {}",
                    head.lines().next().unwrap_or("")
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_sprites_bandwidth_holds() {
    let plain = upstream().await;
    let resolve = format!("up.test=127.0.0.1:{plain}");
    let app = App::spawn_with(&[
        ("CORRAL_EGRESS_ALLOW_RANGES", "127.0.0.0/8"),
        ("CORRAL_EGRESS_RESOLVE", &resolve),
        ("CORRAL_NETWORK_MBPS", "16"),
    ])
    .await;
    let (_, token) = app.signup("bandwidth@example.com").await;
    // A sprite may take less than the operator's bandwidth, never more.
    expect_problem(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "greedy", "network_mbps": 17}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let dl = expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "dl", "idle_timeout_s": 0, "network_mbps": 8}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(dl["network_mbps"], 8);
    let out = sh(
        &app,
        &token,
        "dl",
        "curl -sS -o /dev/null -w '%{size_download} %{time_total}' http://up.test/big",
    )
    .await;
    let text = stdout(&out);
    let mut fields = text.split_whitespace();
    let bytes: f64 = fields.next().unwrap_or("0").parse().unwrap();
    let seconds: f64 = fields.next().unwrap_or("0").parse().unwrap();
    assert_eq!(bytes, 3_000_000.0, "{out}");
    // 8 Mbit/s is 1,000,000 bytes a second.
    let rate = bytes / seconds;
    assert!(
        (900_000.0..=1_100_000.0).contains(&rate),
        "{rate:.0} bytes/s ({out})"
    );

    // The bytes are metered and priced at $0.09 per GB. A tick that comes late (a busy
    // host) bills at most what the bandwidth could move in one window, like CPU time:
    // the rest is written off, never billed past what the rule reserved.
    let mut metered = Value::Null;
    for _ in 0..50 {
        let usage = expect_status(app.get("/v1/usage?by=hour", &token).await, 200).await;
        metered = usage["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["sprite"] == "dl")
            .cloned()
            .unwrap_or(Value::Null);
        if metered["network_bytes"].as_u64().unwrap_or(0) >= 2_900_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let billed = metered["network_bytes"].as_u64().unwrap_or(0);
    assert!(
        (2_500_000..=3_001_000).contains(&billed),
        "the download's bytes, never more: {metered}"
    );
    let network_cost = (billed * 90_000_000).div_ceil(1_000_000_000) as i64;
    assert!(
        metered["cost_nanos"].as_i64().unwrap_or(0) >= network_cost,
        "{metered}"
    );
    let prices = expect_status(app.get("/v1/prices", &token).await, 200).await;
    assert_eq!(prices["network_nanos_per_gb"], 90_000_000);
}

/// `openssl s_server` with a certificate for `secure.test`, on a free loopback port.
struct TlsUpstream {
    child: Child,
    port: u16,
    cert: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl TlsUpstream {
    fn start() -> TlsUpstream {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=secure.test",
            ])
            .args(["-addext", "subjectAltName=DNS:secure.test", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(made.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsUpstream {
            child,
            port,
            cert: std::fs::read(&cert).unwrap(),
            _dir: dir,
        }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sh(app: &App, token: &str, sprite: &str, script: &str) -> Value {
    let out = expect_status(
        app.post(
            &format!("/v1/sprites/{sprite}/exec"),
            token,
            json!({"cmd": ["sh", "-c", script], "timeout_s": 60}),
        )
        .await,
        200,
    )
    .await;
    out
}

fn stdout(out: &Value) -> &str {
    out["stdout"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sprites_reach_the_world_on_the_tenants_terms() {
    let plain = upstream().await;
    let tls = TlsUpstream::start();
    let resolve = format!(
        "up.test=127.0.0.1:{plain},secure.test=127.0.0.1:{},rebind.test=10.0.0.7",
        tls.port
    );
    let app = App::spawn_with(&[
        ("CORRAL_EGRESS_ALLOW_RANGES", "127.0.0.0/8"),
        ("CORRAL_EGRESS_RESOLVE", &resolve),
    ])
    .await;
    let (_, token) = app.signup("net@example.com").await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "web", "idle_timeout_s": 0}),
        )
        .await,
        201,
    )
    .await;
    expect_status(
        app.request(
            reqwest::Method::PUT,
            "/v1/sprites/web/files?path=/root/ca.pem",
            Some(&token),
        )
        .body(tls.cert.clone())
        .send()
        .await
        .unwrap(),
        204,
    )
    .await;

    // The operator's default (allow-public) lets curl and python3 out, HTTP and HTTPS.
    let out = sh(&app, &token, "web", "curl -sS http://up.test/hello").await;
    assert_eq!(
        stdout(&out),
        "hello from upstream; you sent: GET /hello HTTP/1.1",
        "{out}"
    );
    let out = sh(
        &app,
        &token,
        "web",
        "python3 -c 'import urllib.request as u; print(u.urlopen(\"http://up.test/py\").read().decode())'",
    )
    .await;
    assert!(stdout(&out).contains("GET /py HTTP/1.1"), "{out}");
    let out = sh(
        &app,
        &token,
        "web",
        "curl -sS --cacert /root/ca.pem https://secure.test/ | head -c 200",
    )
    .await;
    assert!(
        stdout(&out).contains("s_server"),
        "HTTPS through CONNECT: {out}"
    );
    let out = sh(
        &app,
        &token,
        "web",
        "SSL_CERT_FILE=/root/ca.pem python3 -c 'import urllib.request as u; print(u.urlopen(\"https://secure.test/\").status)'",
    )
    .await;
    assert_eq!(stdout(&out).trim(), "200", "{out}");

    // ssh (and git over ssh) take the way out through the agent's ProxyCommand: the
    // connection is made (the upstream is no ssh server, so the handshake fails).
    let out = sh(
        &app,
        &token,
        "web",
        "printf 'GET /over-connect HTTP/1.1\r\nHost: up.test\r\n\r\n' | /.corral/agent agent connect up.test 80",
    )
    .await;
    assert!(
        stdout(&out).contains("you sent: GET /over-connect"),
        "{out}"
    );
    let out = sh(
        &app,
        &token,
        "web",
        "GIT_TERMINAL_PROMPT=0 git ls-remote ssh://git@up.test/repo.git 2>&1; true",
    )
    .await;
    let log = expect_status(app.get("/v1/sprites/web/network/log", &token).await, 200).await;
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["host"] == "up.test" && e["port"] == 22 && e["allowed"] == true),
        "git's ssh went through the proxy: {out} {log}"
    );

    // A rule denies by name, and the answer names it; SOCKS says "not allowed by ruleset".
    let policy = json!({"rules": [{"domain": "*", "action": "allow"}, {"domain": "*.test", "action": "deny"},
                                   {"domain": "secure.test", "action": "allow", "ports": [443]}]});
    expect_status(
        app.put("/v1/sprites/web/policy/network", &token, policy)
            .await,
        200,
    )
    .await;
    let out = sh(
        &app,
        &token,
        "web",
        "curl -sS -i http://up.test/ | tr -d '\\r'",
    )
    .await;
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        text.contains(
            "X-Corral-Refused: up.test:80 not allowed: rule \"deny *.test\" of the sprite's policy"
        ),
        "{out}"
    );
    let out = sh(
        &app,
        &token,
        "web",
        "curl -sS --socks5-hostname 127.0.0.1:1080 http://up.test/ 2>&1; echo code=$?",
    )
    .await;
    assert!(stdout(&out).contains("code=97"), "SOCKS refusal: {out}");
    let out = sh(
        &app,
        &token,
        "web",
        "curl -sS -o /dev/null -w '%{http_code}' --cacert /root/ca.pem https://secure.test/",
    )
    .await;
    assert_eq!(stdout(&out), "200", "the more specific allow wins: {out}");

    // Private addresses stay refused under `allow *`: by address, and by a name that
    // resolves to one.
    let everything = json!({"rules": [{"domain": "*", "action": "allow"}]});
    expect_status(
        app.put("/v1/sprites/web/policy/network", &token, everything)
            .await,
        200,
    )
    .await;
    for target in [
        "http://10.1.2.3/",
        "http://rebind.test/",
        "http://169.254.169.254/latest/",
    ] {
        let out = sh(
            &app,
            &token,
            "web",
            &format!("curl -sS -i {target} | tr -d '\\r' | grep X-Corral-Refused"),
        )
        .await;
        assert!(stdout(&out).contains("always refused"), "{target}: {out}");
    }

    // A policy change cuts an open stream.
    let stream = tokio::spawn({
        let (url, token) = (app.url.clone(), token.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/sprites/web/exec"))
                .bearer_auth(token)
                .json(&json!({"cmd": ["sh", "-c", "curl -sS -N http://up.test/slow | wc -l; echo done"], "timeout_s": 120}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = expect_status(app.get("/v1/sprites/web/network/log", &token).await, 200).await;
    let open = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["open"] == true)
        .cloned();
    let open = open.unwrap_or_else(|| panic!("the slow stream is open: {log}"));
    assert_eq!(
        (open["host"].clone(), open["port"].clone()),
        (json!("up.test"), json!(80))
    );
    let cut = json!({"rules": [{"domain": "up.test", "action": "deny"}]});
    let started = std::time::Instant::now();
    expect_status(
        app.put("/v1/sprites/web/policy/network", &token, cut).await,
        200,
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(20), stream)
        .await
        .expect("the cut stream ends")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cut at once, not at the end of the download"
    );
    let lines: u64 = stdout(&out)
        .lines()
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(lines > 3 && lines < 200, "some ticks, then cut: {out}");

    // The log: every decision, with its rule and bytes.
    let log = expect_status(app.get("/v1/sprites/web/network/log", &token).await, 200).await;
    let entries = log["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["allowed"] == false && e["rule"].as_str().unwrap().contains("deny *.test")));
    assert!(entries.iter().any(|e| e["allowed"] == true
        && e["host"] == "secure.test"
        && e["bytes_in"].as_u64().unwrap() > 1000));

    // The tenant's default applies to sprites without a matching rule of their own;
    // bad rules are named.
    expect_status(
        app.put(
            "/v1/policy/network",
            &token,
            json!({"rules": [{"include": "package-registries"}]}),
        )
        .await,
        200,
    )
    .await;
    let tenant = expect_status(app.get("/v1/policy/network", &token).await, 200).await;
    assert!(tenant["effective"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["domain"] == "pypi.org"));
    expect_problem(
        app.put(
            "/v1/policy/network",
            &token,
            json!({"rules": [{"include": "everything"}]}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let (_, other) = app.signup("other@example.com").await;
    expect_problem(
        app.get("/v1/sprites/web/network/log", &other).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_budget_pause_closes_the_sprites_connections() {
    let plain = upstream().await;
    let resolve = format!("up.test=127.0.0.1:{plain}");
    let app = crate::money::spawn(&[
        ("CORRAL_EGRESS_ALLOW_RANGES", "127.0.0.0/8".to_string()),
        ("CORRAL_EGRESS_RESOLVE", resolve),
    ])
    .await;
    let (_, token) = app.signup("cut@example.com").await;
    crate::money::set_budget(
        &app,
        &token,
        json!({"cap_nanos": 3 * crate::money::CPU_PRICE}),
    )
    .await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "hog", "cpus": 1, "memory_mb": 512, "disk_mb": 256, "idle_timeout_s": 0}),
        )
        .await,
        201,
    )
    .await;
    // A download that would go on for a minute, then a spinning program.
    sh(
        &app,
        &token,
        "hog",
        "(nohup curl -sS -N http://up.test/slow >/dev/null 2>&1 &); sleep 1",
    )
    .await;
    crate::money::start_yes(&app, &token, "hog").await;
    // Seconds on a quiet host; a loaded one gives `yes` less of the CPU.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let sprite = crate::money::sprite(&app, &token, "hog").await;
        if sprite["pause_reason"] == "budget" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cap never paused the sprite: {sprite}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut closed = false;
    for _ in 0..50 {
        let log = expect_status(app.get("/v1/sprites/hog/network/log", &token).await, 200).await;
        let entries = log["entries"].as_array().unwrap().clone();
        let download = entries
            .iter()
            .find(|e| e["host"] == "up.test" && e["allowed"] == true);
        if download.is_some_and(|e| e["open"] == false && e["bytes_in"].as_u64().unwrap_or(0) > 0) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the budget pause closed the download");
}

/// An HTTPS server on loopback (Python's, with a certificate for `host`) that answers
/// every GET with the request's headers.
struct EchoTls {
    child: Child,
    port: u16,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl EchoTls {
    fn start(host: &str) -> EchoTls {
        // An authority and a certificate it signs: what the way out checks upstream
        // servers against (rustls takes no self-signed server certificate).
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: Vec<String>| {
            let done = Command::new("openssl")
                .args(&args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(done.success(), "openssl {args:?}");
        };
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        openssl(words(
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=Test-CA -keyout ca.key -out ca.pem",
        ));
        let mut request = words("req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj");
        request.extend([
            format!("/CN={host}"),
            "-addext".into(),
            format!("subjectAltName=DNS:{host}"),
        ]);
        openssl(request);
        openssl(words(
            "x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out cert.pem -copy_extensions copy",
        ));
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = r#"
import http.server, ssl, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(self.headers).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;
        let child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        EchoTls {
            child,
            port,
            cert: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for EchoTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn secrets_reach_their_hosts_and_never_the_sprite() {
    let plain = upstream().await;
    let tls = EchoTls::start("secure.api.test");
    let resolve = format!(
        "api.test=127.0.0.1:{plain},up.test=127.0.0.1:{plain},secure.api.test=127.0.0.1:{}",
        tls.port
    );
    let extra_ca = tls.cert.display().to_string();
    let app = App::spawn_with(&[
        ("CORRAL_EGRESS_ALLOW_RANGES", "127.0.0.0/8"),
        ("CORRAL_EGRESS_RESOLVE", &resolve),
        ("CORRAL_EGRESS_EXTRA_CA", &extra_ca),
    ])
    .await;
    let (_, token) = app.signup("secrets@example.com").await;
    let value = "s3cr3t-value-4f1d";
    let added = expect_status(
        app.post(
            "/v1/secrets",
            &token,
            json!({"name": "API_KEY", "value": value, "hosts": ["api.test", "*.api.test"],
                   "header": "X-Api-Key", "format": "{}"}),
        )
        .await,
        201,
    )
    .await;
    assert!(!added.to_string().contains(value), "{added}");
    let placeholder = added["placeholder"].as_str().unwrap().to_string();
    let listed = expect_status(app.get("/v1/secrets", &token).await, 200).await;
    assert!(!listed.to_string().contains(value) && listed.to_string().contains(&placeholder));
    expect_problem(
        app.post(
            "/v1/secrets",
            &token,
            json!({"name": "bad name", "value": "x", "hosts": ["a.test"]}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "agent", "idle_timeout_s": 0}),
        )
        .await,
        201,
    )
    .await;

    // The sprite holds the placeholder; its request carries the value, over HTTP and
    // over HTTPS (terminated with the install's authority, which the sprite trusts).
    let out = sh(&app, &token, "agent", "echo $CORRAL_SECRET_API_KEY").await;
    assert_eq!(stdout(&out).trim(), placeholder);
    let script =
        "curl -sS http://api.test/headers -H \"Authorization: Bearer $CORRAL_SECRET_API_KEY\"";
    let out = sh(&app, &token, "agent", script).await;
    assert!(
        stdout(&out).contains(&format!("Authorization: Bearer {value}")),
        "{out}"
    );
    assert!(
        stdout(&out).contains(&format!("X-Api-Key: {value}")),
        "{out}"
    );
    let script =
        "curl -sS https://secure.api.test/ -H \"Authorization: Bearer $CORRAL_SECRET_API_KEY\"";
    let out = sh(&app, &token, "agent", script).await;
    assert!(
        stdout(&out).contains(&format!("Authorization: Bearer {value}")),
        "HTTPS: {out}"
    );

    // The placeholder on its way to another host is refused, not forwarded.
    let script = "curl -sS -i http://up.test/headers -H \"Authorization: Bearer $CORRAL_SECRET_API_KEY\" | tr -d '\\r'";
    let out = sh(&app, &token, "agent", script).await;
    assert!(stdout(&out).starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        stdout(&out).contains("API_KEY may only go to api.test, *.api.test"),
        "{out}"
    );

    // Nowhere in the sprite: no file, no process's environment.
    let out = sh(
        &app,
        &token,
        "agent",
        &format!(
            "grep -rIl {value} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; \
             cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {value}; true"
        ),
    )
    .await;
    assert_eq!(
        stdout(&out).trim(),
        "0",
        "the value is in the sprite: {out}"
    );
    assert!(
        !app.log().contains(value),
        "the value is in the server's log"
    );
    expect_status(app.delete("/v1/secrets/API_KEY", &token).await, 204).await;
    expect_problem(
        app.delete("/v1/secrets/API_KEY", &token).await,
        404,
        "not_found",
    )
    .await;
}
