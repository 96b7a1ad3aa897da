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

/// Every v1 hierarchy runsc makes the machine's cgroup in (`linux.cgroupsPath` goes
/// to all of them, not only the ones the driver reads).
fn hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir(CGROUP_ROOT)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Removes the machine's cgroup directories once its processes are gone, so a deleted
/// or crashed machine leaves no empty `/sys/fs/cgroup/*/corral/<id>` behind. A cgroup
/// still holding a process refuses (EBUSY) and is left alone; runsc makes them again
/// when the machine starts.
pub fn remove(id: &MachineId) {
    for hierarchy in hierarchies() {
        let dir = hierarchy.join("corral").join(id.as_str());
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "cgroup kept");
            }
        }
    }
}

/// Sets the machine's CPU counter back to zero (cgroup v1 `cpuacct.usage` takes a
/// write of 0), for every process of its sandbox at once.
pub fn restart_cpu(id: &MachineId) -> std::io::Result<()> {
    std::fs::write(dir("cpuacct", id).join("cpuacct.usage"), "0")
}

/// Files held open for sampling one machine. The disk entry is a directory on the
/// machine's own filesystem, for `fstatvfs`; while that filesystem is not mounted the
/// disk's use is what its sparse image file holds.
pub struct UsageFiles {
    cpu: Option<File>,
    memory: Option<File>,
    disk: Option<File>,
    image: PathBuf,
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
    /// Opens what exists now: the disk when it is mounted (never the directory under
    /// it, which would report the host's filesystem), the cgroup files while the sandbox
    /// runs.
    pub fn open(id: &MachineId, disk_dir: &Path, image: &Path, running: bool) -> Self {
        let open = |p: PathBuf| File::open(p).ok();
        Self {
            cpu: running
                .then(|| open(dir("cpuacct", id).join("cpuacct.usage")))
                .flatten(),
            memory: running
                .then(|| open(dir("memory", id).join("memory.usage_in_bytes")))
                .flatten(),
            disk: super::disk::is_mountpoint(disk_dir)
                .then(|| open(disk_dir.to_path_buf()))
                .flatten(),
            image: image.to_path_buf(),
        }
    }

    /// Nothing open (so the disk can be unmounted): CPU and memory read zero, the disk
    /// what its image file holds.
    pub fn closed(image: &Path) -> Self {
        Self {
            cpu: None,
            memory: None,
            disk: None,
            image: image.to_path_buf(),
        }
    }

    /// Reads the sample: three `pread`/`fstatvfs` calls, no process.
    pub fn sample(&self) -> UsageSample {
        UsageSample {
            cpu_ns: self.cpu.as_ref().and_then(pread_u64).unwrap_or(0),
            memory_bytes: self.memory.as_ref().and_then(pread_u64).unwrap_or(0),
            disk_bytes: match &self.disk {
                Some(file) => fs_used(file).unwrap_or(0),
                None => super::disk::allocated(&self.image),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmounted_disk_reads_as_its_image_not_the_host_filesystem() {
        let dir = std::env::temp_dir().join(format!("corral-usage-{}", std::process::id()));
        let disk = dir.join("disk");
        std::fs::create_dir_all(&disk).unwrap();
        let image = dir.join("disk.img");
        let file = File::create(&image).unwrap();
        file.set_len(1 << 30).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[7u8; 1 << 20], 4096).unwrap();
        file.sync_all().unwrap();

        let id = MachineId::from_key(0x7e57);
        let sample = UsageFiles::open(&id, &disk, &image, false).sample();
        // The sparse image holds about 1 MiB; the host's filesystem holds gigabytes.
        assert!(
            ((1 << 20)..(4 << 20)).contains(&sample.disk_bytes),
            "{sample:?}"
        );
        assert_eq!(
            UsageFiles::closed(&image).sample().disk_bytes,
            sample.disk_bytes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
