//! The host's side of the connections programs in a sprite open through the agent's
//! proxy (see `net`): each `NetOpen` is put to the machine's [`Egress`] (which decides
//! and dials), and the bytes are carried both ways with a window of [`NET_WINDOW`] per
//! direction. The agent is untrusted: a stream it did not open, bytes past the window,
//! or more than [`MAX_STREAMS`] at once are violations or refusals, never memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify, Semaphore};

use super::proto::{Frame, Kind, NetOpen, NetReply, CHUNK, NET_WINDOW};
use crate::{Egress, MachineId};

/// Connections one machine may have open at once.
pub const MAX_STREAMS: usize = 256;
/// Acknowledge bytes written upstream once this many are (the agent's window).
const ACK_EVERY: u32 = 64 << 10;

/// Where a machine's connections are decided, settable after machines exist.
pub type EgressSlot = Arc<RwLock<Option<Arc<dyn Egress>>>>;

/// Sends frames to the agent over the client's shared writer; `false` once it is gone.
pub type SendFrames = Arc<
    dyn Fn(Vec<Frame>) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync,
>;

struct Open {
    /// Frames for the upstream writer: data, end, reset.
    frames: mpsc::UnboundedSender<Frame>,
    /// Bytes queued for upstream and not yet written (bounded by the window).
    queued: Arc<AtomicI64>,
    /// What may still be sent to the agent.
    credit: Arc<Semaphore>,
    /// Set when either side resets.
    reset: Arc<Notify>,
}

/// The open connections of one machine.
pub struct Streams {
    machine: Option<MachineId>,
    egress: EgressSlot,
    open: Mutex<HashMap<u32, Open>>,
}

impl Streams {
    /// The connections of the machine labelled `label` (its id).
    pub fn new(label: &str, egress: EgressSlot) -> Self {
        Self {
            machine: MachineId::parse(label),
            egress,
            open: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every connection (the agent's stream is gone).
    pub fn clear(&self) {
        for (_, open) in self.lock().drain() {
            open.reset.notify_one();
        }
    }

    /// Takes a frame of an agent-opened connection; `Err` is a protocol violation.
    pub fn route(self: &Arc<Self>, frame: Frame, send: &SendFrames) -> Result<(), String> {
        let chan = frame.chan;
        match frame.kind {
            Kind::NetOpen => {
                let request: NetOpen = frame.parse().map_err(|e| format!("a bad NetOpen: {e}"))?;
                let mut open = self.lock();
                if open.contains_key(&chan) {
                    return Err(format!("NetOpen for connection {chan:#x}, which is open"));
                }
                if open.len() >= MAX_STREAMS {
                    drop(open);
                    let reply = NetReply {
                        ok: false,
                        message: format!("too many connections at once (at most {MAX_STREAMS})"),
                    };
                    let send = send.clone();
                    tokio::spawn(async move {
                        send(vec![Frame::json(Kind::NetReply, chan, &reply)]).await
                    });
                    return Ok(());
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let entry = Open {
                    frames: tx,
                    queued: Arc::default(),
                    credit: Arc::new(Semaphore::new(NET_WINDOW as usize)),
                    reset: Arc::new(Notify::new()),
                };
                let (queued, credit, reset) = (
                    entry.queued.clone(),
                    entry.credit.clone(),
                    entry.reset.clone(),
                );
                open.insert(chan, entry);
                drop(open);
                let (streams, send) = (self.clone(), send.clone());
                tokio::spawn(async move {
                    streams
                        .carry(chan, request, rx, queued, credit, reset, send)
                        .await;
                    streams.lock().remove(&chan);
                });
                Ok(())
            }
            Kind::NetAck => {
                let n = super::proto::acked(&frame.payload);
                if let Some(open) = self.lock().get(&chan) {
                    // Never more than the window: a hostile agent cannot widen it.
                    let room =
                        (NET_WINDOW as usize).saturating_sub(open.credit.available_permits());
                    open.credit.add_permits((n as usize).min(room));
                }
                Ok(())
            }
            Kind::NetData | Kind::NetEnd | Kind::NetReset => {
                let open = self.lock();
                let Some(entry) = open.get(&chan) else {
                    // Late bytes of a connection that is over.
                    return Ok(());
                };
                if frame.kind == Kind::NetReset {
                    entry.reset.notify_one();
                }
                let queued = entry
                    .queued
                    .fetch_add(frame.payload.len() as i64, Ordering::SeqCst)
                    + frame.payload.len() as i64;
                if queued > i64::from(NET_WINDOW) + CHUNK as i64 {
                    return Err(format!(
                        "connection {chan:#x} sent past its window ({queued} bytes unwritten)"
                    ));
                }
                let _ = entry.frames.send(frame);
                Ok(())
            }
            other => Err(format!("a {other:?} frame for connection {chan:#x}")),
        }
    }

    /// Asks the egress for the connection, answers the agent, then carries bytes until
    /// both directions are done or either side resets.
    #[allow(clippy::too_many_arguments)]
    async fn carry(
        &self,
        chan: u32,
        request: NetOpen,
        mut from_agent: mpsc::UnboundedReceiver<Frame>,
        queued: Arc<AtomicI64>,
        credit: Arc<Semaphore>,
        reset: Arc<Notify>,
        send: SendFrames,
    ) {
        let egress = self
            .egress
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let connected = match (egress, &self.machine) {
            (Some(egress), Some(machine)) => {
                egress.connect(machine, &request.host, request.port).await
            }
            _ => Err("this sprite has no network (the server set no way out)".into()),
        };
        let upstream = match connected {
            Ok(upstream) => upstream,
            Err(message) => {
                let reply = NetReply { ok: false, message };
                send(vec![Frame::json(Kind::NetReply, chan, &reply)]).await;
                return;
            }
        };
        let reply = NetReply {
            ok: true,
            message: String::new(),
        };
        if !send(vec![Frame::json(Kind::NetReply, chan, &reply)]).await {
            return;
        }
        let (mut read, mut write) = tokio::io::split(upstream);
        let down = async {
            let mut buf = vec![0u8; CHUNK.min(64 << 10)];
            loop {
                let n = match read.read(&mut buf).await {
                    Ok(0) => {
                        send(vec![Frame::new(Kind::NetEnd, chan, Vec::new())]).await;
                        return;
                    }
                    Ok(n) => n,
                    Err(_) => {
                        send(vec![Frame::new(Kind::NetReset, chan, Vec::new())]).await;
                        return;
                    }
                };
                match credit.acquire_many(n as u32).await {
                    Ok(permits) => permits.forget(),
                    Err(_) => return,
                }
                if !send(vec![Frame::new(Kind::NetData, chan, buf[..n].to_vec())]).await {
                    return;
                }
            }
        };
        let up = async {
            let mut unacked = 0u32;
            while let Some(frame) = from_agent.recv().await {
                queued.fetch_sub(frame.payload.len() as i64, Ordering::SeqCst);
                match frame.kind {
                    Kind::NetData => {
                        if write.write_all(&frame.payload).await.is_err() {
                            send(vec![Frame::new(Kind::NetReset, chan, Vec::new())]).await;
                            return;
                        }
                        unacked += frame.payload.len() as u32;
                        if unacked >= ACK_EVERY {
                            let ack = unacked.to_le_bytes().to_vec();
                            send(vec![Frame::new(Kind::NetAck, chan, ack)]).await;
                            unacked = 0;
                        }
                    }
                    Kind::NetEnd => {
                        let _ = write.shutdown().await;
                        return;
                    }
                    _ => return,
                }
            }
        };
        // A reset from either side (or the policy, through the egress stream failing)
        // ends both directions at once.
        tokio::select! {
            _ = async { tokio::join!(down, up) } => {}
            _ = reset.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::proto::AGENT_CHAN;

    fn sink() -> (SendFrames, Arc<Mutex<Vec<Frame>>>) {
        let sent: Arc<Mutex<Vec<Frame>>> = Arc::default();
        let store = sent.clone();
        let send: SendFrames = Arc::new(move |frames| {
            store.lock().unwrap().extend(frames);
            Box::pin(async { true })
        });
        (send, sent)
    }

    #[tokio::test]
    async fn a_hostile_agent_gets_violations_not_memory() {
        let streams = Arc::new(Streams::new("s0000000000000001", EgressSlot::default()));
        let (send, sent) = sink();
        let chan = AGENT_CHAN | 7;
        let open = Frame::json(
            Kind::NetOpen,
            chan,
            &NetOpen {
                host: "x.org".into(),
                port: 80,
            },
        );
        // Bytes for a connection that is not open are dropped.
        assert!(streams
            .route(Frame::new(Kind::NetData, chan, vec![1; 10]), &send)
            .is_ok());
        assert!(streams.route(open.clone(), &send).is_ok());
        assert!(
            streams.route(open, &send).is_err(),
            "a second open of an open connection"
        );
        // Past the window: a violation (the upstream side never reads, as nothing
        // was connected; the queue counts what is unwritten).
        let streams2 = Arc::new(Streams::new("s0000000000000002", EgressSlot::default()));
        let other = AGENT_CHAN | 8;
        let request = Frame::json(
            Kind::NetOpen,
            other,
            &NetOpen {
                host: "y.org".into(),
                port: 80,
            },
        );
        streams2.route(request, &send).unwrap();
        let chunk = vec![0u8; CHUNK];
        let mut outcome = Ok(());
        for _ in 0..8 {
            outcome = streams2.route(Frame::new(Kind::NetData, other, chunk.clone()), &send);
            if outcome.is_err() {
                break;
            }
        }
        assert!(
            outcome.is_err(),
            "more than the window unwritten is refused"
        );
        // Without an egress the connection is refused, with the reason.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let replies = sent.lock().unwrap();
        let reply: NetReply = replies
            .iter()
            .find(|f| f.kind == Kind::NetReply && f.chan == chan)
            .expect("a reply")
            .parse()
            .unwrap();
        assert!(
            !reply.ok && reply.message.contains("no network"),
            "{reply:?}"
        );
    }
}
