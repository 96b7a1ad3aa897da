//! The way out for a tenant with secrets: a connection's first bytes say what it is. A
//! plain HTTP request has its head rewritten — a secret's placeholder in a header to a
//! host of that secret becomes its value (and its header is added when configured), a
//! placeholder on its way to any other host is refused with 403 — and goes out with
//! `Connection: close` (one request, one head). TLS to a secret's host is terminated
//! with a certificate of the install's authority and the request inside is treated the
//! same, then sent on over TLS checked against the web's roots. Anything else (TLS to
//! other hosts, other protocols) passes through untouched.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vmm_driver::EgressStream;

use super::secrets::Open;
use super::tls::Tls;

/// Longest request head read.
const MAX_HEAD: usize = 64 << 10;

/// A stream whose first bytes are `prefix` (already read from `inner`).
struct Prefixed<S> {
    prefix: Vec<u8>,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Carries one connection between the sprite and `upstream` (already dialled).
pub async fn relay<S>(
    mut sprite: S,
    upstream: Box<dyn EgressStream>,
    host: String,
    secrets: Vec<Open>,
    tls: Arc<Tls>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 1];
    if !matches!(sprite.read(&mut first).await, Ok(1)) {
        return;
    }
    let sprite = Prefixed {
        prefix: first.to_vec(),
        inner: sprite,
    };
    let ours = secrets.iter().any(|s| s.for_host(&host));
    let outcome = match first[0] {
        0x16 if ours => terminate(sprite, upstream, &host, &secrets, &tls).await,
        b'A'..=b'Z' => http(sprite, upstream, &host, &secrets).await,
        _ => pass(sprite, upstream).await,
    };
    if let Err(error) = outcome {
        tracing::debug!(%host, %error, "a connection through the way out ended");
    }
}

async fn pass<S, U>(mut sprite: S, mut upstream: U) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional(&mut sprite, &mut upstream)
        .await
        .map(drop)
}

async fn terminate<S>(
    sprite: S,
    upstream: Box<dyn EgressStream>,
    host: &str,
    secrets: &[Open],
    tls: &Tls,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let other = |e: anyhow::Error| std::io::Error::other(e.to_string());
    let server = tls.server_for(host).map_err(other)?;
    let sprite = TlsAcceptor::from(server).accept(sprite).await?;
    let name = ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
    let upstream = TlsConnector::from(tls.client())
        .connect(name, upstream)
        .await?;
    http(sprite, upstream, host, secrets).await
}

async fn http<S, U>(
    mut sprite: S,
    mut upstream: U,
    host: &str,
    secrets: &[Open],
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_HEAD {
            return pass(
                Prefixed {
                    prefix: head,
                    inner: sprite,
                },
                upstream,
            )
            .await;
        }
        let n = sprite.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let rest = head.split_off(end);
    let text = String::from_utf8_lossy(&head).into_owned();
    match rewrite(&text, host, secrets) {
        Ok(rewritten) => {
            upstream.write_all(rewritten.as_bytes()).await?;
            upstream.write_all(&rest).await?;
            pass(sprite, upstream).await
        }
        Err(why) => {
            let body = format!("corral: {why}\n");
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nX-Corral-Refused: {why}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sprite.write_all(answer.as_bytes()).await?;
            sprite.shutdown().await
        }
    }
}

/// The head as it goes to `host`: placeholders of its secrets swapped for their values
/// in headers, configured headers added, `Connection: close`; or why it may not go.
fn rewrite(head: &str, host: &str, secrets: &[Open]) -> Result<String, String> {
    for secret in secrets.iter().filter(|s| !s.for_host(host)) {
        if head.contains(&secret.placeholder) {
            return Err(format!(
                "secret {} may only go to {} (its placeholder was on its way to {host})",
                secret.name,
                secret.hosts.join(", ")
            ));
        }
    }
    let ours: Vec<&Open> = secrets.iter().filter(|s| s.for_host(host)).collect();
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let mut out = String::with_capacity(head.len() + 64);
    out.push_str(lines.next().unwrap_or_default());
    out.push_str("\r\n");
    let mut names = Vec::new();
    for line in lines {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if ["connection", "proxy-connection", "keep-alive"].contains(&name.as_str()) {
            continue;
        }
        let mut line = line.to_string();
        for secret in &ours {
            line = line.replace(&secret.placeholder, &secret.value);
        }
        out.push_str(&line);
        out.push_str("\r\n");
        names.push(name);
    }
    for secret in &ours {
        if let Some(header) = &secret.header {
            if !names.contains(&header.to_ascii_lowercase()) {
                let value = secret.format.replace("{}", &secret.value);
                out.push_str(&format!("{header}: {value}\r\n"));
            }
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Open {
        Open {
            name: "API_KEY".into(),
            value: "real-value".into(),
            hosts: vec!["api.example.com".into()],
            header: Some("X-Api-Key".into()),
            format: "{}".into(),
            placeholder: "corral-secret-api_key-0011".into(),
        }
    }

    #[test]
    fn placeholders_become_values_only_for_their_hosts() {
        let head = "GET / HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer corral-secret-api_key-0011\r\nConnection: keep-alive\r\n\r\n";
        let out = rewrite(head, "api.example.com", &[secret()]).unwrap();
        assert!(
            out.contains("Authorization: Bearer real-value\r\n"),
            "{out}"
        );
        assert!(
            out.contains("X-Api-Key: real-value\r\n") && out.ends_with("Connection: close\r\n\r\n")
        );
        assert!(!out.contains("keep-alive"));
        let refused = rewrite(head, "evil.example.net", &[secret()]).unwrap_err();
        assert!(
            refused.contains("API_KEY may only go to api.example.com"),
            "{refused}"
        );
        let clean = "GET / HTTP/1.1\r\nHost: evil.example.net\r\n\r\n";
        assert!(!rewrite(clean, "evil.example.net", &[secret()])
            .unwrap()
            .contains("real-value"));
    }
}
