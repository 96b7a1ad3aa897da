//! `/.corral/agent agent connect HOST PORT`: a TCP connection through the sprite's own HTTP proxy
//! (`CONNECT`), carried on stdin and stdout — ssh's `ProxyCommand`, so `git` over ssh
//! and `ssh` itself take the way out like everything else (see `net`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use super::net::HTTP_PORT;

/// The `ProxyCommand` every command's ssh gets (through `GIT_SSH_COMMAND`).
pub const SSH_COMMAND: &str = "ssh -o ProxyCommand='/.corral/agent agent connect %h %p'";

/// Connects to `host:port` through the proxy and pipes stdin and stdout; the exit code.
pub fn main(args: &[String]) -> i32 {
    let (Some(host), Some(port)) = (args.first(), args.get(1)) else {
        eprintln!("usage: agent connect HOST PORT");
        return 2;
    };
    let mut conn = match TcpStream::connect(("127.0.0.1", HTTP_PORT)) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("corral: the sprite's proxy is not there: {e}");
            return 1;
        }
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return 1;
    }
    // The answer's head, byte by byte: nothing past it may be read here.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 200") {
        let why = head
            .lines()
            .find_map(|l| l.strip_prefix("X-Corral-Refused: "))
            .unwrap_or_else(|| head.lines().next().unwrap_or("no answer"));
        eprintln!("corral: {authority}: {why}");
        return 1;
    }
    let Ok(mut upstream) = conn.try_clone() else {
        return 1;
    };
    let to_remote = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut upstream);
        let _ = upstream.shutdown(Shutdown::Write);
    });
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::copy(&mut conn, &mut stdout);
    let _ = stdout.flush();
    drop(to_remote);
    0
}
