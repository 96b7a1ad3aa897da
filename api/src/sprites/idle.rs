//! Idle pause: a sprite with no exec, file or console activity for its idle timeout is
//! paused with reason `idle`, and wakes on the next call. Busy is not idle: a sprite
//! whose processes used at least `idle_cpu_busy_pct` % of one vCPU over the last
//! `idle_cpu_window_s` seconds counts as active (its `last_activity` becomes `cpu`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::names::{PauseReason, SpriteState};

/// CPU readings `(unix s, cpu ns)` of the sprites near their idle deadline, oldest
/// first. Only sprites within one window of the deadline are read, so a fleet of idle
/// or busy sprites costs a reading per sprite per second only in that last window.
#[derive(Default)]
pub struct CpuWindow(HashMap<i64, VecDeque<(i64, u64)>>);

impl CpuWindow {
    fn add(&mut self, id: i64, now: i64, cpu_ns: u64, window_s: i64) {
        let readings = self.0.entry(id).or_default();
        // The machine was started again (its counter restarts from zero): begin anew.
        if readings.back().is_some_and(|&(_, last)| cpu_ns < last) {
            readings.clear();
        }
        readings.push_back((now, cpu_ns));
        while readings.front().is_some_and(|&(at, _)| now - at > window_s) {
            readings.pop_front();
        }
    }

    /// CPU use over the readings, in tenths of a percent of one vCPU; `None` until
    /// they span at least one second.
    fn permille(&self, id: i64) -> Option<u64> {
        let readings = self.0.get(&id)?;
        let (&(t0, c0), &(t1, c1)) = (readings.front()?, readings.back()?);
        let span_s = u64::try_from(t1 - t0).ok().filter(|s| *s > 0)?;
        Some((c1 - c0).saturating_mul(1000) / (span_s * 1_000_000_000))
    }

    fn forget(&mut self, id: i64) {
        self.0.remove(&id);
    }
}

impl Sprites {
    /// Pauses every running sprite idle past its timeout and not busy on its CPU;
    /// returns how many.
    pub async fn pause_idle(&self, cpu: &mut CpuWindow) -> anyhow::Result<usize> {
        let now = db::now_s();
        let busy_permille = u64::from(self.config.idle_cpu_busy_pct) * 10;
        let window_s = self.config.idle_cpu_window_s.max(1) as i64;
        let mut paused = 0;
        for sprite in db::sprites::all_live(&self.pool).await? {
            if sprite.state != SpriteState::Running || sprite.idle_timeout_s == 0 {
                cpu.forget(sprite.id);
                continue;
            }
            let idle_for = now - sprite.last_active_at;
            // A sprite whose CPU cannot be read is judged by its API activity alone.
            let mut readable = busy_permille > 0;
            if readable && idle_for >= sprite.idle_timeout_s - window_s {
                match self.driver.usage(&machine(&sprite)) {
                    Ok(usage) => cpu.add(sprite.id, now, usage.cpu_ns, window_s),
                    Err(error) => {
                        tracing::debug!(sprite = sprite.id, %error, "no CPU reading");
                        cpu.forget(sprite.id);
                        readable = false;
                    }
                }
            } else {
                cpu.forget(sprite.id);
            }
            if idle_for < sprite.idle_timeout_s || self.is_busy(sprite.id) {
                continue;
            }
            let used = if readable {
                // Not enough readings yet (the server just started): decide next second.
                let Some(used) = cpu.permille(sprite.id) else {
                    continue;
                };
                if used >= busy_permille {
                    db::sprites::touch(&self.pool, sprite.id, "cpu", now).await?;
                    cpu.forget(sprite.id);
                    continue;
                }
                Some(used)
            } else {
                None
            };
            cpu.forget(sprite.id);
            match self.pause(&sprite, PauseReason::Idle).await {
                Ok(_) => {
                    paused += 1;
                    tracing::info!(
                        sprite = sprite.id,
                        idle_for,
                        cpu_permille = used,
                        "idle pause"
                    );
                }
                Err(error) => {
                    tracing::warn!(sprite = sprite.id, error = %error, "idle pause failed")
                }
            }
        }
        Ok(paused)
    }

    /// Why a paused sprite is paused, in words for the page (`None` while running).
    pub fn pause_why(&self, sprite: &SpriteRow) -> Option<String> {
        let why = match sprite.pause_reason? {
            PauseReason::Idle if self.config.idle_cpu_busy_pct > 0 => format!(
                "idle: no exec, file or terminal use for {} s and its CPU under {} % of a vCPU; the next call wakes it",
                sprite.idle_timeout_s, self.config.idle_cpu_busy_pct
            ),
            PauseReason::Idle => format!(
                "idle: no exec, file or terminal use for {} s; the next call wakes it",
                sprite.idle_timeout_s
            ),
            PauseReason::User => "paused by a pause call: resume it to run again".into(),
            PauseReason::Budget => {
                "the spend cap was about to be reached: raise the cap or the token's budget, then resume"
                    .into()
            }
            PauseReason::Limit => {
                "a scaling limit no longer allows it to run: raise the limit or stop another sprite"
                    .into()
            }
            PauseReason::Billing => "billing stopped it: settle the account, then resume".into(),
        };
        Some(why)
    }
}

/// Checks for idle sprites every second until shutdown.
pub async fn reaper(sprites: Arc<Sprites>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut cpu = CpuWindow::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Err(error) = sprites.pause_idle(&mut cpu).await {
                    tracing::warn!(error = ?error, "idle check failed");
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CpuWindow;

    #[test]
    fn cpu_use_is_measured_over_the_window_and_restarts_with_the_machine() {
        let mut w = CpuWindow::default();
        w.add(1, 100, 0, 10);
        assert_eq!(w.permille(1), None);
        // Half a vCPU-second per second: 50 %.
        w.add(1, 102, 1_000_000_000, 10);
        assert_eq!(w.permille(1), Some(500));
        // Readings older than the window are dropped.
        w.add(1, 120, 1_000_000_000, 10);
        assert_eq!(w.permille(1), None);
        // A restarted counter starts a new series instead of a negative use.
        w.add(1, 121, 5, 10);
        assert_eq!(w.permille(1), None);
    }
}
