//! Killing a sandbox fast. runsc's own teardown waits until the sandbox process is gone,
//! and an orphan lingers as a zombie until its parent reaps it (1–2 s under a slow init).
//! So the driver makes itself a child subreaper, kills the sandbox's processes itself
//! and reaps them at once; `runsc delete` then returns in milliseconds.

use std::time::{Duration, Instant};

/// Makes this process the reaper of the sandboxes it starts (process-wide).
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// The processes in the machine's pids cgroup (gofer, sandbox, stubs).
pub fn cgroup_pids(id: &crate::MachineId) -> Vec<i32> {
    let path = super::cgroup::dir("pids", id).join("cgroup.procs");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Reaps zombie children that are sandbox processes (runsc re-executes itself, so they
/// are all named `exe`). Other children (runsc commands) are left to whoever waits on them.
pub fn sweep() {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (
            fields.next(),
            fields.next().and_then(|p| p.parse::<i32>().ok()),
        );
        if state == Some("Z") && ppid == Some(me) && comm == "exe" {
            let mut status = 0;
            // SAFETY: waitpid on a specific zombie child with a valid pointer.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// SIGKILLs the sandbox's processes and reaps them; waits at most `limit` for processes
/// that are not our children (their parent reaps them).
pub fn kill_all(id: &crate::MachineId, limit: Duration) {
    let pids = cgroup_pids(id);
    for &pid in &pids {
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let start = Instant::now();
    loop {
        for &pid in &pids {
            let mut status = 0;
            // SAFETY: waitpid on a specific pid with a valid pointer; ECHILD when it is
            // not our child is fine.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
        sweep();
        let gone = !pids.iter().any(|&p| alive(p)) && !control_socket_open(id);
        if gone || start.elapsed() > limit {
            super::cgroup::remove(id);
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether the sandbox's control socket (`@runsc-sandbox.<id>`, abstract, so global to
/// the host) is still bound. A new sandbox of the same id cannot start until it is gone,
/// and it outlives the sandbox's pid while the process's last threads exit.
pub fn control_socket_open(id: &crate::MachineId) -> bool {
    let name = format!("@runsc-sandbox.{id}");
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| t.lines().any(|l| l.ends_with(&name)))
        .unwrap_or(false)
}
