//! Alert mails after an SMTP outage: three thresholds fire while the mail server is
//! down; once it is up they arrive in the order they were queued, and the "cap reached"
//! mail names the paused sprite and links to the budget page.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::smtp::SmtpServer;
use super::*;
use crate::helpers::expect_status;

const PUBLIC_URL: &str = "https://corral.example.test";

async fn alerts(app: &App, token: &str) -> Vec<Value> {
    let list = expect_status(app.get("/v1/alerts", token).await, 200).await;
    list["alerts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn alert_mails_arrive_in_order_after_an_smtp_outage() {
    let smtp = SmtpServer::start(0).await;
    smtp.set_down(true);
    let app = spawn(&[
        ("CORRAL_SMTP_URL", smtp.url.clone()),
        ("CORRAL_MAIL_RETRY_BASE_S", "1".into()),
        ("CORRAL_PUBLIC_URL", PUBLIC_URL.into()),
    ])
    .await;
    let (_, token) = app.signup("order@example.com").await;
    // Five CPU-seconds: the rule pauses the spinning sprite one window (tick, pause
    // latency and the slowest recent tick) short of the cap, and that must stay above
    // 80 % even when a busy host slows the ticks (with 3, 80 % was 0.1 CPU-s below the
    // bare window's pause, and the test failed once in a loaded run).
    set_budget(
        &app,
        &token,
        json!({"cap_nanos": 5 * CPU_PRICE, "thresholds_pct": [50, 80, 100]}),
    )
    .await;
    spin(&app, &token, "spin").await;
    until_paused(&app, &token, "spin", || tenant_spend(&app, &token)).await;

    // All three are queued, and the outage has failed at least one delivery.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = alerts(&app, &token).await;
        let tried = list.iter().map(|a| int(a, "attempts")).sum::<i64>();
        if list.len() == 3 && tried >= 2 {
            assert!(list.iter().all(|a| a["state"] != "sent"), "{list:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts not queued and tried: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(smtp.mails().is_empty());

    smtp.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(40);
    while smtp.mails().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "mails not delivered after the outage: {:?}",
            alerts(&app, &token).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = smtp.mails();
    // Long header lines are folded: a line break followed by a space continues them.
    let subjects: Vec<String> = mails
        .iter()
        .map(|m| {
            m.data
                .replace("\r\n ", " ")
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    eprintln!("delivered in this order: {subjects:?}");
    assert_eq!(mails.len(), 3, "{subjects:?}");
    assert!(subjects[0].contains("50%"), "{subjects:?}");
    assert!(subjects[1].contains("80%"), "{subjects:?}");
    assert!(subjects[2].contains("paused"), "{subjects:?}");
    // Bodies are quoted-printable or plain; undo soft line breaks before reading them.
    let last = mails[2].data.replace("=\r\n", "").replace("=\n", "");
    assert!(
        last.contains("sprites were paused (spin)"),
        "names the paused sprite: {last}"
    );
    assert!(
        last.contains(&format!("{PUBLIC_URL}/#budget")),
        "links the budget page: {last}"
    );
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
}
