//! The sprite's way in: the host asks the agent for a connection to a port on the
//! sprite's loopback (a request to the sprite's URL, a tunnel), and the agent connects
//! and carries the bytes over its stream like an outbound connection (see `net`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::exec::Out;
use super::net::{pipe, register, send};
use super::proto::{Dial, Kind, NetReply};

/// How long a connect on the sprite's loopback may take (a listener's full backlog).
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Opens connection `chan` to `dial.port` on loopback and answers the host; carries
/// the bytes on a thread of its own. Registered before this returns, so the host's
/// first bytes (sent after the reply) always find it.
pub fn dial(chan: u32, dial: Dial, out: &Out) {
    let channel = register(chan);
    let out = out.clone();
    let spawned = std::thread::Builder::new()
        .name("net-dial".into())
        .spawn(move || {
            let reply = |ok: bool, message: String| {
                let reply = NetReply { ok, message };
                send(
                    &out,
                    Kind::NetReply,
                    chan,
                    serde_json::to_vec(&reply).unwrap_or_default(),
                )
            };
            match connect(dial.port) {
                Ok(conn) => {
                    let _ = conn.set_nodelay(true);
                    if reply(true, String::new()) {
                        pipe(conn, channel, Vec::new(), &out);
                    }
                }
                Err(why) => {
                    reply(false, why);
                }
            }
        });
    if spawned.is_err() {
        eprintln!("corral agent: cannot start a thread for a connection");
    }
}

/// Connects to `port` on 127.0.0.1, then on ::1 (servers listen on either).
fn connect(port: u16) -> Result<TcpStream, String> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v4, CONNECT_WAIT) {
        Ok(conn) => Ok(conn),
        Err(first) => TcpStream::connect_timeout(&v6, CONNECT_WAIT).map_err(|_| {
            format!("nothing accepts connections on port {port} in the sprite ({first})")
        }),
    }
}
