//! `corral tokens budget ID AMOUNT`: a token's budget raised, lowered and removed from
//! the command line, and a refusal in one clear line.

use super::{one_error_line, Server, User};

#[test]
fn a_tokens_budget_changes_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("budget-cli@example.com");
    let minted = user.json(&[
        "tokens",
        "create",
        "agent",
        "--scope",
        "sprites:read",
        "--budget-usd",
        "2.50",
    ]);
    let id = minted["id"].as_str().expect("id").to_string();

    let out = user.ok(&["tokens", "budget", &id, "7.25"]);
    assert!(out.contains("agent") && out.contains("$7.25"), "{out}");
    let listed = user.json(&["tokens", "ls"]);
    assert_eq!(
        listed["tokens"][0]["budget_nanos"], 7_250_000_000_i64,
        "{listed}"
    );

    let none = user.json(&["tokens", "budget", &id, "none"]);
    assert!(none["budget_nanos"].is_null(), "{none}");

    one_error_line(
        &user.run(&["tokens", "budget", "no-such-token", "1"]),
        "not_found: ",
    );
    let bad = user.run(&["tokens", "budget", &id, "lots"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(
        bad.stderr.contains("is not an amount of dollars"),
        "{bad:?}"
    );
}
