//! Commands inside the sprite: spawning each in its own process group, forwarding its
//! stdio, enforcing its timeout and output cap, and reaping every child (the agent is
//! the sandbox's init, so orphans land on it too).
//!
//! Pipes and children are served by plain threads with blocking calls (kept between
//! commands, see `workers`), never through epoll (tokio's I/O driver): after `runsc
//! restore` this gVisor can hand an epoll instance an event for a registration that was
//! gone at the checkpoint, and tokio then follows a dangling pointer. A blocked read,
//! write or wait simply carries on.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::proto::{ExecSpec, ExitInfo, Frame, Kind, CHUNK};
use super::{net, tty, workers};

/// Encoded frames on their way to the driver. Bounded: when the host stops reading (it
/// applies backpressure to a client that reads nothing), the output threads block, the
/// command's pipes fill and the command blocks, instead of the agent's memory growing.
pub type Out = mpsc::Sender<Vec<u8>>;

/// Frames queued for the writer thread at most (each at most a [`CHUNK`] of output).
pub const OUT_QUEUE: usize = 16;

/// Children waiting for their exit status, by pid. Spawning holds the lock, so the reaper
/// cannot collect a child before it is registered here.
static CHILDREN: Mutex<Option<HashMap<i32, oneshot::Sender<i32>>>> = Mutex::new(None);

/// How long output is still forwarded after the command exits, for descendants that hold
/// its pipes open (a daemon started in the background must not hang the command).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

/// Counts spawns, so the reaper can sleep while the agent has no children at all.
static SPAWNS: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

/// Starts the reaper thread: it waits for any child to end (commands, and orphans that
/// were reparented to the agent as init) and hands each command its exit code.
pub fn start_reaper() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(reap_forever)?;
    Ok(())
}

fn reap_forever() {
    loop {
        let seen = *SPAWNS.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut status = 0;
        // SAFETY: waitpid with a valid pointer to an int.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            exited(pid, status);
            continue;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // No children: nothing can end (or be orphaned to us) before the next spawn.
        let mut spawns = SPAWNS.0.lock().unwrap_or_else(|e| e.into_inner());
        while *spawns == seen {
            spawns = SPAWNS.1.wait(spawns).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn exited(pid: i32, status: i32) {
    let mut guard = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = guard.get_or_insert_with(HashMap::new).remove(&pid) {
        let code = if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            libc::WEXITSTATUS(status)
        };
        let _ = tx.send(code);
    }
}

/// Sends from a plain thread, waiting while the queue is full.
fn send_blocking(out: &Out, kind: Kind, chan: u32, payload: Vec<u8>) {
    let _ = out.blocking_send(Frame::new(kind, chan, payload).encode());
}

fn kill_group(pgid: i32) {
    // SAFETY: kill takes no pointers; a negative pid names the process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Runs one command, reading its control frames (stdin, kill) from `ctl`.
pub async fn run(chan: u32, spec: ExecSpec, mut ctl: mpsc::UnboundedReceiver<Frame>, out: Out) {
    let Some((program, args)) = spec.argv.split_first() else {
        return finish_early(&out, chan, 127, "corral: empty command\n".into()).await;
    };
    let mut cmd = match spec.tty {
        Some(_) => tty::leader_command(&spec.argv),
        None => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(args);
            cmd
        }
    };
    // The way out is the agent's proxy (see `net`), unless the command says otherwise.
    for (name, value) in net::proxy_env() {
        if !spec.env.iter().any(|(k, _)| k == name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(spec.cwd.as_deref().unwrap_or("/"));
    // On a terminal the command leads a session of its own (its process group too);
    // on pipes it gets a process group, so a kill reaches what it started.
    let mut terminal = None;
    match spec.tty {
        Some(size) => {
            let opened = tty::open(size).and_then(|(master, slave)| {
                let (control, read_end) = tty::attach(&mut cmd, &slave)?;
                Ok((master, control, (slave, read_end)))
            });
            match opened {
                Ok(pair) => terminal = Some(pair),
                Err(e) => {
                    return finish_early(&out, chan, 126, format!("corral: no terminal: {e}\n"))
                        .await
                }
            }
            if !spec.env.iter().any(|(k, _)| k == "TERM") {
                cmd.env("TERM", tty::TERM);
            }
        }
        None => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
    }

    let (exit_tx, mut exit_rx) = oneshot::channel();
    let mut child = {
        let mut guard = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        match cmd.spawn() {
            Ok(child) => {
                guard
                    .get_or_insert_with(HashMap::new)
                    .insert(child.id() as i32, exit_tx);
                *SPAWNS.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                SPAWNS.1.notify_all();
                child
            }
            Err(e) => {
                drop(guard);
                let code = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    126
                } else {
                    127
                };
                return finish_early(&out, chan, code, format!("corral: {program}: {e}\n")).await;
            }
        }
    };
    // The command holds the terminal now: the agent keeps only the master, so reading
    // it ends when the command and what it started close theirs.
    drop(cmd);
    let (master, mut control) = match terminal {
        Some((master, control, _child_ends)) => (Some(master), Some(control)),
        None => (None, None),
    };
    let pgid = child.id() as i32;
    let truncated = Arc::new(AtomicBool::new(false));
    let mut pumps = Vec::new();
    let max = spec.max_output;
    let (stdin_tx, mut stdin_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut writer: Option<Box<dyn Write + Send>> = child
        .stdin
        .take()
        .map(|s| Box::new(s) as Box<dyn Write + Send>);
    if let (Some(master), Some(control)) = (&master, &control) {
        let clones = (master.try_clone(), master.try_clone(), control.try_clone());
        match clones {
            (Ok(reader), Ok(input), Ok(signals)) => {
                pumps.push(pump(reader, Kind::Stdout, chan, max, &out, &truncated));
                writer = Some(Box::new(Keys { input, signals }));
            }
            _ => kill_group(pgid),
        }
    }
    if let Some(stdout) = child.stdout.take() {
        pumps.push(pump(stdout, Kind::Stdout, chan, max, &out, &truncated));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(pump(stderr, Kind::Stderr, chan, max, &out, &truncated));
    }
    if let Some(mut stdin) = writer {
        let _ = workers::run("stdin", move || {
            while let Some(data) = stdin_rx.blocking_recv() {
                if stdin.write_all(&data).is_err() {
                    return;
                }
            }
        });
    }
    let mut stdin_tx = Some(stdin_tx);

    let deadline = spec
        .timeout_ms
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let mut timed_out = false;
    let mut ctl_open = true;
    let code = loop {
        tokio::select! {
            code = &mut exit_rx => break code.unwrap_or(-1),
            frame = ctl.recv(), if ctl_open => match frame {
                Some(f) if f.kind == Kind::Stdin => {
                    if let Some(tx) = &stdin_tx { let _ = tx.send(f.payload); }
                }
                Some(f) if f.kind == Kind::StdinEof => stdin_tx = None,
                Some(f) if f.kind == Kind::Resize => {
                    if let (Some(master), Ok(size)) = (&master, f.parse()) {
                        tty::resize(master, size);
                    }
                }
                Some(f) if f.kind == Kind::Signal => {
                    if let (Some(control), Ok(raw)) = (&mut control, <[u8; 4]>::try_from(&f.payload[..])) {
                        tty::signal(control, i32::from_le_bytes(raw));
                    }
                }
                Some(f) if f.kind != Kind::Kill => {}
                other => {
                    ctl_open = other.is_some();
                    kill_group(pgid);
                }
            },
            _ = sleep_until(deadline), if !timed_out => {
                timed_out = true;
                kill_group(pgid);
            }
        }
    };
    drop(stdin_tx);
    if timed_out {
        kill_group(pgid);
    }
    if master.is_some() {
        // The leader's session (its id is the leader's pid) outlives it in what the
        // command left running: hang it up, as a closed terminal would.
        tty::hang_up(pgid);
    }
    let drain = async {
        for done in pumps {
            let _ = done.await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, drain).await;
    let info = ExitInfo {
        code,
        timed_out,
        truncated: truncated.load(Ordering::Relaxed),
    };
    let _ = out
        .send(Frame::json(Kind::Exit, chan, &info).encode())
        .await;
}

/// Keys typed into a terminal: plain bytes go to the program, the interrupt, quit and
/// suspend characters to the session leader as signals (see `tty::keys`).
struct Keys {
    input: std::fs::File,
    signals: std::fs::File,
}

impl Write for Keys {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        for part in tty::keys(&self.input, data) {
            match part {
                Ok(bytes) => self.input.write_all(&bytes)?,
                Err(signal) => tty::signal(&mut self.signals, signal),
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn finish_early(out: &Out, chan: u32, code: i32, message: String) {
    let stderr = Frame::new(Kind::Stderr, chan, message.into_bytes());
    let _ = out.send(stderr.encode()).await;
    let info = ExitInfo {
        code,
        ..Default::default()
    };
    let _ = out
        .send(Frame::json(Kind::Exit, chan, &info).encode())
        .await;
}

/// Forwards one of the command's output pipes on a thread of its own, up to `max` bytes
/// (0 = no cap); the receiver fires when the pipe is closed.
fn pump<R: Read + Send + 'static>(
    mut r: R,
    kind: Kind,
    chan: u32,
    max: u64,
    out: &Out,
    truncated: &Arc<AtomicBool>,
) -> oneshot::Receiver<()> {
    let (done, finished) = oneshot::channel();
    let (out, truncated) = (out.clone(), truncated.clone());
    let forward = move || {
        let mut sent = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let keep = if max == 0 {
                n
            } else {
                n.min(max.saturating_sub(sent) as usize)
            };
            if keep < n {
                truncated.store(true, Ordering::Relaxed);
            }
            if keep > 0 {
                sent += keep as u64;
                send_blocking(&out, kind, chan, buf[..keep].to_vec());
            }
        }
        let _ = done.send(());
    };
    // A thread that cannot start leaves the pipe unread; the command still ends.
    let _ = workers::run("output", forward);
    finished
}
