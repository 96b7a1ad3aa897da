//! The schedules card in a real headless Chromium (chromedriver, WebDriver) against the
//! real `corral` binary and a real sprite: add a command schedule from the page, see its
//! run's exit code and output in the card, delete it from the page.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

#[path = "common/machines.rs"]
mod machines;

const WAIT: Duration = Duration::from_secs(30);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(name: &str) -> String {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => path.display().to_string(),
        None => {
            panic!("{name} is not installed: run scripts/install.sh (chromium and chromium-driver)")
        }
    }
}

async fn start_server(data_dir: &Path) -> (Killed, String) {
    let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("serve")
        .env("CORRAL_DATA_DIR", data_dir)
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_IMAGE_DIR", machines::image_dir())
        .env("CORRAL_AGENT_PATH", env!("CARGO_BIN_EXE_corral"))
        // Runs every few seconds, so the card shows one soon.
        .env("CORRAL_SCHEDULE_SECONDS", "on")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start corral");
    let server = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(data_dir.join("corral.addr")) {
            let url = format!("http://{addr}");
            if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                return (server, url);
            }
        }
        assert!(Instant::now() < deadline, "corral did not start in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_browser(profile: &Path) -> (Killed, Client) {
    let mut child = Command::new(program("chromedriver"))
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver's stdout");
    let driver = Killed(child);
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.split("started successfully on port ").nth(1) {
                if let Some(tx) = port_tx.take() {
                    let _ = tx.send(port.trim_end_matches('.').to_string());
                }
            }
        }
    });
    let port = tokio::time::timeout(Duration::from_secs(20), port_rx)
        .await
        .expect("chromedriver did not say its port")
        .expect("chromedriver exited");
    let args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1200,2400".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": program("chromium"), "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Waits until `css` shows text for which `ok` holds (the card re-renders: a stale
/// element is found again).
async fn text_where(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return Ok(text);
        }
        ensure!(Instant::now() < deadline, "{css} shows {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn api(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("API call");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn scenario(client: &Client, url: &str, token: &str) -> Result<()> {
    client.goto(url).await?;
    client
        .execute(
            "sessionStorage.setItem('corral.session', arguments[0])",
            vec![json!(token)],
        )
        .await?;
    client.refresh().await?;
    text_where(client, "#schedule-sprite", |t| t.contains("web-cron")).await?;
    client
        .find(Locator::Css("#schedule-cron"))
        .await?
        .send_keys("*/3 * * * * *")
        .await?;
    client
        .find(Locator::Css("#schedule-cmd"))
        .await?
        .send_keys("echo from-the-page; exit 4")
        .await?;
    client
        .find(Locator::Css("#schedule-form button[type=submit]"))
        .await?
        .click()
        .await?;
    let shown = text_where(client, "#schedule-rows", |t| t.contains("*/3 * * * * *")).await?;
    ensure!(
        shown.contains("sh -c echo from-the-page; exit 4"),
        "{shown}"
    );
    let list = api(
        reqwest::Method::GET,
        &format!("{url}/v1/sprites/web-cron/schedules"),
        token,
        None,
    )
    .await;
    let schedule = &list["schedules"][0];
    ensure!(
        schedule["cmd"] == json!(["sh", "-c", "echo from-the-page; exit 4"]),
        "{list}"
    );

    // The run appears in the card with its exit code and the end of its output.
    // (The command's own text holds "exit 4" too: wait for the run's line.)
    text_where(client, "#schedule-rows", |t| {
        t.contains("exit 4: from-the-page")
    })
    .await?;

    // A refused input shows the server's words beside the form.
    let cron = client.find(Locator::Css("#schedule-cron")).await?;
    cron.send_keys("0 0 * * 8").await?;
    client
        .find(Locator::Css("#schedule-form button[type=submit]"))
        .await?
        .click()
        .await?;
    text_where(client, "#schedule-error", |t| t.contains("day of week 8")).await?;

    let id = schedule["id"].as_str().context("schedule id")?;
    let delete = format!("#schedule-rows tr[data-id='{id}'] button");
    client.find(Locator::Css(&delete)).await?.click().await?;
    text_where(client, "#schedule-empty", |t| t == "No schedules yet.").await?;
    let list = api(
        reqwest::Method::GET,
        &format!("{url}/v1/sprites/web-cron/schedules"),
        token,
        None,
    )
    .await;
    ensure!(list["schedules"] == json!([]), "{list}");
    Ok(())
}

#[tokio::test]
async fn the_schedules_card_adds_shows_runs_and_deletes() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let profile = tempfile::tempdir().expect("temp dir");
    let (server, url) = start_server(data_dir.path()).await;
    let signup = reqwest::Client::new()
        .post(format!("{url}/v1/signup"))
        .json(&json!({"email": "web-cron@example.com", "password": "correct horse battery", "org": "Acme"}))
        .send()
        .await
        .expect("signup")
        .json::<Value>()
        .await
        .expect("signup answer");
    let token = signup["token"].as_str().expect("token").to_string();
    let sprite = json!({"name": "web-cron", "disk_mb": 128, "idle_timeout_s": 0});
    api(
        reqwest::Method::POST,
        &format!("{url}/v1/sprites"),
        &token,
        Some(sprite),
    )
    .await;
    let (_driver, client) = start_browser(profile.path()).await;
    let outcome = scenario(&client, &url, &token).await;
    let _ = client.close().await;
    api(
        reqwest::Method::DELETE,
        &format!("{url}/v1/sprites/web-cron"),
        &token,
        None,
    )
    .await;
    let mut server = server;
    machines::stop_server(&mut server.0);
    machines::destroy_machines(data_dir.path().join("machines"));
    if let Err(error) = outcome {
        let log = std::fs::read_to_string(data_dir.path().join("server.log")).unwrap_or_default();
        panic!("{error:#}\n(the server's log:)\n{log}");
    }
}
