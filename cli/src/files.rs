//! `cp`: one file to or from a sprite (`PUT`/`GET /v1/sprites/{name}/files?path=`),
//! streamed both ways with a progress line; `-` is stdin or stdout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::client::Client;
use super::output;
use super::progress::Spinner;

#[derive(Args)]
pub struct CpArgs {
    /// Where from: a local path, `-` for stdin, or NAME:/abs/path in a sprite.
    src: String,
    /// Where to: a local path (or directory), `-` for stdout, or NAME:/abs/path
    /// (a path ending in `/` keeps the local file's name).
    dst: String,
}

#[derive(Debug, PartialEq)]
enum Place {
    Local(PathBuf),
    Stdio,
    Remote { name: String, path: String },
}

fn place(spec: &str) -> anyhow::Result<Place> {
    if spec == "-" {
        return Ok(Place::Stdio);
    }
    match spec.split_once(':') {
        // A `/` before the colon makes it a local path (`./a:b`).
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            anyhow::ensure!(
                path.starts_with('/'),
                "{spec:?}: the path in the sprite must be absolute, like {name}:/root/file"
            );
            Ok(Place::Remote {
                name: name.to_string(),
                path: path.to_string(),
            })
        }
        _ => Ok(Place::Local(PathBuf::from(spec))),
    }
}

pub async fn copy(client: &Client, args: CpArgs) -> anyhow::Result<i32> {
    match (place(&args.src)?, place(&args.dst)?) {
        (Place::Remote { .. }, Place::Remote { .. }) => {
            anyhow::bail!(
                "cannot copy from sprite to sprite directly: copy down to a local file, then up"
            )
        }
        (Place::Remote { name, path }, local) => download(client, &name, &path, local).await,
        (local, Place::Remote { name, path }) => upload(client, local, &name, path).await,
        _ => anyhow::bail!("one side must be in a sprite: NAME:/abs/path"),
    }
}

async fn upload(client: &Client, from: Place, name: &str, mut path: String) -> anyhow::Result<i32> {
    let (reader, total, label): (Box<dyn AsyncRead + Send + Unpin>, Option<u64>, String) =
        match &from {
            Place::Local(local) => {
                let file = tokio::fs::File::open(local)
                    .await
                    .with_context(|| format!("cannot open {}", local.display()))?;
                let meta = file.metadata().await?;
                anyhow::ensure!(meta.is_file(), "{} is not a file", local.display());
                if path.ends_with('/') {
                    let base = local
                        .file_name()
                        .context("the local path has no file name")?;
                    path.push_str(&base.to_string_lossy());
                }
                (
                    Box::new(file),
                    Some(meta.len()),
                    local.display().to_string(),
                )
            }
            _ => (Box::new(tokio::io::stdin()), None, "stdin".into()),
        };
    anyhow::ensure!(!path.ends_with('/'), "name the file: {name}:{path}<file>");
    let spinner = Spinner::start(format!("uploading {label}"), total);
    let mut url = client.endpoint(&["v1", "sprites", name, "files"]);
    url.query_pairs_mut().append_pair("path", &path);
    let mut request = client
        .request(Method::PUT, url)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body_of(reader, spinner.counter()));
    if let Some(total) = total {
        request = request.header(CONTENT_LENGTH, total);
    }
    client.send(request).await?;
    let sent = spinner.counter().load(Ordering::Relaxed);
    spinner.finish();
    println!("copied {} to {name}:{path}", output::bytes(sent));
    Ok(0)
}

/// A request body that reads `reader` in chunks and counts what it sent.
fn body_of(reader: Box<dyn AsyncRead + Send + Unpin>, sent: Arc<AtomicU64>) -> reqwest::Body {
    let chunks = futures_util::stream::unfold(Some((reader, sent)), |state| async move {
        let (mut reader, sent) = state?;
        let mut buf = vec![0; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                sent.fetch_add(n as u64, Ordering::Relaxed);
                Some((Ok(buf), Some((reader, sent))))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    reqwest::Body::wrap_stream(chunks)
}

async fn download(client: &Client, name: &str, path: &str, to: Place) -> anyhow::Result<i32> {
    let mut url = client.endpoint(&["v1", "sprites", name, "files"]);
    url.query_pairs_mut().append_pair("path", path);
    // Started before the request: the server may take a while before the first byte.
    let spinner = Spinner::start(format!("downloading {name}:{path}"), None);
    let response = client.send(client.request(Method::GET, url)).await?;
    if let Some(total) = response.content_length() {
        spinner.set_total(total);
    }
    let counter = spinner.counter();
    let target = match to {
        Place::Local(local) => local_target(&local, path)?,
        _ => {
            let mut chunks = response.bytes_stream();
            let mut stdout = tokio::io::stdout();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| client.transport(e))?;
                stdout.write_all(&chunk).await?;
            }
            stdout.flush().await?;
            return Ok(0);
        }
    };
    let got = to_file(client, response, &target, &counter).await?;
    spinner.finish();
    println!("copied {} to {}", output::bytes(got), target.display());
    Ok(0)
}

/// Writes a download into a file beside `target`, renamed at the end: a broken transfer
/// never leaves a truncated file under the real name. Returns the bytes written.
pub async fn to_file(
    client: &Client,
    response: reqwest::Response,
    target: &Path,
    counter: &AtomicU64,
) -> anyhow::Result<u64> {
    let mut chunks = response.bytes_stream();
    let part = part_path(target);
    let written = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot write {}", part.display()))?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| client.transport(e))?;
            file.write_all(&chunk).await?;
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        file.sync_all().await?;
        tokio::fs::rename(&part, target).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e.context(format!("cannot write {}", target.display())));
    }
    Ok(counter.load(Ordering::Relaxed))
}

/// The local file to write: into a directory under the remote file's name.
fn local_target(local: &Path, remote: &str) -> anyhow::Result<PathBuf> {
    if local.is_dir() {
        let base = remote
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("download");
        return Ok(local.join(base));
    }
    Ok(local.to_path_buf())
}

fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.corral-part"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_told_apart() {
        assert_eq!(place("-").unwrap(), Place::Stdio);
        assert_eq!(
            place("box:/tmp/x").unwrap(),
            Place::Remote {
                name: "box".into(),
                path: "/tmp/x".into()
            }
        );
        assert_eq!(place("./a:b").unwrap(), Place::Local("./a:b".into()));
        assert_eq!(place("file.txt").unwrap(), Place::Local("file.txt".into()));
        assert!(place("box:tmp/x").is_err());
    }
}
