//! The `runsc` command line: one function per subcommand, all with `--network=none` and
//! the driver's own `--root`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::Command;

use crate::{DriverError, MachineId, MachineState, Result};

/// A handle on the runsc binary and its state directory.
#[derive(Clone, Debug)]
pub struct Runsc {
    bin: PathBuf,
    root: PathBuf,
}

/// The stdio a new sandbox (or agent) gets: `io` as stdin and stdout, stderr to a log.
pub struct Stdio3 {
    /// The sandbox's end of the agent socket pair.
    pub io: OwnedFd,
    /// Where the sandbox's stderr (and runsc's own errors) go.
    pub log: std::fs::File,
}

#[derive(Deserialize)]
struct ListEntry {
    id: String,
    status: String,
}

fn state_of(status: &str) -> MachineState {
    match status {
        "running" => MachineState::Running,
        "paused" => MachineState::Paused,
        _ => MachineState::Stopped,
    }
}

impl Runsc {
    /// runsc at `bin`, keeping its state in `root`.
    pub fn new(bin: PathBuf, root: PathBuf) -> Self {
        Self { bin, root }
    }

    /// A command with the global flags set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        // The sprite sees as many CPUs as its quota allows (`nproc` = its vCPUs), except
        // that runsc never shows fewer than 2: a 1-vCPU sprite says 2, and is still held
        // to one CPU's time by its cgroup.
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--network=none")
            .arg("--cpu-num-from-quota");
        // For operators chasing a runsc failure: runsc's own debug logs.
        if let Some(dir) = std::env::var_os("CORRAL_RUNSC_DEBUG_LOG") {
            let mut flag = std::ffi::OsString::from("--debug-log=");
            flag.push(dir);
            cmd.arg("--debug").arg(flag);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn output(&self, args: &[&str], what: String) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| DriverError::backend(format!("{what}: running runsc"), e))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(DriverError::backend(what, msg));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a command whose stdio is the sandbox's, reporting the log's tail on failure.
    async fn detached(
        &self,
        mut cmd: Command,
        stdio: Stdio3,
        log: &Path,
        what: String,
    ) -> Result<()> {
        let io2 = stdio
            .io
            .try_clone()
            .map_err(|e| DriverError::backend(format!("{what}: dup"), e))?;
        cmd.stdin(Stdio::from(stdio.io))
            .stdout(Stdio::from(io2))
            .stderr(Stdio::from(stdio.log));
        let status = cmd
            .status()
            .await
            .map_err(|e| DriverError::backend(format!("{what}: running runsc"), e))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read(log).unwrap_or_default();
        let tail = String::from_utf8_lossy(&text[text.len().saturating_sub(600)..]).into_owned();
        Err(DriverError::backend(
            what,
            format!("runsc {status}: {}", tail.trim()),
        ))
    }

    /// `runsc run --detach`: creates and starts the sandbox.
    pub async fn run(
        &self,
        id: &MachineId,
        bundle: &Path,
        stdio: Stdio3,
        log: &Path,
    ) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(bundle)
            .arg(id.as_str());
        self.detached(cmd, stdio, log, format!("starting {id}"))
            .await
    }

    /// `runsc restore --detach`: starts the sandbox from a checkpoint image.
    pub async fn restore(
        &self,
        id: &MachineId,
        bundle: &Path,
        image: &Path,
        stdio: Stdio3,
        log: &Path,
    ) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("restore")
            .arg("--detach")
            .arg("--image-path")
            .arg(image)
            .arg("--bundle")
            .arg(bundle)
            .arg(id.as_str());
        self.detached(cmd, stdio, log, format!("restoring {id}"))
            .await
    }

    /// `runsc exec`: starts another process (a fresh agent) in the sandbox. The runsc
    /// process stays beside it until it exits (it is reaped by tokio when it does):
    /// `exec --detach` is broken in this runsc (its helper takes `--pid-file` as an
    /// argument of the command and the parent waits for a file that never appears).
    pub fn exec_attached(
        &self,
        id: &MachineId,
        argv: &[&str],
        stdio: Stdio3,
    ) -> Result<tokio::process::Child> {
        let what = || format!("starting an agent in {id}");
        let io2 = stdio
            .io
            .try_clone()
            .map_err(|e| DriverError::backend(what(), e))?;
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg(id.as_str())
            .args(argv)
            .stdin(Stdio::from(stdio.io))
            .stdout(Stdio::from(io2))
            .stderr(Stdio::from(stdio.log))
            .kill_on_drop(false);
        cmd.spawn().map_err(|e| DriverError::backend(what(), e))
    }

    /// `runsc pause`.
    pub async fn pause(&self, id: &MachineId) -> Result<()> {
        self.output(&["pause", id.as_str()], format!("pausing {id}"))
            .await
            .map(drop)
    }

    /// `runsc resume`.
    pub async fn resume(&self, id: &MachineId) -> Result<()> {
        self.output(&["resume", id.as_str()], format!("resuming {id}"))
            .await
            .map(drop)
    }

    /// `runsc checkpoint`: saves memory and processes to `image`; the sandbox stops.
    pub async fn checkpoint(&self, id: &MachineId, image: &Path) -> Result<()> {
        let image = format!("--image-path={}", image.display());
        self.output(
            &["checkpoint", &image, id.as_str()],
            format!("checkpointing {id}"),
        )
        .await
        .map(drop)
    }

    /// `runsc delete --force`: removes the container's state (and its cgroup).
    pub async fn delete(&self, id: &MachineId) -> Result<()> {
        self.output(
            &["delete", "--force", id.as_str()],
            format!("deleting {id}"),
        )
        .await
        .map(drop)
    }

    /// Every container runsc knows of under our root, with its state.
    pub async fn list(&self) -> Result<Vec<(String, MachineState)>> {
        let text = self
            .output(&["list", "--format=json"], "listing sandboxes".into())
            .await?;
        let entries: Option<Vec<ListEntry>> = serde_json::from_str(text.trim())
            .map_err(|e| DriverError::backend("parsing runsc list", e))?;
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.id, state_of(&e.status)))
            .collect())
    }

    /// Whether runsc holds state for this container (its state file exists).
    pub async fn exists(&self, id: &MachineId) -> Result<Option<MachineState>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|(raw, _)| raw == id.as_str())
            .map(|(_, state)| state))
    }
}
