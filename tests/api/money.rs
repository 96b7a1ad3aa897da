//! Hard caps end to end with real gVisor sprites and inflated prices: a sprite spinning
//! `yes` is paused for budget before its tenant cap or token budget is crossed, refuses
//! work with 402 until the cap is raised, keeps paying for its disk within the
//! reservation, survives a kill -9 of the server with a consistent ledger; threshold
//! alerts are queued once and delivered to a real SMTP peer on loopback.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_metering::period::Period;
use serde_json::{json, Value};

use crate::helpers::{expect_problem, expect_status, App};
use crate::smtp::SmtpServer;

/// $1 per CPU-second: a sprite spinning one vCPU burns about a dollar a second.
const CPU_PRICE: i64 = 1_000_000_000;
/// The tick and pause latency the tests run with: the rule's window is 500 ms.
const TICK_MS: i64 = 200;
const PAUSE_LATENCY_MS: i64 = 300;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A disk price at which 64 MB stored to the end of this month reserves about 20
/// cents, whatever day of the month the test runs on.
fn disk_price() -> i64 {
    let remaining = (Period::containing(now_ms()).end_ms - now_ms()).max(60_000) as i128;
    let target: i128 = 200_000_000;
    (target * 1_000_000_000 * 2_628_000_000 / (64_000_000 * remaining)) as i64
}

/// Inflated prices, a fast tick, a 1 s runway; `extra` on top.
async fn spawn(extra: &[(&str, String)]) -> App {
    let mut env: Vec<(String, String)> = vec![
        ("CORRAL_TICK_MS".into(), TICK_MS.to_string()),
        (
            "CORRAL_PAUSE_LATENCY_MS".into(),
            PAUSE_LATENCY_MS.to_string(),
        ),
        (
            "CORRAL_PRICE_CPU_NANOS_PER_CPU_S".into(),
            CPU_PRICE.to_string(),
        ),
        (
            "CORRAL_PRICE_DISK_NANOS_PER_GB_MONTH".into(),
            disk_price().to_string(),
        ),
        ("CORRAL_MIN_RUNWAY_S".into(), "1".into()),
        ("CORRAL_DEFAULT_IDLE_TIMEOUT_S".into(), "0".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    App::spawn_with(&refs).await
}

async fn budget(app: &App, token: &str) -> Value {
    expect_status(app.get("/v1/budget", token).await, 200).await
}

async fn set_budget(app: &App, token: &str, body: Value) -> Value {
    expect_status(app.put("/v1/budget", token, body).await, 200).await
}

async fn sprite(app: &App, token: &str, name: &str) -> Value {
    expect_status(app.get(&format!("/v1/sprites/{name}"), token).await, 200).await
}

async fn usage(app: &App, token: &str, query: &str) -> Value {
    expect_status(app.get(&format!("/v1/usage?{query}"), token).await, 200).await
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Lets the tick after a pause bill what ran between its decision and the pause.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(3 * TICK_MS as u64)).await;
}

/// Creates a one-vCPU sprite, stores 32 MB on its disk and starts `yes` spinning in it.
async fn spin(app: &App, token: &str, name: &str) {
    let created = expect_status(
        app.post(
            "/v1/sprites",
            token,
            json!({"name": name, "cpus": 1, "memory_mb": 128, "disk_mb": 256, "idle_timeout_s": 0}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["state"], "running", "{created}");
    let out = expect_status(
        app.post(
            &format!("/v1/sprites/{name}/exec"),
            token,
            json!({"cmd": ["sh", "-c", "dd if=/dev/zero of=/root/ballast bs=1M count=32 2>/dev/null && sync && (nohup yes >/dev/null 2>&1 &)"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
}

/// What a scope looked like while its sprite ran until paused.
struct Run {
    /// Most spent seen at any poll.
    max_spent: i64,
    /// From the first poll where the next window no longer fit to the pause being seen.
    exhausted_to_paused: Option<Duration>,
    /// From the start of the spin to the pause being seen.
    took: Duration,
}

/// Polls `spent` (read by `read`, with its cap) until the sprite is paused for
/// budget, asserting on every poll that spend never passes the cap.
async fn until_paused<F, Fut>(app: &App, token: &str, name: &str, mut read: F) -> Run
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (i64, i64, i64)>,
{
    let started = Instant::now();
    let (mut max_spent, mut exhausted_at) = (0, None);
    loop {
        let (spent, cap, available) = read().await;
        assert!(spent <= cap, "spent {spent} passed the cap {cap}");
        max_spent = max_spent.max(spent);
        // One window of one vCPU flat out: when less than that is left, the rule acts.
        let window = CPU_PRICE * (TICK_MS + PAUSE_LATENCY_MS) / 1000;
        if available < window && exhausted_at.is_none() {
            exhausted_at = Some(Instant::now());
        }
        let s = sprite(app, token, name).await;
        if s["state"] == "paused" {
            assert_eq!(s["pause_reason"], "budget", "{s}");
            return Run {
                max_spent,
                exhausted_to_paused: exhausted_at.map(|t| t.elapsed()),
                took: started.elapsed(),
            };
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not paused in 30 s: {s} spent {spent} of {cap}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tenant's (spent, cap, available); the usage report must never pass the cap either.
async fn tenant_spend(app: &App, token: &str) -> (i64, i64, i64) {
    let b = budget(app, token).await;
    let total = int(&usage(app, token, "by=minute").await, "total_nanos");
    assert!(
        total <= int(&b, "cap_nanos"),
        "usage {total} passed the cap: {b}"
    );
    (
        int(&b, "spent_nanos"),
        int(&b, "cap_nanos"),
        int(&b, "available_nanos"),
    )
}

async fn metric(app: &App, name: &str) -> i64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test]
async fn a_spinning_sprite_is_paused_before_the_tenant_cap() {
    let smtp = SmtpServer::start(1).await;
    let app = spawn(&[
        ("CORRAL_SMTP_URL", smtp.url.clone()),
        ("CORRAL_SMTP_FROM", "Corral <alerts@corral.test>".into()),
        ("CORRAL_MAIL_RETRY_BASE_S", "1".into()),
    ])
    .await;
    let (_, token) = app.signup("cap@example.com").await;
    let cap = 3 * CPU_PRICE;
    let set = set_budget(
        &app,
        &token,
        json!({"cap_nanos": cap, "thresholds_pct": [50, 80, 100], "alert_email": "ops@example.com"}),
    )
    .await;
    assert_eq!(int(&set, "cap_nanos"), cap);
    assert_eq!(set["alert_email"], "ops@example.com");

    spin(&app, &token, "spin").await;
    let run = until_paused(&app, &token, "spin", || tenant_spend(&app, &token)).await;
    let pause_us = metric(&app, "corral_budget_last_pause_microseconds").await;
    eprintln!(
        "tenant cap: paused after {:?}, seen {:?} after the window stopped fitting, max spent {} of {cap} (overshoot {}), pause took {pause_us} us",
        run.took,
        run.exhausted_to_paused,
        run.max_spent,
        (run.max_spent - cap).max(0),
    );
    // From the tick that found the scope out of room to the sprite paused: well
    // within one tick.
    assert!(pause_us < TICK_MS * 1000, "pause took {pause_us} us");
    assert!(metric(&app, "corral_meter_ticks_total").await > 5);

    // Afterwards: spend stays under the cap, compute stops, disk keeps accruing
    // within the reservation.
    settle().await;
    let totals = |report: &Value, key: &str| -> i64 {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| int(r, key))
            .sum()
    };
    let first = budget(&app, &token).await;
    let report = usage(&app, &token, "by=minute&sprite=spin").await;
    let (cpu_first, disk_first) = (totals(&report, "cpu_ns"), totals(&report, "disk_byte_s"));
    assert!(cpu_first > 1_000_000_000, "yes ran for over a CPU-second");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = budget(&app, &token).await;
    let report = usage(&app, &token, "by=minute&sprite=spin").await;
    let (cpu_later, disk_later) = (totals(&report, "cpu_ns"), totals(&report, "disk_byte_s"));
    let (s1, s2) = (int(&first, "spent_nanos"), int(&later, "spent_nanos"));
    eprintln!(
        "paused 1.5 s: spent {s1} -> {s2}, cpu_ns {cpu_first} -> {cpu_later}, disk_byte_s \
         {disk_first} -> {disk_later}, storage reserved {} -> {}",
        first["storage_reserved_nanos"], later["storage_reserved_nanos"]
    );
    // 32 MB for 1.5 s, at least.
    assert!(
        disk_later - disk_first >= 32_000_000,
        "disk keeps accruing: {report}"
    );
    assert!(s2 > s1, "the paused sprite keeps costing: {s1} -> {s2}");
    assert!(
        cpu_later - cpu_first < 50_000_000,
        "a paused sprite uses no CPU: {report}"
    );
    for b in [&first, &later] {
        let reserved = int(b, "storage_reserved_nanos");
        assert!(reserved > 0, "{b}");
        assert!(int(b, "spent_nanos") + reserved <= cap, "{b}");
        assert_eq!(b["paused_for_budget"], 1, "{b}");
    }
    assert!(
        int(&later, "storage_reserved_nanos") < int(&first, "storage_reserved_nanos"),
        "what accrued came out of the reservation"
    );
    assert!(int(&report, "total_nanos") <= cap, "{report}");
    let spent_now = int(&budget(&app, &token).await, "spent_nanos");
    assert!(
        (spent_now - int(&report, "total_nanos")).abs() < 10_000_000,
        "{report}"
    );
    let cost = int(&sprite(&app, &token, "spin").await, "cost_nanos");
    assert!(cost > 0 && cost <= cap, "cost {cost}");

    // Paused for budget: work is refused with 402 saying what is left and when.
    let refused = expect_problem(
        app.post("/v1/sprites/spin/exec", &token, json!({"cmd": ["true"]}))
            .await,
        402,
        "budget_exhausted",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("left") && detail.contains("resets at"),
        "{detail}"
    );
    expect_problem(
        app.post("/v1/sprites/spin/resume", &token, json!({})).await,
        402,
        "budget_exhausted",
    )
    .await;

    // Raising the cap and resume_paused: it runs again, and is paused again below
    // the new cap (yes is still spinning inside).
    let cap = 5 * CPU_PRICE;
    let raised = set_budget(
        &app,
        &token,
        json!({"cap_nanos": cap, "resume_paused": true}),
    )
    .await;
    assert_eq!(raised["resumed"], json!(["spin"]), "{raised}");
    assert_eq!(sprite(&app, &token, "spin").await["state"], "running");
    let run = until_paused(&app, &token, "spin", || tenant_spend(&app, &token)).await;
    assert!(run.max_spent <= cap);

    // Thresholds: each queued once, delivered over SMTP after the first refusal.
    let deadline = Instant::now() + Duration::from_secs(15);
    let alerts = loop {
        let alerts = expect_status(app.get("/v1/alerts", &token).await, 200).await;
        let list = alerts["alerts"].as_array().unwrap().clone();
        if list.len() >= 3 && list.iter().all(|a| a["state"] == "sent") {
            break list;
        }
        assert!(Instant::now() < deadline, "alerts not all sent: {alerts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut pcts: Vec<i64> = alerts.iter().map(|a| int(a, "threshold_pct")).collect();
    pcts.sort_unstable();
    assert_eq!(pcts, vec![50, 80, 100], "once each per period: {alerts:?}");
    assert!(
        alerts.iter().any(|a| int(a, "attempts") >= 2),
        "one was retried"
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(
        *smtp.connections.lock().unwrap() >= 4,
        "one refused, three delivered"
    );
    for mail in &mails {
        assert_eq!(mail.to, vec!["<ops@example.com>"]);
        assert!(mail.from.contains("alerts@corral.test"));
        assert!(mail.data.contains("Subject:"), "{}", mail.data);
    }
    assert_eq!(metric(&app, "corral_outbox_sent_total").await, 3);
    assert_eq!(metric(&app, "corral_outbox_backlog").await, 0);
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
}

/// A token's own budget as the token sees it in `GET /v1/budget`: (spent, cap, available).
async fn token_spend(app: &App, token: &str, id: &str) -> (i64, i64, i64) {
    let b = budget(app, token).await;
    let scope = format!("token:{id}");
    let t = b["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == scope.as_str())
        .unwrap_or_else(|| panic!("no budget of {scope} in {b}"))
        .clone();
    (
        int(&t, "spent_nanos"),
        int(&t, "cap_nanos"),
        int(&t, "available_nanos"),
    )
}

/// A token's spend as `GET /v1/tokens` lists it.
async fn listed_spent(app: &App, session: &str, id: &str) -> i64 {
    let list = expect_status(app.get("/v1/tokens", session).await, 200).await;
    let t = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    int(&t, "spent_nanos")
}

const SCOPES: [&str; 6] = [
    "sprites:read",
    "sprites:write",
    "exec",
    "tokens:create",
    "budget",
    "billing",
];

#[tokio::test]
async fn token_budgets_pause_what_the_token_and_its_children_created() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("tokens@example.com").await;

    // A token's own budget.
    let budget_nanos = 2 * CPU_PRICE;
    let ci = app
        .mint(
            &session,
            json!({"name": "ci", "scopes": SCOPES, "budget_nanos": budget_nanos}),
        )
        .await;
    let (ci_token, ci_id) = (ci["token"].as_str().unwrap(), ci["id"].as_str().unwrap());
    spin(&app, ci_token, "ci-box").await;
    let run = until_paused(&app, ci_token, "ci-box", || {
        token_spend(&app, ci_token, ci_id)
    })
    .await;
    eprintln!(
        "token budget: paused after {:?}, max spent {} of {budget_nanos}",
        run.took, run.max_spent
    );
    let refused = expect_problem(
        app.post(
            "/v1/sprites/ci-box/exec",
            ci_token,
            json!({"cmd": ["true"]}),
        )
        .await,
        402,
        "token_budget_exhausted",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains(ci_id),
        "{refused}"
    );
    let spent = listed_spent(&app, &session, ci_id).await;
    assert!(spent > 0 && spent <= budget_nanos, "{spent}");
    // The tenant is not out of money: the token's budget paused it, not the cap.
    let tenant = budget(&app, &session).await;
    assert!(int(&tenant, "available_nanos") > 90 * CPU_PRICE, "{tenant}");
    assert_eq!(
        tenant["state"], "paused",
        "one sprite waits for resume_paused"
    );

    // A child without a budget of its own spends its parent's.
    let parent = app
        .mint(
            &session,
            json!({"name": "parent", "scopes": SCOPES, "budget_nanos": budget_nanos}),
        )
        .await;
    let (parent_token, parent_id) = (
        parent["token"].as_str().unwrap(),
        parent["id"].as_str().unwrap(),
    );
    let child = app
        .mint(parent_token, json!({"name": "child", "scopes": SCOPES}))
        .await;
    let (child_token, child_id) = (
        child["token"].as_str().unwrap(),
        child["id"].as_str().unwrap(),
    );
    assert_eq!(child["parent_id"], parent_id);
    spin(&app, child_token, "child-box").await;
    let run = until_paused(&app, child_token, "child-box", || {
        token_spend(&app, child_token, parent_id)
    })
    .await;
    eprintln!(
        "parent budget: paused after {:?}, max spent {} of {budget_nanos}",
        run.took, run.max_spent
    );
    let refused = expect_problem(
        app.post(
            "/v1/sprites/child-box/exec",
            child_token,
            json!({"cmd": ["true"]}),
        )
        .await,
        402,
        "token_budget_exhausted",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains(parent_id),
        "{refused}"
    );
    let parent_spent = listed_spent(&app, &session, parent_id).await;
    let child_spent = listed_spent(&app, &session, child_id).await;
    assert!(parent_spent <= budget_nanos, "{parent_spent}");
    assert!(
        (parent_spent - child_spent).abs() < 10_000_000,
        "{parent_spent} {child_spent}"
    );

    // Tenant isolation: B sees none of A's usage, spend or alerts.
    let report = usage(&app, &session, "by=minute").await;
    let names: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sprite"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ci-box") && names.contains(&"child-box"),
        "{report}"
    );
    let (_, b) = app.signup("other@example.com").await;
    for query in ["by=minute", "by=day", "by=hour&sprite=ci-box"] {
        let theirs = usage(&app, &b, query).await;
        assert_eq!(theirs["rows"], json!([]), "{theirs}");
        assert_eq!(theirs["total_nanos"], 0);
    }
    assert_eq!(budget(&app, &b).await["spent_nanos"], 0);
    let alerts = expect_status(app.get("/v1/alerts", &b).await, 200).await;
    assert_eq!(alerts["alerts"], json!([]));
    expect_problem(app.get("/v1/sprites/ci-box", &b).await, 404, "not_found").await;
}

#[tokio::test]
async fn kill_9_mid_run_keeps_the_ledger_consistent() {
    let mut app = spawn(&[]).await;
    let (_, token) = app.signup("crash@example.com").await;
    let cap = 4 * CPU_PRICE;
    set_budget(&app, &token, json!({"cap_nanos": cap})).await;
    spin(&app, &token, "crash").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let (spent, _, _) = tenant_spend(&app, &token).await;
        if spent > CPU_PRICE / 2 {
            break spent;
        }
        assert!(Instant::now() < deadline, "nothing metered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    app.kill9();
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.start().await;
    let last = std::sync::atomic::AtomicI64::new(before);
    let run = until_paused(&app, &token, "crash", || {
        let (app, token, last) = (&app, &token, &last);
        async move {
            let (spent, cap, available) = tenant_spend(app, token).await;
            let prev = last.swap(spent, std::sync::atomic::Ordering::Relaxed);
            assert!(spent >= prev, "spend went back from {prev} to {spent}");
            (spent, cap, available)
        }
    })
    .await;
    assert!(run.max_spent <= cap);

    // Killed again while paused: it stays paused, spend stays put (but for disk).
    settle().await;
    let paused_spent = int(&budget(&app, &token).await, "spent_nanos");
    app.kill9();
    app.start().await;
    tokio::time::sleep(Duration::from_millis(3 * TICK_MS as u64)).await;
    let s = sprite(&app, &token, "crash").await;
    assert_eq!(
        (s["state"].as_str(), s["pause_reason"].as_str()),
        (Some("paused"), Some("budget"))
    );
    let b = budget(&app, &token).await;
    let spent = int(&b, "spent_nanos");
    assert!(
        spent >= paused_spent && spent - paused_spent < CPU_PRICE / 100,
        "{paused_spent} -> {b}"
    );
    assert!(spent + int(&b, "storage_reserved_nanos") <= cap, "{b}");
    // The ledger and the spend agree, by minute and by day.
    let minutes = int(&usage(&app, &token, "by=minute").await, "total_nanos");
    let days = int(&usage(&app, &token, "by=day").await, "total_nanos");
    assert_eq!(minutes, days);
    assert!((int(&budget(&app, &token).await, "spent_nanos") - minutes).abs() < CPU_PRICE / 100);
    expect_status(app.delete("/v1/sprites/crash", &token).await, 204).await;
}

#[tokio::test]
async fn no_runway_refuses_creates_and_bad_input_is_named() {
    let app = spawn(&[]).await;
    let (_, session) = app.signup("runway@example.com").await;
    let prices = expect_status(app.get("/v1/prices", &session).await, 200).await;
    assert_eq!(int(&prices, "cpu_nanos_per_cpu_s"), CPU_PRICE);
    assert_eq!(int(&prices, "tick_ms"), TICK_MS);

    // Less than one second of one vCPU left: no create.
    set_budget(&app, &session, json!({"cap_nanos": CPU_PRICE / 2})).await;
    let body = json!({"name": "nope", "cpus": 1, "memory_mb": 128});
    let refused = expect_problem(
        app.post("/v1/sprites", &session, body.clone()).await,
        402,
        "budget_exhausted",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 s minimum runway") && detail.contains("resets at"),
        "{detail}"
    );
    let listed = expect_status(app.get("/v1/sprites", &session).await, 200).await;
    assert_eq!(listed["sprites"], json!([]));
    let b = set_budget(&app, &session, json!({"cap_nanos": 0})).await;
    assert_eq!(b["state"], "exhausted", "{b}");
    expect_problem(
        app.post("/v1/sprites", &session, body.clone()).await,
        402,
        "budget_exhausted",
    )
    .await;

    // Enough for the tenant, not for the token.
    set_budget(&app, &session, json!({"cap_nanos": 100 * CPU_PRICE})).await;
    let poor = app
        .mint(
            &session,
            json!({"name": "poor", "scopes": SCOPES, "budget_nanos": CPU_PRICE / 3}),
        )
        .await;
    let poor = poor["token"].as_str().unwrap();
    expect_problem(
        app.post("/v1/sprites", poor, body).await,
        402,
        "token_budget_exhausted",
    )
    .await;

    // Bad input is a 422 that says what is wrong.
    for bad in [
        json!({"cap_nanos": -1}),
        json!({"cap_nanos": "lots"}),
        json!({"thresholds_pct": [0]}),
        json!({"thresholds_pct": [50, 101]}),
        json!({"alert_email": "not-an-address"}),
        json!({"cap": 5}),
    ] {
        expect_problem(
            app.put("/v1/budget", &session, bad).await,
            422,
            "validation",
        )
        .await;
    }
    for query in [
        "by=week",
        "from=yesterday",
        "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "by=minute&from=2020-01-01T00:00:00Z",
        "sprite=Not_A_Name",
    ] {
        expect_problem(
            app.get(&format!("/v1/usage?{query}"), &session).await,
            422,
            "validation",
        )
        .await;
    }
    // Thresholds are kept sorted and once each; "" goes back to the account address.
    let b = set_budget(
        &app,
        &session,
        json!({"thresholds_pct": [90, 10, 90], "alert_email": ""}),
    )
    .await;
    assert_eq!(b["thresholds_pct"], json!([10, 90]));
    assert_eq!(b["alert_email"], "runway@example.com");

    // Scopes: reading money needs budget or billing; resuming sprites needs sprites:write.
    let exec_only = app
        .mint(&session, json!({"name": "x", "scopes": ["exec"]}))
        .await;
    let exec_only = exec_only["token"].as_str().unwrap();
    for path in ["/v1/budget", "/v1/usage", "/v1/alerts"] {
        expect_problem(app.get(path, exec_only).await, 403, "forbidden").await;
    }
    assert_eq!(app.get("/v1/prices", exec_only).await.status(), 200);
    let budget_only = app
        .mint(&session, json!({"name": "b", "scopes": ["budget"]}))
        .await;
    let budget_only = budget_only["token"].as_str().unwrap();
    expect_problem(
        app.put("/v1/budget", budget_only, json!({"resume_paused": true}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let openapi = expect_status(
        app.client
            .get(format!("{}/v1/openapi.json", app.url))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    for path in ["/v1/budget", "/v1/usage", "/v1/prices", "/v1/alerts"] {
        assert!(openapi["paths"][path].is_object(), "{path} not documented");
    }
    let anonymous = app
        .request(reqwest::Method::GET, "/v1/budget", None)
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 401, "unauthorized").await;
}
