//! `corral proxy` with a real sprite: a local port forwarded through a WebSocket tunnel
//! carries a TCP conversation both ways, half-close included; a tunnel to a port where
//! nothing listens is refused in words.

use std::io::{BufRead, BufReader as StdBufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::start_listening;
use crate::helpers::{expect_status, App};

/// A line server: answers each line upper-cased, and "bye N" (N lines seen) once the
/// client has sent all it will.
const LINES: &str = r#"
import socketserver
class H(socketserver.StreamRequestHandler):
    def handle(self):
        n = 0
        for line in self.rfile:
            n += 1
            self.wfile.write(line.upper())
        self.wfile.write(b"bye %d\n" % n)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", 7000), H).serve_forever()
"#;

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `corral proxy SPRITE 0:REMOTE`; answers it and the local port it took.
fn proxy(
    app: &App,
    token: &str,
    sprite: &str,
    remote: u16,
    home: &std::path::Path,
) -> (Proxy, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["proxy", sprite, &format!("0:{remote}")])
        .env("CORRAL_URL", &app.url)
        .env("CORRAL_TOKEN", token)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("corral proxy");
    let mut stderr = StdBufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line
        .split_whitespace()
        .nth(1)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    // Keep reading its errors so it never blocks on a full pipe.
    let errors = std::thread::spawn(move || {
        let mut rest = String::new();
        while stderr.read_line(&mut rest).unwrap_or(0) > 0 {}
        rest
    });
    drop(errors);
    (Proxy(child), port)
}

#[tokio::test]
async fn corral_proxy_carries_a_tcp_conversation() {
    let app = App::spawn().await;
    let (_, token) = app.signup("tunnel@example.com").await;
    expect_status(
        app.post(
            "/v1/sprites",
            &token,
            json!({"name": "db", "memory_mb": 256, "disk_mb": 512}),
        )
        .await,
        201,
    )
    .await;
    let put = app
        .request(
            reqwest::Method::PUT,
            "/v1/sprites/db/files?path=/srv/lines.py",
            Some(&token),
        )
        .body(LINES)
        .send()
        .await
        .unwrap();
    expect_status(put, 204).await;
    start_listening(&app, &token, "db", "python3 /srv/lines.py", 7000).await;
    let home = tempfile::tempdir().unwrap();
    let (_proxy, port) = proxy(&app, &token, "db", 7000, home.path());

    let conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    for word in ["select 1;", "hello", "tunnel"] {
        write
            .write_all(format!("{word}\n").as_bytes())
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(answer.as_deref(), Some(word.to_uppercase().as_str()));
    }
    // Half-close: the server sees the end of our bytes and still answers.
    write.shutdown().await.unwrap();
    let last = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the last answer")
        .unwrap();
    assert_eq!(last.as_deref(), Some("bye 3"));
    let mut rest = String::new();
    let mut inner = lines.into_inner();
    tokio::time::timeout(Duration::from_secs(10), inner.read_to_string(&mut rest))
        .await
        .expect("the sprite's end closes the connection")
        .unwrap();
    assert_eq!(rest, "");

    // Many at once, each its own tunnel.
    let mut talks = Vec::new();
    for i in 0..8 {
        talks.push(tokio::spawn(async move {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            conn.write_all(format!("n{i}\n").as_bytes()).await.unwrap();
            conn.shutdown().await.unwrap();
            let mut all = String::new();
            conn.read_to_string(&mut all).await.unwrap();
            all
        }));
    }
    for (i, talk) in talks.into_iter().enumerate() {
        assert_eq!(talk.await.unwrap(), format!("N{i}\nbye 1\n"));
    }

    // Nothing on the port: the tunnel is refused, and the CLI says why.
    let (mut refused, port) = proxy(&app, &token, "db", 7999, home.path());
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut all)).await;
    assert!(all.is_empty());
    let _ = refused.0.kill();
}
