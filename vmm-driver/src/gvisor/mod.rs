//! The gVisor backend: a runsc sandbox per machine over a copy-on-write root on its own
//! sparse ext4 disk, a cgroup for limits and accounting, no network, and the corral
//! agent as the sandbox's init for exec and files.
//!
//! State lives under `<state_dir>`: `runsc/` (runsc's `--root`), `agent/` (a copy of the
//! agent binary, bind-mounted read-only at `/.corral`), `machines/<id>/` (see
//! [`machine::Paths`]) and `images/<id>/` (saved images, see `saved`). Everything a
//! restarted driver needs is on disk there; the operator's images are in `image_dir`.

mod bundle;
mod cgroup;
mod checkpoint;
mod disk;
mod export;
mod fork;
pub mod image;
mod lifecycle;
mod machine;
mod quiesce;
mod reap;
mod runsc;
mod sandbox;
mod saved;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::agent::outbound::EgressSlot;
use crate::*;
use machine::Machine;
use runsc::Runsc;

/// The gVisor backend.
pub struct Gvisor {
    runsc: Runsc,
    machines_dir: PathBuf,
    agent_dir: PathBuf,
    image_dir: PathBuf,
    images_dir: PathBuf,
    /// Where machines' outbound connections are decided (shared with every machine).
    egress: EgressSlot,
    machines: RwLock<HashMap<MachineId, Arc<Machine>>>,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Copies the agent next to the machines (atomically, so a sandbox holding the old copy
/// open is undisturbed) unless an identical copy is already there.
fn install_agent(agent_path: &Path, agent_dir: &Path) -> Result<()> {
    let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
    let src = std::fs::metadata(agent_path).map_err(|_| {
        DriverError::Unavailable(format!(
            "agent binary {} is missing (it is the corral binary itself)",
            agent_path.display()
        ))
    })?;
    std::fs::create_dir_all(agent_dir).map_err(io("making the agent directory"))?;
    let dst = agent_dir.join("agent");
    if let Ok(old) = std::fs::metadata(&dst) {
        if old.len() == src.len() && std::fs::read(&dst).ok() == std::fs::read(agent_path).ok() {
            return Ok(());
        }
    }
    let tmp = agent_dir.join(".agent.tmp");
    std::fs::copy(agent_path, &tmp).map_err(io("copying the agent binary"))?;
    std::fs::rename(&tmp, &dst).map_err(io("installing the agent binary"))
}

/// The statx shim every sprite preloads (see `shim/statx.c`), built by `build.rs`.
const STATX_SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/statx-shim.so"));

/// Writes the statx shim beside the agent (atomically, unless it is there already).
fn install_shim(agent_dir: &Path) -> Result<()> {
    let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
    let dst = agent_dir.join(bundle::STATX_SHIM_FILE);
    if std::fs::read(&dst).is_ok_and(|old| old == STATX_SHIM) {
        return Ok(());
    }
    let tmp = agent_dir.join(".shim.tmp");
    std::fs::write(&tmp, STATX_SHIM).map_err(io("writing the statx shim"))?;
    std::fs::rename(&tmp, &dst).map_err(io("installing the statx shim"))
}

impl Gvisor {
    /// Checks what the backend needs (runsc, cgroup v1 mounts, the agent,
    /// root), then finds the machines a previous run left and re-mounts their disks.
    pub async fn open(config: &DriverConfig) -> Result<Self> {
        let runsc_bin = find_on_path("runsc").ok_or_else(|| {
            DriverError::Unavailable("runsc is not installed (apt-get install runsc)".into())
        })?;
        for tool in ["mkfs.ext4", "mount"] {
            if find_on_path(tool).is_none() {
                return Err(DriverError::Unavailable(format!("{tool} is not installed")));
            }
        }
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(DriverError::Unavailable(
                "the gvisor backend must run as root (it mounts disks and starts runsc)".into(),
            ));
        }
        let missing = cgroup::missing();
        if !missing.is_empty() {
            return Err(DriverError::Unavailable(format!(
                "cgroup v1 hierarchies not mounted under {}: {}",
                cgroup::CGROUP_ROOT,
                missing.join(", ")
            )));
        }
        let agent_dir = config.state_dir.join("agent");
        install_agent(&config.agent_path, &agent_dir)?;
        install_shim(&agent_dir)?;
        let root = config.state_dir.join("runsc");
        let machines_dir = config.state_dir.join("machines");
        for d in [&root, &machines_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| DriverError::backend("making the state directory", e))?;
        }
        reap::become_subreaper();
        let driver = Self {
            runsc: Runsc::new(runsc_bin, root),
            machines_dir,
            agent_dir,
            image_dir: config.image_dir.clone(),
            images_dir: config.state_dir.join("images"),
            egress: EgressSlot::default(),
            machines: RwLock::new(HashMap::new()),
        };
        saved::sweep_half_made(&driver.images_dir);
        driver.recover().await?;
        driver.sweep_images();
        Ok(driver)
    }

    fn get(&self, id: &MachineId) -> Result<Arc<Machine>> {
        self.machines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("machine {id}")))
    }
}

#[async_trait]
impl Driver for Gvisor {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    async fn create(&self, spec: &MachineSpec) -> Result<()> {
        self.create_machine(spec).await
    }

    async fn start(&self, id: &MachineId) -> Result<()> {
        self.start_machine(&*self.get(id)?).await
    }

    async fn stop(&self, id: &MachineId) -> Result<()> {
        self.stop_machine(&*self.get(id)?).await
    }

    async fn pause(&self, id: &MachineId) -> Result<()> {
        self.pause_machine(&*self.get(id)?, true).await
    }

    async fn resume(&self, id: &MachineId) -> Result<()> {
        self.pause_machine(&*self.get(id)?, false).await
    }

    async fn destroy(&self, id: &MachineId) -> Result<()> {
        self.destroy_machine(id).await
    }

    async fn exec(&self, id: &MachineId, req: ExecRequest) -> Result<ExecOutput> {
        self.agent(&*self.get(id)?).await?.exec(req).await
    }

    async fn exec_stream(&self, id: &MachineId, req: ExecRequest) -> Result<ExecStream> {
        self.agent(&*self.get(id)?).await?.exec_stream(req).await
    }

    async fn dial(&self, id: &MachineId, port: u16) -> Result<Box<dyn crate::EgressStream>> {
        self.agent(&*self.get(id)?).await?.dial(port).await
    }

    async fn read_file(&self, id: &MachineId, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        self.agent(&*self.get(id)?)
            .await?
            .read_file(path, max_bytes)
            .await
    }

    async fn write_file(&self, id: &MachineId, path: &str, data: &[u8]) -> Result<()> {
        self.agent(&*self.get(id)?)
            .await?
            .write_file(path, data)
            .await
    }

    async fn checkpoint(
        &self,
        id: &MachineId,
        checkpoint: &CheckpointId,
    ) -> Result<CheckpointInfo> {
        self.checkpoint_machine(&self.get(id)?, checkpoint).await
    }

    async fn restore(&self, id: &MachineId, checkpoint: &CheckpointId) -> Result<()> {
        self.restore_machine(&*self.get(id)?, checkpoint).await
    }

    async fn delete_checkpoint(&self, id: &MachineId, checkpoint: &CheckpointId) -> Result<()> {
        self.delete_checkpoint_of(&*self.get(id)?, checkpoint).await
    }

    async fn fork(&self, source: &MachineId, spec: &MachineSpec) -> Result<()> {
        self.fork_machine(&self.get(source)?, spec).await
    }

    fn images(&self) -> Vec<ImageInfo> {
        image::list(&self.image_dir)
    }

    async fn save_image(&self, id: &MachineId, image: &ImageId) -> Result<u64> {
        self.save_machine_image(&*self.get(id)?, image).await
    }

    async fn delete_image(&self, image: &ImageId) -> Result<()> {
        self.delete_saved(image).await
    }

    fn image_exists(&self, image: &ImageId) -> bool {
        saved::exists(&self.images_dir, image)
    }

    async fn export(&self, id: &MachineId, dst: &Path) -> Result<()> {
        self.export_machine(&*self.get(id)?, dst).await
    }

    fn usage(&self, id: &MachineId) -> Result<UsageSample> {
        let machine = self.get(id)?;
        let files = machine.usage.lock().unwrap_or_else(|e| e.into_inner());
        Ok(files.sample())
    }

    fn restart_usage(&self, id: &MachineId) -> Result<()> {
        self.get(id)?;
        cgroup::restart_cpu(id)
            .map_err(|e| DriverError::backend(format!("restarting the CPU count of {id}"), e))
    }

    async fn list(&self) -> Result<Vec<MachineInfo>> {
        self.list_machines().await
    }

    fn share(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !["agent", bundle::STATX_SHIM_FILE].contains(&name);
        if !valid {
            return Err(DriverError::Invalid(format!("{name:?} cannot be shared")));
        }
        let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
        let tmp = self.agent_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).map_err(io("writing a shared file"))?;
        std::fs::rename(&tmp, self.agent_dir.join(name)).map_err(io("sharing a file"))
    }

    fn set_egress(&self, egress: Arc<dyn Egress>) {
        *self.egress.write().unwrap_or_else(|e| e.into_inner()) = Some(egress);
    }
}
