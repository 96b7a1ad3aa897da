//! A machine's disk: a sparse ext4 image of `disk_mb` (the hard quota), loop-mounted,
//! holding the overlay's upper and work dirs over the machine's image.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::process::Command;

use crate::{DriverError, Result};

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

async fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| DriverError::backend(format!("{what}: spawning"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(DriverError::backend(
            what.to_string(),
            format!("{}: {msg}", out.status),
        ))
    }
}

/// Makes a sparse ext4 image of `mb` MiB. Lazy inode-table and journal init keep it
/// sparse (only a few hundred KiB are allocated), which keeps disk copies cheap.
pub async fn create_image(img: &Path, mb: u64) -> Result<()> {
    let file = File::create(img).map_err(|e| DriverError::backend("creating the disk image", e))?;
    file.set_len(mb << 20)
        .map_err(|e| DriverError::backend("sizing the disk image", e))?;
    drop(file);
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E"])
            .arg("lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0")
            .arg(img),
        "formatting the disk image",
    )
    .await
}

/// Whether `path` is the root of a mount (its device differs from its parent's).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(Ok(parent))) = (path.metadata(), path.parent().map(|p| p.metadata())) else {
        return false;
    };
    me.dev() != parent.dev()
}

/// Loop-mounts the image at `dir` unless it is mounted already.
pub async fn mount_image(img: &Path, dir: &Path) -> Result<()> {
    if is_mountpoint(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| DriverError::backend("making the disk mount point", e))?;
    run(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,noinit_itable,nodiscard"])
            .arg(img)
            .arg(dir),
        "mounting the disk",
    )
    .await
}

/// Mounts the overlay root at `target` unless it is mounted already.
/// `lowers` are the read-only layers, top first.
pub fn mount_overlay(
    lowers: &[std::path::PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    if is_mountpoint(target) {
        return Ok(());
    }
    let wrap = |e: io::Error| DriverError::backend("mounting the root overlay", e);
    for d in [upper, work, target] {
        std::fs::create_dir_all(d).map_err(wrap)?;
    }
    let lower: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    let (src, tgt, fs, data) = (
        CString::new("overlay").map_err(|e| wrap(io::Error::other(e)))?,
        cstr(target).map_err(wrap)?,
        CString::new("overlay").map_err(|e| wrap(io::Error::other(e)))?,
        CString::new(opts).map_err(|e| wrap(io::Error::other(e)))?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(wrap(io::Error::last_os_error()));
    }
    Ok(())
}

/// Unmounts `path` if it is mounted (lazily when busy, so teardown never hangs).
pub fn unmount(path: &Path) -> Result<()> {
    if !is_mountpoint(path) {
        return Ok(());
    }
    let c = cstr(path).map_err(|e| DriverError::backend("unmounting", e))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // A lazy unmount leaves the old filesystem alive behind the new one: a restore
    // from a checkpoint then faults inside the sandbox. Callers close their own files
    // on the disk first, so this is someone else's.
    let error = io::Error::last_os_error();
    tracing::warn!(path = %path.display(), %error, holders = ?holders(path), "disk busy; unmounting lazily");
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(DriverError::backend(
        format!("unmounting {}", path.display()),
        io::Error::last_os_error(),
    ))
}

/// Processes with a file, working directory or root under `path` (what keeps it busy),
/// as `pid:comm`.
fn holders(path: &Path) -> Vec<String> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let under = |link: &Path| std::fs::read_link(link).is_ok_and(|target| target.starts_with(path));
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let dir = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let fds = std::fs::read_dir(dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten();
        let busy = under(&dir.join("cwd"))
            || under(&dir.join("root"))
            || fds.into_iter().any(|fd| under(&fd.path()));
        if busy {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            found.push(format!(
                "{}:{}",
                entry.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    found
}

/// Flushes the filesystem holding `dir` to its image, so a copy of the image file is a
/// consistent snapshot (no writer is running when this is called).
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| DriverError::backend("opening the disk to sync", e))?;
    // SAFETY: syncfs on an fd we own.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(DriverError::backend(
            "syncing the disk",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Copies a sparse file, holes and all: only the data extents are copied (with
/// `copy_file_range`, in the kernel). Returns the bytes copied.
pub fn sparse_copy(src: &Path, dst: &Path) -> io::Result<u64> {
    let from = File::open(src)?;
    let to = File::create(dst)?;
    let len = from.metadata()?.len();
    to.set_len(len)?;
    let (fi, fo) = (from.as_raw_fd(), to.as_raw_fd());
    let mut copied = 0u64;
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on fds we own.
        let data = unsafe { libc::lseek(fi, pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole is left
            }
            return Err(e);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fi, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut off_in, mut off_out) = (data, data);
        while off_in < hole {
            // SAFETY: valid fds and pointers to offsets we own.
            let n = unsafe {
                libc::copy_file_range(
                    fi,
                    &mut off_in,
                    fo,
                    &mut off_out,
                    (hole - off_in) as usize,
                    0,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                break;
            }
            copied += n as u64;
        }
        pos = hole;
    }
    Ok(copied)
}

/// Bytes allocated to a file (its blocks, not its length).
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    path.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Bytes allocated under a directory (a checkpoint, an image): symlinks are not
/// followed and a file with several hard links counts once.
pub fn allocated_tree(path: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    tree_blocks(path, &mut seen)
}

fn tree_blocks(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = path.symlink_metadata() else {
        return 0;
    };
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    own + std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_blocks(&e.path(), seen)).sum())
        .unwrap_or(0)
}
