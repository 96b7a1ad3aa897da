//! The web page in a real headless Chromium, driven over WebDriver by chromedriver,
//! against the real `corral` binary: sign up, see the dashboard, set the cap, mint a
//! token, run a sprite and work on its page (terminal, a command, checkpoints, files,
//! its cost), see which limit stops sprites when money runs out, and the page at
//! phone width. Screenshots of each page go to docs/screenshots/.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

#[path = "common/browser.rs"]
mod browser;

use browser::{program, start_browser, start_server, Killed};

const WAIT: Duration = Duration::from_secs(15);
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

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
    program("chromium");
    program("chromedriver");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let profile = tempfile::tempdir().expect("temp dir");
    // Clean-up deletes sprites through the API; machines of a warm pool are no sprites
    // and would outlive the test.
    let (server, url) = start_server(data_dir.path(), &[("CORRAL_WARM_POOL", "0")]).await;
    let (_driver, client) = start_browser(profile.path()).await;
    let outcome = scenario(&client, &url).await;
    if outcome.is_err() {
        if let Ok(png) = client.screenshot().await {
            // Kept in the target directory: the data directory is removed with the test.
            let _ = std::fs::write(
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-failure.png"),
                png,
            );
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
    page.displayed("#signup-password-rules").await?;
    page.fill("#signup-password", "Password123").await?;
    page.click("#signup-form button[type=submit]").await?;
    page.text_where("#signup-error", |t| t.contains("common passwords"))
        .await?;
    page.displayed("#signup-password[aria-invalid='true']")
        .await?;
    shoot(client, "signup", "").await?;
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

    // A threshold the server refuses: its reason in the form's words (the API's detail
    // names its field, which suits a program), beside the form.
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
        refusal["detail"] == "thresholds_pct must be percentages from 1 to 100, got 150"
            && shown == "Alert thresholds are percentages from 1 to 100; 150 is not one.",
        "page shows {shown:?}, server said {refusal}"
    );
    let budget = call(reqwest::Method::GET, &budget_url, &token, None).await?;
    ensure!(budget["thresholds_pct"] == json!([25, 75, 100]), "{budget}");
    page.fill("#budget-thresholds", "50, 80, 100").await?;
    page.fill("#budget-cap-input", "-5").await?;
    page.click("#budget-form button[type=submit]").await?;
    page.text_where("#budget-error", |t| {
        t == "The monthly cap must be between $0 and $1,000,000,000; -$5.00 is not."
    })
    .await?;
    page.fill("#budget-cap-input", "123456789.123456789")
        .await?;
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
    let sprite = start_sprite(client, url, &token).await?;
    if let Some(row) = &sprite {
        at_phone_width(client).await?;
        page.click(&format!("{row} .actions button")).await?; // Pause
        page.text_where(&format!("{row} .badge"), |t| t == "paused (user)")
            .await?;
        // Its page says why, in words.
        page.text_where("#sp-why", |t| t.starts_with("paused by a pause call"))
            .await?;
    }
    if let Some(row) = sprite {
        page.click(&format!("{row} button.danger")).await?; // Delete, then confirm
        client.accept_alert().await?;
        page.gone(&row).await?;
    }

    // Revoke it with its button: the row says so and the secret stops working.
    let row = format!("#token-rows tr[data-id='{minted}']");
    page.click(&format!("{row} button.danger")).await?;
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

    // The API reference, linked from the page: the OpenAPI document drawn by the
    // vendored viewer, new calls included.
    page.click(".docs-link").await?;
    page.displayed(".opblock-patch .opblock-summary-path[data-path='/v1/tokens/{id}']")
        .await?;
    shoot(client, "docs", "").await?;
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
    let row = format!("#token-rows tr[data-id='{id}']");
    page.displayed(&row).await?;

    // Ready to paste, with the secret; the form is back to its defaults for the next one.
    page.text_where("#token-example", |t| {
        t.contains(&format!("Authorization: Bearer {secret}")) && t.contains("corral ls")
    })
    .await?;
    ensure!(
        !page
            .displayed("input[name=scope][value=checkpoints]")
            .await?
            .is_selected()
            .await?
            && page
                .displayed("input[name=scope][value=files]")
                .await?
                .is_selected()
                .await?,
        "the scope boxes were not reset after minting"
    );
    // Created today; used once above (GET /v1/me with the secret), which the row shows.
    page.text_where(&format!("{row} td:nth-child(5)"), |t| t != "—")
        .await?;
    page.text_where(&format!("{row} td:nth-child(6)"), |t| {
        !t.is_empty() && t != "never"
    })
    .await?;
    // Names are unique per tenant: a second ci-runner is refused in words.
    page.fill("#token-name", "ci-runner").await?;
    page.click("#token-form button[type=submit]").await?;
    page.text_where("#token-error", |t| {
        t.contains("a token named \"ci-runner\" already exists")
    })
    .await?;
    page.fill("#token-name", "").await?;
    Ok((id.to_string(), secret))
}

/// Creates a sprite through the form and pauses it with its button, answering its row;
/// when this machine has no sandbox backend, the list shows the server's reason instead.
async fn start_sprite(client: &Client, url: &str, session: &str) -> Result<Option<String>> {
    let page = Page(client);
    if reqwest::get(format!("{url}/readyz")).await?.status() != 200 {
        page.text_where("#sprite-list-error", |t| !t.is_empty())
            .await?;
        eprintln!(
            "no sandbox backend here: sprites were not run (scripts/install.sh builds the image)"
        );
        return Ok(None);
    }
    // The form's limits are the real ones (the tenant's 8 vCPUs, not the API's 64).
    page.text_where("#sprite-limits", |t| t.contains("8 vCPUs"))
        .await?;
    let max = page.displayed("#sprite-cpus").await?.attr("max").await?;
    ensure!(max.as_deref() == Some("8"), "vCPU field max {max:?}");
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
    // vi has written the file and given the shell back (a second prompt) before the
    // next line is typed: keys sent sooner would go to vi.
    page.text_where(screen, |t| t.matches("root@sprite:").count() >= 2)
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
    client.accept_alert().await?; // a cap of $0 asks first
    page.text_where(&badge, |t| t == "paused (budget)").await?;
    page.text_where("#budget-state", |t| t == "stopped").await?;
    page.text_where("#budget-stop-text", |t| {
        t.contains("The account's monthly cap") && t.contains("Raise the cap to at least $")
    })
    .await?;
    // Resuming from its row is refused: the words stay through refreshes (and the stop
    // box repeats them) until dismissed with a click.
    page.click(&format!("{row} .actions button")).await?; // Resume
    let refused = page
        .text_where("#sprite-error", |t| t.contains("Raise the cap"))
        .await?;
    ensure!(!refused.contains("nano-dollars"), "{refused}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    page.text_where("#sprite-error", |t| t == refused).await?;
    page.text_where("#budget-stop-text", |t| {
        t.contains("The last start was refused")
    })
    .await?;
    page.click("#sprite-error").await?;
    page.gone_from_view("#sprite-error").await?;

    // The alerts sent or queued are listed as the API lists them.
    let alerts = call(
        reqwest::Method::GET,
        &format!("{url}/v1/alerts"),
        session,
        None,
    )
    .await?;
    let count = alerts["alerts"].as_array().map_or(0, Vec::len);
    page.click("#alerts summary").await?;
    if count == 0 {
        page.displayed("#alert-empty").await?;
    } else {
        page.text_where("#alert-rows", |t| t.lines().count() >= count)
            .await?;
    }
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

    sprite_page(client, row).await?;
    spend_chart(client).await?;
    token_budget_pause(client, url, session).await?;
    focus_survives_a_refresh(client, row).await?;
    shoot(client, "dashboard", "").await?;

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

/// Saves a screenshot of the page, scrolled to `css` (the top when empty), as
/// docs/screenshots/NAME.png (the README shows some).
async fn shoot(client: &Client, name: &str, css: &str) -> Result<()> {
    let scroll = if css.is_empty() {
        "window.scrollTo(0, 0); return true".to_string()
    } else {
        format!("document.querySelector(\"{css}\").scrollIntoView(); return true")
    };
    js(client, &scroll).await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    let png = client.screenshot().await?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

/// Runs `script` in the page and answers its value.
async fn js(client: &Client, script: &str) -> Result<Value> {
    Ok(client.execute(script, vec![]).await?)
}

/// The sprite's own page: a command with its output and exit code, the terminal
/// (`echo hi` shows `hi`), a checkpoint made and restored, a file up and down.
async fn sprite_page(client: &Client, row: &str) -> Result<()> {
    let page = Page(client);
    page.click(&format!("{row} button.link")).await?;
    page.text_where("#sprite-page-name", |t| t == "web-test")
        .await?;
    page.text_where("#sp-image", |t| t == "default").await?;
    page.text_where("#sp-idle", |t| t == "pauses after 60 s idle")
        .await?;
    // The idle timeout changes from the page; the sprite's URL shows with it.
    page.click("#sp-idle-edit").await?;
    client.send_alert_text("900").await?;
    client.accept_alert().await?;
    page.text_where("#sp-idle", |t| t == "pauses after 900 s idle")
        .await?;
    page.text_where("#sp-url", |t| t.starts_with("http://web-test--"))
        .await?;

    // Its URL: a page served in the sprite opens in a new tab, through a link (the sprite
    // is private) that sets its cookie; then the switch makes it public.
    run(
        &page,
        "mkdir -p /srv/site && echo 'served by a sprite' > /srv/site/index.html && \
         (cd /srv/site && setsid nohup python3 -m http.server 8080 >/dev/null 2>&1 &) && sleep 1",
    )
    .await?;
    page.text_where("#sp-exit", |t| t.starts_with("exit code 0"))
        .await?;
    page.text_where("#sp-url-access", |t| t.starts_with("private"))
        .await?;
    let dashboard = client.window().await?;
    page.click("#sp-url-open").await?;
    let deadline = Instant::now() + WAIT;
    let tab = loop {
        let windows = client.windows().await?;
        if let Some(tab) = windows.into_iter().find(|w| *w != dashboard) {
            break tab;
        }
        ensure!(
            Instant::now() < deadline,
            "the URL did not open in a new tab"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    client.switch_to_window(tab).await?;
    Page(client)
        .text_where("body", |t| t.contains("served by a sprite"))
        .await?;
    let opened = client.current_url().await?;
    ensure!(
        opened
            .host_str()
            .is_some_and(|h| h.starts_with("web-test--"))
            && opened.path() == "/"
            && opened.query().is_none(),
        "the tab landed on the clean URL: {opened}"
    );
    client.close_window().await?;
    client.switch_to_window(dashboard).await?;
    page.click("#sp-url-toggle").await?;
    client.accept_alert().await?;
    page.text_where("#sp-url-status", |t| t == "Now public.")
        .await?;
    page.text_where("#sp-url-access", |t| t.starts_with("public"))
        .await?;

    // One command: its output and exit code.
    run(&page, "echo made on the page; exit 3").await?;
    page.text_where("#sp-exit", |t| t.starts_with("exit code 3"))
        .await?;
    page.text_where("#sp-output", |t| t == "made on the page")
        .await?;

    // A checkpoint with a comment, a change, then the restore (confirmed) undoes it.
    run(&page, "echo before > /root/state").await?;
    page.text_where("#sp-exit", |t| t.starts_with("exit code 0"))
        .await?;
    page.fill("#sp-cp-comment", "before the change").await?;
    page.click("#sp-cp-form button[type=submit]").await?;
    let checkpoint = "#sp-cp-rows tr";
    page.text_where(checkpoint, |t| t.contains("before the change"))
        .await?;
    run(&page, "echo after > /root/state; cat /root/state").await?;
    page.text_where("#sp-output", |t| t == "after").await?;
    page.click(&format!("{checkpoint} button")).await?; // Restore
    client.accept_alert().await?;
    page.text_where("#sp-cp-status", |t| {
        t == "Restored to \"before the change\"."
    })
    .await?;
    run(&page, "cat /root/state").await?;
    page.text_where("#sp-output", |t| t == "before").await?;

    // A file from this machine up to the sprite, then down again.
    let local = tempfile::NamedTempFile::new()?;
    std::fs::write(local.path(), "uploaded from a browser\n")?;
    page.displayed("#sp-up-file")
        .await?
        .send_keys(&local.path().display().to_string())
        .await?;
    page.fill("#sp-up-path", "/root/up.txt").await?;
    page.click("#sp-up-form button[type=submit]").await?;
    page.text_where("#sp-file-status", |t| t.starts_with("Uploaded "))
        .await?;
    run(&page, "cat /root/up.txt").await?;
    page.text_where("#sp-output", |t| t == "uploaded from a browser")
        .await?;
    page.click("#sp-down-form button[type=submit]").await?;
    page.text_where("#sp-file-status", |t| {
        t.starts_with("Downloaded /root/up.txt")
    })
    .await?;
    page.text_where("#sp-file-preview", |t| t == "uploaded from a browser")
        .await?;
    shoot(client, "sprite", "#sprite-page").await?;

    // Its terminal: type a command, see its output.
    page.click("#sp-terminal").await?;
    page.text_where("#terminal-state", |t| t == "connected")
        .await?;
    let screen = "#terminal-screen .xterm-rows";
    page.text_where(screen, |t| t.contains("root@sprite:"))
        .await?;
    let keys = client
        .find(Locator::Css("#terminal-screen textarea"))
        .await?;
    keys.send_keys("echo hi\u{E007}").await?;
    page.text_where(screen, |t| t.lines().any(|l| l.trim() == "hi"))
        .await?;
    shoot(client, "terminal", "#terminal").await?;
    keys.send_keys("exit\u{E007}").await?;
    page.text_where("#terminal-state", |t| t.starts_with("ended"))
        .await?;
    page.click("#terminal-close").await?;
    Ok(())
}

/// Runs `cmd` with the sprite page's one-shot command form.
async fn run(page: &Page<'_>, cmd: &str) -> Result<()> {
    page.fill("#sp-cmd", cmd).await?;
    page.click("#sp-run-form button[type=submit]").await
}

/// The spend card draws bars once there is spend, with the exact amount on hover.
async fn spend_chart(client: &Client) -> Result<()> {
    let page = Page(client);
    page.displayed("#spend-by")
        .await?
        .select_by_value("hour")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bars = js(
            client,
            "return [...document.querySelectorAll('#spend-chart rect.bar')]
               .filter(b => Number(b.getAttribute('height')) > 0).length",
        )
        .await?;
        if bars.as_u64().unwrap_or(0) >= 1 {
            break;
        }
        ensure!(Instant::now() < deadline, "no bars in the spend chart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let title = js(
        client,
        "return document.querySelector('#spend-chart rect.bar title').textContent",
    )
    .await?;
    ensure!(title.as_str().is_some_and(|t| t.contains(": $")), "{title}");
    page.text_where("#spend-rows", |t| t.contains("web-test"))
        .await?;
    Ok(())
}

/// A sprite made with a token whose budget is lowered to nothing (with the token's
/// Budget button) is paused; the page names the token and says how to fix it; raising
/// the budget with the same button lets it resume.
async fn token_budget_pause(client: &Client, url: &str, session: &str) -> Result<()> {
    let page = Page(client);
    let minted = call(
        reqwest::Method::POST,
        &format!("{url}/v1/tokens"),
        session,
        Some(
            json!({"name": "agent-7", "scopes": ["sprites:read", "sprites:write"],
                    "budget_nanos": 5_000_000_000_i64}),
        ),
    )
    .await?;
    let (id, secret) = (
        minted["id"].as_str().context("id")?,
        minted["token"].as_str().context("token")?,
    );
    let made = call(
        reqwest::Method::POST,
        &format!("{url}/v1/sprites"),
        secret,
        Some(json!({"name": "agent-box", "disk_mb": 256})),
    )
    .await?;
    ensure!(made["state"] == "running", "{made}");
    let token_row = format!("#token-rows tr[data-id='{id}']");
    let agent_row = "#sprite-rows tr[data-name='agent-box']";
    page.click(&format!("{token_row} button.budget")).await?;
    client.send_alert_text("0").await?;
    client.accept_alert().await?;
    page.text_where(&format!("{agent_row} .badge"), |t| t == "paused (budget)")
        .await?;
    page.text_where("#budget-state", |t| t == "stopped").await?;
    page.text_where("#budget-stop-text", |t| {
        t.contains("API token agent-7's budget") && t.contains("Raise it with its Budget button")
    })
    .await?;
    shoot(client, "budget-stopped", "#budget").await?;
    let patched = call(
        reqwest::Method::GET,
        &format!("{url}/v1/tokens"),
        session,
        None,
    )
    .await?;
    let agent = patched["tokens"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["id"] == id))
        .context("agent-7 listed")?;
    ensure!(agent["budget_nanos"] == 0, "{agent}");

    page.click(&format!("{token_row} button.budget")).await?;
    client.send_alert_text("5").await?;
    client.accept_alert().await?;
    page.text_where(&format!("{token_row} td:nth-child(3)"), |t| t == "$5.00")
        .await?;
    page.click("#budget-resume").await?;
    page.text_where(&format!("{agent_row} .badge"), |t| t == "running")
        .await?;
    page.gone_from_view("#budget-stop").await?;
    page.click(&format!("{agent_row} button.danger")).await?;
    client.accept_alert().await?;
    page.gone(agent_row).await?;
    Ok(())
}

/// The 5-second refresh keeps the keyboard focus and the element under it.
async fn focus_survives_a_refresh(client: &Client, row: &str) -> Result<()> {
    let page = Page(client);
    let pause = format!("{row} .actions button");
    page.displayed(&pause).await?;
    js(
        client,
        &format!(
            "window.focused = document.querySelector(\"{pause}\"); window.focused.focus(); return true"
        ),
    )
    .await?;
    // Past two refreshes (the sprite's cost changes between them).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let kept = js(
        client,
        "return window.focused.isConnected && document.activeElement === window.focused",
    )
    .await?;
    ensure!(kept == json!(true), "the refresh took the focus away");
    page.fill("#sprite-name", "half-typ").await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let kept = js(
        client,
        "return document.activeElement.id + '=' + document.activeElement.value",
    )
    .await?;
    ensure!(kept == json!("sprite-name=half-typ"), "{kept}");
    page.fill("#sprite-name", "").await?;
    Ok(())
}

/// At phone width (390 × 844) nothing widens the page: no horizontal scroll.
async fn at_phone_width(client: &Client) -> Result<()> {
    let (x, y, w, h) = client.get_window_rect().await?;
    client.set_window_rect(0, 0, 390, 844).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let widths = js(
        client,
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
    )
    .await?;
    let fits = widths[0].as_u64() <= widths[1].as_u64();
    shoot(client, "phone", "").await?;
    shoot(client, "phone-sprites", "#sprites").await?;
    client
        .set_window_rect(x as u32, y as u32, w as u32, h as u32)
        .await?;
    ensure!(fits, "the page scrolls sideways at 390 px: {widths}");
    Ok(())
}
