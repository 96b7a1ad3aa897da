//! Frames from the agent as untrusted input: root in a sprite can write into the agent's
//! stream (through `/proc/1/fd`), so every frame is checked for its size, its kind and
//! the request it claims to belong to, and each request's queue is bounded.
//!
//! What the checks guarantee and what they cannot is written down in `../../TRUST.md`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use super::proto::{Frame, Kind, CHUNK};

/// The largest payload the host accepts from the agent: output and file contents come
/// in [`CHUNK`]s, and the JSON frames (exit, error) are far smaller. A larger header is
/// a protocol violation, refused before anything is allocated for it.
pub const MAX_INBOUND: usize = CHUNK;
/// Largest JSON payload (an exit or an error).
const MAX_JSON: usize = 64 << 10;
/// Frames queued per request. With [`MAX_INBOUND`] this bounds a request's queue to
/// 1 MiB; when it is full the reader waits (backpressure on the whole stream, so the
/// agent's output threads and then the sprite's commands block).
pub const QUEUE: usize = 4;
/// How long the reader waits for a request whose consumer does not take its frames
/// (a WebSocket client that reads nothing) before ending that request with an error,
/// so one stalled caller does not hold up the sprite's other calls for ever.
pub const STALL: Duration = Duration::from_secs(30);

/// What a request is, and so which frames it may receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A command: output, then an exit or an error.
    Exec,
    /// A file read: chunks, then the end or an error.
    Read,
    /// A file write: done or an error.
    Write,
}

impl Role {
    fn allows(self, kind: Kind) -> bool {
        match self {
            Role::Exec => matches!(kind, Kind::Stdout | Kind::Stderr | Kind::Exit | Kind::Error),
            Role::Read => matches!(kind, Kind::FileData | Kind::FileEnd | Kind::Error),
            Role::Write => matches!(kind, Kind::Done | Kind::Error),
        }
    }
}

/// Checks a frame's kind and size regardless of its request: a kind only the driver
/// sends, or a payload too large for its kind, is a violation.
pub fn check(frame: &Frame) -> Result<(), String> {
    if !frame.kind.from_agent() {
        return Err(format!("the agent sent a {:?} frame", frame.kind));
    }
    let max = match frame.kind {
        Kind::Stdout | Kind::Stderr | Kind::FileData | Kind::NetData => MAX_INBOUND,
        _ => MAX_JSON,
    };
    if frame.payload.len() > max {
        return Err(format!(
            "a {:?} frame of {} bytes (at most {max})",
            frame.kind,
            frame.payload.len()
        ));
    }
    Ok(())
}

/// One open request.
pub struct Entry {
    role: Role,
    tx: mpsc::Sender<Frame>,
}

/// Open requests by channel number.
#[derive(Default)]
pub struct Table(Mutex<HashMap<u32, Entry>>);

/// What became of a frame handed to [`Table::deliver`].
pub enum Delivery {
    /// Queued, or dropped because its request is over (late output of a killed command).
    Done,
    /// The frame's kind is not one its request can receive.
    Violation(String),
    /// The request's consumer took nothing for [`STALL`]; it was removed from the table.
    Stalled,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a request and returns its queue.
    pub fn open(&self, chan: u32, role: Role) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock().insert(chan, Entry { role, tx });
        rx
    }

    /// Forgets a request (done, abandoned or stalled).
    pub fn remove(&self, chan: u32) {
        self.lock().remove(&chan);
    }

    /// Forgets every request: their consumers see their queues end.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Hands a checked frame to its request, waiting (at most `stall`, [`STALL`] but in
    /// tests) while the request's queue is full.
    pub async fn deliver(&self, frame: Frame, stall: Duration) -> Delivery {
        let entry = self.lock().get(&frame.chan).map(|e| (e.role, e.tx.clone()));
        let Some((role, tx)) = entry else {
            return Delivery::Done;
        };
        if !role.allows(frame.kind) {
            return Delivery::Violation(format!("a {:?} frame for a {role:?} request", frame.kind));
        }
        let chan = frame.chan;
        match tx.send_timeout(frame, stall).await {
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.remove(chan);
                Delivery::Stalled
            }
            _ => Delivery::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_kinds_and_oversized_frames_are_violations() {
        assert!(check(&Frame::new(Kind::Exec, 1, vec![])).is_err());
        assert!(check(&Frame::new(Kind::Kill, 1, vec![])).is_err());
        assert!(check(&Frame::new(Kind::Exit, 1, vec![0; MAX_JSON + 1])).is_err());
        assert!(check(&Frame::new(Kind::Stdout, 1, vec![0; MAX_INBOUND])).is_ok());
    }

    #[tokio::test]
    async fn a_frame_of_the_wrong_kind_for_its_request_is_a_violation() {
        let table = Table::default();
        let _exec = table.open(1, Role::Exec);
        let _read = table.open(2, Role::Read);
        assert!(matches!(
            table
                .deliver(Frame::new(Kind::FileData, 1, vec![]), STALL)
                .await,
            Delivery::Violation(_)
        ));
        assert!(matches!(
            table
                .deliver(Frame::new(Kind::Exit, 2, vec![]), STALL)
                .await,
            Delivery::Violation(_)
        ));
        // A frame for no open request is dropped.
        assert!(matches!(
            table
                .deliver(Frame::new(Kind::Stdout, 9, vec![]), STALL)
                .await,
            Delivery::Done
        ));
    }

    #[tokio::test]
    async fn a_consumer_that_takes_nothing_is_dropped_after_the_stall_time() {
        let table = Table::default();
        let mut rx = table.open(1, Role::Exec);
        for _ in 0..QUEUE {
            assert!(matches!(
                table
                    .deliver(Frame::new(Kind::Stdout, 1, vec![1]), STALL)
                    .await,
                Delivery::Done
            ));
        }
        let short = Duration::from_millis(100);
        assert!(matches!(
            table
                .deliver(Frame::new(Kind::Stdout, 1, vec![1]), short)
                .await,
            Delivery::Stalled
        ));
        for _ in 0..QUEUE {
            assert!(rx.recv().await.is_some());
        }
        assert!(
            rx.recv().await.is_none(),
            "the stalled request's queue ends"
        );
    }
}
