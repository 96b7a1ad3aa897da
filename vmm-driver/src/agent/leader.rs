//! The session leader of a command on a terminal (`agent tty-leader 3 -- CMD…`).
//!
//! This gVisor neither turns Ctrl-C (and Ctrl-\, Ctrl-Z) typed into a terminal into a
//! signal nor lets a process outside the terminal's session ask which process group is
//! in the foreground. So the agent starts this small leader on the terminal instead of
//! the command itself: it runs the command in its session, and when the agent sees such
//! a key it writes the signal's number into fd 3, and the leader — whose controlling
//! terminal it is — sends it to the foreground process group, as the kernel would.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;

/// The file descriptor the leader reads signal numbers from (4 bytes LE each).
pub const CONTROL_FD: i32 = 3;

extern "C" fn ignore(_: libc::c_int) {}

/// Runs `argv` and returns its exit code (`128 + signal` when killed by one).
pub fn main(argv: &[String]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("corral: empty command");
        return 127;
    };
    // SAFETY: fcntl on our own fd: the command must not inherit the control pipe.
    unsafe { libc::fcntl(CONTROL_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // The leader shares the foreground group with a command that does not make its own
    // (`exec -t sleep 100`): a signal meant for it must not end the leader. A handler,
    // unlike SIG_IGN, is reset for the command by exec.
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGHUP] {
        // SAFETY: installs a handler that does nothing, an async-signal-safe function.
        unsafe { libc::signal(signal, ignore as *const () as libc::sighandler_t) };
    }
    let mut child = match std::process::Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("corral: {program}: {e}");
            return if e.kind() == std::io::ErrorKind::PermissionDenied {
                126
            } else {
                127
            };
        }
    };
    std::thread::spawn(|| {
        // SAFETY: fd 3 was set up by the agent for this process and nothing else owns it.
        let mut control = unsafe { std::fs::File::from_raw_fd(CONTROL_FD) };
        let mut raw = [0u8; 4];
        while control.read_exact(&mut raw).is_ok() {
            // SAFETY: tcgetpgrp and kill take no pointers; the terminal on fd 0 is
            // this process's controlling one, so the kernel answers.
            unsafe {
                let group = libc::tcgetpgrp(0);
                if group > 0 {
                    libc::kill(-group, i32::from_le_bytes(raw));
                }
            }
        }
    });
    match child.wait() {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(_) => 1,
    }
}
