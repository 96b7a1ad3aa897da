//! Connections into a sprite's ports (its URL, tunnels): wake an idle sprite, wait for
//! its port to accept, explain every reason it cannot, and keep it awake while a
//! connection is open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm_driver::{DriverError, EgressStream};

use super::{driver_error, machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::{PauseReason, SpriteState};

/// How often a woken sprite's port is tried until it accepts.
const RETRY: Duration = Duration::from_millis(20);

/// A connection into a sprite, and the hold that keeps the sprite awake while it is
/// open.
pub struct Opened {
    /// The bytes to and from the port.
    pub stream: Box<dyn EgressStream>,
    /// Keeps the sprite from idling until dropped.
    pub hold: Holding,
    /// The sprite was paused and woke for this connection.
    pub woke: bool,
}

/// Marks a sprite busy (not idle) while it lives; when the last hold ends the idle
/// timer starts again from that moment.
pub struct Holding {
    sprites: Arc<Sprites>,
    id: i64,
}

impl Drop for Holding {
    fn drop(&mut self) {
        if self.sprites.release(self.id) && self.sprites.touch_due(self.id) {
            let pool = self.sprites.pool.clone();
            let id = self.id;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = db::sprites::touch(&pool, id, "http", db::now_s()).await;
                });
            }
        }
    }
}

/// Whether a connection may be made into the sprite (`Ok(true)`: after waking it),
/// or why not: paused for money (402), by its owner or a limit (503), not there (404).
pub fn reachable(sprite: &SpriteRow) -> Result<bool, ApiError> {
    Ok(match (sprite.state, sprite.pause_reason) {
        (SpriteState::Running, _) => false,
        (SpriteState::Paused, Some(PauseReason::Idle)) | (SpriteState::Stopped, _) => true,
        (SpriteState::Paused, Some(reason @ (PauseReason::Budget | PauseReason::Billing))) => {
            return Err(ApiError::BudgetExhausted(format!(
                "sprite {:?} is paused ({reason}): {}",
                sprite.name,
                match reason {
                    PauseReason::Billing => "billing stopped it; settle the account to run it again",
                    _ => "the spend cap leaves too little to run it; raise the cap or wait for the next period",
                }
            )))
        }
        (SpriteState::Paused, reason) => {
            return Err(ApiError::Unavailable(format!(
                "sprite {:?} is paused ({}); its owner must resume it",
                sprite.name,
                reason.unwrap_or(PauseReason::User)
            )))
        }
        (SpriteState::Creating, _) => {
            return Err(ApiError::Unavailable(format!(
                "sprite {:?} is still being created; try again in a moment",
                sprite.name
            )))
        }
        (state, _) => {
            return Err(ApiError::not_found(format!(
                "sprite {:?} ({state})",
                sprite.name
            )))
        }
    })
}

impl Sprites {
    /// Holds the sprite awake until the returned guard drops.
    pub fn hold(self: &Arc<Self>, id: i64) -> Holding {
        *self.busy.lock().expect("busy").entry(id).or_default() += 1;
        Holding {
            sprites: self.clone(),
            id,
        }
    }

    /// Whether the sprite's activity is due to be written (once a second at most).
    fn touch_due(&self, id: i64) -> bool {
        let now = db::now_s();
        let mut touched = self.touched.lock().expect("touched");
        if touched.len() > 100_000 {
            touched.clear();
        }
        touched.insert(id, now) != Some(now)
    }

    /// Ends one hold; `true` when it was the last one.
    fn release(&self, id: i64) -> bool {
        let mut busy = self.busy.lock().expect("busy");
        match busy.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                busy.remove(&id);
                true
            }
            None => false,
        }
    }

    /// A connection to `port` in `sprite`: wakes it when it idles (waiting up to `wait`
    /// for the port to accept), refuses with the reason when it may not run.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name, port))]
    pub async fn open_port(
        self: &Arc<Self>,
        sprite: &SpriteRow,
        port: u16,
        wait: Duration,
    ) -> Result<Opened, ApiError> {
        self.until_started().await;
        let hold = self.hold(sprite.id);
        let asleep = reachable(sprite)?;
        if asleep {
            self.resume(sprite, "http").await?;
        } else {
            // Activity: a request is work, whatever it does.
            db::sprites::touch(&self.pool, sprite.id, "http", db::now_s()).await?;
        }
        let id = machine(sprite);
        let deadline = Instant::now() + wait;
        loop {
            match self.driver.dial(&id, port).await {
                Ok(stream) => {
                    return Ok(Opened {
                        stream,
                        hold,
                        woke: asleep,
                    })
                }
                // A woken sprite's server may still be coming back: try until the wait
                // is over. A running one with nothing on the port answers at once.
                Err(DriverError::Refused(_)) if asleep && Instant::now() + RETRY < deadline => {
                    tokio::time::sleep(RETRY).await;
                }
                Err(DriverError::Refused(why)) => {
                    return Err(ApiError::BadGateway(format!(
                        "sprite {:?} runs, but nothing in it answers on port {port}: start a \
                         server there (e.g. `python3 -m http.server {port}`) or change the \
                         sprite's http_port ({why})",
                        sprite.name
                    )))
                }
                Err(error) => return Err(driver_error(error)),
            }
        }
    }
}
