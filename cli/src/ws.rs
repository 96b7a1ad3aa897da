//! Opening a WebSocket to the server with the saved token (exec streams, tunnels); a
//! refusal before the upgrade is shown like any other problem.

use anyhow::Context;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client::Client;

/// An open WebSocket to the server.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `url` (an API endpoint; its scheme becomes ws or wss) with the token;
/// `what` names it in errors.
pub async fn open(client: &Client, mut url: Url, what: &str) -> anyhow::Result<Socket> {
    let token = client.require_token()?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| anyhow::anyhow!("cannot make a WebSocket URL of {url}"))?;
    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not ASCII")?,
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            Err(client.problem(response.status().as_u16(), response.headers(), body))
        }
        Err(WsError::Io(e)) => anyhow::bail!("cannot reach {}: {e}", client.base()),
        Err(WsError::Url(e)) => anyhow::bail!("cannot open a WebSocket to {}: {e}", client.base()),
        Err(e) => anyhow::bail!("{what} to {} failed: {e}", client.base()),
    }
}
