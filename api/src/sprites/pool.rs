//! The warm pool: machines made ahead per shape (image, CPUs, memory, disk), their disk,
//! overlay and sandbox ready, then paused; a create of that shape takes one and resumes
//! it, and the pool is refilled in the background. A pool machine is no sprite: it has
//! no row, so it is never billed, never counted in a tenant's limits, and it has never
//! run tenant code (each is made new and handed out once).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use vmm_driver::{DriverError, ExecRequest, ImageRef, MachineId, MachineSpec};

use super::Sprites;
use crate::config::Config;
use crate::db::{self, sprites::SpriteRow};

/// What a machine is made of, as far as handing it to a create goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// An operator image's name (tenants' images are never pooled).
    pub image: String,
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
}

impl Shape {
    /// The shape of a sprite about to be made; `None` for a tenant image's.
    pub fn of(row: &SpriteRow) -> Option<Self> {
        row.image_id.is_none().then(|| Self {
            image: row.image.clone(),
            cpus: row.cpus,
            memory_mb: row.memory_mb,
            disk_mb: row.disk_mb,
        })
    }

    fn label(&self) -> String {
        format!(
            "shape=\"{}:{}:{}:{}\"",
            self.image, self.cpus, self.memory_mb, self.disk_mb
        )
    }
}

/// Parses `CORRAL_WARM_POOL`: `N` (of the default shape) or `image:cpus:memory_mb:disk_mb=N`,
/// comma-separated; a size of 0 leaves the shape out.
pub fn parse(raw: &str, config: &Config) -> Result<Vec<(Shape, usize)>, String> {
    let mut targets = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad =
            || format!("CORRAL_WARM_POOL: {entry:?} is not N or image:cpus:memory_mb:disk_mb=N");
        let (shape, size) = match entry.split_once('=') {
            None => (
                Shape {
                    image: config.default_image.clone(),
                    cpus: config.default_cpus.into(),
                    memory_mb: config.default_memory_mb as i64,
                    disk_mb: config.default_disk_mb as i64,
                },
                entry,
            ),
            Some((shape, size)) => {
                let parts: Vec<&str> = shape.split(':').collect();
                let [image, cpus, memory_mb, disk_mb] = parts[..] else {
                    return Err(bad());
                };
                let number = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
                let shape = Shape {
                    image: image.trim().to_string(),
                    cpus: number(cpus)?,
                    memory_mb: number(memory_mb)?,
                    disk_mb: number(disk_mb)?,
                };
                (shape, size)
            }
        };
        let size: usize = size.trim().parse().map_err(|_| bad())?;
        if size > 0 {
            targets.push((shape, size));
        }
    }
    Ok(targets)
}

/// The machines ready to hand out, and how many creates each kind served.
#[derive(Default)]
pub struct WarmPool {
    targets: Mutex<Vec<(Shape, usize)>>,
    ready: Mutex<HashMap<Shape, VecDeque<MachineId>>>,
    /// Wakes the filler when a machine was taken.
    taken: Notify,
    pub(super) warm_creates: AtomicU64,
    pub(super) cold_creates: AtomicU64,
}

impl WarmPool {
    fn take(&self, shape: &Shape) -> Option<MachineId> {
        let id = self
            .ready
            .lock()
            .expect("pool")
            .get_mut(shape)
            .and_then(VecDeque::pop_front);
        if id.is_some() {
            self.taken.notify_one();
        }
        id
    }

    fn add(&self, shape: Shape, id: MachineId) {
        self.ready
            .lock()
            .expect("pool")
            .entry(shape)
            .or_default()
            .push_back(id);
    }

    /// The first shape with fewer machines ready than its target.
    fn short(&self) -> Option<Shape> {
        let ready = self.ready.lock().expect("pool");
        self.targets
            .lock()
            .expect("pool")
            .iter()
            .find(|(shape, size)| ready.get(shape).map_or(0, VecDeque::len) < *size)
            .map(|(shape, _)| shape.clone())
    }

    /// Appends the pool's gauges and counters in Prometheus text.
    pub fn render(&self, out: &mut String) {
        let ready = self.ready.lock().expect("pool");
        let labels: Vec<(String, u64)> = self
            .targets
            .lock()
            .expect("pool")
            .iter()
            .map(|(shape, _)| {
                (
                    shape.label(),
                    ready.get(shape).map_or(0, |q| q.len() as u64),
                )
            })
            .collect();
        let samples: Vec<(&str, u64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        crate::metrics::gauge(
            out,
            "corral_warm_pool_ready",
            "Machines made ahead and ready to hand out, by shape.",
            &samples,
        );
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP corral_sprite_creates_total Sprites created, by where their machine came from.\n\
             # TYPE corral_sprite_creates_total counter\n\
             corral_sprite_creates_total{{machine=\"pool\"}} {}\n\
             corral_sprite_creates_total{{machine=\"cold\"}} {}",
            self.warm_creates.load(Ordering::Relaxed),
            self.cold_creates.load(Ordering::Relaxed)
        );
    }
}

/// How long the filler waits after a machine could not be made, doubled after each
/// failure in a row up to [`RETRY_MAX`] (an image not built yet must not fill the log).
const RETRY_AFTER: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

impl Sprites {
    /// Sets how many machines of each shape are kept ready.
    pub fn configure_pool(&self, targets: Vec<(Shape, usize)>) {
        *self.warm.targets.lock().expect("pool") = targets;
    }

    /// The warm pool (for `/metrics`).
    pub fn warm_pool(&self) -> &WarmPool {
        &self.warm
    }

    /// A ready machine of this shape, counted from zero from now on: the CPU it used
    /// while being made is nobody's.
    pub(super) fn take_pooled(&self, shape: &Shape) -> Option<MachineId> {
        loop {
            let id = self.warm.take(shape)?;
            match self.driver.restart_usage(&id) {
                Ok(()) => return Some(id),
                Err(error) => {
                    tracing::warn!(machine = %id, %error, "a pool machine is not usable; dropping it");
                    let driver = self.driver.clone();
                    tokio::spawn(async move { driver.destroy(&id).await });
                }
            }
        }
    }

    /// Removes every ready machine: on a clean stop, so no paused sandbox outlives the
    /// server that made it (the next start makes new ones).
    pub async fn empty_pool(&self) -> usize {
        let ids: Vec<MachineId> = std::mem::take(&mut *self.warm.ready.lock().expect("pool"))
            .into_values()
            .flatten()
            .collect();
        for id in &ids {
            if let Err(error) = self.driver.destroy(id).await {
                tracing::warn!(machine = %id, %error, "could not remove a pool machine");
            }
        }
        ids.len()
    }

    /// Gives a machine back when its create was refused before it was handed over.
    pub(super) fn return_pooled(&self, shape: Shape, id: MachineId) {
        self.warm.add(shape, id);
    }

    /// Makes one machine of `shape`: created, started, checked to answer (so its agent
    /// is up before it is offered), then paused.
    async fn make_pooled(&self, shape: &Shape) -> Result<MachineId, DriverError> {
        let spec = MachineSpec {
            id: MachineId::from_key(db::sprites::fresh_id() as u64),
            image: ImageRef::Operator(shape.image.clone()),
            cpus: u32::try_from(shape.cpus).unwrap_or(1),
            memory_mb: u64::try_from(shape.memory_mb).unwrap_or(0),
            disk_mb: u64::try_from(shape.disk_mb).unwrap_or(0),
        };
        let made = async {
            self.driver.create(&spec).await?;
            self.driver.start(&spec.id).await?;
            let probe = ExecRequest {
                argv: vec!["true".into()],
                timeout: Some(Duration::from_secs(10)),
                ..Default::default()
            };
            let out = self.driver.exec(&spec.id, probe).await?;
            if out.exit_code != 0 {
                return Err(DriverError::InvalidState(format!(
                    "a new machine's probe exited {}",
                    out.exit_code
                )));
            }
            self.driver.pause(&spec.id).await
        }
        .await;
        match made {
            Ok(()) => Ok(spec.id),
            Err(error) => {
                let _ = self.driver.destroy(&spec.id).await;
                Err(error)
            }
        }
    }
}

/// Keeps the pool full until shutdown: one machine at a time (the host's cores serve
/// tenants' creates first), woken when a machine is taken.
pub async fn filler(sprites: Arc<Sprites>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut retry = RETRY_AFTER;
    loop {
        let mut pause = Duration::from_secs(30);
        while let Some(shape) = sprites.warm.short() {
            if *stop.borrow() {
                return Ok(());
            }
            match sprites.make_pooled(&shape).await {
                Ok(id) => {
                    tracing::debug!(machine = %id, ?shape, "pool machine ready");
                    sprites.warm.add(shape, id);
                    retry = RETRY_AFTER;
                }
                Err(error) => {
                    tracing::warn!(?shape, %error, ?retry, "could not make a pool machine");
                    pause = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    break;
                }
            }
        }
        tokio::select! {
            _ = sprites.warm.taken.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}
