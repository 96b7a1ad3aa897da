//! Running commands: JSON exec, and the streaming WebSocket exec.

use std::collections::BTreeMap;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vmm_driver::{ExecEvent, ExecStream};

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Exec, Scoped};
use crate::sprites::ExecParams;
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

/// Parses `cmd=…&cmd=…&env=K=V&cwd=…&timeout_s=…`.
fn ws_params(query: Option<&str>) -> Result<ExecParams, ApiError> {
    let mut params = ExecParams::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
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
    Ok(params)
}

/// Streams a command over a WebSocket: binary frames whose first byte is the stream
/// (0 stdin, 1 stdout, 2 stderr, 3 exit code as text, 4 stdin closed).
#[utoipa::path(get, path = "/v1/sprites/{name}/exec/ws", tag = "exec", security(("bearer" = [])),
    params(("name" = String, Path), ("cmd" = Vec<String>, Query, description = "argv, one parameter per word")),
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
    Ok(upgrade.on_upgrade(move |socket| async move {
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
    let ExecStream { stdin, mut events } = stream;
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
