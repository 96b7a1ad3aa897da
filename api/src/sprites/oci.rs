//! A sprite's filesystem as an OCI image archive: an image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) in one tar, the layer being the driver's tar of the
//! sprite's files. Written as a stream: the layer is read from its file in chunks, so
//! memory stays bounded however large the sprite is.

use std::io::SeekFrom;

use futures_util::Stream;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How much of the layer is read at a time.
const CHUNK: usize = 256 * 1024;

/// A tar header for a regular file (`dir == false`) or a directory, ustar format.
fn header(name: &str, size: u64, dir: bool, mtime: i64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, text: &str| {
        let bytes = text.as_bytes();
        h[at..at + bytes.len().min(len)].copy_from_slice(&bytes[..bytes.len().min(len)]);
    };
    put(&mut h, 0, 100, name);
    put(&mut h, 100, 8, if dir { "0000755" } else { "0000644" });
    put(&mut h, 108, 8, "0000000");
    put(&mut h, 116, 8, "0000000");
    put(&mut h, 124, 12, &format!("{size:011o}"));
    put(&mut h, 136, 12, &format!("{:011o}", mtime.max(0)));
    h[148..156].copy_from_slice(b"        ");
    h[156] = if dir { b'5' } else { b'0' };
    put(&mut h, 257, 6, "ustar");
    put(&mut h, 263, 2, "00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, 8, &format!("{sum:06o}\0 "));
    h
}

/// Zeros that pad `size` bytes to the tar's 512-byte blocks.
fn padding(size: u64) -> Vec<u8> {
    vec![0; ((512 - size % 512) % 512) as usize]
}

/// A small file entry: header, body, padding.
fn small_file(name: &str, body: &[u8], mtime: i64) -> Vec<u8> {
    let mut out = header(name, body.len() as u64, false, mtime).to_vec();
    out.extend_from_slice(body);
    out.extend(padding(body.len() as u64));
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What the image says about itself: the environment sprites run with, a working
/// directory and a default command.
pub struct ImageConfig {
    /// The sprite's name (the image's title).
    pub title: String,
    /// Unix seconds of the export.
    pub created: i64,
}

/// The layer's digest and size, read once through.
pub async fn digest_of(layer: &mut tokio::fs::File) -> std::io::Result<(String, u64)> {
    layer.seek(SeekFrom::Start(0)).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = layer.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The archive as a stream of chunks: the layout's small files first, then the layer.
pub async fn archive(
    mut layer: tokio::fs::File,
    image: ImageConfig,
) -> std::io::Result<(u64, impl Stream<Item = std::io::Result<Vec<u8>>>)> {
    let (layer_digest, layer_size) = digest_of(&mut layer).await?;
    layer.seek(SeekFrom::Start(0)).await?;
    let created = crate::domain::rfc3339(image.created);
    let config = serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "LANG=C.UTF-8",
                "TERM=xterm-256color",
            ],
            "WorkingDir": "/root",
            "Cmd": ["/bin/bash"],
            "Labels": {"org.opencontainers.image.title": image.title},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": created, "created_by": "corral export"}],
    }))
    .map_err(std::io::Error::other)?;
    let config_digest = sha256_hex(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_size,
        }],
        "annotations": {"org.opencontainers.image.title": image.title},
    }))
    .map_err(std::io::Error::other)?;
    let manifest_digest = sha256_hex(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    }))
    .map_err(std::io::Error::other)?;
    let t = image.created;
    let mut head = Vec::new();
    head.extend(small_file(
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        t,
    ));
    head.extend(small_file("index.json", &index, t));
    head.extend(header("blobs/", 0, true, t));
    head.extend(header("blobs/sha256/", 0, true, t));
    head.extend(small_file(
        &format!("blobs/sha256/{config_digest}"),
        &config,
        t,
    ));
    head.extend(small_file(
        &format!("blobs/sha256/{manifest_digest}"),
        &manifest,
        t,
    ));
    head.extend(header(
        &format!("blobs/sha256/{layer_digest}"),
        layer_size,
        false,
        t,
    ));
    // The layer's padding and the two zero blocks that end a tar.
    let mut tail = padding(layer_size);
    tail.extend([0u8; 1024]);
    let total = head.len() as u64 + layer_size + tail.len() as u64;
    enum Part {
        Head,
        Layer,
        Done,
    }
    let state = (Part::Head, head, layer, tail, layer_size);
    let stream =
        futures_util::stream::unfold(state, |(part, head, mut layer, tail, left)| async move {
            match part {
                Part::Head => Some((Ok(head), (Part::Layer, Vec::new(), layer, tail, left))),
                Part::Layer if left == 0 => {
                    Some((Ok(tail), (Part::Done, Vec::new(), layer, Vec::new(), 0)))
                }
                Part::Layer => {
                    let mut buf = vec![0u8; CHUNK.min(left as usize)];
                    match layer.read(&mut buf).await {
                        Ok(0) => Some((
                            Err(std::io::Error::other("the layer ended early")),
                            (Part::Done, Vec::new(), layer, Vec::new(), 0),
                        )),
                        Ok(n) => {
                            buf.truncate(n);
                            let left = left - n as u64;
                            Some((Ok(buf), (Part::Layer, Vec::new(), layer, tail, left)))
                        }
                        Err(e) => Some((Err(e), (Part::Done, Vec::new(), layer, Vec::new(), 0))),
                    }
                }
                Part::Done => None,
            }
        });
    Ok((total, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_a_valid_checksum() {
        let h = header("index.json", 123, false, 1_700_000_000);
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        let mut blank = h;
        blank[148..156].copy_from_slice(b"        ");
        let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(&h[124..135], b"00000000173");
        assert_eq!(padding(512).len(), 0);
        assert_eq!(padding(513).len(), 511);
    }
}
