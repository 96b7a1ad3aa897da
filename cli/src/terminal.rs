//! The local terminal for `console` and `exec -t`: raw mode while a session runs (every
//! key goes to the sprite, Ctrl-C included), restored on every way out, and its size.

use std::io::IsTerminal;

/// The local terminal in raw mode until dropped (also on an error or a panic's unwind).
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode.
    pub fn enter() -> anyhow::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it from fd 0.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            anyhow::bail!(
                "cannot read the terminal's settings: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw edits the termios we pass.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } != 0 {
            anyhow::bail!(
                "cannot put the terminal in raw mode: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// Whether stdin and stdout are both a terminal (what raw mode and a remote terminal
/// need).
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The local terminal's size as (rows, cols); 24×80 when it cannot be read.
pub fn size() -> (u16, u16) {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a winsize we own.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 && ws.ws_col > 0 {
        (ws.ws_row, ws.ws_col)
    } else {
        (24, 80)
    }
}
