//! A spinner (with a byte count for transfers) on stderr, for anything that takes more
//! than a moment; it draws only when stderr is a terminal and clears itself when done.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::output;

/// Nothing is drawn for work that finishes sooner than this.
const GRACE: Duration = Duration::from_millis(300);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

struct State {
    stopped: bool,
    drawn: bool,
}

/// A running spinner; dropping it (or [`Spinner::finish`]) erases it.
pub struct Spinner {
    state: Option<Arc<Mutex<State>>>,
    bytes: Arc<AtomicU64>,
    /// Bytes expected in all (0: not known).
    total: Arc<AtomicU64>,
}

impl Spinner {
    /// Starts `label` (e.g. "creating box"); `total` bytes makes it a progress line.
    pub fn start(label: impl Into<String>, total: Option<u64>) -> Self {
        let bytes = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(total.unwrap_or(0)));
        if !std::io::stderr().is_terminal() {
            return Self {
                state: None,
                bytes,
                total,
            };
        }
        let state = Arc::new(Mutex::new(State {
            stopped: false,
            drawn: false,
        }));
        let (label, shared) = (label.into(), state.clone());
        let (counter, expected) = (bytes.clone(), total.clone());
        // A plain thread, not a task: drawing must go on while the runtime's threads are
        // busy, and the drop below must be able to stop it without awaiting.
        std::thread::spawn(move || {
            let started = Instant::now();
            std::thread::sleep(GRACE);
            for frame in FRAMES.iter().cycle() {
                let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                if state.stopped {
                    return;
                }
                let done = counter.load(Ordering::Relaxed);
                let total = expected.load(Ordering::Relaxed);
                let line = render(*frame, &label, started.elapsed(), done, total);
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
                state.drawn = true;
                drop(state);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            state: Some(state),
            bytes,
            total,
        }
    }

    /// Sets the bytes expected, once they are known.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// The byte counter a transfer adds to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Erases the spinner.
    pub fn finish(self) {}
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.stopped = true;
            if state.drawn {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
        }
    }
}

fn render(frame: char, label: &str, elapsed: Duration, done: u64, total: u64) -> String {
    let secs = elapsed.as_secs();
    match total {
        total if total > 0 => {
            let pct = done.saturating_mul(100) / total;
            format!(
                "{frame} {label} {} / {} ({pct}%) {secs}s",
                output::bytes(done),
                output::bytes(total)
            )
        }
        _ if done > 0 => format!("{frame} {label} {} {secs}s", output::bytes(done)),
        _ => format!("{frame} {label} {secs}s"),
    }
}
