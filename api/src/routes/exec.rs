//! Running commands: JSON exec, and the streaming WebSocket exec.

use std::collections::BTreeMap;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vmm_driver::{ExecControl, ExecEvent, ExecStream, TtySize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Exec, Scoped};
use crate::sprites::{check_tty, ExecParams};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(exec))
        .routes(routes!(exec_ws))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequestBody {
    /// Program and arguments.
    cmd: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    /// Text written to the command's stdin.
    stdin: Option<String>,
    /// Kill the command after this many seconds.
    timeout_s: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ExecResponse {
    exit_code: i32,
    stdout: String,
    stderr: String,
    duration_ms: u64,
    /// Output was cut at the operator's limit.
    truncated: bool,
    /// The command was killed at `timeout_s`.
    timed_out: bool,
}

/// Runs a command to completion. Wakes a sprite paused for idle.
#[utoipa::path(post, path = "/v1/sprites/{name}/exec", request_body = ExecRequestBody, tag = "exec",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = ExecResponse), (status = 402, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
async fn exec(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Exec>,
    Path(name): Path<String>,
    AppJson(body): AppJson<ExecRequestBody>,
) -> ApiResult<AppJson<ExecResponse>> {
    let sprites = state.sprites()?;
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let params = ExecParams {
        argv: body.cmd,
        env: body.env.into_iter().collect(),
        cwd: body.cwd,
        stdin: body.stdin.map(String::into_bytes).unwrap_or_default(),
        timeout_s: body.timeout_s,
        tty: None,
    };
    let output = sprites.exec(&sprite, params).await?;
    Ok(AppJson(ExecResponse {
        exit_code: output.exit_code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        duration_ms: output.duration.as_millis() as u64,
        truncated: output.truncated,
        timed_out: output.timed_out,
    }))
}

/// The terminal a `tty=1` exec gets when it names no size.
const DEFAULT_TTY: TtySize = TtySize { rows: 24, cols: 80 };

/// Parses `cmd=…&cmd=…&env=K=V&cwd=…&timeout_s=…&tty=1&rows=…&cols=…`.
fn ws_params(query: Option<&str>) -> Result<ExecParams, ApiError> {
    let mut params = ExecParams::default();
    let (mut tty, mut size) = (false, DEFAULT_TTY);
    let cells = |name: &str, value: &str| {
        value
            .parse::<u16>()
            .map_err(|_| ApiError::Validation(format!("{name} must be a number of cells")))
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "tty" => {
                tty = match value.as_ref() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    other => {
                        return Err(ApiError::Validation(format!(
                            "tty must be 1 or 0, got {other:?}"
                        )))
                    }
                }
            }
            "rows" => size.rows = cells("rows", &value)?,
            "cols" => size.cols = cells("cols", &value)?,
            "cmd" => params.argv.push(value.into_owned()),
            "env" => {
                let (k, v) = value.split_once('=').ok_or_else(|| {
                    ApiError::Validation(format!("env {value:?} must be NAME=VALUE"))
                })?;
                params.env.push((k.to_string(), v.to_string()));
            }
            "cwd" => params.cwd = Some(value.into_owned()),
            "timeout_s" => {
                params.timeout_s = Some(
                    value
                        .parse()
                        .map_err(|_| ApiError::Validation("timeout_s must be a number".into()))?,
                )
            }
            other => {
                return Err(ApiError::Validation(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    params.tty = tty.then_some(size);
    Ok(params)
}

/// A signal a terminal client may send, by name.
fn signal_number(name: &str) -> Option<i32> {
    Some(match name.trim() {
        "INT" => libc_signal::SIGINT,
        "TERM" => libc_signal::SIGTERM,
        "HUP" => libc_signal::SIGHUP,
        "QUIT" => libc_signal::SIGQUIT,
        "KILL" => libc_signal::SIGKILL,
        "TSTP" => libc_signal::SIGTSTP,
        "CONT" => libc_signal::SIGCONT,
        _ => return None,
    })
}

/// Linux's signal numbers (the sprite's kernel is gVisor's, which uses Linux's).
mod libc_signal {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGKILL: i32 = 9;
    pub const SIGTERM: i32 = 15;
    pub const SIGCONT: i32 = 18;
    pub const SIGTSTP: i32 = 20;
}

/// Streams a command over a WebSocket: binary frames whose first byte is the stream
/// (0 stdin, 1 stdout, 2 stderr, 3 exit code as text, 4 stdin closed; from the
/// client also 5 resize, `{"rows":R,"cols":C}`, and 6 signal, a name such as `INT`).
/// With `tty=1` the command runs on a terminal (`rows`×`cols`, default 24×80;
/// `TERM=xterm-256color` unless `env` sets it): stdout and stderr arrive as one stream
/// (1), keys go in as stdin (0), Ctrl-C is the byte 0x03. The session keeps the sprite
/// awake while it is open; when the connection drops the command is killed.
#[utoipa::path(get, path = "/v1/sprites/{name}/exec/ws", tag = "exec", security(("bearer" = [])),
    params(("name" = String, Path), ("cmd" = Vec<String>, Query, description = "argv, one parameter per word"),
           ("tty" = Option<u8>, Query, description = "1: run on a terminal"),
           ("rows" = Option<u16>, Query, description = "the terminal's rows (default 24)"),
           ("cols" = Option<u16>, Query, description = "the terminal's columns (default 80)")),
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
async fn exec_ws(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Exec>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let params = ws_params(query.as_deref())?;
    params.check()?;
    // Refuse before upgrading, while the answer can still be problem+json.
    let sprite = sprites.wake(&sprite, "console").await?;
    // A browser offers `corral` beside the protocol carrying its token; it must be
    // answered with one it offered.
    Ok(upgrade
        .protocols(["corral"])
        .on_upgrade(move |socket| async move {
            let (mut sink, mut source) = socket.split();
            let result = sprites
                .exec_stream(&sprite, params, |stream| {
                    pump(&mut sink, &mut source, stream)
                })
                .await;
            if let Err(error) = result {
                let mut frame = vec![2u8];
                frame.extend_from_slice(format!("corral: {error}\n").as_bytes());
                let _ = sink.send(Message::Binary(frame.into())).await;
                let _ = sink.send(Message::Binary(b"\x03255".to_vec().into())).await;
            }
            // Close politely: read what the client still sends (its stdin-closed frame,
            // its Close) so the exit frame is not lost to a connection reset.
            let _ = sink.send(Message::Close(None)).await;
            let drain = async {
                while let Some(Ok(message)) = source.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        }))
}

async fn pump(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    source: &mut futures_util::stream::SplitStream<WebSocket>,
    stream: ExecStream,
) {
    let ExecStream {
        stdin,
        mut events,
        control,
    } = stream;
    let mut stdin = Some(stdin);
    loop {
        tokio::select! {
            event = events.recv() => {
                let frame = match event {
                    Some(ExecEvent::Stdout(bytes)) => [&[1u8][..], &bytes].concat(),
                    Some(ExecEvent::Stderr(bytes)) => [&[2u8][..], &bytes].concat(),
                    Some(ExecEvent::Exit(code)) => {
                        let _ = sink.send(Message::Binary([&[3u8][..], code.to_string().as_bytes()].concat().into())).await;
                        return;
                    }
                    None => return,
                };
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    return;
                }
            }
            message = source.next() => match message {
                Some(Ok(Message::Binary(frame))) => match frame.first() {
                    Some(0) => {
                        if let Some(stdin) = &stdin {
                            let _ = stdin.send(frame[1..].to_vec()).await;
                        }
                    }
                    Some(4) => stdin = None,
                    Some(5) => {
                        if let Ok(size) = serde_json::from_slice::<TtySize>(&frame[1..]) {
                            if check_tty(size).is_ok() {
                                let _ = control.send(ExecControl::Resize(size)).await;
                            }
                        }
                    }
                    Some(6) => {
                        if let Some(signal) = signal_number(&String::from_utf8_lossy(&frame[1..])) {
                            let _ = control.send(ExecControl::Signal(signal)).await;
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Text(text))) => {
                    if let Some(stdin) = &stdin {
                        let _ = stdin.send(text.as_bytes().to_vec()).await;
                    }
                }
                Some(Ok(_)) => {}
                // The client went away: dropping the stream kills the command.
                Some(Err(_)) | None => return,
            }
        }
    }
}
