//! TCP tunnels into a sprite over a WebSocket (`GET /v1/sprites/{name}/proxy`): the
//! client's first text frame is `{"port": N}`; the server answers `{"connected": N}`
//! (or `{"error": "…", "status": S}` and closes), then binary frames carry the bytes both
//! ways. An empty binary frame says "no more bytes from this side" (a TCP half-close).

use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::db::sprites::SpriteRow;
use crate::state::AppState;

/// How long the client has to say which port.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(30);
/// Bytes read from the sprite per frame.
const CHUNK: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Open {
    port: u16,
}

/// Runs one tunnel to its end.
pub async fn run(state: AppState, sprite: SpriteRow, socket: WebSocket) {
    let (mut sink, mut source) = socket.split();
    let refuse = |status: u16, error: String| {
        Message::Text(
            json!({ "error": error, "status": status })
                .to_string()
                .into(),
        )
    };
    let port = match tokio::time::timeout(FIRST_FRAME_WAIT, source.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<Open>(&text) {
            Ok(open) if open.port != 0 => open.port,
            _ => {
                let why = "the first frame must be {\"port\": N} with N from 1 to 65535";
                let _ = sink.send(refuse(422, why.into())).await;
                let _ = sink.send(Message::Close(None)).await;
                return;
            }
        },
        _ => {
            let _ = sink
                .send(refuse(408, "no {\"port\": N} frame came first".into()))
                .await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let Ok(sprites) = state.sprites().cloned() else {
        return;
    };
    let started = Instant::now();
    let opened = match sprites
        .open_port(&sprite, port, state.front.wake_wait)
        .await
    {
        Ok(opened) => opened,
        Err(error) => {
            let status = error.status_code().0.as_u16();
            let _ = sink.send(refuse(status, error.to_string())).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    if opened.woke {
        state.front.metrics.wake(started.elapsed());
    }
    let stream: Box<dyn vmm_driver::EgressStream> = match &state.egress {
        Some(gateway) => Box::new(gateway.inward(
            sprite.id,
            sprite.network_mbps,
            "tunnel",
            port,
            opened.stream,
        )),
        None => opened.stream,
    };
    let hello = json!({ "connected": port }).to_string();
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let (mut from_sprite, mut to_sprite) = tokio::io::split(stream);
    let up = async {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(bytes) if bytes.is_empty() => break,
                Message::Binary(bytes) if to_sprite.write_all(&bytes).await.is_err() => return,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_sprite.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from_sprite.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Binary(Vec::new().into())).await;
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(up, down);
    drop(opened.hold);
}
