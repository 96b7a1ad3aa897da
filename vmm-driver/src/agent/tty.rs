//! Commands on a pseudo-terminal inside the sprite: the agent opens one, starts the
//! command under a session leader whose controlling terminal it is (`leader`: job
//! control, full-screen programs), resizes it, and turns Ctrl-C, Ctrl-\ and Ctrl-Z
//! into signals for its foreground process group, which this gVisor does not do.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::TtySize;

/// The terminal type a command gets unless it sets its own.
pub const TERM: &str = "xterm-256color";
/// The agent's argument that makes it a session leader (`agent tty-leader -- CMD…`).
pub const LEADER_ARG: &str = "tty-leader";

/// The command that runs `argv` under a session leader on the terminal.
pub fn leader_command(argv: &[String]) -> Command {
    let agent = std::env::current_exe().unwrap_or_else(|_| "/.corral/agent".into());
    let mut cmd = Command::new(agent);
    cmd.args(["agent", LEADER_ARG, "--"]).args(argv);
    cmd
}

fn winsize(size: TtySize) -> libc::winsize {
    libc::winsize {
        ws_row: size.rows.max(1),
        ws_col: size.cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A new pseudo-terminal of `size`: (master, slave).
pub fn open(size: TtySize) -> io::Result<(File, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    let ws = winsize(size);
    // SAFETY: openpty writes two fds into the ints we pass; name and termios may be
    // null; the winsize pointer is valid for the call.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just returned by openpty and are owned by nobody else.
    let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
        // SAFETY: fcntl on an fd we own; children must not inherit the master, and the
        // slave reaches the command only through its stdio.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((master, slave))
}

/// Makes `slave` the leader's stdin, stdout, stderr and controlling terminal, in a
/// session of its own, with the read end of a new pipe as its fd 3; returns the write
/// end, where the agent puts the signals the leader is to deliver, and the read end,
/// to be closed once the command is spawned.
pub fn attach(cmd: &mut Command, slave: &OwnedFd) -> io::Result<(File, OwnedFd)> {
    let io = || slave.try_clone().map(Stdio::from);
    cmd.stdin(io()?).stdout(io()?).stderr(io()?);
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just made by pipe2 and belong to nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let read_fd = read.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec: setsid, ioctl, dup2.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            // dup2 leaves the copy open across exec.
            if libc::dup2(read_fd, super::leader::CONTROL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok((write, read))
}

/// Resizes the terminal; the foreground program gets SIGWINCH.
pub fn resize(master: &File, size: TtySize) {
    let ws = winsize(size);
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Asks the leader to send `signal` to the terminal's foreground process group.
pub fn signal(control: &mut File, signal: i32) {
    let _ = std::io::Write::write_all(control, &signal.to_le_bytes());
}

/// Splits keys typed into the terminal into what goes to the program and the signals
/// they stand for: with `ISIG` set, the terminal's interrupt, quit and suspend
/// characters become SIGINT, SIGQUIT and SIGTSTP (and are not passed on).
pub fn keys(master: &File, data: &[u8]) -> Vec<Result<Vec<u8>, i32>> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a termios we own.
    let read = unsafe { libc::tcgetattr(master.as_raw_fd(), &mut t) } == 0;
    if !read || t.c_lflag & libc::ISIG == 0 {
        return vec![Ok(data.to_vec())];
    }
    let special = [
        (t.c_cc[libc::VINTR], libc::SIGINT),
        (t.c_cc[libc::VQUIT], libc::SIGQUIT),
        (t.c_cc[libc::VSUSP], libc::SIGTSTP),
    ];
    let mut out = Vec::new();
    let mut plain = Vec::new();
    for &byte in data {
        match special.iter().find(|(c, _)| *c != 0 && *c == byte) {
            Some(&(_, signal)) => {
                if !plain.is_empty() {
                    out.push(Ok(std::mem::take(&mut plain)));
                }
                out.push(Err(signal));
            }
            None => plain.push(byte),
        }
    }
    if !plain.is_empty() {
        out.push(Ok(plain));
    }
    out
}

/// Hangs up what is left of a terminal session once its command is done or killed
/// (SIGHUP, as when a terminal closes: `nohup`ed programs stay). Read from `/proc`,
/// since the session's processes may be in many process groups.
pub fn hang_up(session: i32) {
    for (pid, dir) in super::processes() {
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the command's name: state, ppid, pgrp, session, …
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split(' ').collect())
            .unwrap_or_default();
        if fields.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(session) {
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_keys_become_signals_only_while_isig_is_on() {
        let (master, slave) = open(TtySize { rows: 5, cols: 7 }).expect("a pty on this host");
        assert_eq!(
            keys(&master, b"ab\x03c\x1c"),
            vec![
                Ok(b"ab".to_vec()),
                Err(libc::SIGINT),
                Ok(b"c".to_vec()),
                Err(libc::SIGQUIT)
            ]
        );
        // A program in raw mode (vi, an agent's TUI) gets the bytes themselves.
        // SAFETY: termios is plain data, read and written through valid pointers.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave.as_raw_fd(), &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        }
        assert_eq!(keys(&master, b"a\x03"), vec![Ok(b"a\x03".to_vec())]);
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        resize(
            &master,
            TtySize {
                rows: 40,
                cols: 120,
            },
        );
        // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (40, 120));
    }
}
