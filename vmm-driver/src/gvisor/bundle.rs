//! The OCI bundle of a machine: the overlay root, the agent mounted read-only at
//! `/.corral`, and the cgroup limits (CPU quota, memory, pids).

use std::path::Path;

use serde_json::json;

use super::cgroup;
use crate::{DriverError, MachineId, Result};

/// Where the agent's directory appears inside every machine.
pub const AGENT_MOUNT: &str = "/.corral";
/// The agent's path inside every machine.
pub const AGENT_IN_MACHINE: &str = "/.corral/agent";
/// The statx shim's file name in the agent's directory.
pub const STATX_SHIM_FILE: &str = "statx-shim.so";
/// The statx shim's path inside every machine (see `shim/statx.c`). It is preloaded
/// through the environment rather than `/etc/ld.so.preload`: reading that file costs
/// every new process in a sprite about 0.8 ms more under gVisor.
pub const STATX_SHIM_IN_MACHINE: &str = "/.corral/statx-shim.so";
/// CFS period for the CPU quota.
const CPU_PERIOD_US: u64 = 100_000;
/// Host tasks a machine may hold (gofer, sentry threads, one ptrace stub per process
/// inside). Past it, the sandbox cannot make threads and dies; neighbours are unharmed.
pub const PIDS_LIMIT: u64 = 1024;

/// Capabilities of root inside the machine. gVisor is the boundary, so root inside gets
/// what a package manager and common tools need.
const CAPS: [&str; 16] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    "CAP_SYS_PTRACE",
    "CAP_SYS_ADMIN",
];

/// Writes `config.json` for the machine.
pub fn write(
    config: &Path,
    id: &MachineId,
    root: &Path,
    agent_dir: &Path,
    cpus: u32,
    memory_mb: u64,
) -> Result<()> {
    let spec = json!({
        "ociVersion": "1.0.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": [AGENT_IN_MACHINE, "agent"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "TERM=xterm",
                "LANG=C.UTF-8",
                format!("LD_PRELOAD={STATX_SHIM_IN_MACHINE}"),
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS, "effective": CAPS, "inheritable": CAPS, "permitted": CAPS,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}],
        },
        "root": {"path": root, "readonly": false},
        "hostname": "sprite",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": AGENT_MOUNT, "type": "bind", "source": agent_dir,
             "options": ["rbind", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroup::path(id),
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"},
            ],
            "resources": {
                "cpu": {"quota": CPU_PERIOD_US * u64::from(cpus), "period": CPU_PERIOD_US},
                "memory": {"limit": memory_mb << 20},
                "pids": {"limit": PIDS_LIMIT},
            },
        },
    });
    let text = serde_json::to_vec_pretty(&spec)
        .map_err(|e| DriverError::backend("encoding the OCI spec", e))?;
    std::fs::write(config, text).map_err(|e| DriverError::backend("writing the OCI spec", e))
}
