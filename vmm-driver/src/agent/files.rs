//! Files inside the sprite: whole-file reads and writes in chunks, binary-safe, with a
//! size limit on reads.

use std::io::{Read, Write};

use tokio::sync::mpsc;

use super::exec::Out;
use super::proto::{ErrorInfo, ErrorKind, Frame, Kind, ReadSpec, WriteSpec, CHUNK};

async fn error(out: &Out, chan: u32, info: ErrorInfo) {
    let _ = out
        .send(Frame::json(Kind::Error, chan, &info).encode())
        .await;
}

/// Opens without blocking: a FIFO (or a device) would otherwise hold the open until a
/// peer appears, and the host's call with it (issue 9, item 11). Only regular files are
/// read or written, which `O_NONBLOCK` does not change.
fn open_nonblocking(
    path: &str,
    options: &mut std::fs::OpenOptions,
) -> Result<std::fs::File, ErrorInfo> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = options
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => ErrorInfo {
                kind: ErrorKind::Invalid,
                message: format!("{path}: not a regular file"),
            },
            _ => ErrorInfo::from_io(path, &e),
        })?;
    let meta = file.metadata().map_err(|e| ErrorInfo::from_io(path, &e))?;
    if !meta.is_file() {
        return Err(ErrorInfo {
            kind: ErrorKind::Invalid,
            message: format!("{path}: not a regular file"),
        });
    }
    Ok(file)
}

fn check_path(path: &str) -> Result<(), ErrorInfo> {
    if path.starts_with('/') && !path.contains('\0') {
        Ok(())
    } else {
        Err(ErrorInfo {
            kind: ErrorKind::Invalid,
            message: format!("path must be absolute: {path:?}"),
        })
    }
}

fn read_whole(spec: &ReadSpec) -> Result<Vec<u8>, ErrorInfo> {
    check_path(&spec.path)?;
    let file = open_nonblocking(&spec.path, std::fs::OpenOptions::new().read(true))?;
    let meta = file
        .metadata()
        .map_err(|e| ErrorInfo::from_io(&spec.path, &e))?;
    let too_large = || ErrorInfo {
        kind: ErrorKind::TooLarge,
        message: format!("{}: larger than {} bytes", spec.path, spec.max_bytes),
    };
    if meta.len() > spec.max_bytes {
        return Err(too_large());
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the limit, so a file that grew since the stat is still refused.
    file.take(spec.max_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| ErrorInfo::from_io(&spec.path, &e))?;
    if data.len() as u64 > spec.max_bytes {
        return Err(too_large());
    }
    Ok(data)
}

/// Sends a file's contents as `FileData` chunks and a `FileEnd`.
pub async fn read(chan: u32, spec: ReadSpec, out: Out) {
    let res = tokio::task::spawn_blocking(move || read_whole(&spec)).await;
    match res {
        Ok(Ok(data)) => {
            for chunk in data.chunks(CHUNK) {
                let frame = Frame::new(Kind::FileData, chan, chunk.to_vec());
                if out.send(frame.encode()).await.is_err() {
                    return;
                }
            }
            let _ = out
                .send(Frame::new(Kind::FileEnd, chan, Vec::new()).encode())
                .await;
        }
        Ok(Err(info)) => error(&out, chan, info).await,
        Err(e) => {
            error(
                &out,
                chan,
                ErrorInfo {
                    kind: ErrorKind::Io,
                    message: e.to_string(),
                },
            )
            .await
        }
    }
}

fn open_for_write(path: &str) -> Result<std::fs::File, ErrorInfo> {
    check_path(path)?;
    if let Some(parent) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(parent).map_err(|e| ErrorInfo::from_io(path, &e))?;
    }
    let file = open_nonblocking(path, std::fs::OpenOptions::new().write(true).create(true))?;
    // Truncated only once known to be a regular file.
    file.set_len(0).map_err(|e| ErrorInfo::from_io(path, &e))?;
    Ok(file)
}

/// Writes `FileData` chunks from `ctl` until `FileEnd`, then answers `Done`.
pub async fn write(chan: u32, spec: WriteSpec, mut ctl: mpsc::UnboundedReceiver<Frame>, out: Out) {
    let path = spec.path.clone();
    let file = match tokio::task::spawn_blocking(move || open_for_write(&spec.path)).await {
        Ok(Ok(file)) => file,
        Ok(Err(info)) => return error(&out, chan, info).await,
        Err(e) => {
            let info = ErrorInfo {
                kind: ErrorKind::Io,
                message: e.to_string(),
            };
            return error(&out, chan, info).await;
        }
    };
    let mut file = Some(file);
    while let Some(frame) = ctl.recv().await {
        match frame.kind {
            Kind::FileData => {
                let Some(mut f) = file.take() else { return };
                let p = path.clone();
                let res = tokio::task::spawn_blocking(move || {
                    f.write_all(&frame.payload)
                        .map(|()| f)
                        .map_err(|e| ErrorInfo::from_io(&p, &e))
                })
                .await;
                match res {
                    Ok(Ok(f)) => file = Some(f),
                    Ok(Err(info)) => return error(&out, chan, info).await,
                    Err(e) => {
                        let info = ErrorInfo {
                            kind: ErrorKind::Io,
                            message: e.to_string(),
                        };
                        return error(&out, chan, info).await;
                    }
                }
            }
            Kind::FileEnd => {
                drop(file);
                let _ = out
                    .send(Frame::new(Kind::Done, chan, Vec::new()).encode())
                    .await;
                return;
            }
            _ => {}
        }
    }
}
