//! A fleet that replays recorded samples instead of reading cgroups: for the benchmark,
//! the crate's tests and anyone exercising the meter without machines.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::fleet::{Fleet, FleetError, FleetSprite, Sample};

#[derive(Default)]
struct Inner {
    sprites: BTreeMap<i64, (FleetSprite, Option<Sample>)>,
    paused: Vec<i64>,
    /// Paused for billing, in call order.
    billing: Vec<i64>,
    fail_listing: bool,
}

/// Sprites and their latest recorded samples; pausing for budget marks them stopped.
#[derive(Default)]
pub struct RecordedFleet {
    inner: Mutex<Inner>,
}

impl RecordedFleet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds or replaces a sprite, with no sample yet.
    pub fn insert(&self, sprite: FleetSprite) {
        self.lock().sprites.insert(sprite.sprite_id, (sprite, None));
    }

    /// Removes a sprite (deleted).
    pub fn remove(&self, sprite_id: i64) {
        self.lock().sprites.remove(&sprite_id);
    }

    /// Records the sample the next tick reads (`None`: unreadable).
    pub fn set_sample(&self, sprite_id: i64, sample: Option<Sample>) {
        if let Some(entry) = self.lock().sprites.get_mut(&sprite_id) {
            entry.1 = sample;
        }
    }

    /// Marks a sprite running or not.
    pub fn set_running(&self, sprite_id: i64, running: bool) {
        if let Some(entry) = self.lock().sprites.get_mut(&sprite_id) {
            entry.0.running = running;
        }
    }

    /// Whether a sprite is running.
    pub fn is_running(&self, sprite_id: i64) -> bool {
        self.lock()
            .sprites
            .get(&sprite_id)
            .is_some_and(|e| e.0.running)
    }

    /// Every sprite paused for budget so far, in call order.
    pub fn paused_for_budget(&self) -> Vec<i64> {
        self.lock().paused.clone()
    }

    /// Every sprite paused for billing so far, in call order.
    pub fn paused_for_billing(&self) -> Vec<i64> {
        self.lock().billing.clone()
    }

    /// Makes listing the fleet fail (an unreachable sprites service).
    pub fn fail_listing(&self, fail: bool) {
        self.lock().fail_listing = fail;
    }
}

#[async_trait]
impl Fleet for RecordedFleet {
    async fn sprites(&self) -> Result<Vec<FleetSprite>, FleetError> {
        let inner = self.lock();
        if inner.fail_listing {
            return Err("sprites service unavailable".into());
        }
        Ok(inner.sprites.values().map(|(s, _)| s.clone()).collect())
    }

    fn sample(&self, sprite_id: i64) -> Option<Sample> {
        self.lock().sprites.get(&sprite_id).and_then(|e| e.1)
    }

    async fn pause_for_budget(&self, sprite_ids: &[i64]) {
        let mut inner = self.lock();
        for id in sprite_ids {
            if let Some(entry) = inner.sprites.get_mut(id) {
                entry.0.running = false;
            }
        }
        inner.paused.extend_from_slice(sprite_ids);
    }

    async fn pause_for_billing(&self, sprite_ids: &[i64]) {
        let mut inner = self.lock();
        for id in sprite_ids {
            if let Some(entry) = inner.sprites.get_mut(id) {
                entry.0.running = false;
            }
        }
        inner.billing.extend_from_slice(sprite_ids);
    }
}
