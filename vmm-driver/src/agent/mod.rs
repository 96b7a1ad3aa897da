//! The in-sprite agent (`corral agent`) and the driver's client for it: a persistent
//! process inside each machine that runs commands and moves files over one stream, so a
//! command does not pay for a new `runsc exec` each time.
//!
//! The agent is a mode of the `corral` binary itself; the root binary calls [`main`] when
//! its first argument is `agent`. It speaks [`proto`] on its stdin/stdout, which the
//! driver connects to one end of a socket pair.

pub mod client;
mod exec;
mod files;
pub mod proto;
mod server;

use std::os::fd::{FromRawFd, OwnedFd};

pub use client::AgentClient;

/// The agent's entry point: serves the protocol on stdin/stdout and returns the process
/// exit code. As the sandbox's init it never returns: when the driver goes away it stays
/// up to keep the machine alive and reap orphans, and a new agent can be started beside it.
pub fn main() -> i32 {
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
    // SAFETY: dup of the process's own stdio fds; the new fds are owned here.
    let (r, w) = unsafe {
        let r = libc::dup(0);
        let w = libc::dup(1);
        if r < 0 || w < 0 {
            return Err(std::io::Error::last_os_error());
        }
        (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w))
    };
    let result = server::serve(std::fs::File::from(r), std::fs::File::from(w)).await;
    if std::process::id() == 1 {
        if let Err(e) = &result {
            eprintln!("corral agent: driver stream: {e}");
        }
        std::future::pending::<()>().await;
    }
    result
}
