//! The machine under every sprite: one async trait, backend-neutral types, a factory.
//!
//! Nothing about runsc or QEMU crosses this trait: the sprites service speaks only of
//! machines, exec requests, files, checkpoints and usage samples, so a sprite could run
//! on another host behind the same interface.
#![warn(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub mod agent;
pub mod gvisor;

/// A machine's identity on its backend. Fixed width (`s` + 16 hex digits), because
/// runsc matches ids by prefix and `m1` would be ambiguous beside `m10`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MachineId(String);

impl MachineId {
    /// The id for a sprite's numeric key.
    pub fn from_key(key: u64) -> Self {
        Self(format!("s{key:016x}"))
    }

    /// Parses an id read back from a backend; `None` when it is not one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix('s')?;
        (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(raw.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The numeric key the id was made from.
    pub fn key(&self) -> Option<u64> {
        u64::from_str_radix(self.0.get(1..)?, 16).ok()
    }
}

impl std::fmt::Display for MachineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checkpoint's identity on its backend (same fixed-width rule as [`MachineId`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckpointId(String);

impl CheckpointId {
    /// The id for a checkpoint's numeric key.
    pub fn from_key(key: u64) -> Self {
        Self(format!("c{key:016x}"))
    }

    /// The source's checkpoint a fork into machine `fork` is made from.
    pub fn for_fork(fork: &MachineId) -> Self {
        Self(format!("f{}", &fork.0[1..]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A saved image's identity on its backend (same fixed-width rule as [`MachineId`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageId(String);

impl ImageId {
    /// The id for a saved image's numeric key.
    pub fn from_key(key: u64) -> Self {
        Self(format!("i{key:016x}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The image a machine's root starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// One of the operator's images, by name (`default`, `minimal`, …).
    Operator(String),
    /// An image saved from a machine with [`Driver::save_image`].
    Saved(ImageId),
}

/// One of the operator's images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its name.
    pub name: String,
    /// Bytes it occupies.
    pub size_bytes: u64,
    /// Debian packages installed over the minimal base.
    pub packages: Vec<String>,
    /// Unix seconds when it was built.
    pub built_at: i64,
    /// How long its build took, in seconds.
    pub build_secs: u64,
}

/// What a machine is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSpec {
    /// The machine's id.
    pub id: MachineId,
    /// The image its root starts from.
    pub image: ImageRef,
    /// Virtual CPUs (a CPU quota of this many cores).
    pub cpus: u32,
    /// Memory limit in MiB.
    pub memory_mb: u64,
    /// Hard size of the persistent disk in MiB.
    pub disk_mb: u64,
}

/// A command to run inside a machine.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up on `PATH`.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory (absolute); `/` when absent.
    pub cwd: Option<String>,
    /// Bytes written to the command's stdin, which is then closed.
    pub stdin: Vec<u8>,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
    /// Most bytes kept of stdout and of stderr each; the rest is dropped and
    /// [`ExecOutput::truncated`] set. `0` means the driver's default (4 MiB) for
    /// [`Driver::exec`] and no cap for [`Driver::exec_stream`].
    pub max_output_bytes: usize,
    /// Run on a pseudo-terminal of this size (as the session leader, the terminal its
    /// controlling one; stdout and stderr are one stream then). `None`: pipes.
    pub tty: Option<TtySize>,
}

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtySize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// A control message for a command running on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecControl {
    /// The terminal's window changed size (the command gets SIGWINCH).
    Resize(TtySize),
    /// Send this signal to the terminal's foreground process group.
    Signal(i32),
}

/// What a finished command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; `128 + signal` when killed by a signal.
    pub exit_code: i32,
    /// Captured stdout (at most `max_output_bytes`).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most `max_output_bytes`).
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at `max_output_bytes`.
    pub truncated: bool,
    /// Whether the command was killed at its timeout.
    pub timed_out: bool,
    /// Wall time from start to exit.
    pub duration: Duration,
}

/// One event of a streamed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecEvent {
    /// Bytes the command wrote to stdout.
    Stdout(Vec<u8>),
    /// Bytes the command wrote to stderr.
    Stderr(Vec<u8>),
    /// The command ended with this exit code; no event follows.
    Exit(i32),
}

/// A running command with its streams. Dropping `stdin` closes the command's stdin;
/// dropping the whole stream kills the command.
pub struct ExecStream {
    /// Bytes for the command's stdin.
    pub stdin: mpsc::Sender<Vec<u8>>,
    /// Output and the final exit.
    pub events: mpsc::Receiver<ExecEvent>,
    /// Resizes and signals (for a command on a terminal; ignored otherwise).
    pub control: mpsc::Sender<ExecControl>,
}

/// A connection a machine's program asked for, as its [`Egress`] made it.
pub trait EgressStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> EgressStream for T {}

/// Decides and makes the connections programs in machines ask for (through the agent's
/// proxy): the owner of the machines applies its policy, dials, and may cut a stream
/// later by failing its reads and writes.
#[async_trait]
pub trait Egress: Send + Sync {
    /// A connection from `machine` to `host:port`; `Err` says why not (shown to the
    /// program: name the rule that refused it).
    async fn connect(
        &self,
        machine: &MachineId,
        host: &str,
        port: u16,
    ) -> std::result::Result<Box<dyn EgressStream>, String>;
}

/// Cumulative usage of one machine, read without spawning a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageSample {
    /// CPU time used since the machine was started, in nanoseconds (monotonic for a
    /// machine's life; it restarts from zero when the machine is started again).
    pub cpu_ns: u64,
    /// Memory in use now, in bytes.
    pub memory_bytes: u64,
    /// Bytes stored on the machine's disk.
    pub disk_bytes: u64,
}

/// A checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The checkpoint's id.
    pub id: CheckpointId,
    /// Bytes it occupies (memory image and disk copy).
    pub size_bytes: u64,
}

/// Where a machine stands, as the backend sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Created (disk exists) but no sandbox is running.
    Stopped,
    /// Running.
    Running,
    /// Frozen: no CPU is used, memory is kept.
    Paused,
}

/// A machine found on the backend, for reconciliation after a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineInfo {
    /// The machine's id.
    pub id: MachineId,
    /// Its state.
    pub state: MachineState,
}

/// Everything a driver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The backend cannot run on this host; the message names what is missing.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// No such machine or checkpoint.
    #[error("not found: {0}")]
    NotFound(String),
    /// The machine is not in a state that allows this.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The request itself is wrong (bad path, empty argv, too large).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The disk is full.
    #[error("disk full")]
    DiskFull,
    /// A connection into the machine was refused (nothing listens on the port).
    #[error("{0}")]
    Refused(String),
    /// A backend command or system call failed.
    #[error("{what}")]
    Backend {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DriverError {
    /// Wraps a lower-level failure with what was being done.
    pub fn backend(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Result of a driver call.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// One backend's machines. Every call is idempotent where it can be (destroying a
/// machine that is gone succeeds), so the sprites service can retry after a crash.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The backend's name (`gvisor`, `qemu`).
    fn name(&self) -> &'static str;

    /// Makes the machine's disk and configuration; it is left stopped.
    async fn create(&self, spec: &MachineSpec) -> Result<()>;
    /// Starts a stopped machine.
    async fn start(&self, id: &MachineId) -> Result<()>;
    /// Stops a machine, keeping its disk.
    async fn stop(&self, id: &MachineId) -> Result<()>;
    /// Freezes a running machine.
    async fn pause(&self, id: &MachineId) -> Result<()>;
    /// Thaws a paused machine.
    async fn resume(&self, id: &MachineId) -> Result<()>;
    /// Removes the machine, its disk and its checkpoints.
    async fn destroy(&self, id: &MachineId) -> Result<()>;

    /// Runs a command to completion and returns its captured output.
    async fn exec(&self, id: &MachineId, req: ExecRequest) -> Result<ExecOutput>;
    /// Starts a command and hands back its streams.
    async fn exec_stream(&self, id: &MachineId, req: ExecRequest) -> Result<ExecStream>;

    /// Reads a file (absolute path), refusing files larger than `max_bytes`.
    async fn read_file(&self, id: &MachineId, path: &str, max_bytes: u64) -> Result<Vec<u8>>;
    /// Writes a file (absolute path), creating parent directories.
    async fn write_file(&self, id: &MachineId, path: &str, data: &[u8]) -> Result<()>;

    /// Saves memory, processes and disk. The machine is in the same state afterwards.
    async fn checkpoint(&self, id: &MachineId, checkpoint: &CheckpointId)
        -> Result<CheckpointInfo>;
    /// Puts the machine back exactly as it was at the checkpoint; it is left running.
    async fn restore(&self, id: &MachineId, checkpoint: &CheckpointId) -> Result<()>;
    /// Removes a checkpoint.
    async fn delete_checkpoint(&self, id: &MachineId, checkpoint: &CheckpointId) -> Result<()>;

    /// A new machine (`spec`'s id, CPUs and memory) with the same disk and memory as
    /// `source`, whose processes go on in both; it is left running and `source` in the
    /// state it was in. The new machine's disk is the size of the source's.
    async fn fork(&self, source: &MachineId, spec: &MachineSpec) -> Result<()>;

    /// The operator's images.
    fn images(&self) -> Vec<ImageInfo>;
    /// Saves the machine's files (its changes over its image) as a new image that
    /// machines can be created from; returns the bytes it occupies. The machine is in
    /// the same state afterwards.
    async fn save_image(&self, id: &MachineId, image: &ImageId) -> Result<u64>;
    /// Deletes a saved image: at once when nothing stands on it, else as soon as the
    /// last machine (or saved image) made from it is destroyed.
    async fn delete_image(&self, image: &ImageId) -> Result<()>;
    /// Whether a saved image's files still exist (deleted ones are held while used).
    fn image_exists(&self, image: &ImageId) -> bool;
    /// Writes the machine's whole filesystem (image and changes) as a tar archive to
    /// `dst`, a file on this host. A running machine is frozen while it is read.
    async fn export(&self, id: &MachineId, dst: &std::path::Path) -> Result<()>;

    /// A connection to `port` on the machine's loopback (its URL, a tunnel); a running
    /// machine with nothing listening there answers [`DriverError::Refused`].
    async fn dial(&self, id: &MachineId, port: u16) -> Result<Box<dyn EgressStream>>;

    /// Cumulative usage, from files held open: cheap enough to call every second for
    /// every machine.
    fn usage(&self, id: &MachineId) -> Result<UsageSample>;
    /// Counts the machine's CPU time from zero again: a machine made ahead of its owner
    /// (a warm pool's) is metered from the moment it is handed over, not from its boot.
    fn restart_usage(&self, id: &MachineId) -> Result<()>;
    /// Every machine the backend holds, including ones left behind by a crash.
    async fn list(&self) -> Result<Vec<MachineInfo>>;

    /// Where machines' outbound connections go from now on (none until set: every
    /// connection is refused).
    fn set_egress(&self, egress: std::sync::Arc<dyn Egress>);

    /// Puts a read-only file at `/.corral/<name>` in every machine (the install's
    /// certificate authority, for example), replacing it atomically.
    fn share(&self, name: &str, bytes: &[u8]) -> Result<()>;
}

/// Which backend to build and where it keeps its files.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// `gvisor` or `qemu`.
    pub kind: String,
    /// Where machines, disks and checkpoints live.
    pub state_dir: PathBuf,
    /// Where the operator's images are built.
    pub image_dir: PathBuf,
    /// The program started inside each machine to run commands (the `corral` binary,
    /// whose `agent` subcommand speaks the exec protocol).
    pub agent_path: PathBuf,
}

/// Builds the configured backend after checking it can run here.
/// Every path in `config` must be absolute: a backend hands them to runsc, mount(2) and
/// child processes that do not share the caller's working directory.
pub async fn from_config(config: &DriverConfig) -> Result<std::sync::Arc<dyn Driver>> {
    for (what, path) in [
        ("state directory", &config.state_dir),
        ("image directory", &config.image_dir),
        ("agent path", &config.agent_path),
    ] {
        if !path.is_absolute() {
            return Err(DriverError::Invalid(format!(
                "the driver's {what} {} must be an absolute path",
                path.display()
            )));
        }
    }
    match config.kind.as_str() {
        "gvisor" => Ok(std::sync::Arc::new(gvisor::Gvisor::open(config).await?)),
        other => Err(DriverError::Unavailable(format!(
            "unknown driver {other:?} (this build has: gvisor)"
        ))),
    }
}
