//! Exporting a machine's whole filesystem (its image and its changes, as the sandbox
//! sees its root) as a tar archive, read from the host's view of the overlay.

use std::path::Path;

use tokio::process::Command;
use tracing::instrument;

use super::machine::Machine;
use super::Gvisor;
use crate::{DriverError, Result};

impl Gvisor {
    /// Writes the tar to `dst` with the machine quiesced (see `quiesce`).
    #[instrument(skip_all, fields(machine = %m.id))]
    pub(super) async fn export_machine(&self, m: &Machine, dst: &Path) -> Result<()> {
        let root = m.paths.root();
        self.quiesced(m, || async {
            let out = Command::new("tar")
                .arg("--create")
                .arg("--file")
                .arg(dst)
                .args(["--numeric-owner", "--sparse", "--exclude=./.corral"])
                .arg("--directory")
                .arg(&root)
                .arg(".")
                .output()
                .await
                .map_err(|e| DriverError::backend("running tar", e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(DriverError::backend(
                    "archiving the machine's files",
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ))
            }
        })
        .await
    }
}
