//! Machine lifecycle on gVisor: create, start, stop, pause/resume, destroy, the agent
//! connection, and recovering machines after a restart of the driver.

use std::sync::Arc;

use tracing::{info, instrument, warn};

use super::machine::{Machine, Meta, Paths};
use super::runsc::Stdio3;
use super::sandbox::{launch, mount, open_log, socket_pair, teardown, unmount};
use super::{bundle, cgroup, disk, image, saved, Gvisor};
use crate::agent::AgentClient;
use crate::{DriverError, ImageRef, MachineId, MachineInfo, MachineSpec, MachineState, Result};

pub(super) fn validate(spec: &MachineSpec) -> Result<()> {
    if spec.cpus == 0 || spec.cpus > 64 {
        return Err(DriverError::Invalid(format!(
            "cpus must be 1..=64, not {}",
            spec.cpus
        )));
    }
    if spec.memory_mb < 64 {
        return Err(DriverError::Invalid(format!(
            "memory must be at least 64 MiB, not {}",
            spec.memory_mb
        )));
    }
    if spec.disk_mb < 32 {
        return Err(DriverError::Invalid(format!(
            "disk must be at least 32 MiB, not {}",
            spec.disk_mb
        )));
    }
    Ok(())
}

impl Gvisor {
    /// Loads every machine directory, takes each one's state from runsc, and mounts the
    /// disks of those that need them (all of them: the disk is billed even when stopped).
    pub(super) async fn recover(&self) -> Result<()> {
        let sandboxes = self.runsc.list().await.unwrap_or_default();
        let Ok(entries) = std::fs::read_dir(&self.machines_dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().and_then(MachineId::parse) else {
                continue;
            };
            let paths = Paths::new(&self.machines_dir, &id);
            let Ok(meta) = Machine::load_meta(&paths) else {
                continue;
            };
            super::checkpoint::sweep_half_made(&paths);
            let state = sandboxes
                .iter()
                .find(|(raw, _)| raw == id.as_str())
                .map(|(_, s)| *s)
                .unwrap_or(MachineState::Stopped);
            if let Err(e) = mount(&paths, &meta).await {
                warn!(machine = %id, error = %e, "could not mount the disk of a recovered machine");
            }
            let machine = Machine::new(id.clone(), paths, meta, state, self.egress.clone());
            info!(machine = %id, ?state, "recovered machine");
            self.machines
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, Arc::new(machine));
        }
        Ok(())
    }

    #[instrument(skip_all, fields(machine = %spec.id))]
    pub(super) async fn create_machine(&self, spec: &MachineSpec) -> Result<()> {
        validate(spec)?;
        if let Ok(existing) = self.get(&spec.id) {
            return if existing.meta.matches(spec) {
                Ok(())
            } else {
                Err(DriverError::InvalidState(format!(
                    "machine {} exists with another spec",
                    spec.id
                )))
            };
        }
        let (base, layers) = match &spec.image {
            ImageRef::Operator(name) => (image::current(&self.image_dir, name)?, Vec::new()),
            ImageRef::Saved(id) => saved::resolve(&self.images_dir, id)?,
        };
        let paths = Paths::new(&self.machines_dir, &spec.id);
        let meta = Meta {
            cpus: spec.cpus,
            memory_mb: spec.memory_mb,
            disk_mb: spec.disk_mb,
            base,
            layers,
        };
        self.new_machine(&spec.id, paths, meta, None)
            .await
            .map(drop)
    }

    /// Makes a machine's files (removing what a failure left) and registers it, stopped.
    pub(super) async fn new_machine(
        &self,
        id: &MachineId,
        paths: Paths,
        meta: Meta,
        disk_from: Option<&std::path::Path>,
    ) -> Result<Arc<Machine>> {
        if let Err(e) = self.make_files(id, &paths, &meta, disk_from).await {
            let _ = unmount(&paths);
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let machine = Arc::new(Machine::new(
            id.clone(),
            paths,
            meta,
            MachineState::Stopped,
            self.egress.clone(),
        ));
        self.machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), machine.clone());
        Ok(machine)
    }

    /// Makes a machine's directory: a new disk, or a copy of `disk_from` (a fork), its
    /// mounts, its bundle, and `meta.json` last.
    pub(super) async fn make_files(
        &self,
        id: &MachineId,
        paths: &Paths,
        meta: &Meta,
        disk_from: Option<&std::path::Path>,
    ) -> Result<()> {
        let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
        if paths.dir.exists() {
            // Left by a create that crashed before writing meta.json.
            let _ = unmount(paths);
            std::fs::remove_dir_all(&paths.dir).map_err(io("clearing a half-made machine"))?;
        }
        std::fs::create_dir_all(&paths.dir).map_err(io("making the machine directory"))?;
        match disk_from {
            Some(from) => {
                disk::sparse_copy(from, &paths.image()).map_err(io("copying the disk"))?;
            }
            None => disk::create_image(&paths.image(), meta.disk_mb).await?,
        }
        mount(paths, meta).await?;
        bundle::write(
            &paths.config(),
            id,
            &paths.root(),
            &self.agent_dir,
            meta.cpus,
            meta.memory_mb,
        )?;
        // Written last: a directory without it is a create that did not finish.
        let text = serde_json::to_vec_pretty(meta)
            .map_err(|e| DriverError::backend("encoding meta.json", e))?;
        std::fs::write(paths.meta(), text).map_err(io("writing meta.json"))
    }

    #[instrument(skip_all, fields(machine = %m.id))]
    pub(super) async fn start_machine(&self, m: &Machine) -> Result<()> {
        let mut rt = m.rt.lock().await;
        if rt.destroyed {
            return Err(DriverError::NotFound(format!("machine {}", m.id)));
        }
        if rt.state != MachineState::Stopped {
            return Ok(());
        }
        launch(&self.runsc, m, &mut rt, None).await
    }

    #[instrument(skip_all, fields(machine = %m.id))]
    pub(super) async fn stop_machine(&self, m: &Machine) -> Result<()> {
        let mut rt = m.rt.lock().await;
        if rt.destroyed {
            return Err(DriverError::NotFound(format!("machine {}", m.id)));
        }
        teardown(&self.runsc, &m.id).await;
        rt.state = MachineState::Stopped;
        rt.agent = None;
        m.reopen_usage(false);
        Ok(())
    }

    #[instrument(skip_all, fields(machine = %m.id, pause))]
    pub(super) async fn pause_machine(&self, m: &Machine, pause: bool) -> Result<()> {
        let mut rt = m.rt.lock().await;
        let (from, to) = if pause {
            (MachineState::Running, MachineState::Paused)
        } else {
            (MachineState::Paused, MachineState::Running)
        };
        match rt.state {
            _ if rt.destroyed => Err(DriverError::NotFound(format!("machine {}", m.id))),
            s if s == to => Ok(()),
            s if s == from => {
                if pause {
                    self.runsc.pause(&m.id).await?;
                } else {
                    self.runsc.resume(&m.id).await?;
                }
                rt.state = to;
                Ok(())
            }
            s => Err(DriverError::InvalidState(format!(
                "machine {} is {s:?}",
                m.id
            ))),
        }
    }

    #[instrument(skip_all, fields(machine = %id))]
    pub(super) async fn destroy_machine(&self, id: &MachineId) -> Result<()> {
        let machine = self.get(id).ok();
        let mut guard = match &machine {
            Some(m) => Some(m.rt.lock().await),
            None => None,
        };
        teardown(&self.runsc, id).await;
        if let Some(m) = &machine {
            m.release_usage();
        }
        let paths = Paths::new(&self.machines_dir, id);
        unmount(&paths)?;
        if paths.dir.exists() {
            std::fs::remove_dir_all(&paths.dir).map_err(|e| {
                DriverError::backend(format!("removing {}", paths.dir.display()), e)
            })?;
        }
        if let Some(rt) = guard.as_mut() {
            rt.destroyed = true;
            rt.agent = None;
            rt.state = MachineState::Stopped;
        }
        self.machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.sweep_images();
        Ok(())
    }

    /// The machine's agent connection, starting a fresh agent beside init when the old
    /// connection is gone (the driver restarted) and noticing a sandbox that died.
    pub(super) async fn agent(&self, m: &Machine) -> Result<AgentClient> {
        let mut rt = m.rt.lock().await;
        match rt.state {
            _ if rt.destroyed => return Err(DriverError::NotFound(format!("machine {}", m.id))),
            MachineState::Running => {}
            s => {
                return Err(DriverError::InvalidState(format!(
                    "machine {} is {s:?}",
                    m.id
                )))
            }
        }
        if let Some(agent) = rt.agent.as_ref().filter(|a| !a.is_closed()) {
            return Ok(agent.clone());
        }
        // The stream is gone: the driver restarted, or the host closed it because the
        // agent broke the protocol (a hostile program in the sprite can write into it).
        // If the sandbox still runs, a fresh agent beside init serves a new stream;
        // only a sandbox that is really gone is declared dead.
        if self.runsc.exists(&m.id).await? == Some(MachineState::Running) {
            if let Some(mut old) = rt.side.take() {
                let _ = old.start_kill();
            }
            let (host, guest) = socket_pair()?;
            let stdio = Stdio3 {
                io: guest,
                log: open_log(&m.paths.log())?,
            };
            let argv = [bundle::AGENT_IN_MACHINE, "agent"];
            rt.side = Some(self.runsc.exec_attached(&m.id, &argv, stdio)?);
            let agent = AgentClient::with_egress(host, m.id.to_string(), m.egress.clone());
            rt.agent = Some(agent.clone());
            return Ok(agent);
        }
        // The sandbox died under us (killed for memory, or crashed). Its cgroup is still
        // there until the teardown, and says which.
        let why = death_cause(&m.id, m.meta.memory_mb);
        warn!(machine = %m.id, %why, "sandbox is gone; marking the machine stopped");
        teardown(&self.runsc, &m.id).await;
        rt.state = MachineState::Stopped;
        rt.agent = None;
        rt.side = None;
        m.reopen_usage(false);
        Err(DriverError::InvalidState(format!(
            "machine {} stopped unexpectedly: {why}",
            m.id
        )))
    }

    pub(super) async fn list_machines(&self) -> Result<Vec<MachineInfo>> {
        let machines: Vec<Arc<Machine>> = self
            .machines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out = Vec::new();
        for m in machines {
            let rt = m.rt.lock().await;
            if !rt.destroyed {
                out.push(MachineInfo {
                    id: m.id.clone(),
                    state: rt.state,
                });
            }
        }
        // Sandboxes and directories the table does not know: leftovers of a crash.
        for (raw, state) in self.runsc.list().await? {
            if let Some(id) = MachineId::parse(&raw) {
                if !out.iter().any(|i| i.id == id) {
                    out.push(MachineInfo { id, state });
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.machines_dir) {
            for entry in entries.flatten() {
                if let Some(id) = entry.file_name().to_str().and_then(MachineId::parse) {
                    if !out.iter().any(|i| i.id == id) {
                        out.push(MachineInfo {
                            id,
                            state: MachineState::Stopped,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// Why a sandbox that was running is gone: the out-of-memory killer (its memory cgroup
/// counts the kills), or anything else.
fn death_cause(id: &MachineId, memory_mb: u64) -> String {
    let oom = std::fs::read_to_string(cgroup::dir("memory", id).join("memory.oom_control"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    if oom > 0 {
        format!("out of memory: it used all of its {memory_mb} MiB and was killed")
    } else {
        "the sandbox crashed or was killed".into()
    }
}
