//! Idle HTTP/1.1 connections into sprites, kept for the next request to the same port
//! (a keep-alive client's next request does not pay for a new connection through the
//! agent). Bounded per port and by age; a connection the sprite or the budget closed is
//! never handed out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per sprite and port.
const PER_PORT: usize = 8;
/// How long an idle connection is kept.
pub const IDLE: Duration = Duration::from_secs(30);

/// A connection ready for a request.
pub type Sender = SendRequest<Body>;

/// Idle connections to one port, each with when it was put back.
type Idle = Vec<(Instant, Sender)>;

/// The idle connections, by sprite id and port.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<(i64, u16), Idle>>,
}

impl Pool {
    /// An idle connection to the port, if one is still good.
    pub fn take(&self, sprite_id: i64, port: u16) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&(sprite_id, port))?;
        while let Some((since, sender)) = list.pop() {
            if since.elapsed() < IDLE && sender.is_ready() && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps a connection whose response is on its way (it is handed out again only
    /// once that response is read to its end: `is_ready`).
    pub fn put(&self, sprite_id: i64, port: u16, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry((sprite_id, port)).or_default();
        list.retain(|(since, s)| since.elapsed() < IDLE && !s.is_closed());
        if list.len() < PER_PORT {
            list.push((Instant::now(), sender));
        }
    }

    /// Drops connections idle too long (run now and then).
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|(since, s)| since.elapsed() < IDLE && !s.is_closed());
            !list.is_empty()
        });
    }

    /// Drops a sprite's connections (it was deleted).
    pub fn forget(&self, sprite_id: i64) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(id, _), _| *id != sprite_id);
    }
}
