//! Machine lifecycle on gVisor: create, start, stop, pause/resume, destroy, the agent
//! connection, and recovering machines after a restart of the driver.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, instrument, warn};

use super::machine::{Machine, Meta, Paths, Runtime};
use super::runsc::{Runsc, Stdio3};
use super::{bundle, disk, image, reap, Gvisor};
use crate::agent::AgentClient;
use crate::{DriverError, MachineId, MachineInfo, MachineSpec, MachineState, Result};

/// How long teardown waits for sandbox processes that are not our children.
const KILL_WAIT: Duration = Duration::from_secs(3);
/// The console log is cut back when a machine starts and it is larger than this.
const LOG_MAX: u64 = 1 << 20;

/// A socket pair: the driver's end as a tokio stream, the sandbox's end as an fd.
fn socket_pair() -> Result<(tokio::net::UnixStream, OwnedFd)> {
    let io = |e| DriverError::backend("making the agent socket pair", e);
    let (host, guest) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    host.set_nonblocking(true).map_err(io)?;
    Ok((
        tokio::net::UnixStream::from_std(host).map_err(io)?,
        guest.into(),
    ))
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    if std::fs::metadata(path)
        .map(|m| m.len() > LOG_MAX)
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(path);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| DriverError::backend("opening the console log", e))
}

fn validate(spec: &MachineSpec) -> Result<()> {
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

/// The marker a checkpoint holds when the sandbox's init served the agent stream.
pub(super) const INIT_SERVES: &str = "init-serves";

fn init_served(image: &Path) -> bool {
    image
        .parent()
        .is_some_and(|dir| dir.join(INIT_SERVES).exists())
}

/// Mounts the disk image and the overlay root (each only if not mounted).
pub(super) async fn mount(paths: &Paths, meta: &Meta) -> Result<()> {
    disk::mount_image(&paths.image(), &paths.disk()).await?;
    disk::mount_overlay(&meta.base, &paths.upper(), &paths.work(), &paths.root())
}

/// Unmounts the overlay root and the disk.
pub(super) fn unmount(paths: &Paths) -> Result<()> {
    disk::unmount(&paths.root())?;
    disk::unmount(&paths.disk())
}

/// How often a restore is tried before giving up.
const RESTORE_ATTEMPTS: usize = 4;

/// Restores the sandbox from a checkpoint image and checks that its agent answers. This
/// runsc's restore is flaky: now and then the restored init faults on its first
/// instruction (SIGSEGV at address 0) and the sandbox exits. The disk is untouched by
/// then, so trying again from the same image is safe. `before_each` runs before every
/// attempt (restore uses it to put the disk back).
pub(super) async fn restore_checked<F>(
    runsc: &Runsc,
    m: &Machine,
    rt: &mut Runtime,
    image: &Path,
    mut before_each: F,
) -> Result<()>
where
    F: FnMut() -> Result<()>,
{
    let mut last = None;
    for attempt in 0..RESTORE_ATTEMPTS {
        before_each()?;
        match launch(runsc, m, rt, Some(image)).await {
            Ok(()) => {
                let Some(agent) = rt.agent.clone() else {
                    return Ok(());
                };
                let probe = crate::ExecRequest {
                    argv: vec!["true".into()],
                    ..Default::default()
                };
                match tokio::time::timeout(Duration::from_secs(5), agent.exec(probe)).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(e)) => last = Some(e),
                    Err(_) => {
                        last = Some(DriverError::backend(
                            "restore",
                            "the restored agent does not answer",
                        ))
                    }
                }
            }
            Err(e) => last = Some(e),
        }
        warn!(machine = %m.id, attempt, error = ?last, "restored sandbox died; trying again");
        rt.agent = None;
        teardown(runsc, &m.id).await;
        rt.state = MachineState::Stopped;
        m.reopen_usage(false);
    }
    Err(last.unwrap_or_else(|| DriverError::backend("restore", "failed")))
}

/// Starts the sandbox (fresh, or from a checkpoint image) with a new agent connection.
pub(super) async fn launch(
    runsc: &Runsc,
    m: &Machine,
    rt: &mut Runtime,
    image: Option<&Path>,
) -> Result<()> {
    mount(&m.paths, &m.meta).await?;
    let mut attempt = 0;
    loop {
        let (host, guest) = socket_pair()?;
        let stdio = Stdio3 {
            io: guest,
            log: open_log(&m.paths.log())?,
        };
        let res = match image {
            Some(image) => {
                runsc
                    .restore(&m.id, &m.paths.dir, image, stdio, &m.paths.log())
                    .await
            }
            None => runsc.run(&m.id, &m.paths.dir, stdio, &m.paths.log()).await,
        };
        match res {
            Ok(()) => {
                // A restored init serves the new stream only if it served one when the
                // checkpoint was taken.
                rt.init_serves = image.is_none_or(init_served);
                rt.agent = rt.init_serves.then(|| AgentClient::new(host));
                rt.side = None;
                rt.state = MachineState::Running;
                m.reopen_usage(true);
                return Ok(());
            }
            // A sandbox of this id left behind (a crash, a reboot): clear it, retry once.
            Err(e) if attempt == 0 => {
                warn!(machine = %m.id, error = %e, "start failed; clearing leftovers and retrying");
                teardown(runsc, &m.id).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Kills the sandbox and removes runsc's state for it. Never fails: it is used on the
/// way out of errors too, and a sandbox that is already gone is fine.
pub(super) async fn teardown(runsc: &Runsc, id: &MachineId) {
    let id2 = id.clone();
    let _ = tokio::task::spawn_blocking(move || reap::kill_all(&id2, KILL_WAIT)).await;
    if let Err(e) = runsc.delete(id).await {
        let msg = format!("{e:#}");
        if !msg.contains("does not exist") {
            tracing::debug!(machine = %id, error = %msg, "runsc delete");
        }
    }
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
            let state = sandboxes
                .iter()
                .find(|(raw, _)| raw == id.as_str())
                .map(|(_, s)| *s)
                .unwrap_or(MachineState::Stopped);
            if let Err(e) = mount(&paths, &meta).await {
                warn!(machine = %id, error = %e, "could not mount the disk of a recovered machine");
            }
            let machine = Machine::new(id.clone(), paths, meta, state);
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
        let base = image::current(&self.image_dir)?;
        let paths = Paths::new(&self.machines_dir, &spec.id);
        let meta = Meta {
            cpus: spec.cpus,
            memory_mb: spec.memory_mb,
            disk_mb: spec.disk_mb,
            base,
        };
        let result = self.make_files(&spec.id, &paths, &meta).await;
        if let Err(e) = result {
            let _ = unmount(&paths);
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let machine = Machine::new(spec.id.clone(), paths, meta, MachineState::Stopped);
        self.machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.id.clone(), Arc::new(machine));
        Ok(())
    }

    async fn make_files(&self, id: &MachineId, paths: &Paths, meta: &Meta) -> Result<()> {
        let io = |what: &'static str| move |e: std::io::Error| DriverError::backend(what, e);
        if paths.dir.exists() {
            // Left by a create that crashed before writing meta.json.
            let _ = unmount(paths);
            std::fs::remove_dir_all(&paths.dir).map_err(io("clearing a half-made machine"))?;
        }
        std::fs::create_dir_all(&paths.dir).map_err(io("making the machine directory"))?;
        disk::create_image(&paths.image(), meta.disk_mb).await?;
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
        if !rt.init_serves && self.runsc.exists(&m.id).await? == Some(MachineState::Running) {
            let (host, guest) = socket_pair()?;
            let stdio = Stdio3 {
                io: guest,
                log: open_log(&m.paths.log())?,
            };
            let argv = [bundle::AGENT_IN_MACHINE, "agent"];
            rt.side = Some(self.runsc.exec_attached(&m.id, &argv, stdio)?);
            let agent = AgentClient::new(host);
            rt.agent = Some(agent.clone());
            return Ok(agent);
        }
        // The sandbox died under us (killed for memory, or crashed).
        warn!(machine = %m.id, "sandbox is gone; marking the machine stopped");
        teardown(&self.runsc, &m.id).await;
        rt.state = MachineState::Stopped;
        rt.agent = None;
        m.reopen_usage(false);
        Err(DriverError::InvalidState(format!(
            "machine {} stopped unexpectedly (out of memory or crashed)",
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
