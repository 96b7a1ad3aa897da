//! The web page in a real headless Chromium, driven over WebDriver by chromedriver,
//! against the real `corral` binary: sign up, see the dashboard, set the cap, mint a
//! token, run a sprite, and see the server's own words when an input is refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Finds a program on PATH, or fails saying how to install it.
fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/install.sh (it installs the Debian packages chromium and chromium-driver)")
        })
}

/// Starts `corral serve` on a free port with its data in `data_dir`; answers its URL.
async fn start_server(data_dir: &Path) -> (Killed, String) {
    let image_dir =
        std::env::var("CORRAL_IMAGE_DIR").unwrap_or_else(|_| "/var/lib/corral/images".into());
    let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("serve")
        .env("CORRAL_DATA_DIR", data_dir)
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_IMAGE_DIR", image_dir)
        .env("CORRAL_AGENT_PATH", env!("CARGO_BIN_EXE_corral"))
        // Clean-up deletes sprites through the API; machines of a warm pool are no
        // sprites and would outlive the test.
        .env("CORRAL_WARM_POOL", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start corral");
    let mut server = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(data_dir.join("corral.addr")) {
            let url = format!("http://{addr}");
            if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                return (server, url);
            }
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
            panic!("corral exited with {status}:\n{log}");
        }
        assert!(Instant::now() < deadline, "corral did not start in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts chromedriver on a free port and a headless Chromium session through it.
async fn start_browser(chromium: &Path, chromedriver: &Path, profile: &Path) -> (Killed, Client) {
    // Port 0: chromedriver picks a free port and says which on its standard output.
    let mut child = Command::new(chromedriver)
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
        // Read to the end, so that chromedriver never blocks on a full pipe.
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
        .expect("chromedriver did not say its port in 20 s")
        .expect("chromedriver exited before saying its port");
    let url = format!("http://127.0.0.1:{port}");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,2000",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a Chromium session through chromedriver");
    (driver, client)
}

/// The page, with waits that poll instead of sleeping.
struct Page<'a>(&'a Client);

impl Page<'_> {
    async fn displayed(&self, css: &str) -> Result<fantoccini::elements::Element> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.0.find(Locator::Css(css)).await {
                if element.is_displayed().await.unwrap_or(false) {
                    return Ok(element);
                }
            }
            ensure!(Instant::now() < deadline, "{css} was not shown in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` is shown with text for which `ok` holds; answers the text.
    async fn text_where(&self, css: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            // The page re-renders its lists every few seconds: an element found a moment
            // ago may be replaced (stale) before its text is read; find it again.
            let text = match self.displayed(css).await?.text().await {
                Ok(text) => text,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("reading {css} again: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if ok(&text) {
                return Ok(text);
            }
            ensure!(Instant::now() < deadline, "{css} shows {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn gone(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        while !self.0.find_all(Locator::Css(css)).await?.is_empty() {
            ensure!(Instant::now() < deadline, "{css} is still there");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn gone_from_view(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        // A replaced (stale) element counts as still shown: look again.
        while self
            .0
            .find(Locator::Css(css))
            .await?
            .is_displayed()
            .await
            .unwrap_or(true)
        {
            ensure!(Instant::now() < deadline, "{css} is still shown");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Types `text` into `css`, again if the input was replaced while typing.
    async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let input = self.displayed(css).await?;
            let typed = match input.clear().await {
                Ok(()) => input.send_keys(text).await,
                Err(error) => Err(error),
            };
            match typed {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("filling {css} again: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Clicks `css`, again if the element was replaced between finding and clicking.
    async fn click(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.displayed(css).await?.click().await {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("clicking {css} again: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// A call to the API as the test itself, outside the browser.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    Ok(response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_tenant_signs_up_sets_a_cap_and_mints_a_token_in_a_real_browser() {
    // Fail at once, saying how to install them, when the browser or its driver is missing.
    let (chromium, chromedriver) = (program("chromium"), program("chromedriver"));
    let data_dir = tempfile::tempdir().expect("temp dir");
    let profile = tempfile::tempdir().expect("temp dir");
    let (server, url) = start_server(data_dir.path()).await;
    let (_driver, client) = start_browser(&chromium, &chromedriver, profile.path()).await;
    let outcome = scenario(&client, &url).await;
    if outcome.is_err() {
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(data_dir.path().join("failure.png"), png);
        }
    }
    let _ = client.close().await;
    clean_up(server, &url).await;
    if let Err(error) = outcome {
        let log = std::fs::read_to_string(data_dir.path().join("server.log")).unwrap_or_default();
        panic!("{error:#}\n(the server's log:)\n{log}");
    }
}

async fn scenario(client: &Client, url: &str) -> Result<()> {
    let page = Page(client);
    client.goto(url).await?;

    // Signup: a refused password shows the server's reason beside the form.
    page.fill("#signup-email", EMAIL).await?;
    page.fill("#signup-password", "short").await?;
    page.fill("#signup-org", "Analytical Engines").await?;
    page.click("#signup-form button[type=submit]").await?;
    page.text_where("#signup-error", |t| {
        t == "the password must have at least 8 characters"
    })
    .await?;
    page.fill("#signup-password", PASSWORD).await?;
    page.click("#signup-form button[type=submit]").await?;
    page.text_where("#account-email", |t| t == EMAIL).await?;
    page.text_where("#account-org", |t| t == "Analytical Engines")
        .await?;
    page.text_where("#budget-state", |t| !t.is_empty()).await?;
    let token = client
        .execute("return sessionStorage.getItem('corral.session')", vec![])
        .await?
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("no session token in sessionStorage"))?;
    let budget_url = format!("{url}/v1/budget");

    // The cap, past 2^53 nano-dollars and to the last nano-dollar: exact, not a float.
    page.fill("#budget-cap-input", "123456789.123456789")
        .await?;
    page.fill("#budget-thresholds", "25, 75, 100").await?;
    page.fill("#budget-email", "alerts@example.com").await?;
    page.click("#budget-form button[type=submit]").await?;
    page.displayed("#budget-saved").await?;
    let budget = call(reqwest::Method::GET, &budget_url, &token, None).await?;
    ensure!(
        budget["cap_nanos"].as_i64() == Some(123_456_789_123_456_789),
        "cap set through the form: {budget}"
    );
    ensure!(budget["thresholds_pct"] == json!([25, 75, 100]), "{budget}");
    ensure!(budget["alert_email"] == "alerts@example.com", "{budget}");
    page.text_where("#budget-cap", |t| t == "$123,456,789.123456789")
        .await?;

    // A threshold the server refuses: its detail, word for word, beside the form.
    page.fill("#budget-thresholds", "50, 150").await?;
    page.click("#budget-form button[type=submit]").await?;
    let shown = page.text_where("#budget-error", |t| !t.is_empty()).await?;
    let refusal = call(
        reqwest::Method::PUT,
        &budget_url,
        &token,
        Some(json!({ "thresholds_pct": [50, 150] })),
    )
    .await?;
    ensure!(refusal["code"] == "validation", "{refusal}");
    ensure!(
        refusal["detail"] == shown.as_str(),
        "page shows {shown:?}, server said {refusal}"
    );
    let budget = call(reqwest::Method::GET, &budget_url, &token, None).await?;
    ensure!(budget["thresholds_pct"] == json!([25, 75, 100]), "{budget}");
    page.fill("#budget-thresholds", "50, 80, 100").await?;
    page.click("#budget-form button[type=submit]").await?;
    page.displayed("#budget-saved").await?;
    ensure!(
        !page
            .0
            .find(Locator::Css("#budget-error"))
            .await?
            .is_displayed()
            .await?
    );

    let (minted, secret) = mint_token(client, url, &token).await?;
    let sprite = start_sprite(client, url).await?;
    let png = client.screenshot().await?;
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-dashboard.png");
    std::fs::write(&shot, png)?;
    eprintln!("dashboard screenshot: {}", shot.display());
    if let Some(row) = sprite {
        page.click(&format!("{row} button.danger")).await?; // Delete, then confirm
        client.accept_alert().await?;
        page.gone(&row).await?;
    }

    // Revoke it with its button: the row says so and the secret stops working.
    let row = format!("#token-rows tr[data-id='{minted}']");
    page.click(&format!("{row} button")).await?;
    client.accept_alert().await?;
    page.text_where(&format!("{row} .badge"), |t| t == "revoked")
        .await?;
    let me = reqwest::Client::new()
        .get(format!("{url}/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await?;
    ensure!(
        me.status() == 401,
        "a revoked token still works: {}",
        me.status()
    );

    // Log out: the session ends on the server too. Then fail to log in, then log in.
    page.click("#logout").await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let me = reqwest::Client::new()
            .get(format!("{url}/v1/me"))
            .bearer_auth(&token)
            .send()
            .await?;
        if me.status() == 401 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the logged-out session still works: {}",
            me.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    page.fill("#login-email", EMAIL).await?;
    page.fill("#login-password", "wrong horse battery").await?;
    page.click("#login-form button[type=submit]").await?;
    page.text_where("#login-error", |t| {
        t == "the e-mail or the password is wrong"
    })
    .await?;
    page.fill("#login-password", PASSWORD).await?;
    page.click("#login-form button[type=submit]").await?;
    page.text_where("#budget-cap", |t| t == "$123,456,789.123456789")
        .await?;
    Ok(())
}

/// Mints a token through the form and finds it, with what was chosen, in the API;
/// answers its id and secret.
async fn mint_token(client: &Client, url: &str, session: &str) -> Result<(String, String)> {
    let page = Page(client);
    page.fill("#token-name", "ci-runner").await?;
    page.fill("#token-budget", "2.5").await?;
    page.click("input[name=scope][value=files]").await?; // off
    page.click("input[name=scope][value=checkpoints]").await?; // on
    page.displayed("#token-expiry")
        .await?
        .select_by_value("604800")
        .await?;
    page.click("#token-form button[type=submit]").await?;
    let secret = page.text_where("#token-secret", |t| !t.is_empty()).await?;
    let tokens = call(
        reqwest::Method::GET,
        &format!("{url}/v1/tokens"),
        session,
        None,
    )
    .await?;
    let minted = tokens["tokens"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "ci-runner"))
        .ok_or_else(|| anyhow!("ci-runner is not in GET /v1/tokens: {tokens}"))?;
    ensure!(
        minted["budget_nanos"].as_i64() == Some(2_500_000_000),
        "{minted}"
    );
    let mut scopes: Vec<&str> = minted["scopes"]
        .as_array()
        .context("scopes")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    scopes.sort_unstable();
    ensure!(
        scopes == ["checkpoints", "exec", "sprites:read", "sprites:write"],
        "{minted}"
    );
    let me = call(reqwest::Method::GET, &format!("{url}/v1/me"), &secret, None).await?;
    ensure!(me["token"]["name"] == "ci-runner", "the shown secret: {me}");
    let id = minted["id"].as_str().context("id")?;
    page.displayed(&format!("#token-rows tr[data-id='{id}']"))
        .await?;
    Ok((id.to_string(), secret))
}

/// Creates a sprite through the form and pauses it with its button, answering its row;
/// when this machine has no sandbox backend, the list shows the server's reason instead.
async fn start_sprite(client: &Client, url: &str) -> Result<Option<String>> {
    let page = Page(client);
    if reqwest::get(format!("{url}/readyz")).await?.status() != 200 {
        page.text_where("#sprite-list-error", |t| !t.is_empty())
            .await?;
        eprintln!(
            "no sandbox backend here: sprites were not run (scripts/install.sh builds the image)"
        );
        return Ok(None);
    }
    page.fill("#sprite-name", "web-test").await?;
    page.click("#sprite-form button[type=submit]").await?;
    let row = "#sprite-rows tr[data-name='web-test']";
    let badge = format!("{row} .badge");
    page.text_where(&badge, |t| t == "running").await?;
    page.text_where(&format!("{row} td:nth-child(3)"), |t| {
        t.starts_with("default · ")
    })
    .await?;
    page.text_where("#image-rows tr[data-name='minimal'] td:nth-child(2)", |t| {
        t == "operator"
    })
    .await?;

    // A terminal on it in the page: a login shell, and vi drawing a full screen.
    page.click(&format!("{row} .actions button:nth-child(2)"))
        .await?;
    page.text_where("#terminal-state", |t| t == "connected")
        .await?;
    let screen = "#terminal-screen .xterm-rows";
    page.text_where(screen, |t| t.contains("root@sprite:"))
        .await?;
    let keys = page
        .0
        .find(Locator::Css("#terminal-screen textarea"))
        .await?;
    keys.send_keys("vi /tmp/from-the-browser\u{E007}").await?;
    page.text_where(screen, |t| {
        t.contains("[New File]") && t.lines().filter(|l| l.trim() == "~").count() >= 10
    })
    .await?;
    let png = client.screenshot().await?;
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-terminal.png");
    std::fs::write(&shot, png)?;
    keys.send_keys("ityped in a browser\u{E00C}:wq\u{E007}")
        .await?;
    keys.send_keys("cat /tmp/from-the-browser; exit\u{E007}")
        .await?;
    page.text_where("#terminal-state", |t| t == "ended (exit 0)")
        .await?;
    page.text_where(screen, |t| t.contains("\ntyped in a browser"))
        .await?;
    page.click("#terminal-close").await?;

    // Its network rules: the defaults under them, then a rule of its own saved.
    page.click(&format!("{row} .actions button:nth-child(3)"))
        .await?;
    page.text_where("#network-summary", |t| {
        t.contains("the server's default: allow-public")
    })
    .await?;
    page.fill("#network-rules", r#"[{"domain": "*", "action": "deny"}]"#)
        .await?;
    page.click("#network-form button[type=submit]").await?;
    page.text_where("#network-summary", |t| {
        t.starts_with("1 rule(s) of this sprite")
    })
    .await?;
    page.click("#network-close").await?;

    // A secret: added from the page, listed with where sprites find it, never shown.
    page.fill("#secret-name", "WEB_KEY").await?;
    page.fill("#secret-value", "value-typed-in-the-page")
        .await?;
    page.fill("#secret-hosts", "api.example.com").await?;
    page.click("#secret-form button[type=submit]").await?;
    page.text_where("#secret-rows tr[data-name='WEB_KEY']", |t| {
        t.contains("$CORRAL_SECRET_WEB_KEY") && !t.contains("value-typed-in-the-page")
    })
    .await?;

    // Fork it from its row (the name goes into the page's prompt), then delete the fork.
    page.click(&format!("{row} .actions button:nth-child(4)"))
        .await?;
    client.send_alert_text("web-fork").await?;
    client.accept_alert().await?;
    let fork = "#sprite-rows tr[data-name='web-fork']";
    page.text_where(&format!("{fork} .badge"), |t| t == "running")
        .await?;
    page.click(&format!("{fork} button.danger")).await?;
    client.accept_alert().await?;
    page.gone(fork).await?;

    // A cap of zero pauses it; resuming is refused, in the server's words, until the cap
    // is raised again.
    page.fill("#budget-cap-input", "0").await?;
    page.click("#budget-form button[type=submit]").await?;
    page.text_where(&badge, |t| t == "paused (budget)").await?;
    page.click("#budget-resume").await?;
    let refused = page
        .text_where("#budget-resume-error", |t| !t.is_empty())
        .await?;
    ensure!(refused.starts_with("web-test: "), "{refused}");
    page.fill("#budget-cap-input", "123456789.123456789")
        .await?;
    page.click("#budget-form button[type=submit]").await?;
    page.displayed("#budget-saved").await?;
    page.click("#budget-resume").await?;
    page.text_where(&badge, |t| t == "running").await?;
    page.gone_from_view("#budget-paused").await?;

    page.click(&format!("{row} button")).await?; // Pause
    page.text_where(&format!("{row} .badge"), |t| t == "paused (user)")
        .await?;
    Ok(Some(row.to_string()))
}

/// Deletes what the test left running (after a failure) and stops the server the way
/// an operator does, so no sandbox outlives the test.
async fn clean_up(mut server: Killed, url: &str) {
    let login = reqwest::Client::new()
        .post(format!("{url}/v1/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await;
    if let Ok(answer) = login {
        let token = answer.json::<Value>().await.unwrap_or_default()["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sprites = call(
            reqwest::Method::GET,
            &format!("{url}/v1/sprites"),
            &token,
            None,
        )
        .await
        .unwrap_or_default();
        for sprite in sprites["sprites"].as_array().into_iter().flatten() {
            let name = sprite["name"].as_str().unwrap_or_default();
            let path = format!("{url}/v1/sprites/{name}");
            let _ = call(reqwest::Method::DELETE, &path, &token, None).await;
        }
    }
    let _ = Command::new("kill").arg(server.0.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
