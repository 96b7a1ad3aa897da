//! Starts the real `corral` binary on a random port with a fresh data directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::machines::{destroy_machines, image_dir, stop_server};

/// A running server and a client for it.
pub struct App {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl App {
    /// Starts a server with extra `CORRAL_*` settings.
    pub async fn spawn_with(env: &[(&str, &str)]) -> App {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut app = App {
            url: String::new(),
            data_dir,
            client: reqwest::Client::new(),
            child: None,
            env,
        };
        app.start().await;
        app
    }

    /// Starts a server with the defaults.
    pub async fn spawn() -> App {
        Self::spawn_with(&[]).await
    }

    /// (Re)starts the process on the same data directory.
    pub async fn start(&mut self) {
        let addr_file = self.data_dir.path().join("corral.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::create(self.data_dir.path().join("server.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("serve")
            .env("CORRAL_DATA_DIR", self.data_dir.path())
            .env("CORRAL_LISTEN", "127.0.0.1:0")
            .env("CORRAL_IMAGE_DIR", image_dir())
            .env("CORRAL_AGENT_PATH", env!("CARGO_BIN_EXE_corral"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start corral");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                self.url = format!("http://{addr}");
                if self
                    .client
                    .get(format!("{}/healthz", self.url))
                    .send()
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("corral exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "corral did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process without letting it clean up (like a crash).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process the way an operator does (SIGTERM), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_server(&mut child);
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics");
        response.text().await.expect("metrics body")
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    pub fn path(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(token))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token))
            .send()
            .await
            .expect("request")
    }

    /// Signs a tenant up and returns (tenant id, session token).
    pub async fn signup(&self, email: &str) -> (String, String) {
        let response = self
            .request(Method::POST, "/v1/signup", None)
            .json(&json!({"email": email, "password": "correct horse battery", "org": "Acme"}))
            .send()
            .await
            .expect("signup");
        let body = expect_status(response, 201).await;
        (
            body["tenant_id"].as_str().unwrap().into(),
            body["token"].as_str().unwrap().into(),
        )
    }

    /// Runs `cmd` in `sprite` through the JSON exec call.
    pub async fn exec(&self, token: &str, sprite: &str, cmd: &[&str]) -> Response {
        self.post(
            &format!("/v1/sprites/{sprite}/exec"),
            token,
            json!({"cmd": cmd}),
        )
        .await
    }

    /// Runs `cmd` in `sprite` and expects a 200; returns the answer.
    pub async fn exec_ok(&self, token: &str, sprite: &str, cmd: &[&str]) -> Value {
        expect_status(self.exec(token, sprite, cmd).await, 200).await
    }

    /// Runs `sh -c script` in `sprite`, expecting it to succeed; returns the answer.
    pub async fn sh_ok(&self, token: &str, sprite: &str, script: &str) -> Value {
        let out = self.exec_ok(token, sprite, &["sh", "-c", script]).await;
        assert_eq!(out["exit_code"], 0, "{out}");
        out
    }

    /// Mints a token with `token` and returns the answer.
    pub async fn mint(&self, token: &str, body: Value) -> Value {
        expect_status(self.post("/v1/tokens", token, body).await, 201).await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
        }
        self.stop();
        // Sprites outlive the server by design; a test's must not outlive the test.
        destroy_machines(self.data_dir.path().join("machines"));
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_status(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Asserts a problem+json answer with this status and code; returns it.
pub async fn expect_problem(response: Response, status: u16, code: &str) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = expect_status(response, status).await;
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status, "body: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "body: {body}"
    );
    body
}

/// Asserts a problem+json answer whose detail names `needle` (a limit, a scope).
pub async fn expect_problem_naming(
    response: Response,
    status: u16,
    code: &str,
    needle: &str,
) -> Value {
    let body = expect_problem(response, status, code).await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{needle:?} missing from {body}");
    body
}
