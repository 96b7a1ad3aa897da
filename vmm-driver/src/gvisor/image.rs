//! The shared base image: Debian bookworm (minbase) made by `debootstrap`, built once
//! into the image directory and replaced atomically when rebuilt.
//!
//! Layout: `<image_dir>/base` is a symlink to `base-<unix time>`. A build works in a
//! hidden temporary directory and only renames it into place when debootstrap succeeded,
//! so a crash never leaves half an image behind. Machines record the resolved directory
//! they were made over, so a rebuild never changes the lower layer under a running one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::{DriverError, Result};

/// The Debian release the image is made of (the host's, so the agent binary runs inside).
pub const SUITE: &str = "bookworm";
/// Where packages come from.
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// The command an operator runs to build the image.
pub const BUILD_HINT: &str = "corral image build";

/// The path machines use as their lower layer (a symlink to the current build).
pub fn base_path(image_dir: &Path) -> PathBuf {
    image_dir.join("base")
}

/// The current base image, resolved; an error names the command that builds it.
pub fn current(image_dir: &Path) -> Result<PathBuf> {
    let base = base_path(image_dir);
    match base.canonicalize() {
        Ok(dir) if dir.join("bin/sh").exists() => Ok(dir),
        _ => Err(DriverError::Unavailable(format!(
            "no base image at {} (build it with `{BUILD_HINT}`)",
            base.display()
        ))),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Builds (or rebuilds) the base image, reporting debootstrap's progress lines, and
/// returns the new image directory. Takes about half a minute and ~210 MB.
pub async fn build(image_dir: &Path, mut progress: impl FnMut(&str)) -> Result<PathBuf> {
    let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
    std::fs::create_dir_all(image_dir).map_err(io("making the image directory"))?;
    // Leftovers of a build that crashed.
    for entry in std::fs::read_dir(image_dir)
        .map_err(io("reading the image directory"))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(".build-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let stamp = now();
    let tmp = image_dir.join(format!(".build-{stamp}"));
    progress(&format!(
        "debootstrap --variant=minbase {SUITE} into {}",
        tmp.display()
    ));
    let mut child = Command::new("debootstrap")
        .args(["--variant=minbase", SUITE])
        .arg(&tmp)
        .arg(MIRROR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            DriverError::Unavailable(format!(
                "debootstrap cannot run ({e}); install it with `apt-get install debootstrap`"
            ))
        })?;
    let mut out = child.stdout.take().map(|s| BufReader::new(s).lines());
    let mut err = child.stderr.take().map(|s| BufReader::new(s).lines());
    let mut last = String::new();
    loop {
        let line = tokio::select! {
            l = async { out.as_mut().unwrap().next_line().await }, if out.is_some() => match l {
                Ok(Some(l)) => l,
                _ => { out = None; continue }
            },
            l = async { err.as_mut().unwrap().next_line().await }, if err.is_some() => match l {
                Ok(Some(l)) => l,
                _ => { err = None; continue }
            },
            else => break,
        };
        progress(&line);
        last = line;
    }
    let status = child.wait().await.map_err(io("waiting for debootstrap"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(DriverError::backend(
            "building the base image",
            format!("debootstrap {status}: {last}"),
        ));
    }
    // The agent's mount point, so it need not be created in every machine's disk.
    std::fs::create_dir_all(tmp.join(".corral")).map_err(io("making the agent mount point"))?;
    let dir = image_dir.join(format!("base-{stamp}"));
    std::fs::rename(&tmp, &dir).map_err(io("moving the image into place"))?;
    // Swap the `base` link atomically: a new link renamed over the old one.
    let link = base_path(image_dir);
    if link.is_dir() && !link.is_symlink() {
        std::fs::rename(&link, image_dir.join(format!("base-{stamp}-old")))
            .map_err(io("moving the old image aside"))?;
    }
    let tmp_link = image_dir.join(format!(".base-link-{stamp}"));
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(dir.file_name().unwrap_or_default(), &tmp_link)
        .map_err(io("linking the image"))?;
    std::fs::rename(&tmp_link, &link).map_err(io("linking the image"))?;
    progress(&format!("base image ready at {}", dir.display()));
    Ok(dir)
}
