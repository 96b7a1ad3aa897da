//! The gVisor backend: runsc sandboxes over a copy-on-write root (placeholder until it lands).

use async_trait::async_trait;

use crate::*;

/// The gVisor backend.
pub struct Gvisor;

impl Gvisor {
    /// Checks runsc and the base image, then opens the backend.
    pub async fn open(_config: &DriverConfig) -> Result<Self> {
        Err(DriverError::Unavailable("the gvisor backend is not built yet".into()))
    }
}

#[async_trait]
impl Driver for Gvisor {
    fn name(&self) -> &'static str { "gvisor" }
    async fn create(&self, _: &MachineSpec) -> Result<()> { unimplemented!() }
    async fn start(&self, _: &MachineId) -> Result<()> { unimplemented!() }
    async fn stop(&self, _: &MachineId) -> Result<()> { unimplemented!() }
    async fn pause(&self, _: &MachineId) -> Result<()> { unimplemented!() }
    async fn resume(&self, _: &MachineId) -> Result<()> { unimplemented!() }
    async fn destroy(&self, _: &MachineId) -> Result<()> { unimplemented!() }
    async fn exec(&self, _: &MachineId, _: ExecRequest) -> Result<ExecOutput> { unimplemented!() }
    async fn exec_stream(&self, _: &MachineId, _: ExecRequest) -> Result<ExecStream> { unimplemented!() }
    async fn read_file(&self, _: &MachineId, _: &str, _: u64) -> Result<Vec<u8>> { unimplemented!() }
    async fn write_file(&self, _: &MachineId, _: &str, _: &[u8]) -> Result<()> { unimplemented!() }
    async fn checkpoint(&self, _: &MachineId, _: &CheckpointId) -> Result<CheckpointInfo> { unimplemented!() }
    async fn restore(&self, _: &MachineId, _: &CheckpointId) -> Result<()> { unimplemented!() }
    async fn delete_checkpoint(&self, _: &MachineId, _: &CheckpointId) -> Result<()> { unimplemented!() }
    fn usage(&self, _: &MachineId) -> Result<UsageSample> { unimplemented!() }
    async fn list(&self) -> Result<Vec<MachineInfo>> { unimplemented!() }
}
