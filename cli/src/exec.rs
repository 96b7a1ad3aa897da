//! `exec` and `console`: commands in a sprite over the exec WebSocket (binary frames,
//! first byte the stream: 0 stdin, 1 stdout, 2 stderr, 3 exit code as text, 4 stdin
//! closed, 5 resize), with local stdin forwarded and output streamed as it comes; on a
//! terminal (`console` from one, `exec -t`) the sprite side gets one too and the local
//! one is in raw mode for the session.

use std::io::{IsTerminal, Read, Write};

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::output;
use super::terminal;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const STDIN_CLOSED: u8 = 4;
const RESIZE: u8 = 5;

#[derive(Args)]
pub struct ExecArgs {
    /// The sprite's name.
    name: String,
    /// The command and its arguments (`--` before them is optional; everything after
    /// the command's name is its own).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    cmd: Vec<String>,
    /// Do not forward stdin: the command sees it closed at once.
    #[arg(short = 'n', long)]
    no_stdin: bool,
    /// Set an environment variable for the command (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = env_pair)]
    env: Vec<(String, String)>,
    /// The directory the command runs in.
    #[arg(long)]
    cwd: Option<String>,
    /// Seconds before the server kills the command.
    #[arg(long)]
    timeout_s: Option<u64>,
    /// Run the command on a terminal (for `top`, `vi`, a REPL): the local terminal is
    /// in raw mode until it ends.
    #[arg(short = 't', long)]
    tty: bool,
}

fn env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.into(), value.into())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

#[derive(Args)]
pub struct ConsoleArgs {
    /// The sprite's name.
    name: String,
    /// The shell to run.
    #[arg(long, default_value = "bash")]
    shell: String,
}

pub async fn exec(client: &Client, args: ExecArgs, json: bool) -> anyhow::Result<i32> {
    if json {
        return exec_json(client, args).await;
    }
    let mut query: Vec<(&str, String)> = args.cmd.iter().map(|a| ("cmd", a.clone())).collect();
    query.extend(args.env.iter().map(|(k, v)| ("env", format!("{k}={v}"))));
    query.extend(args.cwd.iter().map(|cwd| ("cwd", cwd.clone())));
    query.extend(args.timeout_s.map(|s| ("timeout_s", s.to_string())));
    if args.tty && !terminal::is_interactive() {
        anyhow::bail!("-t needs a terminal: stdin and stdout are not one");
    }
    stream(client, &args.name, &query, !args.no_stdin, args.tty).await
}

/// `--json`: the buffered `POST …/exec`, whose answer is printed as it comes.
async fn exec_json(client: &Client, args: ExecArgs) -> anyhow::Result<i32> {
    let mut body = json!({ "cmd": args.cmd });
    if !args.no_stdin && !std::io::stdin().is_terminal() {
        let mut input = Vec::new();
        std::io::stdin()
            .read_to_end(&mut input)
            .context("cannot read stdin")?;
        let input =
            String::from_utf8(input).context("stdin is not UTF-8 (use exec without --json)")?;
        body["stdin"] = json!(input);
    }
    if let Some(timeout) = args.timeout_s {
        body["timeout_s"] = json!(timeout);
    }
    if !args.env.is_empty() {
        body["env"] = json!(args
            .env
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>());
    }
    if let Some(cwd) = args.cwd {
        body["cwd"] = json!(cwd);
    }
    let answer = client
        .call(
            Method::POST,
            &["v1", "sprites", &args.name, "exec"],
            Some(&body),
        )
        .await?;
    output::json(&answer);
    Ok(answer
        .get("exit_code")
        .and_then(Value::as_i64)
        .map_or(1, |c| c as i32))
}

pub async fn console(client: &Client, args: ConsoleArgs) -> anyhow::Result<i32> {
    if terminal::is_interactive() {
        // A terminal on both sides: a login shell with a prompt, job control, colours
        // and full-screen programs; the session ends when the shell does (Ctrl-D, exit).
        let query = [("cmd", args.shell), ("cmd", "-l".to_string())];
        return stream(client, &args.name, &query, true, true).await;
    }
    if std::io::stdin().is_terminal() {
        // No terminal is allocated in the sprite, so there is no prompt and no job
        // control; the local terminal keeps its line editing and echo, which is what
        // makes this usable without one.
        eprintln!(
            "connected to {} ({} without a terminal: one command per line, Ctrl-D leaves)",
            args.name, args.shell
        );
    }
    stream(client, &args.name, &[("cmd", args.shell)], true, false).await
}

/// Runs a command in `name` over the WebSocket (`query` holds `cmd` once per word,
/// and `env`, `cwd`, `timeout_s`); returns the command's exit code.
async fn stream(
    client: &Client,
    name: &str,
    query: &[(&str, String)],
    stdin: bool,
    tty: bool,
) -> anyhow::Result<i32> {
    let mut url = client.endpoint(&["v1", "sprites", name, "exec", "ws"]);
    {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in query {
            pairs.append_pair(key, value);
        }
        if tty {
            let (rows, cols) = terminal::size();
            pairs.append_pair("tty", "1");
            pairs.append_pair("rows", &rows.to_string());
            pairs.append_pair("cols", &cols.to_string());
        }
    }
    let socket = super::ws::open(client, url, "the exec stream").await?;
    let (mut sink, mut source) = socket.split();
    // Raw mode from here to every return below (the guard restores it when dropped).
    let _raw = if tty {
        Some(terminal::RawMode::enter()?)
    } else {
        None
    };
    let watch = |kind| {
        tty.then(|| tokio::signal::unix::signal(kind).ok())
            .flatten()
    };
    use tokio::signal::unix::SignalKind;
    let mut resized = watch(SignalKind::window_change());
    // Killed or hung up while the terminal is raw: end the session the normal way, so
    // the terminal is restored.
    let (mut terminated, mut hung_up) =
        (watch(SignalKind::terminate()), watch(SignalKind::hangup()));
    let mut input = if stdin {
        Some(stdin_chunks())
    } else {
        sink.send(Message::binary(vec![STDIN_CLOSED])).await?;
        None
    };
    loop {
        tokio::select! {
            message = source.next() => {
                let message = match message {
                    None => anyhow::bail!("the exec stream ended before the command exited"),
                    Some(Err(e)) => anyhow::bail!("the exec stream broke: {e}"),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Binary(frame) => match frame.split_first() {
                        Some((&STDOUT, data)) => {
                            if let Err(code) = write_all(&mut std::io::stdout(), data) {
                                return Ok(code);
                            }
                        }
                        Some((&STDERR, data)) => {
                            let _ = write_all(&mut std::io::stderr(), data);
                        }
                        Some((&EXIT, code)) => {
                            let code = String::from_utf8_lossy(code);
                            let code: i32 = code.trim().parse().with_context(|| {
                                format!("the server sent {code:?} as the exit code")
                            })?;
                            let _ = sink.send(Message::Close(None)).await;
                            return Ok(code);
                        }
                        _ => {}
                    },
                    Message::Text(text) => {
                        // A server may explain a refusal with a problem in a text frame.
                        let parsed: Option<Value> = serde_json::from_str(text.as_str()).ok();
                        match parsed.filter(|p| p.get("code").is_some()) {
                            Some(p) => {
                                let status = p.get("status").and_then(Value::as_u64).unwrap_or(0);
                                let headers = Default::default();
                                return Err(client.problem(status as u16, &headers, text.as_bytes()));
                            }
                            None => eprintln!("{text}"),
                        }
                    }
                    Message::Close(frame) => {
                        let reason = frame
                            .map(|f| f.reason.to_string())
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default();
                        anyhow::bail!("the server closed the exec stream before the command exited{reason}");
                    }
                    _ => {}
                }
            }
            Some(()) = next_signal(&mut terminated) => return Ok(143),
            Some(()) = next_signal(&mut hung_up) => return Ok(129),
            Some(()) = next_signal(&mut resized) => {
                let (rows, cols) = terminal::size();
                let size = json!({ "rows": rows, "cols": cols }).to_string();
                let _ = sink.send(Message::binary([&[RESIZE][..], size.as_bytes()].concat())).await;
            }
            chunk = next_chunk(&mut input), if input.is_some() => {
                let frame = match chunk {
                    Some(Ok(data)) => [&[STDIN][..], &data].concat(),
                    Some(Err(e)) => {
                        eprintln!("warning: cannot read stdin ({e}); closing it");
                        input = None;
                        vec![STDIN_CLOSED]
                    }
                    None => {
                        input = None;
                        vec![STDIN_CLOSED]
                    }
                };
                // A command that exited stops reading; its exit frame still comes.
                if sink.send(Message::binary(frame)).await.is_err() {
                    input = None;
                }
            }
        }
    }
}

/// The next delivery of a watched signal; never, when it is not watched.
async fn next_signal(watched: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match watched {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_chunk(
    input: &mut Option<mpsc::Receiver<std::io::Result<Vec<u8>>>>,
) -> Option<std::io::Result<Vec<u8>>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Local stdin in chunks, read on its own thread: a blocking read of a terminal must
/// not hold up the runtime, nor its shutdown when the command is done first.
fn stdin_chunks() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0; 32 * 1024];
        loop {
            let chunk = match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Writes and flushes; a closed pipe (`corral exec … | head`) ends quietly with 141,
/// the code a shell gives a command killed by SIGPIPE.
fn write_all(out: &mut impl Write, data: &[u8]) -> Result<(), i32> {
    match out.write_all(data).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(141),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        exec: super::ExecArgs,
    }

    fn parse(args: &[&str]) -> super::ExecArgs {
        Probe::try_parse_from([&["exec"], args].concat())
            .unwrap()
            .exec
    }

    #[test]
    fn the_command_keeps_its_own_flags() {
        let a = parse(&["box", "-n", "ls", "-la", "-n"]);
        assert!(a.no_stdin);
        assert_eq!(a.cmd, ["ls", "-la", "-n"]);
        let a = parse(&["box", "--", "-weird", "x"]);
        assert_eq!(a.cmd, ["-weird", "x"]);
        let a = parse(&["-e", "A=1", "box", "--", "sh", "-c", "echo $A"]);
        assert_eq!(a.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(a.cmd, ["sh", "-c", "echo $A"]);
    }
}
