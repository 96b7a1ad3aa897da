//! The sprite's way out: the agent listens on loopback as an HTTP proxy (absolute-form
//! requests and `CONNECT`, 127.0.0.1:3128) and a SOCKS5 proxy (no auth, 127.0.0.1:1080),
//! and carries each connection over its stream to the host, which decides whether it may
//! be made, and makes it. The sprite has no network of its own: a tool that ignores the
//! proxy settings fails closed.
//!
//! Plain threads and blocking calls, like everything in the agent (see `exec`). Each
//! direction of a connection has a window of [`NET_WINDOW`] bytes: the sender waits for
//! the receiver's acknowledgements, so neither side buffers more than that.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::exec::Out;
use super::proto::{Frame, Kind, NetOpen, NetReply, AGENT_CHAN, CHUNK, NET_WINDOW};

/// Where every sprite's agent is (`gvisor::bundle::AGENT_IN_MACHINE`).
const AGENT_PATH: &str = "/.corral/agent";
/// The system's roots and the server's authority, shared by the server at /.corral.
const CA_BUNDLE: &str = "/.corral/ca-bundle.pem";
/// The server's authority alone.
const CA_CERT: &str = "/.corral/corral-ca.pem";
/// The HTTP proxy's port on the sprite's loopback.
pub const HTTP_PORT: u16 = 3128;
/// The SOCKS5 proxy's port on the sprite's loopback.
pub const SOCKS_PORT: u16 = 1080;
/// Longest a request's head may be before the proxy gives up on it.
const MAX_HEAD: usize = 64 << 10;
/// How long a connection waits for the host's decision.
const OPEN_WAIT: Duration = Duration::from_secs(60);
/// Acknowledge received bytes once this many are written (or nothing else is queued).
const ACK_EVERY: u32 = 64 << 10;

/// The environment every command gets, so the usual tools go through the proxy.
pub fn proxy_env() -> Vec<(&'static str, String)> {
    let http = format!("http://127.0.0.1:{HTTP_PORT}");
    let socks = format!("socks5h://127.0.0.1:{SOCKS_PORT}");
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    let mut env = vec![
        ("HTTP_PROXY", http.clone()),
        ("HTTPS_PROXY", http.clone()),
        ("http_proxy", http.clone()),
        ("https_proxy", http),
        ("ALL_PROXY", socks.clone()),
        ("all_proxy", socks),
        ("NO_PROXY", no_proxy.clone()),
        ("no_proxy", no_proxy),
        ("NODE_USE_ENV_PROXY", "1".into()),
        ("GIT_SSH_COMMAND", super::connect::SSH_COMMAND.into()),
    ];
    // The server shares its authority (which signs for secrets' hosts) with the
    // system's roots: the usual tools trust both.
    if std::path::Path::new(CA_BUNDLE).exists() {
        for name in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "GIT_SSL_CAINFO",
            "PIP_CERT",
        ] {
            env.push((name, CA_BUNDLE.into()));
        }
        env.push(("NODE_EXTRA_CA_CERTS", CA_CERT.into()));
    }
    env
}

/// What a connection may still send to the host.
#[derive(Default)]
struct Credit {
    bytes: i64,
    reset: bool,
}

/// One connection's state, shared by its threads and the frame router.
struct Stream {
    /// Frames from the host: the reply, data, the end, a reset.
    frames: Sender<Frame>,
    credit: Arc<(Mutex<Credit>, Condvar)>,
}

static STREAMS: Mutex<Option<HashMap<u32, Stream>>> = Mutex::new(None);
static NEXT: AtomicU32 = AtomicU32::new(1);

fn streams() -> std::sync::MutexGuard<'static, Option<HashMap<u32, Stream>>> {
    STREAMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends every connection: this agent's stream to the host is gone. Each connection's
/// threads see it (their queue closes, their credit is reset) and let go of the stream.
pub fn reset_all() {
    let mut guard = streams();
    for (_, stream) in guard.get_or_insert_with(HashMap::new).drain() {
        let (lock, wake) = &*stream.credit;
        lock.lock().unwrap_or_else(|e| e.into_inner()).reset = true;
        wake.notify_all();
    }
}

/// Hands a frame from the host to its connection (unknown ones are dropped: the
/// connection is over).
pub fn deliver(frame: Frame) {
    let mut guard = streams();
    let Some(stream) = guard.get_or_insert_with(HashMap::new).get(&frame.chan) else {
        return;
    };
    match frame.kind {
        Kind::NetAck => {
            let n = super::proto::acked(&frame.payload);
            let (lock, wake) = &*stream.credit;
            lock.lock().unwrap_or_else(|e| e.into_inner()).bytes += i64::from(n);
            wake.notify_all();
        }
        Kind::NetReset => {
            let (lock, wake) = &*stream.credit;
            lock.lock().unwrap_or_else(|e| e.into_inner()).reset = true;
            wake.notify_all();
            let _ = stream.frames.send(frame);
        }
        _ => {
            let _ = stream.frames.send(frame);
        }
    }
}

pub(super) fn send(out: &Out, kind: Kind, chan: u32, payload: Vec<u8>) -> bool {
    out.blocking_send(Frame::new(kind, chan, payload).encode())
        .is_ok()
}

/// A connection the host agreed to (or opened).
pub(super) struct Channel {
    chan: u32,
    frames: Receiver<Frame>,
    credit: Arc<(Mutex<Credit>, Condvar)>,
    _registered: Registered,
}

/// Forgets a connection in the router when it is over.
struct Registered(u32);

impl Drop for Registered {
    fn drop(&mut self) {
        streams().get_or_insert_with(HashMap::new).remove(&self.0);
    }
}

/// Registers connection `chan` with the frame router: its frames from the host reach
/// the returned channel until it drops.
pub(super) fn register(chan: u32) -> Channel {
    let (tx, frames) = channel();
    let credit = Arc::new((
        Mutex::new(Credit {
            bytes: i64::from(NET_WINDOW),
            reset: false,
        }),
        Condvar::new(),
    ));
    streams().get_or_insert_with(HashMap::new).insert(
        chan,
        Stream {
            frames: tx,
            credit: credit.clone(),
        },
    );
    Channel {
        chan,
        frames,
        credit,
        _registered: Registered(chan),
    }
}

/// Asks the host for a connection to `host:port`; `Err` holds why not.
fn open(out: &Out, host: &str, port: u16) -> Result<Channel, String> {
    let chan = AGENT_CHAN | (NEXT.fetch_add(1, Ordering::Relaxed) & !AGENT_CHAN).max(1);
    let channel = register(chan);
    let request = NetOpen {
        host: host.to_string(),
        port,
    };
    if !send(
        out,
        Kind::NetOpen,
        chan,
        serde_json::to_vec(&request).unwrap_or_default(),
    ) {
        return Err("the sprite's agent lost its host".into());
    }
    match channel.frames.recv_timeout(OPEN_WAIT) {
        Ok(frame) if frame.kind == Kind::NetReply => {
            let reply: NetReply = frame.parse().map_err(|e| e.to_string())?;
            if reply.ok {
                Ok(channel)
            } else {
                Err(reply.message)
            }
        }
        Ok(_) => Err("the host ended the connection".into()),
        Err(RecvTimeoutError::Timeout) => Err("the host did not answer in time".into()),
        Err(RecvTimeoutError::Disconnected) => Err("the host went away".into()),
    }
}

/// Carries bytes both ways between a program's socket and the host until both
/// directions are done (or either side resets). `first` goes to the host first.
pub(super) fn pipe(conn: TcpStream, channel: Channel, first: Vec<u8>, out: &Out) {
    let chan = channel.chan;
    let Ok(mut to_program) = conn.try_clone() else {
        send(out, Kind::NetReset, chan, Vec::new());
        return;
    };
    let writer_out = out.clone();
    let frames = channel.frames;
    let writer = std::thread::Builder::new()
        .name("net-in".into())
        .spawn(move || {
            let mut unacked = 0u32;
            // The loop ends when the connection is over: the socket goes too, so the
            // reading side stops.
            // Ends the connection both ways if this thread ends any other way than the
            // host's end of its bytes (after which the program may still send).
            let mut closes = CloseOnDrop(to_program.try_clone().ok());
            while let Ok(frame) = frames.recv() {
                match frame.kind {
                    Kind::NetData => {
                        if to_program.write_all(&frame.payload).is_err() {
                            send(&writer_out, Kind::NetReset, chan, Vec::new());
                            let _ = to_program.shutdown(Shutdown::Both);
                            return;
                        }
                        // Written: the host may send that much more.
                        unacked += frame.payload.len() as u32;
                        if unacked >= ACK_EVERY {
                            send(
                                &writer_out,
                                Kind::NetAck,
                                chan,
                                unacked.to_le_bytes().to_vec(),
                            );
                            unacked = 0;
                        }
                    }
                    Kind::NetEnd => {
                        let _ = to_program.shutdown(Shutdown::Write);
                        closes.0 = None;
                        return;
                    }
                    _ => {
                        let _ = to_program.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        });
    let credit = channel.credit.clone();
    let take = |n: usize| -> bool {
        let (lock, wake) = &*credit;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        while c.bytes < n as i64 && !c.reset {
            c = wake.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        c.bytes -= n as i64;
        !c.reset
    };
    let mut from_program = conn;
    let mut ok = first.is_empty() || (take(first.len()) && send(out, Kind::NetData, chan, first));
    let mut buf = vec![0u8; CHUNK.min(NET_WINDOW as usize)];
    while ok {
        match from_program.read(&mut buf) {
            Ok(0) => {
                send(out, Kind::NetEnd, chan, Vec::new());
                break;
            }
            Ok(n) => ok = take(n) && send(out, Kind::NetData, chan, buf[..n].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                send(out, Kind::NetReset, chan, Vec::new());
                break;
            }
        }
    }
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
}

/// Shuts a socket down both ways when dropped.
struct CloseOnDrop(Option<TcpStream>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(conn) = &self.0 {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// One line for a header or a SOCKS log: no line breaks from the host's message.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn refuse_http(mut conn: TcpStream, status: &str, message: &str) {
    let message = one_line(message);
    let body = format!("corral: {message}\n");
    let answer = format!(
        "HTTP/1.1 {status}\r\nX-Corral-Refused: {message}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(answer.as_bytes());
    let _ = conn.shutdown(Shutdown::Both);
}

/// Splits `host:port` (with `[v6]:port`), `default` when there is no port.
fn host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => default,
                None => return None,
            };
            (host.to_string(), port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()?),
            None => (authority.to_string(), default),
        },
    };
    (!host.is_empty()).then_some((host, port))
}

/// Reads a request's head (up to the blank line); returns it and what came after.
fn read_head(conn: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The HTTP proxy: `CONNECT host:port` becomes a tunnel; `GET http://host/path` is sent
/// on to the host's server in origin form, with `Connection: close` (the next request
/// may be for another host).
fn serve_http(mut conn: TcpStream, out: &Out) {
    let Some((head, rest)) = read_head(&mut conn) else {
        return refuse_http(
            conn,
            "400 Bad Request",
            "a proxy request's head was expected",
        );
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = host_port(target, 443) else {
            return refuse_http(conn, "400 Bad Request", "CONNECT needs host:port");
        };
        match open(out, &host, port) {
            Ok(channel) => {
                if conn
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .is_ok()
                {
                    pipe(conn, channel, rest, out);
                }
            }
            Err(why) => refuse_http(conn, "403 Forbidden", &why),
        }
        return;
    }
    let Some(url) = target.strip_prefix("http://") else {
        return refuse_http(
            conn,
            "400 Bad Request",
            "this is the sprite's proxy: send absolute http:// URLs or CONNECT",
        );
    };
    let (authority, path) = match url.find('/') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, "/"),
    };
    let Some((host, port)) = host_port(authority, 80) else {
        return refuse_http(conn, "400 Bad Request", "the URL names no host");
    };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        let hop = [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
        ];
        if !hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut first = forwarded.into_bytes();
    first.extend_from_slice(&rest);
    match open(out, &host, port) {
        Ok(channel) => pipe(conn, channel, first, out),
        Err(why) => refuse_http(conn, "403 Forbidden", &why),
    }
}

/// SOCKS5 without authentication, `CONNECT` only; a refusal is reply 2, "connection
/// not allowed by ruleset".
fn serve_socks(mut conn: TcpStream, out: &Out) {
    let mut greeting = [0u8; 2];
    if conn.read_exact(&mut greeting).is_err() || greeting[0] != 5 {
        return;
    }
    let mut methods = vec![0u8; greeting[1] as usize];
    if conn.read_exact(&mut methods).is_err() || conn.write_all(&[5, 0]).is_err() {
        return;
    }
    let reply = |conn: &mut TcpStream, code: u8| {
        let _ = conn.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    let mut request = [0u8; 4];
    if conn.read_exact(&mut request).is_err() {
        return;
    }
    if request[1] != 1 {
        return reply(&mut conn, 7);
    }
    let host = match request[3] {
        1 => {
            let mut a = [0u8; 4];
            if conn.read_exact(&mut a).is_err() {
                return;
            }
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            let mut name = vec![0u8; 0];
            if conn.read_exact(&mut len).is_err() {
                return;
            }
            name.resize(len[0] as usize, 0);
            if conn.read_exact(&mut name).is_err() {
                return;
            }
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            if conn.read_exact(&mut a).is_err() {
                return;
            }
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => return reply(&mut conn, 8),
    };
    let mut port = [0u8; 2];
    if conn.read_exact(&mut port).is_err() {
        return;
    }
    match open(out, &host, u16::from_be_bytes(port)) {
        Ok(channel) => {
            reply(&mut conn, 0);
            pipe(conn, channel, Vec::new(), out);
        }
        Err(why) => {
            eprintln!("corral proxy: {host}: {}", one_line(&why));
            reply(&mut conn, 2);
        }
    }
}

/// The proxies' listeners; dropping this closes them (the agent that owns them lost its
/// host, and a new agent takes the ports over: a connection the old one accepted could
/// go nowhere).
pub struct Listeners {
    stop: Arc<AtomicBool>,
}

/// Wakes the listeners' blocked `accept`s with a connection of their own, so they see
/// that they must stop (this gVisor does not wake a blocked `accept` when its socket is
/// shut down, and polling a thousand idle sprites' listeners would cost their CPU).
/// Async-signal-safe: socket, connect and close only.
fn wake_listeners() {
    for port in [HTTP_PORT, SOCKS_PORT] {
        // SAFETY: a plain IPv4 socket connected to loopback and closed; every pointer
        // is to a sockaddr_in on this stack frame.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            if fd < 0 {
                continue;
            }
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            libc::close(fd);
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        wake_listeners();
    }
}

/// Set in the sandbox's first agent when a later one took the host stream over (this
/// gVisor may never show an agent the end of its old stream, so it cannot tell itself).
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

extern "C" fn handed_over(_: libc::c_int) {
    HANDED_OVER.store(true, Ordering::SeqCst);
    wake_listeners();
}

extern "C" fn superseded(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; a superseded agent has nothing left to do.
    unsafe { libc::_exit(0) };
}

/// Every agent listens for its successor: the sandbox's first agent (its init, which
/// must stay) lets go of the proxies' ports; a later one exits.
pub fn accept_hand_over() {
    let handler = if std::process::id() == 1 {
        handed_over as *const () as libc::sighandler_t
    } else {
        superseded as *const () as libc::sighandler_t
    };
    // SAFETY: both handlers only use async-signal-safe operations.
    unsafe { libc::signal(libc::SIGUSR1, handler) };
}

/// In an agent started beside the first: tells every earlier agent to let go (the
/// first) or to end (earlier ones like this), so the proxies' ports are this one's.
/// Agents are told apart from sessions leaders by their exact command line.
pub fn take_over() {
    let me = std::process::id() as i32;
    for (pid, dir) in super::processes() {
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        if args == [AGENT_PATH.as_bytes(), b"agent"] {
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
    }
}

/// Starts both proxies, each on its own thread. A port still held by the agent that
/// served the host before (it lets go when it notices) is tried again for a while.
pub fn listen(out: Out) -> Listeners {
    let listeners = Listeners {
        stop: Arc::new(AtomicBool::new(false)),
    };
    for (port, serve) in [
        (HTTP_PORT, serve_http as fn(TcpStream, &Out)),
        (SOCKS_PORT, serve_socks as fn(TcpStream, &Out)),
    ] {
        // Weak: the listeners must not keep the stream's writer alive.
        let (stop, out) = (listeners.stop.clone(), out.downgrade());
        let _ = std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || accept_until_stopped(port, serve, stop, out));
    }
    listeners
}

fn accept_until_stopped(
    port: u16,
    serve: fn(TcpStream, &Out),
    stop: Arc<AtomicBool>,
    out: tokio::sync::mpsc::WeakSender<Vec<u8>>,
) {
    let mut tries = 0;
    let listener = loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => break listener,
            Err(_) if tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                eprintln!("corral agent: cannot listen on 127.0.0.1:{port}: {e}");
                return;
            }
        }
    };
    // Blocked in accept while idle (no CPU); stopped by `wake_listeners` when this
    // agent's stream is gone or handed over.
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) || HANDED_OVER.load(Ordering::SeqCst) {
            return;
        }
        let Ok((conn, _)) = accepted else {
            continue;
        };
        let Some(out) = out.upgrade() else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || serve(conn, &out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_split() {
        assert_eq!(host_port("pypi.org:443", 1), Some(("pypi.org".into(), 443)));
        assert_eq!(host_port("pypi.org", 80), Some(("pypi.org".into(), 80)));
        assert_eq!(host_port("[::1]:8080", 80), Some(("::1".into(), 8080)));
        assert_eq!(host_port("[::1]", 80), Some(("::1".into(), 80)));
        assert_eq!(host_port(":80", 80), None);
        assert_eq!(host_port("a:b", 80), None);
        assert_eq!(one_line("no\r\nbreaks"), "no  breaks");
    }
}
