//! The driver's side of the agent stream: one connection per machine, many commands and
//! file transfers multiplexed over it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::inbound::{self, Delivery, Role, Table};
use super::outbound::{EgressSlot, SendFrames, Streams};
use super::proto::{
    read_frame_max, ErrorInfo, ErrorKind, ExecSpec, ExitInfo, Frame, Kind, ReadSpec, WriteSpec,
    AGENT_CHAN, CHUNK, DIAL_CHAN,
};
use crate::{DriverError, ExecControl, ExecEvent, ExecOutput, ExecRequest, ExecStream, Result};

/// Output kept of each stream when a request does not say (`max_output_bytes == 0`).
pub const DEFAULT_MAX_OUTPUT: usize = 4 << 20;
/// Events queued for a streamed command's consumer (each at most one output chunk).
const EVENTS: usize = 4;

struct Inner {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    chans: Table,
    next: AtomicU32,
    closed: AtomicBool,
    /// Why the host closed the stream, when it was the agent's fault.
    broken: Mutex<Option<String>>,
    /// The machine, for logs.
    label: String,
}

impl Inner {
    async fn send(&self, frames: &[Frame]) -> Result<()> {
        let mut buf = Vec::new();
        for f in frames {
            buf.extend_from_slice(&f.encode());
        }
        let mut w = self.writer.lock().await;
        w.write_all(&buf).await.map_err(|_| self.lost())
    }

    fn lost(&self) -> DriverError {
        match &*self.broken.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => DriverError::InvalidState(format!(
                "the sprite's agent broke the protocol ({why}); the call was ended"
            )),
            None => {
                DriverError::InvalidState("the machine stopped (agent connection closed)".into())
            }
        }
    }

    /// Why a request's queue ended while the request was still waiting.
    fn ended(&self) -> DriverError {
        if self.closed.load(Ordering::SeqCst) {
            self.lost()
        } else {
            DriverError::Backend {
                what: "the call was ended".into(),
                source: format!("its reader took nothing for {} s", inbound::STALL.as_secs())
                    .into(),
            }
        }
    }
}

/// A connection to one machine's agent.
#[derive(Clone)]
pub struct AgentClient {
    inner: Arc<Inner>,
    /// The connections over the stream, both ways.
    streams: Arc<Streams>,
    /// Writes frames for the connections.
    send: SendFrames,
}

/// Removes a channel from the table when its request is done or abandoned, and kills
/// an abandoned command (its caller went away or gave up: issue 9, item 10).
struct ChanGuard {
    inner: Arc<Inner>,
    chan: u32,
    kill: bool,
}

impl Drop for ChanGuard {
    fn drop(&mut self) {
        self.inner.chans.remove(self.chan);
        if self.kill && !self.inner.closed.load(Ordering::SeqCst) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (inner, chan) = (self.inner.clone(), self.chan);
                rt.spawn(async move {
                    let _ = inner
                        .send(&[Frame::new(Kind::Kill, chan, Vec::new())])
                        .await;
                });
            }
        }
    }
}

fn agent_error(frame: &Frame) -> DriverError {
    match frame.parse::<ErrorInfo>() {
        Ok(info) => match info.kind {
            ErrorKind::NotFound => DriverError::NotFound(info.message),
            ErrorKind::Invalid | ErrorKind::TooLarge => DriverError::Invalid(info.message),
            ErrorKind::DiskFull => DriverError::DiskFull,
            ErrorKind::Io => DriverError::backend("agent request failed", info.message),
        },
        Err(e) => DriverError::backend("agent sent a bad error", e),
    }
}

impl AgentClient {
    /// Starts reading the agent's frames from `stream`; `label` names the machine in logs.
    /// Its programs have no way out (see [`AgentClient::with_egress`]).
    pub fn new(stream: UnixStream, label: String) -> Self {
        Self::with_egress(stream, label, EgressSlot::default())
    }

    /// As [`AgentClient::new`], with the connections its programs open through the
    /// agent's proxy put to `egress` (`label` must be the machine's id).
    pub fn with_egress(stream: UnixStream, label: String, egress: EgressSlot) -> Self {
        let (mut r, w) = stream.into_split();
        let streams = Arc::new(Streams::new(&label, egress));
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(w),
            chans: Table::default(),
            next: AtomicU32::new(1),
            closed: AtomicBool::new(false),
            broken: Mutex::new(None),
            label,
        });
        let sender = Arc::downgrade(&inner);
        let send: SendFrames = Arc::new(move |frames| {
            let inner = sender.upgrade();
            Box::pin(async move {
                match inner {
                    Some(inner) => inner.send(&frames).await.is_ok(),
                    None => false,
                }
            })
        });
        let reader = inner.clone();
        let (routed, sends) = (streams.clone(), send.clone());
        tokio::spawn(async move {
            let (streams, send) = (routed, sends);
            let violation = loop {
                let frame = match read_frame_max(&mut r, inbound::MAX_INBOUND).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break None,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        break Some(e.to_string())
                    }
                    Err(e) => {
                        tracing::warn!(machine = %reader.label, error = %e, "agent stream broken");
                        break None;
                    }
                };
                if let Err(why) = inbound::check(&frame) {
                    break Some(why);
                }
                if frame.chan & (AGENT_CHAN | DIAL_CHAN) != 0 {
                    match streams.route(frame, &send) {
                        Ok(()) => continue,
                        Err(why) => break Some(why),
                    }
                }
                let chan = frame.chan;
                match reader.chans.deliver(frame, inbound::STALL).await {
                    Delivery::Done => {}
                    Delivery::Violation(why) => break Some(why),
                    Delivery::Stalled => {
                        tracing::warn!(machine = %reader.label, chan, "a caller took no output; ending its call");
                        let _ = reader
                            .send(&[Frame::new(Kind::Kill, chan, Vec::new())])
                            .await;
                    }
                }
            };
            if let Some(why) = violation {
                // Only this machine's calls end; the sandbox keeps running and the
                // driver starts a fresh agent beside it on the next call.
                tracing::warn!(machine = %reader.label, %why, "agent broke the protocol; closing its stream");
                *reader.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
            reader.closed.store(true, Ordering::SeqCst);
            reader.chans.clear();
            streams.clear();
            let _ = reader.writer.lock().await.shutdown().await;
        });
        Self {
            inner,
            streams,
            send,
        }
    }

    /// A connection to `port` on the machine's loopback; `Err` says why not.
    pub async fn dial(&self, port: u16) -> Result<Box<dyn crate::EgressStream>> {
        if self.is_closed() {
            return Err(self.inner.lost());
        }
        self.streams
            .dial(port, &self.send)
            .await
            .map_err(DriverError::Refused)
    }

    /// Whether the agent has gone away (the machine stopped or was checkpointed).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Closes the stream: the agent sees its end and (unless it is the sandbox's init)
    /// exits. Requests in flight fail.
    pub async fn close(&self) {
        let _ = self.inner.writer.lock().await.shutdown().await;
    }

    /// Sends a frame the agent ignores (a kill for channel 0, which is never used). Right
    /// after `runsc restore` the sandbox may miss the arrival of the first bytes on its new
    /// host socket; more bytes wake its blocked read.
    pub async fn nudge(&self) -> Result<()> {
        self.send(&[Frame::new(Kind::Kill, 0, Vec::new())]).await
    }

    fn open(&self, role: Role) -> Result<(ChanGuard, mpsc::Receiver<Frame>)> {
        // Channel 0 is never used (see `nudge`).
        let chan = match self.inner.next.fetch_add(1, Ordering::Relaxed) {
            0 => self.inner.next.fetch_add(1, Ordering::Relaxed),
            n => n,
        };
        let rx = self.inner.chans.open(chan, role);
        let guard = ChanGuard {
            inner: self.inner.clone(),
            chan,
            kill: role == Role::Exec,
        };
        // Checked after inserting: the reader clears the table after setting `closed`.
        if self.is_closed() {
            return Err(self.inner.lost());
        }
        Ok((guard, rx))
    }

    async fn send(&self, frames: &[Frame]) -> Result<()> {
        self.inner.send(frames).await
    }

    fn exec_frames(chan: u32, req: &ExecRequest, max_output: u64) -> Result<Vec<Frame>> {
        if req.argv.is_empty() {
            return Err(DriverError::Invalid("empty command".into()));
        }
        let spec = ExecSpec {
            argv: req.argv.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            timeout_ms: req.timeout.map(|t| t.as_millis().max(1) as u64),
            max_output,
            tty: req.tty,
        };
        Ok(vec![Frame::json(Kind::Exec, chan, &spec)])
    }

    /// Runs a command to completion.
    pub async fn exec(&self, req: ExecRequest) -> Result<ExecOutput> {
        let started = Instant::now();
        let max = if req.max_output_bytes == 0 {
            DEFAULT_MAX_OUTPUT
        } else {
            req.max_output_bytes
        };
        let (mut guard, mut rx) = self.open(Role::Exec)?;
        let mut frames = Self::exec_frames(guard.chan, &req, max as u64)?;
        for chunk in req.stdin.chunks(CHUNK) {
            frames.push(Frame::new(Kind::Stdin, guard.chan, chunk.to_vec()));
        }
        frames.push(Frame::new(Kind::StdinEof, guard.chan, Vec::new()));
        self.send(&frames).await?;
        let (mut stdout, mut stderr, mut truncated) = (Vec::new(), Vec::new(), false);
        while let Some(frame) = rx.recv().await {
            match frame.kind {
                Kind::Stdout | Kind::Stderr => {
                    let buf = if frame.kind == Kind::Stdout {
                        &mut stdout
                    } else {
                        &mut stderr
                    };
                    let room = max.saturating_sub(buf.len());
                    truncated |= frame.payload.len() > room;
                    buf.extend_from_slice(&frame.payload[..frame.payload.len().min(room)]);
                }
                Kind::Exit => {
                    let info: ExitInfo = frame
                        .parse()
                        .map_err(|e| DriverError::backend("agent exit", e))?;
                    guard.kill = false;
                    return Ok(ExecOutput {
                        exit_code: info.code,
                        stdout,
                        stderr,
                        truncated: truncated || info.truncated,
                        timed_out: info.timed_out,
                        duration: started.elapsed(),
                    });
                }
                Kind::Error => {
                    guard.kill = false;
                    return Err(agent_error(&frame));
                }
                _ => {}
            }
        }
        Err(self.inner.ended())
    }

    /// Starts a command and hands back its streams. Output is not capped unless
    /// `max_output_bytes` is set.
    pub async fn exec_stream(&self, req: ExecRequest) -> Result<ExecStream> {
        let (guard, mut rx) = self.open(Role::Exec)?;
        let chan = guard.chan;
        let mut frames = Self::exec_frames(chan, &req, req.max_output_bytes as u64)?;
        for chunk in req.stdin.chunks(CHUNK) {
            frames.push(Frame::new(Kind::Stdin, chan, chunk.to_vec()));
        }
        self.send(&frames).await?;
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(16);
        let (control_tx, mut control_rx) = mpsc::channel::<ExecControl>(4);
        let (ev_tx, ev_rx) = mpsc::channel(EVENTS);
        let client = self.clone();
        tokio::spawn(async move {
            // Moved whole into the task: it ends the request when the task ends.
            let mut guard = guard;
            let mut stdin_open = true;
            let mut control_open = true;
            loop {
                tokio::select! {
                    control = control_rx.recv(), if control_open => {
                        let frame = match control {
                            Some(ExecControl::Resize(size)) => Frame::json(Kind::Resize, chan, &size),
                            Some(ExecControl::Signal(signal)) => {
                                Frame::new(Kind::Signal, chan, signal.to_le_bytes().to_vec())
                            }
                            None => {
                                control_open = false;
                                continue;
                            }
                        };
                        if client.send(&[frame]).await.is_err() {
                            let _ = ev_tx.send(ExecEvent::Exit(-1)).await;
                            return;
                        }
                    }
                    data = stdin_rx.recv(), if stdin_open => {
                        let frames = match data {
                            Some(d) => d.chunks(CHUNK).map(|c| Frame::new(Kind::Stdin, chan, c.to_vec())).collect(),
                            None => {
                                stdin_open = false;
                                vec![Frame::new(Kind::StdinEof, chan, Vec::new())]
                            }
                        };
                        if client.send(&frames).await.is_err() {
                            let _ = ev_tx.send(ExecEvent::Exit(-1)).await;
                            return;
                        }
                    }
                    frame = rx.recv() => {
                        let event = match frame {
                            Some(f) if f.kind == Kind::Stdout => ExecEvent::Stdout(f.payload),
                            Some(f) if f.kind == Kind::Stderr => ExecEvent::Stderr(f.payload),
                            Some(f) if f.kind == Kind::Exit => {
                                guard.kill = false;
                                let code = f.parse::<ExitInfo>().map(|i| i.code).unwrap_or(-1);
                                let _ = ev_tx.send(ExecEvent::Exit(code)).await;
                                return;
                            }
                            Some(f) if f.kind == Kind::Error => {
                                guard.kill = false;
                                let message = format!("corral: {}\n", agent_error(&f));
                                let _ = ev_tx.send(ExecEvent::Stderr(message.into_bytes())).await;
                                let _ = ev_tx.send(ExecEvent::Exit(-1)).await;
                                return;
                            }
                            Some(_) => continue,
                            None => {
                                let message = format!("corral: {}\n", client.inner.ended());
                                let _ = ev_tx.send(ExecEvent::Stderr(message.into_bytes())).await;
                                let _ = ev_tx.send(ExecEvent::Exit(-1)).await;
                                return;
                            }
                        };
                        // The guard kills the command when this task ends early.
                        if ev_tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    _ = ev_tx.closed() => return,
                }
            }
        });
        Ok(ExecStream {
            stdin: stdin_tx,
            events: ev_rx,
            control: control_tx,
        })
    }

    /// Reads a whole file, refusing one larger than `max_bytes`.
    pub async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let (guard, mut rx) = self.open(Role::Read)?;
        let spec = ReadSpec {
            path: path.into(),
            max_bytes,
        };
        self.send(&[Frame::json(Kind::ReadFile, guard.chan, &spec)])
            .await?;
        let mut data = Vec::new();
        while let Some(frame) = rx.recv().await {
            match frame.kind {
                Kind::FileData => {
                    // The agent is not trusted to honour the limit it was given.
                    if (data.len() + frame.payload.len()) as u64 > max_bytes {
                        return Err(DriverError::Invalid(format!(
                            "{path}: larger than {max_bytes} bytes"
                        )));
                    }
                    data.extend_from_slice(&frame.payload);
                }
                Kind::FileEnd => return Ok(data),
                Kind::Error => return Err(agent_error(&frame)),
                _ => {}
            }
        }
        Err(self.inner.ended())
    }

    /// Writes a whole file, creating parent directories.
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        let (guard, mut rx) = self.open(Role::Write)?;
        let spec = WriteSpec { path: path.into() };
        let mut frames = vec![Frame::json(Kind::WriteFile, guard.chan, &spec)];
        for chunk in data.chunks(CHUNK) {
            frames.push(Frame::new(Kind::FileData, guard.chan, chunk.to_vec()));
            if frames.len() >= 16 {
                self.send(&frames).await?;
                frames.clear();
            }
        }
        frames.push(Frame::new(Kind::FileEnd, guard.chan, Vec::new()));
        self.send(&frames).await?;
        while let Some(frame) = rx.recv().await {
            match frame.kind {
                Kind::Done => return Ok(()),
                Kind::Error => return Err(agent_error(&frame)),
                _ => {}
            }
        }
        Err(self.inner.ended())
    }
}
