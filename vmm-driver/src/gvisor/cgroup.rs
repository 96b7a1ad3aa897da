//! The machine's cgroup (`/corral/<id>` in every v1 hierarchy, made by runsc from
//! `linux.cgroupsPath`) and usage samples read from files held open.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{MachineId, UsageSample};

/// Where cgroup v1 hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The hierarchies the driver needs.
pub const CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

/// The parent cgroup of every machine.
pub fn parent() -> &'static str {
    "/corral"
}

/// The machine's cgroup path as given to runsc.
pub fn path(id: &MachineId) -> String {
    format!("{}/{id}", parent())
}

/// The machine's cgroup directory in one hierarchy.
pub fn dir(controller: &str, id: &MachineId) -> PathBuf {
    Path::new(CGROUP_ROOT)
        .join(controller)
        .join("corral")
        .join(id.as_str())
}

/// The controllers that are not mounted as cgroup v1 hierarchies.
pub fn missing() -> Vec<&'static str> {
    CONTROLLERS
        .into_iter()
        .filter(|c| !Path::new(CGROUP_ROOT).join(c).join("tasks").exists())
        .collect()
}

/// Files held open for sampling one machine. The disk entry is a directory on the
/// machine's own filesystem, for `fstatvfs`.
pub struct UsageFiles {
    cpu: Option<File>,
    memory: Option<File>,
    disk: Option<File>,
}

fn pread_u64(file: &File) -> Option<u64> {
    let mut buf = [0u8; 32];
    // SAFETY: pread into a stack buffer of the given length.
    let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return None;
    }
    std::str::from_utf8(&buf[..n as usize])
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bytes used on the filesystem holding `file`.
pub fn fs_used(file: &File) -> Option<u64> {
    // SAFETY: fstatvfs fills a zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_blocks - st.f_bfree) as u64 * st.f_frsize as u64)
}

impl UsageFiles {
    /// Opens what exists now: the disk always, the cgroup files while the sandbox runs.
    pub fn open(id: &MachineId, disk_dir: &Path, running: bool) -> Self {
        let open = |p: PathBuf| File::open(p).ok();
        Self {
            cpu: running
                .then(|| open(dir("cpuacct", id).join("cpuacct.usage")))
                .flatten(),
            memory: running
                .then(|| open(dir("memory", id).join("memory.usage_in_bytes")))
                .flatten(),
            disk: open(disk_dir.to_path_buf()),
        }
    }

    /// Nothing open: every reading is zero.
    pub fn closed() -> Self {
        Self {
            cpu: None,
            memory: None,
            disk: None,
        }
    }

    /// Reads the sample: three `pread`/`fstatvfs` calls, no process.
    pub fn sample(&self) -> UsageSample {
        UsageSample {
            cpu_ns: self.cpu.as_ref().and_then(pread_u64).unwrap_or(0),
            memory_bytes: self.memory.as_ref().and_then(pread_u64).unwrap_or(0),
            disk_bytes: self.disk.as_ref().and_then(fs_used).unwrap_or(0),
        }
    }
}
