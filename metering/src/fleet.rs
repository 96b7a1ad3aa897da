//! What the meter needs from the sprites service, as a trait the api crate implements:
//! the fleet, cheap usage samples, and pausing for budget.

use async_trait::async_trait;

/// A boxed error from the fleet's owner; the meter only logs it.
pub type FleetError = Box<dyn std::error::Error + Send + Sync>;

/// One sprite that exists (running or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSprite {
    /// `sprites.id`.
    pub sprite_id: i64,
    /// Its tenant.
    pub tenant_id: String,
    /// Its name (kept in the ledger for reports).
    pub name: String,
    /// The token that created it; its chain is looked up by the meter.
    pub created_by_token: Option<String>,
    /// Using CPU and memory now (not paused, not stopped).
    pub running: bool,
    /// vCPUs: the declared worst case of CPU.
    pub cpus: u32,
    /// Memory limit in MiB: the declared worst case of memory.
    pub memory_mb: u32,
    /// The most it may store: its whole disk plus its checkpoints. The rule reserves
    /// this (not just what is stored now) to the period's end, so writing to the disk,
    /// however fast, can never commit a scope past its cap.
    pub reserve_bytes: u64,
    /// Its bandwidth through the way out, bytes per second: the declared worst case of
    /// network (0 for what cannot move bytes).
    pub network_bytes_per_s: u64,
}

/// Cumulative usage of one sprite, as the driver reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time since the machine started (restarts at 0 when it is started again).
    pub cpu_ns: u64,
    /// Memory in use now, bytes.
    pub memory_bytes: u64,
    /// Bytes stored now: its disk plus its checkpoints.
    pub disk_bytes: u64,
    /// Bytes moved through the way out, both ways, since the server started (restarts
    /// at 0 with it).
    pub network_bytes: u64,
}

/// The sprites service, as the meter sees it.
#[async_trait]
pub trait Fleet: Send + Sync {
    /// Every sprite that exists (running or not).
    async fn sprites(&self) -> Result<Vec<FleetSprite>, FleetError>;
    /// Cumulative usage of one sprite (cheap: pread on open cgroup files); `None` when
    /// it cannot be read now (the tick then bills it nothing and keeps its baseline).
    fn sample(&self, sprite_id: i64) -> Option<Sample>;
    /// Pause these sprites now, with `pause_reason: budget`.
    async fn pause_for_budget(&self, sprite_ids: &[i64]);
    /// Pause these sprites now, with `pause_reason: billing` (their tenant's credit, or
    /// a payment, stops them). Pauses for budget by default.
    async fn pause_for_billing(&self, sprite_ids: &[i64]) {
        self.pause_for_budget(sprite_ids).await;
    }
    /// Called after every tick that was recorded and enforced: the owner may now let
    /// run what it held frozen until the meter had billed the outage and applied the
    /// rule (at start-up). Does nothing by default.
    async fn metered(&self) {}
}
