//! `url` (a sprite's URL, its settings, a link that opens a private one) and `proxy`
//! (a local port forwarded to a port inside a sprite, one WebSocket tunnel per
//! connection).

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::output::{self, field};

#[derive(Args)]
pub struct UrlArgs {
    /// The sprite's name.
    sprite: String,
    /// Print a link that opens the private URL in a browser (good for two minutes; it
    /// sets a cookie for this sprite alone).
    #[arg(long)]
    link: bool,
    /// Let anyone open the URL.
    #[arg(long, conflicts_with = "private")]
    public: bool,
    /// Only tokens with the sprites:http scope and links open the URL (the default).
    #[arg(long)]
    private: bool,
    /// The port inside the sprite the URL reaches.
    #[arg(long)]
    port: Option<u16>,
}

/// `corral url SPRITE [--public|--private] [--port N] [--link]`.
pub async fn url(client: &Client, args: UrlArgs, json: bool) -> anyhow::Result<i32> {
    let mut change = Map::new();
    if args.public || args.private {
        let auth = if args.public { "public" } else { "sprite" };
        change.insert("url_auth".into(), json!(auth));
    }
    if let Some(port) = args.port {
        change.insert("http_port".into(), json!(port));
    }
    let sprite = if change.is_empty() {
        client.get(&["v1", "sprites", &args.sprite], &[]).await?
    } else {
        let url = client.endpoint(&["v1", "sprites", &args.sprite]);
        let request = client
            .request(Method::PATCH, url)
            .json(&Value::Object(change));
        client.json(request).await?
    };
    if args.link {
        let url = client.endpoint(&["v1", "sprites", &args.sprite, "url", "link"]);
        let link = client.json(client.request(Method::POST, url)).await?;
        if json {
            output::json(&link);
        } else {
            println!("{}", field(&link, "url"));
        }
        return Ok(0);
    }
    if json {
        output::json(&sprite);
    } else {
        output::pairs(&[
            ("url", field(&sprite, "url")),
            ("port", field(&sprite, "http_port")),
            ("access", access(&sprite)),
        ]);
    }
    Ok(0)
}

fn access(sprite: &Value) -> String {
    match sprite.get("url_auth").and_then(Value::as_str) {
        Some("public") => "public: anyone may open it".into(),
        _ => "private: a token with sprites:http, or `corral url NAME --link`".into(),
    }
}

#[derive(Args)]
pub struct ProxyArgs {
    /// The sprite's name.
    sprite: String,
    /// `REMOTE` or `LOCAL:REMOTE`: listen on 127.0.0.1:LOCAL (default: the same port)
    /// and forward each connection to REMOTE inside the sprite.
    ports: String,
}

/// `corral proxy SPRITE [LOCAL:]REMOTE`: forwards until interrupted.
pub async fn proxy(client: &Client, args: ProxyArgs) -> anyhow::Result<i32> {
    let (local, remote) = ports(&args.ports)?;
    let listener = TcpListener::bind(("127.0.0.1", local))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{local}: {e}"))?;
    let bound = listener.local_addr()?;
    eprintln!(
        "forwarding {bound} to port {remote} in {} (Ctrl-C to stop)",
        args.sprite
    );
    loop {
        let (conn, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(0),
        };
        let (client, sprite) = (client.clone(), args.sprite.clone());
        tokio::spawn(async move {
            if let Err(error) = tunnel(&client, &sprite, remote, conn).await {
                eprintln!("{peer}: {}", format!("{error:#}").replace('\n', " "));
            }
        });
    }
}

fn ports(text: &str) -> anyhow::Result<(u16, u16)> {
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| anyhow::anyhow!("{p:?} is not a port (1 to 65535)"))
    };
    let (local, remote) = match text.split_once(':') {
        Some((local, remote)) => (parse(local)?, parse(remote)?),
        None => (parse(text)?, parse(text)?),
    };
    anyhow::ensure!(remote != 0, "the port inside the sprite cannot be 0");
    Ok((local, remote))
}

/// Carries one local connection through a tunnel.
async fn tunnel(client: &Client, sprite: &str, port: u16, conn: TcpStream) -> anyhow::Result<()> {
    let url = client.endpoint(&["v1", "sprites", sprite, "proxy"]);
    let socket = super::ws::open(client, url, "the tunnel").await?;
    let (mut sink, mut source) = socket.split();
    sink.send(Message::Text(json!({ "port": port }).to_string().into()))
        .await?;
    match source.next().await {
        Some(Ok(Message::Text(text))) => {
            let answer: Value = serde_json::from_str(&text).unwrap_or_default();
            if let Some(error) = answer.get("error").and_then(Value::as_str) {
                anyhow::bail!("{error}");
            }
        }
        other => anyhow::bail!("the server did not open the tunnel ({other:?})"),
    }
    let (mut from_local, mut to_local) = conn.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match from_local.read(&mut buf).await {
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
        // Empty: no more bytes from here (the other way may go on).
        let _ = sink.send(Message::Binary(Vec::new().into())).await;
    };
    let down = async {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(bytes) if bytes.is_empty() => break,
                Message::Binary(bytes) if to_local.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_local.shutdown().await;
    };
    tokio::join!(up, down);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_pairs() {
        assert_eq!(super::ports("5432").unwrap(), (5432, 5432));
        assert_eq!(super::ports("0:22").unwrap(), (0, 22));
        assert_eq!(super::ports("15432:5432").unwrap(), (15432, 5432));
        for bad in ["", "x", "1:", ":2", "70000", "22:0"] {
            assert!(super::ports(bad).is_err(), "{bad}");
        }
    }
}
