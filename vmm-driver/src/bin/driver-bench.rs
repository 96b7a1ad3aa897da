//! Benchmark of the gVisor driver beside the raw runsc CLI doing the same, on this host.
//!
//! `cargo run --release -p vmm-driver --bin driver-bench [runs] [sprites]` (as root).
//! Prints p50/p95 of each operation over `runs` (default 20) fresh machines, with the
//! raw figure and the ratio. Raw create/checkpoint/restore/destroy run in a child
//! process of this binary (`driver-bench raw …`), because the driver makes its process a
//! child subreaper, which would change how the raw CLI's teardown behaves. The bench is
//! its own in-sprite agent (`driver-bench agent`), as the `corral` binary is, so nothing
//! else has to be built first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm_driver::{
    CheckpointId, Driver, DriverConfig, ExecRequest, ImageId, ImageRef, MachineId, MachineSpec,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn runsc(root: &Path, args: &[&str]) -> Res<()> {
    let status = Command::new("runsc")
        .arg("--root")
        .arg(root)
        .arg("--network=none")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("runsc {args:?}: {status}").into());
    }
    Ok(())
}

/// A fresh scratch directory under the system temp dir.
fn scratch(what: &str) -> Res<PathBuf> {
    let dir = std::env::temp_dir().join(format!("corral-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The operator image every machine of the benchmark is made from.
const IMAGE: &str = "default";

fn image_dir() -> PathBuf {
    std::env::var_os("CORRAL_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/corral/images".into())
}

/// The raw CLI: overlay root, `runsc run`, `exec`, `checkpoint`, `delete`+`restore`,
/// `kill`+`delete`. Prints one line of JSON: `{"op": [ms, …], …}`.
fn raw(runs: usize) -> Res<()> {
    let work = scratch("raw")?;
    let root = work.join("runsc");
    let base = image_dir().join(IMAGE).canonicalize()?;
    let mut res: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for i in 0..runs {
        let id = format!("r{:016x}", 0xbe00 + i);
        let d = work.join(&id);
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        let t = Instant::now();
        let ok = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(d.join("root"))
            .status()?;
        if !ok.success() {
            return Err("mount overlay".into());
        }
        let spec = serde_json::json!({
            "ociVersion": "1.0.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sleep", "infinity"],
                        "env": ["PATH=/usr/bin:/bin"], "cwd": "/"},
            "root": {"path": d.join("root"), "readonly": false},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"cgroupsPath": format!("/corral-raw/{id}"),
                      "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                      "resources": {"cpu": {"quota": 100000, "period": 100000},
                                    "memory": {"limit": 256u64 << 20}, "pids": {"limit": 1024}}},
        });
        std::fs::write(d.join("config.json"), serde_json::to_vec(&spec)?)?;
        let bundle = d.to_string_lossy().to_string();
        runsc(&root, &["run", "--detach", "--bundle", &bundle, &id])?;
        runsc(&root, &["exec", &id, "/bin/true"])?;
        res.entry("create_first_exec")
            .or_default()
            .push(ms(t.elapsed()));
        for _ in 0..5 {
            let t = Instant::now();
            runsc(&root, &["exec", &id, "/bin/true"])?;
            res.entry("exec").or_default().push(ms(t.elapsed()));
        }
        let t = Instant::now();
        runsc(&root, &["pause", &id])?;
        res.entry("pause").or_default().push(ms(t.elapsed()));
        let t = Instant::now();
        runsc(&root, &["resume", &id])?;
        res.entry("resume").or_default().push(ms(t.elapsed()));

        let image = d.join("ck").to_string_lossy().to_string();
        let t = Instant::now();
        runsc(
            &root,
            &["checkpoint", &format!("--image-path={image}"), &id],
        )?;
        res.entry("checkpoint").or_default().push(ms(t.elapsed()));
        let t = Instant::now();
        runsc(&root, &["delete", &id])?;
        runsc(
            &root,
            &[
                "restore",
                "--detach",
                "--image-path",
                &image,
                "--bundle",
                &bundle,
                &id,
            ],
        )?;
        res.entry("restore").or_default().push(ms(t.elapsed()));

        let t = Instant::now();
        runsc(&root, &["kill", &id, "KILL"])?;
        runsc(&root, &["delete", &id])?;
        res.entry("destroy").or_default().push(ms(t.elapsed()));
        let _ = Command::new("umount").arg(d.join("root")).status();
    }
    out(&serde_json::to_string(&res)?);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

struct Row {
    name: &'static str,
    driver: Vec<f64>,
    raw: Vec<f64>,
    unit: &'static str,
}

fn print(rows: &[Row]) {
    out(&format!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "operation", "p50", "p95", "raw p50", "raw p95", "ratio"
    ));
    for r in rows {
        let (p50, p95) = (pct(&r.driver, 0.5), pct(&r.driver, 0.95));
        let (r50, r95) = (pct(&r.raw, 0.5), pct(&r.raw, 0.95));
        if r.raw.is_empty() {
            out(&format!(
                "{:<28} {:>8.3}{u} {:>8.3}{u} {:>10} {:>10} {:>8}",
                r.name,
                p50,
                p95,
                "-",
                "-",
                "",
                u = r.unit
            ));
            continue;
        }
        out(&format!(
            "{:<28} {:>8.3}{u} {:>8.3}{u} {:>8.3}{u} {:>8.3}{u} {:>7.2}x",
            r.name,
            p50,
            p95,
            r50,
            r95,
            p50 / r50,
            u = r.unit
        ));
    }
}

/// Times `n` execs of `true` on the machine, in milliseconds.
async fn exec_true_times(
    d: &Arc<dyn Driver>,
    id: &MachineId,
    n: usize,
    step: &str,
) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let req = ExecRequest {
            argv: vec!["true".into()],
            ..Default::default()
        };
        d.exec(id, req).await.map_err(|e| format!("{step}: {e}"))?;
        times.push(ms(t.elapsed()));
    }
    Ok(times)
}

async fn bench(runs: usize, sprites: usize) -> Res<()> {
    // Raw first: the driver makes this process a subreaper, which would keep the raw
    // sandboxes (its descendants) as unreaped zombies.
    let me = std::env::current_exe()?;
    let raw_out = Command::new(me).args(["raw", &runs.to_string()]).output()?;
    if !raw_out.status.success() {
        return Err(format!(
            "raw run failed: {}",
            String::from_utf8_lossy(&raw_out.stderr)
        )
        .into());
    }
    let raw: std::collections::BTreeMap<String, Vec<f64>> =
        serde_json::from_slice(&raw_out.stdout)?;
    let state = scratch("driver")?;
    let agent = std::env::current_exe()?;
    let config = DriverConfig {
        kind: "gvisor".into(),
        state_dir: state.clone(),
        image_dir: image_dir(),
        agent_path: agent,
    };
    let d: Arc<dyn Driver> = vmm_driver::from_config(&config).await?;
    let root = state.join("runsc");
    let spec = |key: u64| MachineSpec {
        id: MachineId::from_key(((std::process::id() as u64) << 24) + key),
        image: ImageRef::Operator(IMAGE.into()),
        cpus: 1,
        memory_mb: 256,
        disk_mb: 256,
    };
    let t_true = || ExecRequest {
        argv: vec!["true".into()],
        ..Default::default()
    };
    let mut rows = Vec::new();
    let (mut create, mut exec, mut pause, mut resume) = (vec![], vec![], vec![], vec![]);
    let (mut ckpt, mut ckpt_back, mut restore, mut destroy) = (vec![], vec![], vec![], vec![]);
    let (mut round_trip, mut in_sandbox, mut exec_warm) = (vec![], vec![], vec![]);
    let mut failures: Vec<String> = Vec::new();
    for i in 0..runs as u64 {
        let s = spec(i);
        let id = &s.id;
        let t = Instant::now();
        d.create(&s).await.map_err(|e| format!("step 1: {e}"))?;
        d.start(id).await.map_err(|e| format!("step 2: {e}"))?;
        d.exec(id, t_true())
            .await
            .map_err(|e| format!("step 3: {e}"))?;
        create.push(ms(t.elapsed()));
        exec.extend(exec_true_times(&d, id, 5, "step 4").await?);

        // What bounds an exec: the agent's round trip without a process (a small file
        // read), and what a process costs inside gVisor (bash running /bin/true).
        for _ in 0..5 {
            let t = Instant::now();
            d.read_file(id, "/etc/debian_version", 4096)
                .await
                .map_err(|e| format!("step 4b: {e}"))?;
            round_trip.push(ms(t.elapsed()));
        }
        let loop_argv = ["bash", "-c", "for i in $(seq 20); do /bin/true; done"];
        let t = Instant::now();
        d.exec(
            id,
            ExecRequest {
                argv: loop_argv.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("step 4c: {e}"))?;
        in_sandbox.push(ms(t.elapsed()) / 20.0);
        // The same exec once the sprite has run a few dozen processes.
        exec_warm.extend(exec_true_times(&d, id, 5, "step 4d").await?);

        let t = Instant::now();
        d.pause(id).await.map_err(|e| format!("step 5: {e}"))?;
        pause.push(ms(t.elapsed()));
        let t = Instant::now();
        d.resume(id).await.map_err(|e| format!("step 6: {e}"))?;
        resume.push(ms(t.elapsed()));
        d.write_file(id, "/root/state", b"x")
            .await
            .map_err(|e| format!("step 7: {e}"))?;
        let c = CheckpointId::from_key(i);
        let t = Instant::now();
        // Checkpoint and restore failures are counted and listed, not fatal, so one bad
        // run does not hide the figures of the others.
        let outcome: Result<(), String> = async {
            d.checkpoint(id, &c)
                .await
                .map_err(|e| format!("checkpoint: {e}"))?;
            ckpt.push(ms(t.elapsed()));
            d.exec(id, t_true())
                .await
                .map_err(|e| format!("exec after checkpoint: {e}"))?;
            ckpt_back.push(ms(t.elapsed()));
            let t = Instant::now();
            d.restore(id, &c)
                .await
                .map_err(|e| format!("restore: {e}"))?;
            restore.push(ms(t.elapsed()));
            d.exec(id, t_true())
                .await
                .map_err(|e| format!("exec after restore: {e}"))?;
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            failures.push(format!("run {i}: {e}"));
        }

        let t = Instant::now();
        d.destroy(id).await.map_err(|e| format!("step 12: {e}"))?;
        destroy.push(ms(t.elapsed()));
    }

    let r = |k: &str| raw.get(k).cloned().unwrap_or_default();
    rows.push(Row {
        name: "create -> first exec",
        driver: create,
        raw: r("create_first_exec"),
        unit: "ms",
    });
    rows.push(Row {
        name: "exec round trip (true)",
        driver: exec,
        raw: r("exec"),
        unit: "ms",
    });
    rows.push(Row {
        name: "  same, after 20 processes",
        driver: exec_warm,
        raw: vec![],
        unit: "ms",
    });
    rows.push(Row {
        name: "  agent round trip (read)",
        driver: round_trip,
        raw: vec![],
        unit: "ms",
    });
    rows.push(Row {
        name: "  /bin/true from bash inside",
        driver: in_sandbox,
        raw: vec![],
        unit: "ms",
    });
    rows.push(Row {
        name: "pause",
        driver: pause,
        raw: r("pause"),
        unit: "ms",
    });
    rows.push(Row {
        name: "resume",
        driver: resume,
        raw: r("resume"),
        unit: "ms",
    });
    rows.push(Row {
        name: "checkpoint (call returns)",
        driver: ckpt,
        raw: r("checkpoint"),
        unit: "ms",
    });
    rows.push(Row {
        name: "checkpoint -> next exec",
        driver: ckpt_back,
        raw: r("checkpoint"),
        unit: "ms",
    });
    rows.push(Row {
        name: "restore",
        driver: restore,
        raw: r("restore"),
        unit: "ms",
    });
    rows.push(Row {
        name: "destroy",
        driver: destroy,
        raw: r("destroy"),
        unit: "ms",
    });

    // Images: a create from a saved image, and a fork of a running machine.
    let template = spec(900);
    d.create(&template).await?;
    d.start(&template.id).await?;
    d.exec(
        &template.id,
        ExecRequest {
            argv: ["sh", "-c", "mkdir -p /opt/app && head -c 8000000 /dev/urandom > /opt/app/blob && (nohup sleep 100000 >/dev/null 2>&1 &)"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Default::default()
        },
    )
    .await?;
    let saved = ImageId::from_key(((std::process::id() as u64) << 24) + 1);
    d.save_image(&template.id, &saved).await?;
    let (mut from_saved, mut fork) = (vec![], vec![]);
    for i in 0..runs as u64 {
        let mut s = spec(2000 + i);
        s.image = ImageRef::Saved(saved.clone());
        let t = Instant::now();
        d.create(&s).await?;
        d.start(&s.id).await?;
        d.exec(&s.id, t_true()).await?;
        from_saved.push(ms(t.elapsed()));
        d.destroy(&s.id).await?;
        let s = spec(3000 + i);
        let t = Instant::now();
        d.fork(&template.id, &s).await?;
        d.exec(&s.id, t_true()).await?;
        fork.push(ms(t.elapsed()));
        d.destroy(&s.id).await?;
    }
    d.destroy(&template.id).await?;
    d.delete_image(&saved).await?;
    rows.push(Row {
        name: "  same, from a saved image",
        driver: from_saved,
        raw: r("create_first_exec"),
        unit: "ms",
    });
    rows.push(Row {
        name: "fork (running) -> first exec",
        driver: fork,
        raw: r("create_first_exec"),
        unit: "ms",
    });

    // Usage samples over many running machines.
    let mut ids = Vec::new();
    for i in 0..sprites as u64 {
        let s = spec(1000 + i);
        d.create(&s).await?;
        d.start(&s.id).await?;
        ids.push(s.id);
    }
    let mut usage = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        for id in &ids {
            d.usage(id)?;
        }
        usage.push(t.elapsed().as_secs_f64() * 1e6 / ids.len() as f64);
    }
    let mut usage_raw = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for id in &ids {
            runsc(&root, &["events", "--stats", id.as_str()])?;
        }
        usage_raw.push(t.elapsed().as_secs_f64() * 1e6 / ids.len() as f64);
    }
    rows.push(Row {
        name: "usage sample, per sprite",
        driver: usage,
        raw: usage_raw,
        unit: "us",
    });
    for id in &ids {
        d.destroy(id).await?;
    }
    out(&format!("{runs} runs, {sprites} sprites for the usage sample; raw = runsc CLI (usage: `runsc events --stats`)"));
    print(&rows);
    out(&format!(
        "checkpoint/restore failures: {} of {runs}",
        failures.len()
    ));
    for f in &failures {
        out(&format!("  {f}"));
    }
    drop(d);
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("agent") {
        std::process::exit(vmm_driver::agent::main());
    }
    if args.get(1).map(String::as_str) == Some("raw") {
        return raw(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20));
    }
    let runs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let sprites = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    tokio::runtime::Runtime::new()?.block_on(bench(runs, sprites))
}
