//! The in-sprite agent (`corral agent`) and the driver's client for it: a persistent
//! process inside each machine that runs commands and moves files over one stream, so a
//! command does not pay for a new `runsc exec` each time.
//!
//! The agent is a mode of the `corral` binary itself; the root binary calls [`main`] when
//! its first argument is `agent`. It speaks [`proto`] on its stdin/stdout, which the
//! driver connects to one end of a socket pair.

pub mod client;
#[cfg(test)]
mod client_tests;
mod connect;
mod dial;
mod exec;
mod files;
mod inbound;
mod leader;
mod net;
pub mod outbound;
pub mod proto;
mod server;
mod tty;
mod workers;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use client::AgentClient;

/// The agent's entry point: serves the protocol on stdin/stdout and returns the process
/// exit code. As the sandbox's init it never returns: when the driver goes away it stays
/// up to keep the machine alive and reap orphans, and a new agent can be started beside it.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    if args.get(2).map(String::as_str) == Some(tty::LEADER_ARG) {
        return leader::main(args.get(4..).unwrap_or_default());
    }
    if args.get(2).map(String::as_str) == Some("connect") {
        return connect::main(args.get(3..).unwrap_or_default());
    }
    // Timers only: no I/O driver, so nothing in the agent goes through epoll (see
    // `exec` for why).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral agent: {e}");
            return 1;
        }
    };
    match runtime.block_on(run_stdio()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("corral agent: {e}");
            1
        }
    }
}

/// Serves the protocol on fds 0 (requests) and 1 (replies).
pub async fn run_stdio() -> std::io::Result<()> {
    exec::start_reaper()?;
    net::accept_hand_over();
    if std::process::id() != 1 {
        net::take_over();
    }
    let (r, w) = take_stdio()?;
    let result = server::serve(std::fs::File::from(r), std::fs::File::from(w)).await;
    if std::process::id() == 1 {
        if let Err(e) = &result {
            eprintln!("corral agent: driver stream: {e}");
        }
        std::future::pending::<()>().await;
    }
    result
}

/// The sprite's processes: each pid with its `/proc` directory.
fn processes() -> impl Iterator<Item = (i32, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// Moves the stream off fds 0 and 1 onto close-on-exec fds, and points 0 and 1 at
/// `/dev/null`. Every command the agent starts would otherwise inherit the host
/// channel and could write frames into it (issue 9, item 1). Root in the sprite can
/// still reach these fds through `/proc/1/fd`; the host treats the stream as untrusted
/// for that reason (see `vmm-driver/TRUST.md`).
fn take_stdio() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let dup = |fd: i32| {
        // SAFETY: fcntl on the process's own fd; F_DUPFD_CLOEXEC takes an int argument
        // and returns a new fd that this function then owns.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `new` was just returned by fcntl and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    };
    let (r, w) = (dup(0)?, dup(1)?);
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in [0, 1] {
        // SAFETY: dup2 of an fd we own over fd 0 or 1; the stream lives on in `r`/`w`.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((r, w))
}
