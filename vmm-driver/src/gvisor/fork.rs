//! Forking a machine: a checkpoint of the source (memory, processes and disk) restored
//! into a new machine, which runs on beside the source.

use std::path::Path;
use std::sync::Arc;

use tracing::{instrument, warn};

use super::lifecycle::validate;
use super::machine::{Machine, Meta, Paths};
use super::sandbox::{launch, restore_checked};
use super::Gvisor;
use crate::{CheckpointId, DriverError, MachineSpec, Result};

impl Gvisor {
    /// Checkpoints `src`, makes the new machine from the checkpoint's disk and memory,
    /// and removes the checkpoint once the source is back as it was.
    #[instrument(skip_all, fields(source = %src.id, machine = %spec.id))]
    pub(super) async fn fork_machine(&self, src: &Arc<Machine>, spec: &MachineSpec) -> Result<()> {
        validate(spec)?;
        if self.get(&spec.id).is_ok() {
            return Err(DriverError::InvalidState(format!(
                "machine {} exists",
                spec.id
            )));
        }
        let cid = CheckpointId::for_fork(&spec.id);
        self.checkpoint_machine(src, &cid).await?;
        let made = self.make_fork(src, spec, &src.paths.checkpoint(&cid)).await;
        // Waits for the source to be back (its restore holds its lock).
        if let Err(error) = self.delete_checkpoint_of(src, &cid).await {
            warn!(%error, "could not remove the fork's checkpoint");
        }
        made
    }

    async fn make_fork(&self, src: &Machine, spec: &MachineSpec, checkpoint: &Path) -> Result<()> {
        let paths = Paths::new(&self.machines_dir, &spec.id);
        let meta = Meta {
            cpus: spec.cpus,
            memory_mb: spec.memory_mb,
            disk_mb: src.meta.disk_mb,
            base: src.meta.base.clone(),
            layers: src.meta.layers.clone(),
        };
        let disk = checkpoint.join("disk.img");
        let machine = self.new_machine(&spec.id, paths, meta, Some(&disk)).await?;
        let started = {
            let mut rt = machine.rt.lock().await;
            let memory = checkpoint.join("state");
            if memory.exists() {
                restore_checked(&self.runsc, &machine, &mut rt, &memory, || Ok(())).await
            } else {
                // The source was stopped: so is its fork's first boot, from the disk.
                launch(&self.runsc, &machine, &mut rt, None).await
            }
        };
        if let Err(e) = started {
            let _ = self.destroy_machine(&spec.id).await;
            return Err(e);
        }
        Ok(())
    }
}
