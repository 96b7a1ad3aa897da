//! The API's TCP listener. hyper answers a request it cannot parse by itself, before any
//! handler runs (414 for a URI over 64 KiB, 431 for headers that are too large, 400 for
//! bytes that are not HTTP), with an empty body; the connections here turn those answers
//! into problem+json like every other error, so a client reads one format.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections speak problem+json even for hyper's own errors.
pub struct ProblemListener(pub TcpListener);

/// The client's address, as handlers see it (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::serve::Listener for ProblemListener {
    type Io = ProblemIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ProblemIo, SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        // A response whose body follows its head in a second write (a streamed body, a
        // sprite's page) must not wait for the client's delayed ACK (Nagle): ~40 ms.
        let _ = io.set_nodelay(true);
        (
            ProblemIo {
                inner: io,
                pending: Vec::new(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ProblemListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ProblemListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// One connection: reads pass through; a bodiless error answer written by hyper itself
/// is replaced by the same status with a problem+json body.
pub struct ProblemIo {
    inner: TcpStream,
    /// Replacement bytes not yet written.
    pending: Vec<u8>,
}

/// hyper's own answer in `head`, if it is one: the status line of a 400, 414 or 431
/// with an empty body and no content type (every answer of Corral's has a body).
fn hyper_error(head: &[u8]) -> Option<(u16, &'static str, &'static str, &'static str)> {
    let (status, reason, code, detail) = if head.starts_with(b"HTTP/1.1 414 ") {
        (
            414,
            "URI Too Long",
            "uri_too_long",
            "the URL is too long (at most 64 KiB)",
        )
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            431,
            "Request Header Fields Too Large",
            "headers_too_large",
            "the request's headers are too large",
        )
    } else if head.starts_with(b"HTTP/1.1 400 ") {
        (
            400,
            "Bad Request",
            "bad_request",
            "the request is not valid HTTP",
        )
    } else {
        return None;
    };
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let bare = text.contains("\r\ncontent-length: 0\r\n") && !text.contains("\r\ncontent-type:");
    bare.then_some((status, reason, code, detail))
}

fn problem_bytes(status: u16, reason: &str, code: &str, detail: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "type": format!("https://corral.dev/problems/{code}"),
        "title": reason,
        "status": status,
        "detail": detail,
        "code": code,
    })
    .to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl ProblemIo {
    /// Writes what is pending; `Ready` once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Replaces `buf` when it is hyper's bare error answer; `Some(len)` when it did.
    fn replace(&mut self, buf: &[u8]) -> Option<usize> {
        let (status, reason, code, detail) = hyper_error(buf)?;
        self.pending = problem_bytes(status, reason, code, detail);
        Some(buf.len())
    }
}

impl AsyncRead for ProblemIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProblemIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        if let Some(n) = this.replace(buf) {
            let _ = this.drain(cx)?;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        let head = bufs.iter().find(|b| !b.is_empty());
        if head.is_some_and(|h| hyper_error(h).is_some()) {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(n) = this.replace(&all) {
                let _ = this.drain(cx)?;
                return Poll::Ready(Ok(n));
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_errors_are_replaced() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(hyper_error(bare).map(|e| e.0), Some(414));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(hyper_error(ours).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n";
        assert!(hyper_error(with_body).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(hyper_error(ok).is_none());
        let bytes = problem_bytes(414, "URI Too Long", "uri_too_long", "too long");
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 414);
    }
}
