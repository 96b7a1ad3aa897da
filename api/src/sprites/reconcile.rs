//! Reconciliation at start: sprites the database knows are brought to their recorded
//! state (running ones held frozen until the meter's first tick), sandboxes it does not
//! know are removed, vanished sandboxes are reported, and checkpoints a crash left
//! half-made are removed (the driver sweeps their files).

use std::collections::HashMap;

use vmm_driver::{CheckpointId, MachineState};

use super::{machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::names::SpriteState;

/// What reconciliation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Sprites whose sandbox was brought back to the recorded state.
    pub repaired: usize,
    /// Sandboxes nobody owns any more, removed.
    pub orphans_removed: usize,
    /// Sprites whose sandbox vanished, now marked `lost`.
    pub lost: usize,
    /// Creations or deletions a crash interrupted, finished.
    pub finished: usize,
    /// Checkpoints a crash interrupted (never answered, size 0), removed.
    pub half_made_checkpoints: usize,
    /// Running sprites held frozen until the meter's first tick.
    pub frozen: usize,
}

impl Sprites {
    /// Makes the driver agree with the database.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile(&self) -> anyhow::Result<Reconciled> {
        let mut done = Reconciled::default();
        let machines: HashMap<_, _> = self
            .driver
            .list()
            .await?
            .into_iter()
            .map(|m| (m.id, m.state))
            .collect();
        let sprites = db::sprites::all_live(&self.pool).await?;
        let known: std::collections::HashSet<_> = sprites.iter().map(machine).collect();
        // Warm-pool machines the last run left are among these: no sprite owns them,
        // and the pool is made anew once the server runs. All at once: tearing down a
        // paused sandbox takes more than a second, and start-up waits for it.
        let orphans = machines.keys().filter(|id| !known.contains(*id)).map(|id| async move {
            tracing::warn!(machine = %id, "removing a sandbox no sprite owns (or a pool machine)");
            self.driver.destroy(id).await
        });
        for removed in futures_util::future::join_all(orphans).await {
            removed?;
            done.orphans_removed += 1;
        }
        for sprite in sprites {
            let found = machines.get(&machine(&sprite)).copied();
            // One sprite that cannot be brought back must not keep the server from
            // starting: it is left `stopped` (resume starts it), with the reason logged.
            if let Err(error) = self.reconcile_one(&sprite, found, &mut done).await {
                tracing::error!(sprite = %sprite.name, tenant = %sprite.tenant_id, error = ?error,
                    "could not reconcile the sprite; marked stopped");
                if !matches!(sprite.state, SpriteState::Creating | SpriteState::Deleting) {
                    db::sprites::set_state(&self.pool, sprite.id, SpriteState::Stopped, None)
                        .await?;
                }
            }
        }
        if done.frozen > 0 {
            // Calls on sprites wait for the thaw (`until_started`) instead of finding
            // their machines frozen.
            self.started.send_replace(false);
        }
        tracing::info!(?done, "reconciled sprites with the driver");
        Ok(done)
    }

    /// Brings one sprite's machine to its recorded state.
    async fn reconcile_one(
        &self,
        sprite: &SpriteRow,
        found: Option<MachineState>,
        done: &mut Reconciled,
    ) -> anyhow::Result<()> {
        let id = machine(sprite);
        {
            if found.is_some()
                && !matches!(sprite.state, SpriteState::Creating | SpriteState::Deleting)
            {
                done.half_made_checkpoints += self.drop_half_made_checkpoints(sprite).await?;
            }
            match (sprite.state, found) {
                (SpriteState::Creating, _) | (SpriteState::Deleting, _) => {
                    // Interrupted mid-way: finish by removing what exists.
                    self.driver.destroy(&id).await?;
                    db::sprites::mark_deleted(&self.pool, sprite.id, db::now_s()).await?;
                    tracing::warn!(sprite = %sprite.name, state = %sprite.state, "finished an interrupted change by deleting");
                    done.finished += 1;
                }
                (_, None) => {
                    if sprite.state != SpriteState::Lost {
                        tracing::error!(sprite = %sprite.name, tenant = %sprite.tenant_id, "the sprite's sandbox has vanished; marked lost");
                        db::sprites::set_state(&self.pool, sprite.id, SpriteState::Lost, None)
                            .await?;
                        done.lost += 1;
                    }
                }
                // Nothing runs before the meter's first tick has billed what ran while
                // Corral was down (the cgroup counters survive a crash) and applied the
                // rule: running sprites are frozen here and thawed by the meter
                // (`thaw_after_start`), those the rule paused for budget excepted.
                (SpriteState::Running, Some(MachineState::Running)) => {
                    if let Err(error) = self.driver.pause(&id).await {
                        // The sandbox stopped under the driver (a `runsc checkpoint` of
                        // the crashed server finishing late): start it again on its disk.
                        tracing::warn!(sprite = %sprite.name, %error,
                            "the sandbox would not freeze; restarting it on its disk");
                        let _ = self.driver.stop(&id).await;
                        self.driver.start(&id).await?;
                        self.driver.pause(&id).await?;
                        done.repaired += 1;
                    }
                    done.frozen += 1;
                }
                (SpriteState::Running, Some(MachineState::Paused)) => done.frozen += 1,
                (SpriteState::Paused, Some(MachineState::Paused)) => {}
                (SpriteState::Running, Some(MachineState::Stopped)) => {
                    self.driver.start(&id).await?;
                    done.repaired += 1;
                }
                (SpriteState::Paused, Some(MachineState::Running)) => {
                    self.driver.pause(&id).await?;
                    done.repaired += 1;
                }
                // A paused sprite whose sandbox stopped (a host restart) starts on resume.
                (SpriteState::Paused, Some(MachineState::Stopped))
                | (SpriteState::Lost, Some(_))
                | (SpriteState::Stopped, Some(_)) => {}
                (state, Some(found)) => {
                    tracing::warn!(sprite = %sprite.name, %state, ?found, "unexpected state left as it is");
                }
            }
        }
        Ok(())
    }
}

impl Sprites {
    /// Removes the sprite's checkpoints that a crash interrupted: the row is written
    /// with size 0 before the driver starts and sized once the checkpoint is complete,
    /// so a 0 is a checkpoint nobody was ever given. Its files go too (the driver has
    /// already swept a copy still being built; a finished one the answer never
    /// reached is deleted here), and the per-sprite limit counts only real ones.
    async fn drop_half_made_checkpoints(&self, sprite: &SpriteRow) -> anyhow::Result<usize> {
        let mut dropped = 0;
        for checkpoint in db::sprites::checkpoints(&self.pool, sprite.id).await? {
            if checkpoint.size_bytes > 0 {
                continue;
            }
            let cid = CheckpointId::from_key(checkpoint.id as u64);
            self.driver
                .delete_checkpoint(&machine(sprite), &cid)
                .await?;
            db::sprites::delete_checkpoint(&self.pool, sprite.id, checkpoint.id).await?;
            tracing::warn!(sprite = %sprite.name, checkpoint = checkpoint.id, "removed a checkpoint a crash left half-made");
            dropped += 1;
        }
        Ok(dropped)
    }
}

impl Sprites {
    /// Lets run again the sprites reconciliation froze at start, once the meter's first
    /// tick has billed the outage and paused for budget what no longer fits: every
    /// sprite still recorded `running` is resumed (resuming a running machine is a
    /// no-op).
    #[tracing::instrument(skip_all)]
    pub async fn thaw_after_start(&self) -> anyhow::Result<usize> {
        let mut thawed = 0;
        for sprite in db::sprites::all_live(&self.pool).await? {
            // Under the sprite's lock, on its state now: a pause that came first stays.
            let lock = self.lock_of(sprite.id);
            let _held = lock.lock().await;
            let Some(current) =
                db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id).await?
            else {
                continue;
            };
            if current.state != SpriteState::Running {
                continue;
            }
            match self.driver.resume(&machine(&current)).await {
                Ok(()) => thawed += 1,
                Err(error) => {
                    tracing::warn!(sprite = %current.name, %error, "could not thaw after start")
                }
            }
        }
        self.started.send_replace(true);
        Ok(thawed)
    }

    /// Freezes every running sprite's machine while Corral is down, so nothing runs
    /// unmetered; their recorded state stays `running` and the meter's first tick after
    /// the next start thaws them.
    #[tracing::instrument(skip_all)]
    pub async fn freeze_for_shutdown(&self) -> anyhow::Result<usize> {
        let mut frozen = 0;
        for sprite in db::sprites::all_live(&self.pool).await? {
            if sprite.state != SpriteState::Running {
                continue;
            }
            match self.driver.pause(&machine(&sprite)).await {
                Ok(()) => frozen += 1,
                Err(error) => {
                    tracing::warn!(sprite = %sprite.name, %error, "could not freeze for shutdown")
                }
            }
        }
        tracing::info!(frozen, "froze running sprites until the next start");
        Ok(frozen)
    }
}
