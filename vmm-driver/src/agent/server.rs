//! The agent's side of the stream: reads frames, starts commands and file transfers, and
//! writes their frames back.
//!
//! The stream is read and written by two plain threads with blocking calls, not through
//! epoll: after `runsc restore` hands the sandbox a new host socket, a blocked read or
//! write carries on against it, while an epoll registration made before the checkpoint
//! never fires again.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use tokio::sync::mpsc;

use super::proto::{read_frame_sync, Frame, Kind, AGENT_CHAN, DIAL_CHAN};
use super::{dial, exec, files, net};

/// A blocking view of the stream that also copes with `EAGAIN` (gVisor may hand the
/// socket in non-blocking): it then polls, with a timeout so that a lost wake-up (around
/// a restore) costs at most that long.
struct Stream(std::fs::File);

impl Stream {
    fn wait(&self, events: libc::c_short) {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd we own.
        unsafe { libc::poll(&mut pfd, 1, 100) };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.wait(libc::POLLIN),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.wait(libc::POLLOUT),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves requests from `input` until the driver closes it, replying on `output`.
pub async fn serve(input: std::fs::File, output: std::fs::File) -> std::io::Result<()> {
    let (input, mut output) = (Stream(input), Stream(output));
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(exec::OUT_QUEUE);
    let writer = std::thread::spawn(move || {
        while let Some(mut buf) = out_rx.blocking_recv() {
            // Coalesce whatever else is queued into one write.
            while buf.len() < (1 << 20) {
                match out_rx.try_recv() {
                    Ok(more) => buf.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Err(e) = output.write_all(&buf) {
                eprintln!("corral agent: writing to the driver: {e}");
                return;
            }
        }
    });
    let (in_tx, mut frames) = mpsc::unbounded_channel::<std::io::Result<Frame>>();
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            match read_frame_sync(&mut input) {
                Ok(Some(frame)) => {
                    if in_tx.send(Ok(frame)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = in_tx.send(Err(e));
                    return;
                }
            }
        }
    });

    // The proxies live as long as this agent serves the host: their connections travel
    // over this stream.
    let proxies = net::listen(out.clone());
    let mut chans: HashMap<u32, mpsc::UnboundedSender<Frame>> = HashMap::new();
    let mut seen = 0u32;
    let result = loop {
        let frame = match frames.recv().await {
            Some(Ok(frame)) => frame,
            None => break Ok(()),
            Some(Err(e)) => break Err(e),
        };
        let chan = frame.chan;
        match frame.kind {
            Kind::Exec => {
                let spec = match frame.parse() {
                    Ok(spec) => spec,
                    Err(e) => break Err(e),
                };
                let (tx, rx) = mpsc::unbounded_channel();
                chans.insert(chan, tx);
                tokio::spawn(exec::run(chan, spec, rx, out.clone()));
            }
            Kind::WriteFile => {
                let spec = match frame.parse() {
                    Ok(spec) => spec,
                    Err(e) => break Err(e),
                };
                let (tx, rx) = mpsc::unbounded_channel();
                chans.insert(chan, tx);
                tokio::spawn(files::write(chan, spec, rx, out.clone()));
            }
            Kind::Dial if chan & DIAL_CHAN != 0 => match frame.parse() {
                Ok(request) => dial::dial(chan, request, &out),
                Err(e) => break Err(e),
            },
            _ if chan & (AGENT_CHAN | DIAL_CHAN) != 0 => net::deliver(frame),
            Kind::ReadFile => match frame.parse() {
                Ok(spec) => {
                    tokio::spawn(files::read(chan, spec, out.clone()));
                }
                Err(e) => break Err(e),
            },
            _ => {
                if let Some(tx) = chans.get(&chan) {
                    if tx.send(frame).is_err() {
                        chans.remove(&chan);
                    }
                }
            }
        }
        seen = seen.wrapping_add(1);
        if seen.is_multiple_of(256) {
            chans.retain(|_, tx| !tx.is_closed());
        }
    };
    // Dropping the control channels kills the commands still running; the proxies and
    // their connections end with the stream.
    drop(proxies);
    net::reset_all();
    drop(chans);
    drop(out);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    result
}
