//! The operator's images: Debian bookworm made by `debootstrap` (`minimal`), optionally
//! with more packages installed by apt inside it (`default`, or any name), built into
//! the image directory and replaced atomically when rebuilt.
//!
//! Layout: `<image_dir>/<name>` is a symlink to `<name>-<unix time>/` (the root
//! filesystem) and `<name>-<unix time>.json` beside it records what it holds. A build
//! works in a hidden temporary directory and only renames it into place when it
//! succeeded, so a crash never leaves half an image behind. Machines record the resolved
//! directory they were made over, so a rebuild never changes the lower layer under a
//! running one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::{DriverError, ImageInfo, Result};

/// The Debian release images are made of (the host's, so the agent binary runs inside).
pub const SUITE: &str = "bookworm";
/// Where packages come from.
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// The command an operator runs to build an image.
pub const BUILD_HINT: &str = "corral image build";

/// The bare image: debootstrap's minimal Debian.
pub const MINIMAL: &str = "minimal";
/// The operator's practical developer image, what sprites get unless they ask.
pub const DEFAULT: &str = "default";
/// What `default` holds over `minimal` (the README says why each is there).
pub const DEFAULT_PACKAGES: &[&str] = &[
    // Shell, processes and the basics every script assumes.
    "bash-completion",
    "procps",
    "psmisc",
    "less",
    "file",
    "tree",
    "vim-tiny",
    "nano",
    // Fetching and talking to the world.
    "ca-certificates",
    "curl",
    "wget",
    "openssh-client",
    "git",
    // Languages coding agents reach for first.
    "python3",
    "python3-pip",
    "python3-venv",
    "nodejs",
    "npm",
    // Building and unpacking what they fetch.
    "make",
    "patch",
    "unzip",
    "zip",
    "xz-utils",
    "bzip2",
    // Searching and data.
    "ripgrep",
    "jq",
    "sqlite3",
];

/// What an image was built from, kept beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The image's name.
    pub name: String,
    /// The image it was made from (`None`: debootstrap).
    pub from: Option<String>,
    /// Packages installed over debootstrap's minimal base (all of them, `from`'s too).
    pub packages: Vec<String>,
    /// Bytes it occupies.
    pub size_bytes: u64,
    /// Unix seconds when the build finished.
    pub built_at: i64,
    /// How long the build took, in seconds.
    pub build_secs: u64,
}

/// Whether `name` can name an image: 1–40 of `a-z 0-9 - _ .`, starting with a letter or
/// digit.
pub fn valid_name(name: &str) -> bool {
    well_formed(name, 40, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)
    })
}

/// 1 to `max` bytes, the first a letter or digit, every one allowed by `ok`.
fn well_formed(name: &str, max: usize, ok: impl Fn(u8) -> bool) -> bool {
    (1..=max).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(ok)
}

/// The path machines use as the image's lower layer (a symlink to the current build).
pub fn link_path(image_dir: &Path, name: &str) -> PathBuf {
    image_dir.join(name)
}

/// The image's current build, resolved; an error names the command that builds it.
pub fn current(image_dir: &Path, name: &str) -> Result<PathBuf> {
    let link = link_path(image_dir, name);
    match link.canonicalize() {
        Ok(dir) if valid_name(name) && dir.join("bin/sh").exists() => Ok(dir),
        _ => Err(DriverError::NotFound(format!(
            "image {name:?} (an operator builds it with `{BUILD_HINT} {name}`)"
        ))),
    }
}

fn record_path(build: &Path) -> PathBuf {
    build.with_extension("json")
}

/// Every image built here, by name.
pub fn list(image_dir: &Path) -> Vec<ImageInfo> {
    let Ok(entries) = std::fs::read_dir(image_dir) else {
        return Vec::new();
    };
    let mut images: Vec<ImageInfo> = entries
        .flatten()
        .filter(|e| e.path().is_symlink())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let dir = current(image_dir, &name).ok()?;
            let text = std::fs::read(record_path(&dir)).ok()?;
            let record: Record = serde_json::from_slice(&text).ok()?;
            Some(ImageInfo {
                name,
                size_bytes: record.size_bytes,
                packages: record.packages,
                built_at: record.built_at,
                build_secs: record.build_secs,
            })
        })
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    images
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs a command, passing each line it prints to `progress`.
async fn run_showing(cmd: &mut Command, what: &str, progress: &mut impl FnMut(&str)) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DriverError::Unavailable(format!("{what} cannot run: {e}")))?;
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
    let status = child
        .wait()
        .await
        .map_err(|e| DriverError::backend(format!("waiting for {what}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(DriverError::backend(
            format!("building the image: {what}"),
            format!("{status}: {last}"),
        ))
    }
}

/// What an image build asks for.
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// The image's name.
    pub name: String,
    /// Debian packages to install (by apt, inside the image).
    pub packages: Vec<String>,
    /// An image to start from instead of a fresh debootstrap.
    pub from: Option<String>,
}

impl BuildRequest {
    /// `minimal`: debootstrap alone.
    pub fn minimal() -> Self {
        Self {
            name: MINIMAL.into(),
            ..Self::default()
        }
    }

    /// `default`: the developer packages over `minimal`.
    pub fn default_image() -> Self {
        Self {
            name: DEFAULT.into(),
            packages: DEFAULT_PACKAGES.iter().map(|p| p.to_string()).collect(),
            from: Some(MINIMAL.into()),
        }
    }
}

/// Builds (or rebuilds) an image, reporting progress lines, and returns the new image
/// directory. A fresh debootstrap takes about half a minute and ~210 MB.
pub async fn build(
    image_dir: &Path,
    request: &BuildRequest,
    mut progress: impl FnMut(&str),
) -> Result<PathBuf> {
    let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
    if !valid_name(&request.name) {
        return Err(DriverError::Invalid(format!(
            "image name {:?}: use 1 to 40 of a-z, 0-9, '-', '_', '.'",
            request.name
        )));
    }
    if let Some(bad) = request.packages.iter().find(|p| !valid_package(p)) {
        return Err(DriverError::Invalid(format!(
            "{bad:?} is not a package name"
        )));
    }
    let started = Instant::now();
    std::fs::create_dir_all(image_dir).map_err(io("making the image directory"))?;
    sweep_half_built(image_dir);
    let stamp = now();
    let tmp = image_dir.join(format!(".build-{}-{stamp}", request.name));
    let mut packages = Vec::new();
    let made = async {
        match &request.from {
            Some(from) => {
                let source = current(image_dir, from)?;
                let text = std::fs::read(record_path(&source)).unwrap_or_default();
                if let Ok(record) = serde_json::from_slice::<Record>(&text) {
                    packages = record.packages;
                }
                progress(&format!("copying image {from:?}"));
                run_showing(
                    Command::new("cp").arg("-a").arg(&source).arg(&tmp),
                    "cp",
                    &mut progress,
                )
                .await?;
            }
            None => {
                progress(&format!("debootstrap --variant=minbase {SUITE}"));
                run_showing(
                    Command::new("debootstrap")
                        .args(["--variant=minbase", SUITE])
                        .arg(&tmp)
                        .arg(MIRROR),
                    "debootstrap (apt-get install debootstrap)",
                    &mut progress,
                )
                .await?;
            }
        }
        if !request.packages.is_empty() {
            apt_install(&tmp, &request.packages, &mut progress).await?;
            packages.extend(request.packages.iter().cloned());
        }
        // The agent's mount point, so it need not be created in every machine's disk.
        std::fs::create_dir_all(tmp.join(".corral")).map_err(io("making the agent mount point"))
    }
    .await;
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    packages.sort();
    packages.dedup();
    let dir = image_dir.join(format!("{}-{stamp}", request.name));
    let record = Record {
        name: request.name.clone(),
        from: request.from.clone(),
        packages,
        size_bytes: super::disk::allocated_tree(&tmp),
        built_at: now(),
        build_secs: started.elapsed().as_secs(),
    };
    let text =
        serde_json::to_vec_pretty(&record).map_err(|e| DriverError::backend("encoding", e))?;
    std::fs::write(record_path(&dir), text).map_err(io("writing the image record"))?;
    std::fs::rename(&tmp, &dir).map_err(io("moving the image into place"))?;
    // Swap the link atomically: a new link renamed over the old one.
    let link = link_path(image_dir, &request.name);
    let tmp_link = image_dir.join(format!(".link-{}-{stamp}", request.name));
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(dir.file_name().unwrap_or_default(), &tmp_link)
        .map_err(io("linking the image"))?;
    std::fs::rename(&tmp_link, &link).map_err(io("linking the image"))?;
    progress(&format!(
        "image {:?} ready at {} ({} MB)",
        request.name,
        dir.display(),
        record.size_bytes >> 20
    ));
    Ok(dir)
}

/// Debian package names (with an optional `=version` or `/release`).
fn valid_package(name: &str) -> bool {
    well_formed(name, 100, |b| {
        b.is_ascii_alphanumeric() || b"+-.:=~/".contains(&b)
    })
}

/// Leftovers of builds that crashed.
fn sweep_half_built(image_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(image_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(".build-") {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if name.starts_with(".link-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Installs packages with apt inside the image being built: `/proc` mounted for the
/// packages' scripts, the host's resolver for the downloads, no services started, and
/// the package lists and caches removed afterwards (they would only grow every sprite).
async fn apt_install(
    root: &Path,
    packages: &[String],
    progress: &mut impl FnMut(&str),
) -> Result<()> {
    let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
    let policy = root.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n").map_err(io("writing policy-rc.d"))?;
    std::fs::set_permissions(&policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io("making policy-rc.d executable"))?;
    let resolv = root.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    let _ = std::fs::copy("/etc/resolv.conf", &resolv);
    let proc_dir = root.join("proc");
    run_showing(
        Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&proc_dir),
        "mount /proc",
        progress,
    )
    .await?;
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg(root)
            .arg("apt-get")
            .args(["-q", "-y", "-o", "Dpkg::Use-Pty=0"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C.UTF-8")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        cmd
    };
    progress(&format!("apt-get install {}", packages.join(" ")));
    let mut install = apt(&["install", "--no-install-recommends"]);
    install.args(packages);
    let result = async {
        run_showing(&mut apt(&["update"]), "apt-get update", progress).await?;
        run_showing(&mut install, "apt-get install", progress).await?;
        run_showing(&mut apt(&["clean"]), "apt-get clean", progress).await
    }
    .await;
    let _ = Command::new("umount").arg(&proc_dir).status().await;
    let _ = std::fs::remove_file(&policy);
    let _ = std::fs::remove_file(&resolv);
    if let Ok(lists) = std::fs::read_dir(root.join("var/lib/apt/lists")) {
        for entry in lists.flatten().filter(|e| e.path().is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["default", "minimal", "py-3.11", "a", "node_20"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Default", "-x", "a/b", "..", &"x".repeat(41)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(
            valid_package("python3-venv") && valid_package("g++") && valid_package("libc6=2.36-9")
        );
        assert!(!valid_package("-o") && !valid_package("a b") && !valid_package("$(x)"));
    }
}
