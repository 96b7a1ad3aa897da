//! The sprites service: the state machine between HTTP and the driver, persisted in
//! SQLite so the database and the sandboxes agree after any crash.

mod checkpoints;
mod exec;
pub mod export;
mod fork;
pub mod idle;
pub mod images;
pub mod lifecycle;
pub mod limits;
pub mod oci;
pub mod pool;
pub mod ports;
mod reach;
mod reconcile;
mod recover;
pub mod settings;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;
use vmm_driver::{Driver, DriverError, MachineId, MachineSpec};

use crate::config::Config;
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::TenantId;

pub use exec::{check_tty, ExecParams};

/// Sprites over one driver.
pub struct Sprites {
    pool: SqlitePool,
    driver: Arc<dyn Driver>,
    config: Arc<Config>,
    /// One lock per sprite: state changes (pause, resume, delete, checkpoint,
    /// restore) never interleave.
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// One lock per tenant: admission (limits, budget) is checked and taken atomically.
    admission: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Work in flight per sprite (exec, files, console): a busy sprite is not idle.
    busy: Mutex<HashMap<i64, usize>>,
    /// When each sprite's activity was last written by a connection into it (at most
    /// once a second, so a busy URL does not write the database per request).
    touched: Mutex<HashMap<i64, i64>>,
    /// Decides whether spending allows a sprite to run (metering's hard cap).
    gate: Arc<dyn BudgetGate>,
    /// Disk bytes seen by the latest metering sample of each sprite, so listing many
    /// sprites costs no system call per sprite.
    disk_seen: Mutex<HashMap<i64, u64>>,
    /// False from a start that froze running sprites until the meter's first tick has
    /// billed the outage and thawed them; calls on sprites wait for it.
    started: tokio::sync::watch::Sender<bool>,
    /// Tenants' secrets: every command gets their placeholders.
    secrets: std::sync::OnceLock<Arc<crate::egress::secrets::Secrets>>,
    /// Where sprites' URLs point.
    front: std::sync::OnceLock<Arc<crate::ingress::FrontDoor>>,
    /// Machines made ahead for creates.
    warm: pool::WarmPool,
}

/// Longest a call waits for the sprites frozen at start to be thawed.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the budget allows a sprite to (keep) running; implemented by metering.
#[async_trait::async_trait]
pub trait BudgetGate: Send + Sync {
    /// Refuses with 402 when the sprite could not run for the minimum runway.
    async fn allow_run(&self, sprite: &SpriteRow) -> Result<(), ApiError>;

    /// Why a new sprite of the default size would be refused for the tenant now (the
    /// budget page's "stopped"), or `None` when it would start. Nothing is admitted.
    async fn start_refusal(&self, tenant_id: &TenantId) -> Result<Option<ApiError>, ApiError>;
}

/// A gate that lets everything run (no metering configured).
pub struct NoGate;

#[async_trait::async_trait]
impl BudgetGate for NoGate {
    async fn allow_run(&self, _: &SpriteRow) -> Result<(), ApiError> {
        Ok(())
    }

    async fn start_refusal(&self, _: &TenantId) -> Result<Option<ApiError>, ApiError> {
        Ok(None)
    }
}

/// The machine id of a sprite.
pub fn machine(sprite: &SpriteRow) -> MachineId {
    MachineId::from_key(sprite.id as u64)
}

/// What a sprite's machine is made of.
pub fn spec_of(sprite: &SpriteRow) -> MachineSpec {
    MachineSpec {
        id: machine(sprite),
        image: images::image_ref(sprite),
        cpus: sprite.cpus as u32,
        memory_mb: sprite.memory_mb as u64,
        disk_mb: sprite.disk_mb as u64,
    }
}

impl Sprites {
    /// A service over `driver`.
    pub fn new(
        pool: SqlitePool,
        driver: Arc<dyn Driver>,
        config: Arc<Config>,
        gate: Arc<dyn BudgetGate>,
    ) -> Self {
        Self {
            pool,
            driver,
            config,
            locks: Mutex::default(),
            admission: Mutex::default(),
            busy: Mutex::default(),
            touched: Mutex::default(),
            gate,
            disk_seen: Mutex::default(),
            started: tokio::sync::watch::Sender::new(true),
            secrets: std::sync::OnceLock::new(),
            front: std::sync::OnceLock::new(),
            warm: pool::WarmPool::default(),
        }
    }

    /// Where tenants' secrets are (their placeholders go into every command).
    pub fn set_secrets(&self, secrets: Arc<crate::egress::secrets::Secrets>) {
        let _ = self.secrets.set(secrets);
    }

    /// Why a new sprite of the default size would be refused for the tenant now.
    pub async fn start_refusal(&self, tenant_id: &TenantId) -> Result<Option<ApiError>, ApiError> {
        self.gate.start_refusal(tenant_id).await
    }

    /// Where sprites' URLs point (shown in their views).
    pub fn set_front(&self, front: Arc<crate::ingress::FrontDoor>) {
        let _ = self.front.set(front);
    }

    /// `CORRAL_SECRET_<NAME>` placeholders of the tenant's secrets.
    pub(crate) async fn secret_env(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Vec<(String, String)>, ApiError> {
        match self.secrets.get() {
            Some(secrets) => secrets.env(tenant_id).await,
            None => Ok(Vec::new()),
        }
    }

    /// Waits (at most [`START_WAIT`]) until the sprites frozen at start run again: a
    /// call right after a restart finds its sprite as it left it, not frozen.
    pub(crate) async fn until_started(&self) {
        let mut started = self.started.subscribe();
        if *started.borrow() {
            return;
        }
        if tokio::time::timeout(START_WAIT, started.wait_for(|s| *s))
            .await
            .is_err()
        {
            tracing::warn!("sprites frozen at start are still not thawed; going on");
        }
    }

    /// Remembers the disk bytes a metering sample saw.
    pub fn record_disk(&self, id: i64, disk_bytes: u64) {
        self.disk_seen
            .lock()
            .expect("disk_seen")
            .insert(id, disk_bytes);
    }

    /// Disk bytes in use: as of the last metering tick, or read now when none has seen it.
    pub fn disk_used(&self, sprite: &SpriteRow) -> u64 {
        let seen = self
            .disk_seen
            .lock()
            .expect("disk_seen")
            .get(&sprite.id)
            .copied();
        seen.or_else(|| {
            self.driver
                .usage(&machine(sprite))
                .ok()
                .map(|u| u.disk_bytes)
        })
        .unwrap_or(0)
    }

    /// Every live sprite of every tenant with the bytes its checkpoints hold (what the
    /// meter lists each tick).
    pub async fn live_with_checkpoints(&self) -> sqlx::Result<Vec<(SpriteRow, u64)>> {
        // Both at once, on two connections: the meter's tick waits for this.
        let (rows, bytes) = tokio::join!(
            db::sprites::all_live(&self.pool),
            db::sprites::live_checkpoint_bytes(&self.pool)
        );
        let rows = rows?;
        let bytes: HashMap<i64, u64> = bytes?
            .into_iter()
            .map(|(id, bytes)| (id, u64::try_from(bytes).unwrap_or(0)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let held = bytes.get(&row.id).copied().unwrap_or(0);
                (row, held)
            })
            .collect())
    }

    /// The driver underneath (for usage samples).
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    fn lock_of(&self, id: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("locks")
            .entry(id)
            .or_default()
            .clone()
    }

    fn admission_of(&self, tenant_id: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
        self.admission
            .lock()
            .expect("admission")
            .entry(tenant_id.to_string())
            .or_default()
            .clone()
    }

    /// Marks the sprite busy until the guard drops.
    fn busy(&self, id: i64) -> BusyGuard<'_> {
        *self.busy.lock().expect("busy").entry(id).or_default() += 1;
        BusyGuard { sprites: self, id }
    }

    fn is_busy(&self, id: i64) -> bool {
        self.busy
            .lock()
            .expect("busy")
            .get(&id)
            .is_some_and(|n| *n > 0)
    }
}

struct BusyGuard<'a> {
    sprites: &'a Sprites,
    id: i64,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.sprites.busy.lock().expect("busy");
        if let Some(n) = busy.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.id);
            }
        }
    }
}

/// Runs `work` to its end even when the caller stops waiting for it (the client went
/// away, or the request timed out): a state change is finished or undone, never left
/// half-made (a create abandoned mid-way once stayed `creating` for good).
pub async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(work).await {
        Ok(out) => out,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("sprite work was cancelled: {error}"),
    }
}

/// The 503 of a server whose sandbox backend cannot run here, naming why.
pub fn unavailable(problem: Option<&str>) -> ApiError {
    ApiError::Unavailable(format!(
        "sprites are unavailable on this server: {}",
        problem.unwrap_or("no backend")
    ))
}

/// A driver failure as the caller should see it.
pub fn driver_error(error: DriverError) -> ApiError {
    match error {
        DriverError::NotFound(what) => ApiError::NotFound(what),
        DriverError::InvalidState(why) => ApiError::Conflict(why),
        DriverError::Invalid(why) => ApiError::Validation(why),
        DriverError::DiskFull => ApiError::Conflict("the sprite's disk is full".into()),
        DriverError::Unavailable(why) => ApiError::Unavailable(why),
        DriverError::Refused(why) => ApiError::BadGateway(why),
        other => ApiError::Internal(anyhow::Error::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::to_completion;

    #[tokio::test]
    async fn work_goes_on_when_its_caller_stops_waiting() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let caller = to_completion(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        // The caller gives up (a client hung up, a request timed out) mid-way.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), caller).await;
        assert!(gave_up.is_err());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            done.load(Ordering::SeqCst),
            "the work was dropped with its caller"
        );
    }
}
