//! The meter's view of the sprites service: every live sprite, cheap usage samples
//! from the driver (disk plus checkpoints), every stored tenant image (disk alone, as
//! ledger item `-images.id`), pausing for budget, and thawing what start-up
//! reconciliation froze once the first tick has billed the outage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use corral_metering::{Fleet, FleetError, FleetSprite, Sample};
use vmm_driver::MachineId;

use crate::db::sprites::SpriteRow;
use crate::names::{PauseReason, SpriteState};
use crate::sprites::{machine, Sprites};

/// What `sample` and `pause_for_budget` need between listings.
struct Known {
    row: SpriteRow,
    machine: MachineId,
    checkpoint_bytes: u64,
}

/// [`Fleet`] over the sprites service and its driver.
pub struct SpritesFleet {
    sprites: Arc<Sprites>,
    /// The way out, whose connections a budget pause closes.
    egress: Option<Arc<crate::egress::Gateway>>,
    known: Mutex<HashMap<i64, Known>>,
    /// Stored tenant images by ledger item id (`-images.id`): their bytes.
    images: Mutex<HashMap<i64, u64>>,
    /// Whether the sprites frozen at start-up have been let run again.
    thawed: AtomicBool,
}

impl SpritesFleet {
    /// A fleet over `sprites`, whose connections go through `egress`.
    pub fn new(sprites: Arc<Sprites>, egress: Option<Arc<crate::egress::Gateway>>) -> Self {
        Self {
            sprites,
            egress,
            known: Mutex::default(),
            images: Mutex::default(),
            thawed: AtomicBool::new(false),
        }
    }

    /// Pauses these sprites at once with `reason`.
    async fn pause_all(&self, sprite_ids: &[i64], reason: PauseReason) {
        let rows: Vec<SpriteRow> = {
            let known = self.known.lock().expect("fleet");
            sprite_ids
                .iter()
                .filter_map(|id| known.get(id).map(|k| k.row.clone()))
                .collect()
        };
        // All at once: the rule gave the whole scope one pause latency, not one each.
        // Their connections close with them: a frozen sprite reads nothing, and its
        // downloads must not go on filling the way out.
        if let Some(egress) = &self.egress {
            for row in &rows {
                egress.cut_all(row.id);
            }
        }
        let pauses = rows.iter().map(|row| async move {
            if let Err(error) = self.sprites.pause(row, reason).await {
                tracing::warn!(sprite = row.id, tenant = %row.tenant_id, %error, %reason, "pause for money failed");
            }
        });
        futures_util::future::join_all(pauses).await;
    }
}

/// Whether a sprite may be using CPU and memory: a sprite being created counts, so the
/// rule's worst case includes it from its first moment.
fn may_run(state: SpriteState) -> bool {
    matches!(state, SpriteState::Running | SpriteState::Creating)
}

/// The most a sprite's disk may hold: what the rule reserves for it.
pub fn disk_bytes(disk_mb: i64) -> u64 {
    u64::try_from(disk_mb).unwrap_or(0).saturating_mul(1 << 20)
}

#[async_trait]
impl Fleet for SpritesFleet {
    async fn sprites(&self) -> Result<Vec<FleetSprite>, FleetError> {
        // Sprites and images at once, on separate connections: the tick waits for both.
        let (rows, images) = tokio::join!(
            self.sprites.live_with_checkpoints(),
            self.sprites.stored_images()
        );
        let (rows, images) = (rows?, images?);
        let mut fleet: Vec<FleetSprite> = rows
            .iter()
            .map(|(row, checkpoint_bytes)| FleetSprite {
                sprite_id: row.id,
                tenant_id: row.tenant_id.0.clone(),
                name: row.name.clone(),
                created_by_token: row.created_by_token.clone(),
                running: may_run(row.state),
                cpus: u32::try_from(row.cpus).unwrap_or(u32::MAX),
                memory_mb: u32::try_from(row.memory_mb).unwrap_or(u32::MAX),
                reserve_bytes: disk_bytes(row.disk_mb).saturating_add(*checkpoint_bytes),
                network_bytes_per_s: self
                    .egress
                    .as_ref()
                    .map_or(0, |e| e.bytes_per_s(row.network_mbps)),
            })
            .collect();
        // A stored image costs what its bytes cost, to the token that saved it.
        fleet.extend(images.iter().map(|image| FleetSprite {
            sprite_id: -image.id,
            tenant_id: image.tenant_id.0.clone(),
            name: format!("image:{}", image.name),
            created_by_token: image.created_by_token.clone(),
            running: false,
            cpus: 0,
            memory_mb: 0,
            reserve_bytes: u64::try_from(image.size_bytes).unwrap_or(0),
            network_bytes_per_s: 0,
        }));
        *self.images.lock().expect("fleet") = images
            .iter()
            .map(|i| (-i.id, u64::try_from(i.size_bytes).unwrap_or(0)))
            .collect();
        let known = rows
            .into_iter()
            .map(|(row, checkpoint_bytes)| {
                let entry = Known {
                    machine: machine(&row),
                    checkpoint_bytes,
                    row,
                };
                (entry.row.id, entry)
            })
            .collect();
        *self.known.lock().expect("fleet") = known;
        Ok(fleet)
    }

    fn sample(&self, sprite_id: i64) -> Option<Sample> {
        if sprite_id < 0 {
            let bytes = *self.images.lock().expect("fleet").get(&sprite_id)?;
            return Some(Sample {
                disk_bytes: bytes,
                ..Sample::default()
            });
        }
        let known = self.known.lock().expect("fleet");
        let entry = known.get(&sprite_id)?;
        let usage = self.sprites.driver().usage(&entry.machine).ok()?;
        self.sprites.record_disk(sprite_id, usage.disk_bytes);
        Some(Sample {
            network_bytes: self.egress.as_ref().map_or(0, |e| e.moved(sprite_id)),
            cpu_ns: usage.cpu_ns,
            memory_bytes: usage.memory_bytes,
            disk_bytes: usage.disk_bytes.saturating_add(entry.checkpoint_bytes),
        })
    }

    async fn pause_for_budget(&self, sprite_ids: &[i64]) {
        self.pause_all(sprite_ids, PauseReason::Budget).await;
    }

    async fn pause_for_billing(&self, sprite_ids: &[i64]) {
        self.pause_all(sprite_ids, PauseReason::Billing).await;
    }

    async fn metered(&self) {
        if self.thawed.swap(true, Ordering::SeqCst) {
            return;
        }
        match self.sprites.thaw_after_start().await {
            Ok(thawed) => tracing::info!(thawed, "first tick metered: frozen sprites run again"),
            Err(error) => {
                // Try again after the next tick.
                self.thawed.store(false, Ordering::SeqCst);
                tracing::warn!(%error, "could not thaw the sprites frozen at start");
            }
        }
    }
}
