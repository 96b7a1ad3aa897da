//! The calls: checked input, scopes, tenants kept apart, the OpenAPI document.

use serde_json::{json, Value};

use super::*;
use crate::helpers::{expect_problem, expect_problem_naming, expect_status, App};

#[tokio::test]
async fn schedules_are_checked_scoped_and_private_to_their_tenant() {
    let app = App::spawn().await;
    let (_, alice) = app.signup("alice-cron@example.com").await;
    let (_, bob) = app.signup("bob-cron@example.com").await;
    create_sprite(&app, &alice, "mine", 0).await;
    let path = "/v1/sprites/mine/schedules";
    for (body, needle) in [
        (json!({"cron": "61 * * * *", "cmd": ["true"]}), "minute 61"),
        (json!({"cron": "* * * *", "cmd": ["true"]}), "4 fields"),
        (
            json!({"cron": "*/5 * * * * *", "cmd": ["true"]}),
            "six fields",
        ),
        (json!({"cron": "@reboot", "cmd": ["true"]}), "@reboot"),
        (
            json!({"cron": "0 0 30 2 *", "cmd": ["true"]}),
            "never fires",
        ),
        (json!({"cron": "@daily"}), "either cmd"),
        (
            json!({"cron": "@daily", "cmd": ["true"], "checkpoint": true}),
            "either cmd",
        ),
        (json!({"cron": "@daily", "cmd": []}), "program"),
    ] {
        expect_problem_naming(
            app.post(path, &alice, body).await,
            422,
            "validation",
            needle,
        )
        .await;
    }
    let made = add(
        &app,
        &alice,
        "mine",
        json!({"cron": "@daily", "cmd": ["true"]}),
    )
    .await;
    assert_eq!(made["cron_expressions"], json!(["0 0 0 * * *"]));
    let id = made["id"].as_str().unwrap();
    // Crontab's "day of month OR day of week": two of the crate's expressions.
    let either = add(
        &app,
        &alice,
        "mine",
        json!({"cron": "0 12 1 * mon", "cmd": ["true"]}),
    )
    .await;
    assert_eq!(
        either["cron_expressions"],
        json!(["0 0 12 1 * *", "0 0 12 * * MON"])
    );
    for t in either["next_runs"].as_array().unwrap() {
        let (secs, weekday) = parse_utc(t.as_str().unwrap());
        let (_, _, day) = corral_metering::period::civil_from_days(secs / 86_400);
        assert!(day == 1 || weekday == 1, "{either}");
    }
    let gone = format!(
        "/v1/sprites/mine/schedules/{}",
        either["id"].as_str().unwrap()
    );
    expect_status(app.delete(&gone, &alice).await, 204).await;

    // The calls and their bodies are in the OpenAPI document.
    let doc = expect_status(app.get("/v1/openapi.json", &alice).await, 200).await;
    let paths = &doc["paths"];
    assert!(
        paths["/v1/sprites/{name}/schedules"]["post"].is_object(),
        "{paths}"
    );
    assert!(
        paths["/v1/sprites/{name}/schedules"]["get"].is_object(),
        "{paths}"
    );
    assert!(
        paths["/v1/sprites/{name}/schedules/{id}"]["delete"].is_object(),
        "{paths}"
    );
    let schema = &doc["components"]["schemas"]["ScheduleView"]["properties"];
    assert!(
        schema["next_runs"].is_object() && schema["last_runs"].is_object(),
        "{schema}"
    );

    // Bob sees nothing of Alice's, and cannot delete it.
    expect_problem(app.get(path, &bob).await, 404, "not_found").await;
    let body = json!({"cron": "@daily", "cmd": ["true"]});
    expect_problem(app.post(path, &bob, body).await, 404, "not_found").await;
    let one = format!("{path}/{id}");
    expect_problem(app.delete(&one, &bob).await, 404, "not_found").await;
    create_sprite(&app, &bob, "mine", 0).await;
    assert!(list(&app, &bob, "mine").await.is_empty());
    expect_problem(app.delete(&one, &bob).await, 404, "not_found").await;
    assert_eq!(list(&app, &alice, "mine").await.len(), 1);

    // The scope: without `schedules` nothing; a command needs `exec`, a checkpoint
    // `checkpoints`.
    let no_scope = app
        .mint(
            &alice,
            json!({"name": "plain", "scopes": ["sprites:read", "exec"]}),
        )
        .await;
    let no_scope = no_scope["token"].as_str().unwrap();
    expect_problem_naming(app.get(path, no_scope).await, 403, "forbidden", "schedules").await;
    let snapper = app
        .mint(
            &alice,
            json!({"name": "snap", "scopes": ["schedules", "checkpoints"]}),
        )
        .await;
    let snapper = snapper["token"].as_str().unwrap();
    let body = json!({"cron": "@hourly", "cmd": ["true"]});
    expect_problem_naming(
        app.post(path, snapper, body).await,
        403,
        "forbidden",
        "exec",
    )
    .await;
    add(
        &app,
        snapper,
        "mine",
        json!({"cron": "@hourly", "checkpoint": true}),
    )
    .await;
    let shown = list(&app, snapper, "mine").await;
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[1]["checkpoint"], true);
    assert_eq!(shown[1]["cmd"], Value::Null);
    expect_problem(
        app.delete(&format!("{path}/nope"), &alice).await,
        404,
        "not_found",
    )
    .await;
    for (token, name) in [(&alice, "mine"), (&bob, "mine")] {
        expect_status(app.delete(&format!("/v1/sprites/{name}"), token).await, 204).await;
    }
}
