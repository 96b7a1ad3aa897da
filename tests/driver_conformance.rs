//! Driver conformance: the same scenarios against every backend available here (real
//! gVisor sandboxes; no fake backend). Each test makes its own state directory and
//! clears every sandbox and mount in it when it ends, even on failure.
//!
//! Needs root, runsc, and the `minimal` and `default` images in `CORRAL_IMAGE_DIR`
//! (default `/var/lib/corral/images`; the set-up and test commands build them with
//! `corral image build default`). The agent is the `corral` binary itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm_driver::{
    CheckpointId, Driver, DriverConfig, DriverError, ExecEvent, ExecRequest, ImageRef, MachineId,
    MachineSpec, MachineState,
};

#[path = "driver_conformance/images.rs"]
mod images;
#[path = "driver_conformance/terminal.rs"]
mod terminal;

/// Backends the suite runs against; each must be available on this machine.
const BACKENDS: [&str; 1] = ["gvisor"];

fn image_dir() -> PathBuf {
    std::env::var_os("CORRAL_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/corral/images".into())
}

/// The agent binary: the `corral` binary itself (`corral agent`).
fn agent_path() -> PathBuf {
    env!("CARGO_BIN_EXE_corral").into()
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
        for name in ["minimal", "default"] {
            assert!(
                images.join(name).join("bin/sh").exists(),
                "no {name} image in {} (build it with `corral image build default`, or set CORRAL_IMAGE_DIR)",
                images.display()
            );
        }
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
        if std::env::var_os("CORRAL_CONF_KEEP").is_some() {
            let _ = self._state.path().to_path_buf();
            eprintln!("keeping {}", self.config.state_dir.display());
            std::mem::forget(std::mem::replace(
                &mut self._state,
                tempfile::tempdir().unwrap(),
            ));
            return;
        }
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

/// An error with its sources, for panic messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
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
        image: ImageRef::Operator("minimal".into()),
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
        .unwrap_or_else(|e| panic!("exec {cmd:?}: {}", chain(&e)));
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
    ($name:ident, $body:path) => {
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
conformance!(images_tools_templates_fork_export, images::scenario);
conformance!(commands_run_on_a_terminal, terminal::scenario);
async fn exec_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let (code, out, _) = run(d, &id, "echo hello; cat /etc/debian_version").await;
    assert_eq!(code, 0);
    assert!(out.starts_with("hello\n12"), "{out:?}");

    // The everyday tools work (coreutils' statx flags included).
    let (code, out, err) = run(
        d,
        &id,
        "ls / && stat -c %F /etc && cp /etc/hostname /tmp/h && du -s /etc",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("etc\n") && out.contains("directory\n"),
        "{out:?}"
    );

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

conformance!(files_are_binary_safe_and_limited, files_scenario);
async fn files_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    d.write_file(&id, "/root/deep/dir/blob.bin", &data)
        .await
        .unwrap();
    assert_eq!(
        d.read_file(&id, "/root/deep/dir/blob.bin", 10 << 20)
            .await
            .unwrap(),
        data
    );
    let (_, sum, _) = run(d, &id, "wc -c < /root/deep/dir/blob.bin").await;
    assert_eq!(sum.trim(), "3000000");
    // Every byte value survives; empty files too.
    let all: Vec<u8> = (0..=255u8).collect();
    d.write_file(&id, "/tmp/all", &all).await.unwrap();
    assert_eq!(d.read_file(&id, "/tmp/all", 256).await.unwrap(), all);
    d.write_file(&id, "/root/empty", b"").await.unwrap();
    assert_eq!(d.read_file(&id, "/root/empty", 0).await.unwrap(), b"");
    // What a command wrote is what the file API reads, and the other way round.
    run(d, &id, "printf 'a\\0b' > /root/nul").await;
    assert_eq!(d.read_file(&id, "/root/nul", 10).await.unwrap(), b"a\0b");
    assert!(matches!(
        d.read_file(&id, "/tmp/all", 255).await,
        Err(DriverError::Invalid(_))
    ));
    assert!(matches!(
        d.read_file(&id, "/nope", 10).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        d.read_file(&id, "/root", 10).await,
        Err(DriverError::Invalid(_))
    ));
    assert!(matches!(
        d.read_file(&id, "relative", 10).await,
        Err(DriverError::Invalid(_))
    ));
    assert!(matches!(
        d.write_file(&id, "relative", b"x").await,
        Err(DriverError::Invalid(_))
    ));
    d.destroy(&id).await.unwrap();
}

conformance!(disk_has_a_hard_size_and_persists, disk_scenario);
async fn disk_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = fresh_id();
    d.create(&MachineSpec {
        disk_mb: 64,
        ..spec(&id)
    })
    .await
    .unwrap();
    // Idempotent create; a conflicting one is refused.
    d.create(&MachineSpec {
        disk_mb: 64,
        ..spec(&id)
    })
    .await
    .unwrap();
    assert!(d.create(&spec(&id)).await.is_err());
    assert_eq!(state_of(d, &id).await, Some(MachineState::Stopped));
    let before = d.usage(&id).unwrap().disk_bytes;
    d.start(&id).await.unwrap();
    let (code, _, err) = run(d, &id, "dd if=/dev/zero of=/root/fill bs=1M count=100").await;
    assert_ne!(code, 0);
    assert!(err.contains("No space left"), "{err}");
    let used = d.usage(&id).unwrap().disk_bytes;
    assert!(used > before + (40 << 20), "disk usage {before} -> {used}");
    assert!(matches!(
        d.write_file(&id, "/root/more", &vec![1u8; 8 << 20]).await,
        Err(DriverError::DiskFull)
    ));
    run(
        d,
        &id,
        "rm /root/fill; echo kept > /root/kept; mkdir -p /srv/x; rm -rf /usr/share/doc",
    )
    .await;

    // Survives pause/resume and stop/start.
    d.pause(&id).await.unwrap();
    assert_eq!(state_of(d, &id).await, Some(MachineState::Paused));
    assert!(matches!(
        d.exec(&id, sh("true")).await,
        Err(DriverError::InvalidState(_))
    ));
    d.pause(&id).await.unwrap();
    d.resume(&id).await.unwrap();
    assert_eq!(run(d, &id, "cat /root/kept").await.1, "kept\n");
    d.stop(&id).await.unwrap();
    assert_eq!(state_of(d, &id).await, Some(MachineState::Stopped));
    assert!(matches!(
        d.exec(&id, sh("true")).await,
        Err(DriverError::InvalidState(_))
    ));
    assert!(matches!(
        d.pause(&id).await,
        Err(DriverError::InvalidState(_))
    ));
    assert!(d.usage(&id).unwrap().disk_bytes > 0);
    d.start(&id).await.unwrap();
    let (_, out, _) = run(
        d,
        &id,
        "cat /root/kept; test -d /srv/x && echo dir; test -e /usr/share/doc || echo deleted",
    )
    .await;
    assert_eq!(out, "kept\ndir\ndeleted\n");

    d.destroy(&id).await.unwrap();
    assert_eq!(state_of(d, &id).await, None);
    d.destroy(&id).await.unwrap();
    assert!(matches!(d.start(&id).await, Err(DriverError::NotFound(_))));
}

conformance!(checkpoint_and_restore, checkpoint_scenario);
async fn checkpoint_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    run(
        d,
        &id,
        "echo before > /root/before; echo tmp > /tmp/tmpfile",
    )
    .await;
    run(d, &id, "nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > /run/counter; sleep 0.05; done' >/dev/null 2>&1 & echo $! > /root/loop.pid").await;
    let c1 = CheckpointId::from_key(1);
    let info = d.checkpoint(&id, &c1).await.unwrap();
    assert!(info.size_bytes > 0);
    // The machine is as it was: running, same processes, same files.
    assert_eq!(state_of(d, &id).await, Some(MachineState::Running));
    let (code, _, _) = run(d, &id, "kill -0 $(cat /root/loop.pid)").await;
    assert_eq!(code, 0, "the loop died at the checkpoint");
    run(d, &id, "echo after > /root/after; rm /root/before").await;

    d.restore(&id, &c1).await.unwrap();
    let (_, out, _) = run(d, &id, "cat /root/before /tmp/tmpfile; test -e /root/after && echo after-survived; kill -0 $(cat /root/loop.pid) && echo loop-alive").await;
    assert_eq!(out, "before\ntmp\nloop-alive\n");
    // The loop rewrites the file: a read may fall between its truncation and its
    // write, so read until it holds a number.
    let a = images::counter_at(d, &id, "/run/counter").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b2 = images::counter_at(d, &id, "/run/counter").await;
    assert!(b2 > a, "the loop does not run");

    // A paused machine stays paused across a checkpoint.
    d.pause(&id).await.unwrap();
    let c2 = CheckpointId::from_key(2);
    d.checkpoint(&id, &c2).await.unwrap();
    assert_eq!(state_of(d, &id).await, Some(MachineState::Paused));
    d.resume(&id).await.unwrap();

    // A stopped machine's checkpoint is its disk; restoring it starts the machine.
    d.stop(&id).await.unwrap();
    let c3 = CheckpointId::from_key(3);
    d.checkpoint(&id, &c3).await.unwrap();
    assert_eq!(state_of(d, &id).await, Some(MachineState::Stopped));
    d.start(&id).await.unwrap();
    run(d, &id, "echo later > /root/later").await;
    d.restore(&id, &c3).await.unwrap();
    assert_eq!(state_of(d, &id).await, Some(MachineState::Running));
    assert_eq!(
        run(d, &id, "cat /root/before; test -e /root/later || echo gone")
            .await
            .1,
        "before\ngone\n"
    );

    d.delete_checkpoint(&id, &c1).await.unwrap();
    d.delete_checkpoint(&id, &c1).await.unwrap();
    assert!(matches!(
        d.restore(&id, &c1).await,
        Err(DriverError::NotFound(_))
    ));
    d.destroy(&id).await.unwrap();
}

conformance!(machines_survive_a_restart_of_the_driver, restart_scenario);
async fn restart_scenario(b: &Backend) {
    // The suite needs its own mutable backend here.
    let mut b2 = Backend::open(b.driver.name()).await;
    let running = started(&b2).await;
    let stopped = fresh_id();
    b2.driver.create(&spec(&stopped)).await.unwrap();
    run(&*b2.driver, &running, "echo persisted > /root/p").await;
    b2.reopen().await;
    let d = &*b2.driver;
    let list = d.list().await.unwrap();
    assert!(
        list.iter()
            .any(|m| m.id == running && m.state == MachineState::Running),
        "{list:?}"
    );
    assert!(
        list.iter()
            .any(|m| m.id == stopped && m.state == MachineState::Stopped),
        "{list:?}"
    );
    // The agent is reached again without restarting the machine.
    assert_eq!(run(d, &running, "cat /root/p").await.1, "persisted\n");
    for _ in 0..5 {
        assert_eq!(run(d, &running, "echo ok").await.1, "ok\n");
    }
    d.checkpoint(&running, &CheckpointId::from_key(9))
        .await
        .unwrap();
    assert_eq!(run(d, &running, "cat /root/p").await.1, "persisted\n");

    // Disks unmounted behind the driver's back (a reboot) are mounted again on open.
    d.stop(&running).await.unwrap();
    b2.driver = vmm_driver::from_config(&b2.config).await.unwrap();
    cleanup(&b2.config.state_dir);
    b2.reopen().await;
    let d = &*b2.driver;
    assert!(d.usage(&running).unwrap().disk_bytes > 0);
    d.start(&running).await.unwrap();
    assert_eq!(run(d, &running, "cat /root/p").await.1, "persisted\n");
    d.destroy(&running).await.unwrap();
    d.destroy(&stopped).await.unwrap();
}

conformance!(usage_is_sampled_cheaply, usage_scenario);
async fn usage_scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let first = d.usage(&id).unwrap();
    assert!(first.memory_bytes > 0 && first.disk_bytes > 0, "{first:?}");
    run(d, &id, "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done").await;
    let busy = d.usage(&id).unwrap();
    assert!(
        busy.cpu_ns > first.cpu_ns + 100_000_000,
        "{first:?} -> {busy:?}"
    );
    d.pause(&id).await.unwrap();
    let p1 = d.usage(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p2 = d.usage(&id).unwrap();
    assert!(
        p2.cpu_ns - p1.cpu_ns < 20_000_000,
        "a paused machine used {} ns",
        p2.cpu_ns - p1.cpu_ns
    );
    d.resume(&id).await.unwrap();
    let t = Instant::now();
    for _ in 0..1000 {
        d.usage(&id).unwrap();
    }
    let each = t.elapsed() / 1000;
    assert!(
        each < Duration::from_micros(200),
        "a usage sample took {each:?}"
    );
    assert!(matches!(
        d.usage(&fresh_id()),
        Err(DriverError::NotFound(_))
    ));
    d.destroy(&id).await.unwrap();
}

conformance!(hostile_machines_are_contained, hostile_scenario);
async fn hostile_scenario(b: &Backend) {
    let d = &*b.driver;
    let calm = started(b).await;
    let hostile = started(b).await;

    // A CPU spinner with two busy loops gets one CPU's quota.
    let c0 = d.usage(&hostile).unwrap().cpu_ns;
    let mut spin =
        sh("timeout 2 sh -c 'while :; do :; done' & timeout 2 sh -c 'while :; do :; done'; wait");
    spin.timeout = Some(Duration::from_secs(10));
    let t = Instant::now();
    d.exec(&hostile, spin).await.unwrap();
    let used = d.usage(&hostile).unwrap().cpu_ns - c0;
    let wall = t.elapsed().as_nanos() as u64;
    assert!(
        used < wall * 13 / 10,
        "1 vCPU used {used} ns in {wall} ns of wall time"
    );
    assert_eq!(run(d, &calm, "echo fine").await.1, "fine\n");

    // A fork bomb hits the pids limit; the neighbour is unharmed.
    let mut bomb = sh("b() { b | b & }; b; sleep 5");
    bomb.timeout = Some(Duration::from_secs(8));
    let _ = d.exec(&hostile, bomb).await;
    assert_eq!(run(d, &calm, "echo fine").await.1, "fine\n");
    let _ = d.stop(&hostile).await;
    d.start(&hostile).await.unwrap();

    // A memory hog past its limit is killed; the neighbour is unharmed.
    let mut hog = sh("head -c 600m /dev/zero | tail > /dev/null; echo survived");
    hog.timeout = Some(Duration::from_secs(20));
    let res = d.exec(&hostile, hog).await;
    if let Ok(out) = &res {
        assert_ne!(
            String::from_utf8_lossy(&out.stdout),
            "survived\n",
            "a 600 MiB hog survived a 256 MiB limit"
        );
    }
    assert_eq!(run(d, &calm, "echo fine").await.1, "fine\n");
    assert!(d.usage(&hostile).unwrap().memory_bytes <= 256 << 20);
    // The hostile machine can be started again.
    let _ = d.stop(&hostile).await;
    d.start(&hostile).await.unwrap();
    assert_eq!(run(d, &hostile, "echo back").await.1, "back\n");
    d.destroy(&hostile).await.unwrap();
    d.destroy(&calm).await.unwrap();
}

#[tokio::test]
async fn unavailable_backend_names_what_is_missing() {
    let state = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        kind: "gvisor".into(),
        state_dir: state.path().into(),
        image_dir: state.path().join("no-images"),
        agent_path: agent_path(),
    };
    // No images yet: the backend runs, has none to offer, and a create names the
    // command that builds one.
    let bare = vmm_driver::from_config(&config)
        .await
        .expect("a backend without images still opens");
    assert!(bare.images().is_empty());
    let mut machine = spec(&fresh_id());
    machine.image = ImageRef::Operator("default".into());
    let err = bare
        .create(&machine)
        .await
        .expect_err("no image to make it from");
    assert!(
        matches!(err, DriverError::NotFound(_))
            && err.to_string().contains("corral image build default"),
        "{err}"
    );
    drop(bare);
    let config = DriverConfig {
        image_dir: image_dir(),
        agent_path: state.path().join("no-agent"),
        ..config
    };
    let err = vmm_driver::from_config(&config)
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("agent"), "{err}");
    let config = DriverConfig {
        kind: "vmware".into(),
        ..config
    };
    assert!(matches!(
        vmm_driver::from_config(&config).await,
        Err(DriverError::Unavailable(_))
    ));
}
