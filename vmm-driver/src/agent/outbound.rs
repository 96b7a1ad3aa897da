//! The host's side of the connections programs in a sprite open through the agent's
//! proxy (see `net`): each `NetOpen` is put to the machine's [`Egress`] (which decides
//! and dials), and the bytes are carried both ways with a window of [`NET_WINDOW`] per
//! direction. The same carriage serves the connections the host opens into the sprite
//! ([`Streams::dial`]: a request to its URL, a tunnel). The agent is untrusted: a stream it did not open, bytes past the window,
//! or more than [`MAX_STREAMS`] at once are violations or refusals, never memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use super::proto::{
    Dial, Frame, Kind, NetOpen, NetReply, AGENT_CHAN, CHUNK, DIAL_CHAN, NET_WINDOW,
};
use crate::{Egress, EgressStream, MachineId};

/// Connections one machine may have open at once.
pub const MAX_STREAMS: usize = 256;
/// Acknowledge bytes written upstream once this many are (the agent's window).
const ACK_EVERY: u32 = 64 << 10;
/// How long the agent may take to answer a dial.
const DIAL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Bytes buffered between a dialled connection's carriage and its user.
const DIAL_BUFFER: usize = 64 << 10;

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
    /// For a connection the host dialled: where the agent's answer goes.
    pending: Option<oneshot::Sender<NetReply>>,
}

impl Open {
    fn new(frames: mpsc::UnboundedSender<Frame>) -> Self {
        Self {
            frames,
            queued: Arc::default(),
            credit: Arc::new(Semaphore::new(NET_WINDOW as usize)),
            reset: Arc::new(Notify::new()),
            pending: None,
        }
    }
}

/// What carries one connection's bytes, taken from its [`Open`] entry.
struct Carriage {
    chan: u32,
    from_agent: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicI64>,
    credit: Arc<Semaphore>,
    reset: Arc<Notify>,
    send: SendFrames,
}

/// The open connections of one machine.
pub struct Streams {
    machine: Option<MachineId>,
    egress: EgressSlot,
    open: Mutex<HashMap<u32, Open>>,
    next_dial: AtomicU32,
}

impl Streams {
    /// The connections of the machine labelled `label` (its id).
    pub fn new(label: &str, egress: EgressSlot) -> Self {
        Self {
            machine: MachineId::parse(label),
            egress,
            open: Mutex::default(),
            next_dial: AtomicU32::new(1),
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
            Kind::NetOpen if chan & AGENT_CHAN != 0 => {
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
                let entry = Open::new(tx);
                let carriage = Carriage {
                    chan,
                    from_agent: rx,
                    queued: entry.queued.clone(),
                    credit: entry.credit.clone(),
                    reset: entry.reset.clone(),
                    send: send.clone(),
                };
                open.insert(chan, entry);
                drop(open);
                let streams = self.clone();
                tokio::spawn(async move {
                    streams.carry(request, carriage).await;
                    streams.lock().remove(&chan);
                });
                Ok(())
            }
            Kind::NetReply if chan & DIAL_CHAN != 0 => {
                let reply: NetReply = frame.parse().map_err(|e| format!("a bad NetReply: {e}"))?;
                let mut open = self.lock();
                match open.get_mut(&chan).map(|o| o.pending.take()) {
                    Some(Some(waiting)) => {
                        let _ = waiting.send(reply);
                        Ok(())
                    }
                    Some(None) => Err(format!("a second NetReply for connection {chan:#x}")),
                    // The dial was given up on.
                    None => Ok(()),
                }
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

    /// Opens a connection to `port` on the sprite's loopback: the agent connects, and
    /// the returned stream carries the bytes (with the same window as the way out).
    /// `Err` says why not (nothing listens on the port, the agent is gone).
    pub async fn dial(
        self: &Arc<Self>,
        port: u16,
        send: &SendFrames,
    ) -> Result<Box<dyn EgressStream>, String> {
        let chan = DIAL_CHAN | (self.next_dial.fetch_add(1, Ordering::Relaxed) % DIAL_CHAN).max(1);
        let (tx, rx) = mpsc::unbounded_channel();
        let (answered, answer) = oneshot::channel();
        let mut entry = Open::new(tx);
        entry.pending = Some(answered);
        let carriage = Carriage {
            chan,
            from_agent: rx,
            queued: entry.queued.clone(),
            credit: entry.credit.clone(),
            reset: entry.reset.clone(),
            send: send.clone(),
        };
        {
            let mut open = self.lock();
            if open.len() >= MAX_STREAMS {
                return Err(format!(
                    "too many connections at once (at most {MAX_STREAMS})"
                ));
            }
            open.insert(chan, entry);
        }
        // Forgets the connection however this ends before the carriage takes it over.
        let mut forget = Forget(Some((self.clone(), chan)));
        if !send(vec![Frame::json(Kind::Dial, chan, &Dial { port })]).await {
            return Err("the sprite's agent is gone".into());
        }
        let reply = match tokio::time::timeout(DIAL_WAIT, answer).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err("the sprite's agent is gone".into()),
            Err(_) => {
                return Err(format!(
                    "the sprite's agent did not answer in {} s",
                    DIAL_WAIT.as_secs()
                ))
            }
        };
        if !reply.ok {
            return Err(reply.message);
        }
        let (ours, theirs) = tokio::io::duplex(DIAL_BUFFER);
        let streams = self.clone();
        forget.0 = None;
        tokio::spawn(async move {
            pump(theirs, carriage).await;
            streams.lock().remove(&chan);
        });
        Ok(Box::new(ours))
    }

    /// Asks the egress for the connection, answers the agent, then carries bytes until
    /// both directions are done or either side resets.
    async fn carry(&self, request: NetOpen, carriage: Carriage) {
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
        let (chan, send) = (carriage.chan, carriage.send.clone());
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
        pump(upstream, carriage).await;
    }
}

/// Removes a dialled connection that never got going.
struct Forget(Option<(Arc<Streams>, u32)>);

impl Drop for Forget {
    fn drop(&mut self) {
        if let Some((streams, chan)) = self.0.take() {
            streams.lock().remove(&chan);
        }
    }
}

/// Carries bytes between `local` and the agent until both directions are done or
/// either side resets.
async fn pump<S: AsyncRead + AsyncWrite>(local: S, carriage: Carriage) {
    let Carriage {
        chan,
        mut from_agent,
        queued,
        credit,
        reset,
        send,
    } = carriage;
    let (mut read, mut write) = tokio::io::split(local);
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
