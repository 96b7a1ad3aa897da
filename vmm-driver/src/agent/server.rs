//! The agent's side of the stream: reads frames, starts commands and file transfers, and
//! writes their frames back through one writer task.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::proto::{read_frame, Frame, Kind};
use super::{exec, files};

/// Serves requests until the driver closes the stream.
pub async fn serve<R, W>(mut r: R, mut w: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(mut buf) = out_rx.recv().await {
            // Coalesce whatever else is queued into one write.
            while buf.len() < (1 << 20) {
                match out_rx.try_recv() {
                    Ok(more) => buf.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if w.write_all(&buf).await.is_err() {
                return;
            }
        }
    });

    let mut chans: HashMap<u32, mpsc::UnboundedSender<Frame>> = HashMap::new();
    let mut seen = 0u32;
    let result = loop {
        let frame = match read_frame(&mut r).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
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
        if seen % 256 == 0 {
            chans.retain(|_, tx| !tx.is_closed());
        }
    };
    // Dropping the control channels kills the commands still running.
    drop(chans);
    drop(out);
    let _ = writer.await;
    result
}
