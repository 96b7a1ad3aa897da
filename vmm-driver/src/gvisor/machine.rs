//! One machine's files and in-memory state: where its disk, root and checkpoints live,
//! what it was made of, and the lock that serialises its lifecycle operations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cgroup::UsageFiles;
use crate::agent::outbound::EgressSlot;
use crate::agent::AgentClient;
use crate::{CheckpointId, DriverError, MachineId, MachineSpec, MachineState, Result};

/// What a machine was made of, kept in `meta.json` so a restarted driver finds it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// CPU quota in cores.
    pub cpus: u32,
    /// Memory limit in MiB.
    pub memory_mb: u64,
    /// Disk size in MiB.
    pub disk_mb: u64,
    /// The operator image directory at the bottom of its root.
    pub base: PathBuf,
    /// Saved images' layers between the base and its own changes, top first.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
}

impl Meta {
    /// The overlay's read-only layers, top first.
    pub fn lowers(&self) -> Vec<PathBuf> {
        let mut all = self.layers.clone();
        all.push(self.base.clone());
        all
    }

    /// Whether `spec` describes this machine.
    pub fn matches(&self, spec: &MachineSpec) -> bool {
        (self.cpus, self.memory_mb, self.disk_mb) == (spec.cpus, spec.memory_mb, spec.disk_mb)
    }
}

/// Where a machine's files live under `<state_dir>/machines/<id>/`.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The machine's directory (also its OCI bundle).
    pub dir: PathBuf,
}

impl Paths {
    /// The paths of machine `id` under `machines_dir`.
    pub fn new(machines_dir: &Path, id: &MachineId) -> Self {
        Self {
            dir: machines_dir.join(id.as_str()),
        }
    }
    /// `meta.json`.
    pub fn meta(&self) -> PathBuf {
        self.dir.join("meta.json")
    }
    /// The OCI `config.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// The sparse ext4 image.
    pub fn image(&self) -> PathBuf {
        self.dir.join("disk.img")
    }
    /// Where the image is mounted.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk")
    }
    /// The overlay's upper dir (on the disk).
    pub fn upper(&self) -> PathBuf {
        self.disk().join("upper")
    }
    /// The overlay's work dir (on the disk).
    pub fn work(&self) -> PathBuf {
        self.disk().join("work")
    }
    /// The merged root the sandbox sees.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// The sandbox's stderr and runsc's errors.
    pub fn log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// The checkpoints directory.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
    /// One checkpoint's directory.
    pub fn checkpoint(&self, id: &CheckpointId) -> PathBuf {
        self.checkpoints().join(id.as_str())
    }
}

/// What changes as the machine runs; guarded by the machine's lock.
pub struct Runtime {
    /// Where it stands.
    pub state: MachineState,
    /// The agent connection while running.
    pub agent: Option<AgentClient>,
    /// Whether the sandbox's init (the first agent) serves `agent`. It does not after a
    /// restart of the driver (its stream went with the old process); a second agent is
    /// then started beside it with `runsc exec`, held in `side`.
    pub init_serves: bool,
    /// The `runsc exec` process of a second agent.
    pub side: Option<tokio::process::Child>,
    /// Set once destroyed, so a caller that still holds the machine gets `NotFound`.
    pub destroyed: bool,
}

/// A machine known to the driver.
pub struct Machine {
    /// Its id.
    pub id: MachineId,
    /// Its files.
    pub paths: Paths,
    /// What it is made of.
    pub meta: Meta,
    /// Its state; held for the whole of a lifecycle operation.
    pub rt: Arc<tokio::sync::Mutex<Runtime>>,
    /// Files held open for usage samples (never held across an await).
    pub usage: std::sync::Mutex<UsageFiles>,
    /// Where its programs' outbound connections are decided.
    pub egress: EgressSlot,
}

impl Machine {
    /// A machine in `state`. A stopped machine has no sandbox, so cgroup directories of
    /// its id are leftovers (a crash between killing a sandbox and removing them): they go.
    pub fn new(
        id: MachineId,
        paths: Paths,
        meta: Meta,
        state: MachineState,
        egress: EgressSlot,
    ) -> Self {
        if state == MachineState::Stopped {
            super::cgroup::remove(&id);
        }
        let usage = UsageFiles::open(
            &id,
            &paths.disk(),
            &paths.image(),
            state != MachineState::Stopped,
        );
        Self {
            id,
            paths,
            meta,
            rt: Arc::new(tokio::sync::Mutex::new(Runtime {
                state,
                agent: None,
                init_serves: false,
                side: None,
                destroyed: false,
            })),
            usage: std::sync::Mutex::new(usage),
            egress,
        }
    }

    /// Reads a machine's `meta.json`.
    pub fn load_meta(paths: &Paths) -> Result<Meta> {
        let text = std::fs::read(paths.meta())
            .map_err(|e| DriverError::backend("reading meta.json", e))?;
        serde_json::from_slice(&text).map_err(|e| DriverError::backend("parsing meta.json", e))
    }

    /// Reopens the usage files (after the sandbox started or stopped).
    pub fn reopen_usage(&self, running: bool) {
        let files = UsageFiles::open(&self.id, &self.paths.disk(), &self.paths.image(), running);
        *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = files;
    }

    /// Closes every usage file, the one on the disk included, so the disk can be
    /// unmounted for real (not lazily, with the old filesystem lingering).
    pub fn release_usage(&self) {
        *self.usage.lock().unwrap_or_else(|e| e.into_inner()) =
            UsageFiles::closed(&self.paths.image());
    }
}
