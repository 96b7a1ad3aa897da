//! Corral at fleet scale, in one run, each figure beside the raw tool or the direct path
//! of the same run: sprite create p50/p95 from the warm pool and cold, beside raw
//! `runsc run`; the exec round trip of `true` over HTTP (keep-alive) beside the driver
//! in this process and raw `runsc exec`; the metering tick's mean and max wall time
//! (the server's own `/metrics`, tick by tick) with 100, 300 and more real idle running
//! sprites; host memory per idle sprite (the drop in MemAvailable). Under the exec
//! figures, the floor: what gVisor takes to spawn and reap `true` inside the sprite, timed
//! there by a small C program doing the agent's part without the agent.
//!
//! `cargo bench --bench fleet` (needs runsc and the default image). `FLEET_SIZES=100,300,600`
//! sets the fleet sizes; `FLEET_TICKS=15` the ticks measured at each.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use vmm_driver::{DriverConfig, ExecRequest, ImageRef, MachineId, MachineSpec};

#[path = "support/floor.rs"]
mod floor;
mod support;

use support::{image_dir, percentile};

const RUNS: usize = 20;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(what: &str, samples: &mut [Duration]) -> String {
    let (p50, p95) = (percentile(samples, 0.5), percentile(samples, 0.95));
    format!("{what} p50 {:>7.2} ms p95 {:>7.2} ms", ms(p50), ms(p95))
}

fn runsc(root: &Path, args: &[&str]) {
    let status = Command::new("runsc")
        .arg("--root")
        .arg(root)
        .arg("--network=none")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("runsc");
    assert!(status.success(), "runsc {args:?}: {status}");
}

/// The raw CLI: an overlay root over the default image and `runsc run --detach` (to
/// running), then `runsc exec true` five times each. Answers (create, exec) times.
fn raw_runsc(work: &Path) -> (Vec<Duration>, Vec<Duration>) {
    let root = work.join("runsc");
    let base = Path::new(&image_dir())
        .join("default")
        .canonicalize()
        .unwrap();
    let (mut create, mut exec) = (Vec::new(), Vec::new());
    let mut made = Vec::new();
    for i in 0..RUNS {
        let id = format!("r{:016x}", 0xf1ee7 + i);
        let d = work.join(&id);
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let spec = json!({
            "ociVersion": "1.0.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sleep", "infinity"],
                        "env": ["PATH=/usr/bin:/bin"], "cwd": "/"},
            "root": {"path": d.join("root"), "readonly": false},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"cgroupsPath": format!("/corral-raw/{id}"),
                      "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                      "resources": {"cpu": {"quota": 100000, "period": 100000},
                                    "memory": {"limit": 512u64 << 20}, "pids": {"limit": 1024}}},
        });
        std::fs::write(d.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        let t = Instant::now();
        let mounted = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(d.join("root"))
            .status()
            .unwrap();
        assert!(mounted.success(), "mount overlay");
        runsc(
            &root,
            &["run", "--detach", "--bundle", d.to_str().unwrap(), &id],
        );
        create.push(t.elapsed());
        for _ in 0..5 {
            let t = Instant::now();
            runsc(&root, &["exec", &id, "/bin/true"]);
            exec.push(t.elapsed());
        }
        made.push((id, d));
    }
    for (id, d) in made {
        runsc(&root, &["delete", "--force", &id]);
        let _ = Command::new("umount").arg(d.join("root")).status();
    }
    let _ = std::fs::remove_dir_all(work);
    (create, exec)
}

/// The driver in this process: `RUNS` machines, then `true` five times in each; then
/// the floor (see `floor`) in one of them. Answers (driver, floor) times.
async fn driver_exec(state: &Path) -> (Vec<Duration>, Vec<Duration>) {
    let driver = vmm_driver::from_config(&DriverConfig {
        kind: "gvisor".into(),
        state_dir: state.to_path_buf(),
        image_dir: image_dir(),
        agent_path: env!("CARGO_BIN_EXE_corral").into(),
    })
    .await
    .expect("gvisor backend");
    let mut ids = Vec::new();
    for i in 0..RUNS {
        let id = MachineId::from_key(0x0f1e_e700 + i as u64);
        let spec = MachineSpec {
            id: id.clone(),
            image: ImageRef::Operator("default".into()),
            cpus: 1,
            memory_mb: 512,
            disk_mb: 1024,
        };
        driver.create(&spec).await.unwrap();
        driver.start(&id).await.unwrap();
        ids.push(id);
    }
    let mut times = Vec::new();
    for i in 0..RUNS * 5 {
        let request = ExecRequest {
            argv: vec!["true".into()],
            ..Default::default()
        };
        let t = Instant::now();
        driver.exec(&ids[i % RUNS], request).await.unwrap();
        times.push(t.elapsed());
    }
    let program = floor::build(state);
    let floor = floor::measure(&*driver, &ids[0], &program, RUNS * 5).await;
    for id in &ids {
        driver.destroy(id).await.unwrap();
    }
    (times, floor)
}

/// A server and a keep-alive client with its tenant's token.
struct Api {
    _server: support::Server,
    url: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, body: Value) -> Duration {
        let t = Instant::now();
        let response = self.post("/v1/sprites", body).await;
        let took = t.elapsed();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        took
    }

    async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.url)).send();
        response.await.unwrap().text().await.unwrap()
    }

    /// A metric's value (summed over its labels).
    async fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    async fn until_pool(&self, ready: u64) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.metric("corral_warm_pool_ready").await < ready {
            assert!(Instant::now() < deadline, "the pool did not fill");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The meter's tick count and its phases' total microseconds, from `/metrics`.
    async fn phase_totals(&self) -> (u64, Vec<(String, u64)>) {
        let text = self.metrics().await;
        let phases = text
            .lines()
            .filter_map(|l| l.strip_prefix("corral_meter_phase_microseconds_total{phase=\""))
            .filter_map(|l| {
                let (phase, rest) = l.split_once("\"} ")?;
                Some((phase.to_string(), rest.trim().parse().ok()?))
            })
            .collect();
        (self.metric("corral_meter_ticks_total").await, phases)
    }

    /// `ticks` metering ticks' wall times, read tick by tick from `/metrics`, and each
    /// phase's mean over the ticks recorded meanwhile.
    async fn ticks(&self, ticks: usize) -> (Vec<Duration>, String) {
        let (ticks0, phases0) = self.phase_totals().await;
        let mut seen = self.metric("corral_meter_ticks_total").await;
        let mut times = Vec::new();
        while times.len() < ticks {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let text = self.metrics().await;
            let value = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let now = value("corral_meter_ticks_total ");
            if now == seen + 1 {
                times.push(Duration::from_micros(value(
                    "corral_meter_last_tick_microseconds ",
                )));
            }
            seen = now;
        }
        let (ticks1, phases1) = self.phase_totals().await;
        let n = ticks1.saturating_sub(ticks0).max(1) as f64;
        let phases = phases1
            .iter()
            .zip(&phases0)
            .map(|((name, after), (_, before))| {
                format!(
                    "{name} {:.2}",
                    after.saturating_sub(*before) as f64 / n / 1e3
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        (times, phases)
    }
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .unwrap_or_else(|_| "100,300".into())
        .split(',')
        .map(|n| n.trim().parse().expect("FLEET_SIZES: numbers"))
        .collect();
    let tick_count: usize = std::env::var("FLEET_TICKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(15);
    println!(
        "Corral fleet benchmark: {RUNS} creates each way, {} execs each way",
        RUNS * 5
    );

    let scratch = std::env::temp_dir().join(format!("corral-fleet-{}", std::process::id()));
    let (mut raw_create, mut raw_exec) = raw_runsc(&scratch.join("raw"));
    let (mut driver_exec, mut floor_exec) = driver_exec(&scratch.join("driver")).await;

    // A pool as deep as the run of creates, so each is served warm.
    let server = support::start_server(&[("CORRAL_WARM_POOL", RUNS.to_string())]).await;
    let api = Api {
        token: support::signup(&server.url).await,
        url: server.url.clone(),
        _server: server,
        client: reqwest::Client::new(),
    };
    api.until_pool(RUNS as u64).await;
    let mut warm = Vec::new();
    for i in 0..RUNS {
        warm.push(
            api.create(json!({"name": format!("w{i}"), "idle_timeout_s": 0}))
                .await,
        );
    }
    assert_eq!(
        api.metric("corral_sprite_creates_total{machine=\"pool\"}")
            .await,
        RUNS as u64
    );
    // Quiet again (the pool refilled) before the cold creates: a shape the pool does not hold.
    api.until_pool(RUNS as u64).await;
    let mut cold = Vec::new();
    for i in 0..RUNS {
        let body = json!({"name": format!("c{i}"), "disk_mb": 1000, "idle_timeout_s": 0});
        cold.push(api.create(body).await);
    }
    let mut http_exec = Vec::new();
    for i in 0..RUNS * 5 {
        let t = Instant::now();
        let response = api
            .post(
                &format!("/v1/sprites/w{}/exec", i % RUNS),
                json!({"cmd": ["true"]}),
            )
            .await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        http_exec.push(t.elapsed());
    }
    let raw50 = percentile(&mut raw_create, 0.5);
    println!(
        "{} | {} | raw runsc run {} | warm/raw {:.2}x",
        line("create warm (pool)", &mut warm),
        line("cold", &mut cold),
        line("", &mut raw_create).trim_start(),
        ms(percentile(&mut warm, 0.5)) / ms(raw50)
    );
    let raw50 = percentile(&mut raw_exec, 0.5);
    println!(
        "{} | {} | raw runsc exec {} | http/raw {:.2}x",
        line("exec true over HTTP", &mut http_exec),
        line("driver", &mut driver_exec),
        line("", &mut raw_exec).trim_start(),
        ms(percentile(&mut http_exec, 0.5)) / ms(raw50)
    );
    let floor50 = percentile(&mut floor_exec, 0.5);
    println!(
        "{} | http/floor {:.2}x",
        line(
            "exec floor: spawn+reap of true inside the sprite, no agent",
            &mut floor_exec
        ),
        ms(percentile(&mut http_exec, 0.5)) / ms(floor50)
    );

    // The fleet: idle running sprites (no idle pause), grown to each size in turn.
    let mut made = 2 * RUNS;
    let before = mem_available_kib();
    let (mut mem_sprites, mut mem_drop) = (0, 0);
    for &size in &sizes {
        let from = made;
        futures_util::stream::iter(from..size.max(from))
            .map(|i| api.create(json!({"name": format!("f{i}"), "memory_mb": 128, "disk_mb": 64, "idle_timeout_s": 0})))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
        made = size.max(from);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (mem_now, running) = (
            mem_available_kib(),
            api.metric("corral_sprites{state=\"running\"}").await,
        );
        mem_sprites = made - 2 * RUNS;
        mem_drop = before.saturating_sub(mem_now);
        let (mut ticks, phases) = api.ticks(tick_count).await;
        let mean = ticks.iter().sum::<Duration>() / ticks.len() as u32;
        let max = *ticks.iter().max().unwrap();
        println!(
            "metering tick, {running} running idle sprites: mean {:>6.2} ms, p50 {:>6.2} ms, max {:>6.2} ms over {} ticks",
            ms(mean), ms(percentile(&mut ticks, 0.5)), ms(max), ticks.len()
        );
        println!("  its phases, mean ms: {phases}");
    }
    if mem_sprites > 0 {
        println!(
            "host memory per idle sprite: {:.1} MiB (MemAvailable fell {:.0} MiB over {mem_sprites} sprites)",
            mem_drop as f64 / 1024.0 / mem_sprites as f64,
            mem_drop as f64 / 1024.0
        );
    }
    let names: Vec<String> = (0..RUNS)
        .flat_map(|i| [format!("w{i}"), format!("c{i}")])
        .chain((2 * RUNS..made).map(|i| format!("f{i}")))
        .collect();
    futures_util::stream::iter(names)
        .map(|name| {
            api.client
                .delete(format!("{}/v1/sprites/{name}", api.url))
                .bearer_auth(&api.token)
                .send()
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    // Dropping the server removes its machines (the pool's too).
    drop(api);
    let _ = std::fs::remove_dir_all(&scratch);
}
