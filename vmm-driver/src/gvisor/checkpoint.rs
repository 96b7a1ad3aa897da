//! Checkpoints on gVisor: `runsc checkpoint` (memory and processes; it stops the
//! sandbox) plus a sparse copy of the machine's disk image, which is the exact writable
//! layer — restore must see the disk exactly as the processes left it.
//!
//! A checkpoint directory holds `state/` (runsc's image, absent for a stopped machine)
//! and `disk.img`. It is built under a temporary name and renamed when complete.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, instrument};

use super::machine::{Machine, Paths};
use super::sandbox::{launch, restore_checked, teardown, unmount, INIT_SERVES};
use super::{disk, Gvisor};
use crate::{CheckpointId, CheckpointInfo, DriverError, MachineState, Result};

fn io(what: &'static str) -> impl Fn(std::io::Error) -> DriverError {
    move |e| DriverError::backend(what, e)
}

fn info(id: &CheckpointId, dir: &Path) -> CheckpointInfo {
    CheckpointInfo {
        id: id.clone(),
        size_bytes: disk::allocated_tree(dir),
    }
}

impl Gvisor {
    /// Saves the machine, then brings it back to the state it was in. The call returns
    /// once the checkpoint is complete on disk; bringing the sandbox back (`runsc
    /// restore`, ~150 ms) continues behind the machine's lock, so the next operation on
    /// this machine waits for it and sees the machine as it was.
    #[instrument(skip_all, fields(machine = %m.id, checkpoint = %cid.as_str()))]
    pub(super) async fn checkpoint_machine(
        &self,
        m: &Arc<Machine>,
        cid: &CheckpointId,
    ) -> Result<CheckpointInfo> {
        let mut rt = m.rt.clone().lock_owned().await;
        if rt.destroyed {
            return Err(DriverError::NotFound(format!("machine {}", m.id)));
        }
        let dir = m.paths.checkpoint(cid);
        if dir.exists() {
            return Ok(info(cid, &dir));
        }
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io("making the checkpoint directory"))?;
        let was = rt.state;
        if was == MachineState::Paused {
            self.runsc.resume(&m.id).await?;
            rt.state = MachineState::Running;
        }
        if was != MachineState::Stopped {
            // A second agent's host socket cannot be restored: let it exit first.
            if let Some(mut side) = rt.side.take() {
                if let Some(agent) = rt.agent.take() {
                    agent.close().await;
                }
                let exited = tokio::time::timeout(Duration::from_secs(2), side.wait()).await;
                if exited.is_err() {
                    let _ = side.kill().await;
                }
            }
            if rt.init_serves {
                std::fs::write(tmp.join(INIT_SERVES), b"").map_err(io("marking the checkpoint"))?;
            }
            if let Err(e) = self.runsc.checkpoint(&m.id, &tmp.join("state")).await {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            // The sandbox has stopped; clear it away so the id is free for the restore.
            rt.agent = None;
            teardown(&self.runsc, &m.id).await;
            rt.state = MachineState::Stopped;
        }
        let copied = disk::syncfs(&m.paths.disk())
            .and_then(|()| {
                disk::sparse_copy(&m.paths.image(), &tmp.join("disk.img"))
                    .map_err(io("copying the disk"))
            })
            .and_then(|_| std::fs::rename(&tmp, &dir).map_err(io("finishing the checkpoint")));
        if was == MachineState::Stopped {
            return copied.map(|()| info(cid, &dir));
        }
        let image = if copied.is_ok() {
            dir.join("state")
        } else {
            tmp.join("state")
        };
        let checkpoint = info(cid, &dir);
        // Bring the machine back behind its lock (the guard moves into the task).
        let runsc = self.runsc.clone();
        let machine = m.clone();
        tokio::spawn(async move {
            let mut rt = rt;
            let res = match restore_checked(&runsc, &machine, &mut rt, &image, || Ok(())).await {
                Ok(()) if was == MachineState::Paused => runsc.pause(&machine.id).await.map(|()| {
                    rt.state = MachineState::Paused;
                }),
                other => other,
            };
            if let Err(e) = res {
                error!(machine = %machine.id, error = %e, "could not bring the machine back after a checkpoint");
                teardown(&runsc, &machine.id).await;
                rt.state = MachineState::Stopped;
                rt.agent = None;
                machine.reopen_usage(false);
            }
            if !copied_ok(&image) {
                let _ = std::fs::remove_dir_all(image.parent().unwrap_or(&image));
            }
        });
        copied.map(|()| checkpoint)
    }

    /// Puts the disk back exactly as it was at the checkpoint and restores the sandbox
    /// (or starts it fresh, for a checkpoint of a stopped machine).
    #[instrument(skip_all, fields(machine = %m.id, checkpoint = %cid.as_str()))]
    pub(super) async fn restore_machine(&self, m: &Machine, cid: &CheckpointId) -> Result<()> {
        let mut rt = m.rt.lock().await;
        if rt.destroyed {
            return Err(DriverError::NotFound(format!("machine {}", m.id)));
        }
        let dir = m.paths.checkpoint(cid);
        if !dir.join("disk.img").exists() {
            return Err(DriverError::NotFound(format!(
                "checkpoint {} of {}",
                cid.as_str(),
                m.id
            )));
        }
        if rt.state != MachineState::Stopped {
            rt.agent = None;
            teardown(&self.runsc, &m.id).await;
            rt.state = MachineState::Stopped;
            m.reopen_usage(false);
        }
        let put_disk_back = || {
            // Drop the usage fd on the disk, so the unmount is not busy.
            m.release_usage();
            unmount(&m.paths)?;
            let next = m.paths.image().with_extension("img.restore");
            disk::sparse_copy(&dir.join("disk.img"), &next).map_err(io("copying the disk back"))?;
            std::fs::rename(&next, m.paths.image()).map_err(io("putting the disk back"))
        };
        let state = dir.join("state");
        if state.exists() {
            restore_checked(&self.runsc, m, &mut rt, &state, put_disk_back).await
        } else {
            put_disk_back()?;
            launch(&self.runsc, m, &mut rt, None).await
        }
    }

    pub(super) async fn delete_checkpoint_of(&self, m: &Machine, cid: &CheckpointId) -> Result<()> {
        let _rt = m.rt.lock().await;
        let dir = m.paths.checkpoint(cid);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(DriverError::backend("removing the checkpoint", e))
            }
            _ => Ok(()),
        }
    }
}

/// Removes what a crash mid-checkpoint or mid-restore left in a machine's directory:
/// a checkpoint still being built (`checkpoints/<id>.tmp`, never listed or restorable)
/// and a disk copy being put back (`disk.img.restore`; the rename that would have used
/// it never happened, so `disk.img` is still the machine's disk). Called when a
/// starting driver finds the machine, before anything can be in flight.
pub(super) fn sweep_half_made(paths: &Paths) {
    let restore = paths.image().with_extension("img.restore");
    let mut left: Vec<std::path::PathBuf> = vec![restore];
    if let Ok(entries) = std::fs::read_dir(paths.checkpoints()) {
        left.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|ext| ext == "tmp")),
        );
    }
    for path in left.into_iter().filter(|p| p.exists()) {
        tracing::warn!(path = %path.display(), "removing what a crash left half-made");
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(error) = removed {
            tracing::error!(path = %path.display(), %error, "could not remove a half-made copy");
        }
    }
}

/// Whether the checkpoint whose `state/` is at `image` was completed (renamed into place).
fn copied_ok(image: &Path) -> bool {
    image
        .parent()
        .and_then(|p| p.extension())
        .map(|ext| ext != "tmp")
        .unwrap_or(true)
}
