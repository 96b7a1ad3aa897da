//! Driver conformance: the same scenarios against every backend available here (real
//! gVisor sandboxes; no fake backend). Each test makes its own state directory and
//! clears every sandbox and mount in it when it ends, even on failure.
//!
//! Needs root, runsc, and the base image in `CORRAL_IMAGE_DIR` (default
//! `/var/lib/corral/images`; build it with `corral image build`). The agent binary is
//! `CORRAL_AGENT` or `target/<profile>/corral-agent`, built on demand.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm_driver::{
    CheckpointId, Driver, DriverConfig, DriverError, ExecEvent, ExecRequest, MachineId,
    MachineSpec, MachineState,
};

/// Backends the suite runs against; each must be available on this machine.
const BACKENDS: [&str; 1] = ["gvisor"];

fn image_dir() -> PathBuf {
    std::env::var_os("CORRAL_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/corral/images".into())
}

/// The agent binary: `CORRAL_AGENT`, or vmm-driver's `corral-agent` next to this test's
/// target directory (built with cargo when missing).
fn agent_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("CORRAL_AGENT") {
                return p.into();
            }
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>");
            let agent = profile_dir.join("corral-agent");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-q", "-p", "vmm-driver", "--bin", "corral-agent"])
                .status()
                .expect("running cargo to build corral-agent");
            assert!(
                status.success() && agent.exists(),
                "could not build {}",
                agent.display()
            );
            agent
        })
        .clone()
}

/// A driver over a fresh state directory that cleans up after itself.
struct Backend {
    driver: Arc<dyn Driver>,
    config: DriverConfig,
    _state: tempfile::TempDir,
}

impl Backend {
    async fn open(kind: &str) -> Self {
        let images = image_dir();
        assert!(
            images.join("base").join("bin/sh").exists(),
            "no base image in {} (build it with `corral image build`, or set CORRAL_IMAGE_DIR)",
            images.display()
        );
        let state = tempfile::Builder::new()
            .prefix("corral-conf-")
            .tempdir()
            .expect("temp dir");
        let config = DriverConfig {
            kind: kind.into(),
            state_dir: state.path().to_path_buf(),
            image_dir: images,
            agent_path: agent_path(),
        };
        let driver = vmm_driver::from_config(&config)
            .await
            .unwrap_or_else(|e| panic!("backend {kind} is not available: {e}"));
        Self {
            driver,
            config,
            _state: state,
        }
    }

    /// Reopens the driver on the same state, as after a restart of the process.
    async fn reopen(&mut self) {
        self.driver = vmm_driver::from_config(&self.config).await.expect("reopen");
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        cleanup(&self.config.state_dir);
    }
}

/// Kills every sandbox under `state` and unmounts everything mounted below it.
fn cleanup(state: &Path) {
    let root = state.join("runsc");
    let runsc = |args: &[&str]| {
        std::process::Command::new("runsc")
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
    };
    if let Ok(out) = runsc(&["list", "--quiet"]) {
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let procs = format!("/sys/fs/cgroup/pids/corral/{id}/cgroup.procs");
            for pid in std::fs::read_to_string(procs)
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid])
                    .status();
            }
            let _ = runsc(&["delete", "--force", id]);
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = state.to_string_lossy().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", p])
            .status();
    }
}

/// A machine id no other test (or concurrent run) uses.
fn fresh_id() -> MachineId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    MachineId::from_key(
        (nanos & 0xffff_ffff_ff00_0000)
            ^ ((std::process::id() as u64) << 8)
            ^ NEXT.fetch_add(1, Ordering::SeqCst),
    )
}

fn spec(id: &MachineId) -> MachineSpec {
    MachineSpec {
        id: id.clone(),
        cpus: 1,
        memory_mb: 256,
        disk_mb: 256,
    }
}

fn sh(cmd: &str) -> ExecRequest {
    ExecRequest {
        argv: vec!["sh".into(), "-c".into(), cmd.into()],
        ..Default::default()
    }
}

async fn run(d: &dyn Driver, id: &MachineId, cmd: &str) -> (i32, String, String) {
    let out = d
        .exec(id, sh(cmd))
        .await
        .unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"));
    (
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn started(b: &Backend) -> MachineId {
    let id = fresh_id();
    b.driver.create(&spec(&id)).await.expect("create");
    b.driver.start(&id).await.expect("start");
    id
}

async fn state_of(d: &dyn Driver, id: &MachineId) -> Option<MachineState> {
    d.list()
        .await
        .expect("list")
        .into_iter()
        .find(|m| &m.id == id)
        .map(|m| m.state)
}

/// Runs a scenario against every backend.
macro_rules! conformance {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for kind in BACKENDS {
                let backend = Backend::open(kind).await;
                $body(&backend).await;
            }
        }
    };
}

conformance!(exec_runs_commands, exec_scenario);
async fn exec_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let (code, out, _) = run(d, &id, "echo hello; cat /etc/debian_version").await;
    assert_eq!(code, 0);
    assert!(out.starts_with("hello\n12"), "{out:?}");

    // argv, env, cwd, stdin, stderr and the exit code.
    let out = d
        .exec(
            &id,
            ExecRequest {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "pwd; echo $GREETING; cat; echo oops >&2; exit 3".into(),
                ],
                env: vec![("GREETING".into(), "hi there".into())],
                cwd: Some("/etc".into()),
                stdin: b"from stdin".to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/etc\nhi there\nfrom stdin"
    );
    assert_eq!(out.stderr, b"oops\n");
    assert!(!out.truncated && !out.timed_out);

    // A missing program is exit 127 with a message, like a shell.
    let out = d
        .exec(
            &id,
            ExecRequest {
                argv: vec!["no-such-program".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127);
    assert!(!out.stderr.is_empty());
    assert!(matches!(
        d.exec(&id, ExecRequest::default()).await,
        Err(DriverError::Invalid(_))
    ));

    // The output cap.
    let mut req = sh("head -c 100000 /dev/zero; echo done >&2");
    req.max_output_bytes = 1000;
    let out = d.exec(&id, req).await.unwrap();
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.truncated);
    assert_eq!(out.stderr, b"done\n");

    // The timeout kills the whole process group.
    let mut req = sh("sleep 30 & sleep 30; echo never");
    req.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let out = d.exec(&id, req).await.unwrap();
    assert!(out.timed_out);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(out.exit_code, 128 + 9);
    let (_, ps, _) = run(d, &id, "ps -eo args | grep -c '^sleep 30' || true").await;
    assert_eq!(ps.trim(), "0", "sleeps survived the timeout");

    // Many commands at once on one machine.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let driver = b.driver.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let out = driver
                .exec(&id, sh(&format!("sleep 0.2; echo {i}")))
                .await
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), i.to_string());
        }));
    }
    let t = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "concurrent execs took {:?}",
        t.elapsed()
    );

    // Round trip of a trivial command through the agent.
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let out = d
            .exec(
                &id,
                ExecRequest {
                    argv: vec!["true".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        times.push(out.duration);
    }
    times.sort();
    assert!(
        times[10] < Duration::from_millis(50),
        "exec p50 {:?}",
        times[10]
    );
    b.driver.destroy(&id).await.unwrap();
}

conformance!(exec_streams, stream_scenario);
async fn stream_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let mut stream = d
        .exec_stream(
            &id,
            sh("while read l; do echo got $l; echo err $l >&2; done; exit 7"),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    stream.stdin.send(b"one\n".to_vec()).await.unwrap();
    // Output arrives while the command still runs.
    while !String::from_utf8_lossy(&out).contains("got one") {
        match tokio::time::timeout(Duration::from_secs(5), stream.events.recv())
            .await
            .expect("stream output")
        {
            Some(ExecEvent::Stdout(b)) => out.extend(b),
            Some(ExecEvent::Stderr(b)) => err.extend(b),
            other => panic!("unexpected {other:?}"),
        }
    }
    stream.stdin.send(b"two\n".to_vec()).await.unwrap();
    drop(stream.stdin);
    let code = loop {
        match stream.events.recv().await.expect("exit event") {
            ExecEvent::Stdout(b) => out.extend(b),
            ExecEvent::Stderr(b) => err.extend(b),
            ExecEvent::Exit(code) => break code,
        }
    };
    assert_eq!(code, 7);
    assert_eq!(String::from_utf8_lossy(&out), "got one\ngot two\n");
    assert!(String::from_utf8_lossy(&err).contains("err two"));

    // Dropping the stream kills the command.
    let stream = d
        .exec_stream(&id, sh("echo $$ > /run/streamed.pid; exec sleep 60"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _, _) = run(d, &id, "kill -0 $(cat /run/streamed.pid)").await;
    assert_ne!(code, 0, "the streamed command survived its stream");
    d.destroy(&id).await.unwrap();
}
