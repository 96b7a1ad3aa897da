//! The schedules card in a real headless Chromium (chromedriver, WebDriver) against the
//! real `corral` binary and a real sprite: add a command schedule from the page, see its
//! run's exit code and output in the card, delete it from the page.

use anyhow::{ensure, Context, Result};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

#[path = "common/browser.rs"]
mod browser;
#[path = "common/machines.rs"]
mod machines;

#[path = "common/page.rs"]
mod page;

use browser::{start_browser, start_server};
use page::text_where;

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
    // Runs every few seconds, so the card shows one soon.
    let (server, url) = start_server(data_dir.path(), &[("CORRAL_SCHEDULE_SECONDS", "on")]).await;
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
