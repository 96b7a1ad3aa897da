//! Reading a machine's files from the host while nothing changes them: the machine runs
//! `sync` (gVisor holds written data in its own memory until then) and is frozen while
//! the work runs; a paused machine is thawed for the `sync` and left paused after.

use std::future::Future;
use std::time::Duration;

use super::machine::Machine;
use super::{disk, Gvisor};
use crate::{DriverError, ExecRequest, MachineState, Result};

impl Gvisor {
    /// Runs `work` with the machine's disk flushed and the machine frozen (or stopped).
    pub(super) async fn quiesced<T, F, Fut>(&self, m: &Machine, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let was = {
            let rt = m.rt.lock().await;
            if rt.destroyed {
                return Err(DriverError::NotFound(format!("machine {}", m.id)));
            }
            rt.state
        };
        if was == MachineState::Paused {
            self.pause_machine(m, false).await?;
        }
        let done = self.frozen(m, was != MachineState::Stopped, work).await;
        if was == MachineState::Paused {
            self.pause_machine(m, true).await?;
        }
        done
    }

    async fn frozen<T, F, Fut>(&self, m: &Machine, running: bool, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if running {
            let sync = ExecRequest {
                argv: vec!["sync".into()],
                timeout: Some(Duration::from_secs(60)),
                ..Default::default()
            };
            self.agent(m).await?.exec(sync).await?;
        }
        let rt = m.rt.lock().await;
        if rt.destroyed {
            return Err(DriverError::NotFound(format!("machine {}", m.id)));
        }
        let freeze = rt.state == MachineState::Running;
        if freeze {
            self.runsc.pause(&m.id).await?;
        }
        let done = match disk::syncfs(&m.paths.disk()) {
            Ok(()) => work().await,
            Err(e) => Err(e),
        };
        if freeze {
            self.runsc.resume(&m.id).await?;
        }
        done
    }
}
