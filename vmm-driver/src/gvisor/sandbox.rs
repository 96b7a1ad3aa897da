//! A machine's runsc sandbox: mounting its root, starting it (fresh or from a
//! checkpoint image) with a new agent stream, and tearing it down fast.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use tracing::warn;

use super::machine::{Machine, Meta, Paths, Runtime};
use super::runsc::{Runsc, Stdio3};
use super::{disk, reap};
use crate::agent::AgentClient;
use crate::{DriverError, MachineId, MachineState, Result};

/// How long teardown waits for sandbox processes that are not our children.
const KILL_WAIT: Duration = Duration::from_secs(3);
/// The console log is cut back when a machine starts and it is larger than this.
const LOG_MAX: u64 = 1 << 20;

/// A socket pair: the driver's end as a tokio stream, the sandbox's end as an fd.
pub(super) fn socket_pair() -> Result<(tokio::net::UnixStream, OwnedFd)> {
    let io = |e| DriverError::backend("making the agent socket pair", e);
    let (host, guest) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    host.set_nonblocking(true).map_err(io)?;
    Ok((
        tokio::net::UnixStream::from_std(host).map_err(io)?,
        guest.into(),
    ))
}

pub(super) fn open_log(path: &Path) -> Result<std::fs::File> {
    if std::fs::metadata(path)
        .map(|m| m.len() > LOG_MAX)
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(path);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| DriverError::backend("opening the console log", e))
}

/// The marker a checkpoint holds when the sandbox's init served the agent stream.
pub(super) const INIT_SERVES: &str = "init-serves";

fn init_served(image: &Path) -> bool {
    image
        .parent()
        .is_some_and(|dir| dir.join(INIT_SERVES).exists())
}

/// Mounts the disk image and the overlay root (each only if not mounted).
pub(super) async fn mount(paths: &Paths, meta: &Meta) -> Result<()> {
    disk::mount_image(&paths.image(), &paths.disk()).await?;
    disk::mount_overlay(&meta.lowers(), &paths.upper(), &paths.work(), &paths.root())
}

/// Unmounts the overlay root and the disk.
pub(super) fn unmount(paths: &Paths) -> Result<()> {
    disk::unmount(&paths.root())?;
    disk::unmount(&paths.disk())
}

/// How long the restore probe waits for an answer before nudging the agent's stream.
const NUDGE_EVERY: Duration = Duration::from_millis(50);
/// How often a restore is tried before giving up.
const RESTORE_ATTEMPTS: usize = 4;

/// Restores the sandbox from a checkpoint image and checks that its agent answers. A
/// restored sandbox that dies or stays silent is torn down and restored again (the known
/// causes are fixed, see BENCH.md; this is the safety net). The disk is untouched by
/// then, so trying again from the same image is safe. `before_each` runs before every
/// attempt (restore uses it to put the disk back).
pub(super) async fn restore_checked<F>(
    runsc: &Runsc,
    m: &Machine,
    rt: &mut Runtime,
    image: &Path,
    mut before_each: F,
) -> Result<()>
where
    F: FnMut() -> Result<()>,
{
    let mut last = None;
    for attempt in 0..RESTORE_ATTEMPTS {
        before_each()?;
        match launch(runsc, m, rt, Some(image)).await {
            Ok(()) => {
                let Some(agent) = rt.agent.clone() else {
                    return Ok(());
                };
                let probe = crate::ExecRequest {
                    argv: vec!["true".into()],
                    ..Default::default()
                };
                let answer = async {
                    let probe = agent.exec(probe);
                    tokio::pin!(probe);
                    loop {
                        tokio::select! {
                            res = &mut probe => return res,
                            () = tokio::time::sleep(NUDGE_EVERY) => {
                                let _ = agent.nudge().await;
                            }
                        }
                    }
                };
                match tokio::time::timeout(Duration::from_secs(5), answer).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(e)) => last = Some(e),
                    Err(_) => {
                        last = Some(DriverError::backend(
                            "restore",
                            "the restored agent does not answer",
                        ))
                    }
                }
            }
            Err(e) => last = Some(e),
        }
        warn!(machine = %m.id, attempt, error = ?last, "restored sandbox died; trying again");
        rt.agent = None;
        teardown(runsc, &m.id).await;
        rt.state = MachineState::Stopped;
        m.reopen_usage(false);
    }
    Err(last.unwrap_or_else(|| DriverError::backend("restore", "failed")))
}

/// Starts the sandbox (fresh, or from a checkpoint image) with a new agent connection.
pub(super) async fn launch(
    runsc: &Runsc,
    m: &Machine,
    rt: &mut Runtime,
    image: Option<&Path>,
) -> Result<()> {
    mount(&m.paths, &m.meta).await?;
    let mut attempt = 0;
    loop {
        let (host, guest) = socket_pair()?;
        let stdio = Stdio3 {
            io: guest,
            log: open_log(&m.paths.log())?,
        };
        let res = match image {
            Some(image) => {
                runsc
                    .restore(&m.id, &m.paths.dir, image, stdio, &m.paths.log())
                    .await
            }
            None => runsc.run(&m.id, &m.paths.dir, stdio, &m.paths.log()).await,
        };
        match res {
            Ok(()) => {
                // A restored init serves the new stream only if it served one when the
                // checkpoint was taken.
                rt.init_serves = image.is_none_or(init_served);
                rt.agent = rt
                    .init_serves
                    .then(|| AgentClient::with_egress(host, m.id.to_string(), m.egress.clone()));
                rt.side = None;
                rt.state = MachineState::Running;
                m.reopen_usage(true);
                return Ok(());
            }
            // A sandbox of this id left behind (a crash, a reboot): clear it, retry once.
            Err(e) if attempt == 0 => {
                warn!(machine = %m.id, error = %e, "start failed; clearing leftovers and retrying");
                teardown(runsc, &m.id).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Kills the sandbox and removes runsc's state for it. Never fails: it is used on the
/// way out of errors too, and a sandbox that is already gone is fine.
pub(super) async fn teardown(runsc: &Runsc, id: &MachineId) {
    let id2 = id.clone();
    let _ = tokio::task::spawn_blocking(move || reap::kill_all(&id2, KILL_WAIT)).await;
    if let Err(e) = runsc.delete(id).await {
        let msg = format!("{e:#}");
        if !msg.contains("does not exist") {
            tracing::debug!(machine = %id, error = %msg, "runsc delete");
        }
    }
}
