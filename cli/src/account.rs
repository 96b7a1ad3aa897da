//! `signup`, `login`, `logout` and `whoami`: getting a session token and keeping it in
//! the config file.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{Client, Problem};
use super::config::{self, Saved, DEFAULT_URL};
use super::{output, Global};

#[derive(Args)]
pub struct SignupArgs {
    /// Your e-mail address (prompted for when missing).
    #[arg(long)]
    email: Option<String>,
    /// Your organisation's name (prompted for when missing).
    #[arg(long)]
    org: Option<String>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Your e-mail address (prompted for when missing).
    #[arg(long)]
    email: Option<String>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Args)]
struct PasswordArgs {
    /// The password (visible to other local users in the process list; prefer the
    /// prompt or --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

/// The server a login goes to, and a client of it without a token.
fn anonymous(global: &Global) -> anyhow::Result<Client> {
    let url = match global.url.as_ref().filter(|u| !u.trim().is_empty()) {
        Some(url) => url.clone(),
        None => config::load()?.url.unwrap_or_else(|| DEFAULT_URL.into()),
    };
    Client::new(&url, None)
}

pub async fn signup(global: &Global, args: SignupArgs) -> anyhow::Result<i32> {
    let client = anonymous(global)?;
    let email = given_or_prompt(args.email, "E-mail")?;
    let org = given_or_prompt(args.org, "Organisation")?;
    let password = password(args.password, true)?;
    let body = json!({"email": email, "password": password, "org": org});
    let answer = client
        .call(Method::POST, &["v1", "signup"], Some(&body))
        .await?;
    let path = remember(&client, &answer)?;
    if global.json {
        output::json(&answer);
    } else {
        // One stream, so the two lines keep their order and line breaks wherever the
        // output goes.
        println!("signed up {email} ({org}) at {}", client.base());
        println!("session token saved in {}", path.display());
    }
    Ok(0)
}

pub async fn login(global: &Global, args: LoginArgs) -> anyhow::Result<i32> {
    let client = anonymous(global)?;
    let email = given_or_prompt(args.email, "E-mail")?;
    let password = password(args.password, false)?;
    let body = json!({"email": email, "password": password});
    let answer = client
        .call(Method::POST, &["v1", "login"], Some(&body))
        .await?;
    let path = remember(&client, &answer)?;
    if global.json {
        output::json(&answer);
    } else {
        println!(
            "logged in as {email} at {} until {}",
            client.base(),
            output::time(&answer, "expires_at")
        );
        println!("session token saved in {}", path.display());
    }
    Ok(0)
}

/// Ends the saved session on the server (so the token is dead even if a copy of it
/// leaked), then forgets it. An already expired or revoked session is fine.
pub async fn logout(global: &Global) -> anyhow::Result<i32> {
    let saved = config::load()?;
    let url = saved.url.clone();
    if let Some(token) = &saved.token {
        let base = url.as_deref().unwrap_or(DEFAULT_URL);
        let client = Client::new(base, Some(token.clone()))?;
        match client.call(Method::POST, &["v1", "logout"], None).await {
            Ok(_) => {}
            Err(error) if is_unauthorized(&error) => {}
            Err(error) => return Err(error.context("the server did not end the session")),
        }
    }
    config::save(&Saved { url, token: None })?;
    if !global.json {
        println!(
            "logged out of {}",
            saved.url.as_deref().unwrap_or(DEFAULT_URL)
        );
    }
    Ok(0)
}

fn is_unauthorized(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<Problem>()
        .is_some_and(|p| p.status == 401)
}

pub async fn whoami(client: &Client, json: bool) -> anyhow::Result<i32> {
    let me = client.get(&["v1", "me"], &[]).await?;
    if json {
        output::json(&me);
        return Ok(0);
    }
    let token = me.get("token").cloned().unwrap_or(Value::Null);
    let budget = match output::int(&token, "budget_nanos") {
        Some(_) => format!(
            "{} spent of {}",
            output::money(&token, "spent_nanos"),
            output::money(&token, "budget_nanos")
        ),
        None => "-".into(),
    };
    output::pairs(&[
        ("email", output::field(&me, "email")),
        ("org", output::field(&me, "org")),
        ("tenant", output::field(&me, "tenant_id")),
        ("server", client.base().to_string()),
        (
            "token",
            format!(
                "{} ({}, {})",
                output::field(&token, "id"),
                output::field(&token, "name"),
                output::field(&token, "kind")
            ),
        ),
        ("scopes", output::field(&token, "scopes")),
        ("expires", output::time(&token, "expires_at")),
        ("budget", budget),
    ]);
    Ok(0)
}

/// Saves the server and the answer's token as the ones to use from now on.
fn remember(client: &Client, answer: &Value) -> anyhow::Result<std::path::PathBuf> {
    let token = answer
        .get("token")
        .and_then(Value::as_str)
        .context("the server's answer has no token")?;
    config::save(&Saved {
        url: Some(client.base().to_string()),
        token: Some(token.to_string()),
    })
}

fn given_or_prompt(given: Option<String>, label: &str) -> anyhow::Result<String> {
    match given {
        Some(value) => Ok(value),
        None => prompt(label, false),
    }
}

fn password(args: PasswordArgs, confirm: bool) -> anyhow::Result<String> {
    if let Some(password) = args.password {
        return Ok(password);
    }
    if args.password_stdin {
        return read_line();
    }
    let password = prompt("Password", true)?;
    if confirm && std::io::stdin().is_terminal() && prompt("Password again", true)? != password {
        anyhow::bail!("the two passwords differ");
    }
    Ok(password)
}

/// Asks on stderr and reads one line of stdin; `hidden` turns off the echo on a terminal.
fn prompt(label: &str, hidden: bool) -> anyhow::Result<String> {
    // A script piping answers in needs no prompts in its log; a person does.
    let ask = std::io::stdin().is_terminal() || std::io::stderr().is_terminal();
    if ask {
        eprint!("{label}: ");
        let _ = std::io::stderr().flush();
    }
    let hide = hidden && std::io::stdin().is_terminal();
    // `stty` keeps this free of terminal libraries; without it the password just echoes.
    let stty = |arg: &str| {
        let _ = Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    if hide {
        // Ctrl-C at the prompt must not leave the terminal without echo. Once this
        // handler is in, Ctrl-C ends the command this way for the rest of its life.
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = Command::new("stty")
                    .arg("echo")
                    .stdin(Stdio::inherit())
                    .status();
                eprintln!();
                std::process::exit(130);
            }
        });
        stty("-echo");
    }
    let line = read_line();
    if hide {
        stty("echo");
        eprintln!();
    }
    let line = line?;
    if line.is_empty() {
        if ask && !hide {
            eprintln!();
        }
        anyhow::bail!("no {} given", label.to_lowercase());
    }
    Ok(line)
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
