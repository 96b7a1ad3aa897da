//! Benchmark: CPU time of one metering tick for 1,000 sprites with recorded samples on a
//! real SQLite file (WAL), as `corral serve` runs it. Prints the figures.
#![allow(clippy::print_stdout)] // a command-line tool: its figures are its output

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_metering::metrics::Phase;
use corral_metering::period::{days_from_civil, DAY_MS};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{FleetSprite, Meter, MeterConfig, Sample};

const SPRITES: i64 = 1000;
const TENANTS: i64 = 100;
const WARMUP: i64 = 5;
const TICKS: i64 = 120;

/// CPU time of the whole process (every thread: sqlx runs SQLite on its own thread).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the
    // kernel supports; clock_gettime writes only into `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("corral-meter-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = corral_metering::db::sqlite::open(&dir.join("corral.db"), 4).await?;

    // 100 tenants with caps; each has a root token with a budget, a child of it and a
    // second root: sprites are spread over all four scopes kinds.
    let fleet = Arc::new(RecordedFleet::default());
    let mut tx = pool.begin().await?;
    for t in 0..TENANTS {
        sqlx::query("INSERT INTO tenants (id, email, password_hash, org, created_at, cap_nanos) VALUES (?, ?, 'x', 'o', 0, ?)")
            .bind(format!("t{t}"))
            .bind(format!("t{t}@example.com"))
            .bind(1_000_000_000_000i64)
            .execute(&mut *tx)
            .await?;
        for (k, parent, budget) in [
            ("root", None, Some(500_000_000_000i64)),
            ("child", Some("root"), None),
            ("other", None, None),
        ] {
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, parent_id, kind, name, scopes, secret_sha256, created_at, expires_at, budget_nanos) \
                 VALUES (?, ?, ?, 'api', ?, '', 'h', 0, 0, ?)",
            )
            .bind(format!("t{t}-{k}"))
            .bind(format!("t{t}"))
            .bind(parent.map(|p| format!("t{t}-{p}")))
            .bind(k)
            .bind(budget)
            .execute(&mut *tx)
            .await?;
        }
    }
    for id in 0..SPRITES {
        let tenant = format!("t{}", id % TENANTS);
        let token = match id % 4 {
            0 => None,
            1 => Some(format!("{tenant}-root")),
            2 => Some(format!("{tenant}-child")),
            _ => Some(format!("{tenant}-other")),
        };
        sqlx::query(
            "INSERT INTO sprites (id, tenant_id, name, state, cpus, memory_mb, disk_mb, idle_timeout_s, created_by_token, created_at, last_active_at) \
             VALUES (?, ?, ?, 'running', 2, 1024, 10240, 300, ?, 0, 0)",
        )
        .bind(id)
        .bind(&tenant)
        .bind(format!("s{id}"))
        .bind(token.as_deref())
        .execute(&mut *tx)
        .await?;
        fleet.insert(FleetSprite {
            sprite_id: id,
            tenant_id: tenant,
            name: format!("s{id}"),
            created_by_token: token,
            // Three in four run; the rest are paused and pay for disk only.
            running: id % 4 != 3,
            cpus: 2,
            memory_mb: 1024,
            reserve_bytes: 10240 << 20,
            network_bytes_per_s: 12_500_000,
        });
    }
    tx.commit().await?;

    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    let metrics = meter.metrics();
    let phase_totals = || -> Vec<u64> {
        metrics
            .phase_us_total
            .iter()
            .map(|v| v.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    };
    let mut phases_at_warmup = Vec::new();
    let start = days_from_civil(2026, 11, 10) * DAY_MS;
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for tick in 0..WARMUP + TICKS {
        // Recorded samples: a deterministic mix of busy and idle sprites.
        for id in 0..SPRITES {
            let busy = ((id * 7 + tick) % 10) as u64 * 200_000_000;
            let sample = Sample {
                cpu_ns: tick as u64 * busy,
                memory_bytes: (256 + (id % 700) as u64) << 20,
                disk_bytes: 1_000_000_000 + id as u64 * 1_000_000,
                network_bytes: tick as u64 * (id % 5) as u64 * 100_000,
            };
            fleet.set_sample(id, Some(sample));
        }
        if tick == WARMUP {
            phases_at_warmup = phase_totals();
        }
        let (c0, w0) = (process_cpu(), Instant::now());
        let report = meter.tick_at(start + tick * 1000).await?;
        let (c, w) = (process_cpu() - c0, w0.elapsed());
        assert_eq!(report.sprites, SPRITES as usize);
        if tick >= WARMUP {
            cpu.push(c);
            wall.push(w);
        }
    }
    cpu.sort();
    wall.sort();
    let mean = |v: &[Duration]| ms(v.iter().sum::<Duration>()) / v.len() as f64;
    let pct = |v: &[Duration], p: usize| ms(v[(v.len() * p / 100).min(v.len() - 1)]);

    // What the fleet's side of sampling costs here (recorded: a map lookup). The real
    // cgroup reads are measured by the driver on real sprites.
    let t = process_cpu();
    for id in 0..SPRITES {
        std::hint::black_box(corral_metering::Fleet::sample(fleet.as_ref(), id));
    }
    let sample_ns = (process_cpu() - t).as_nanos() as f64 / SPRITES as f64;

    println!("metering tick, {SPRITES} sprites ({TENANTS} tenants, 300 token scopes), {TICKS} ticks on SQLite WAL:");
    println!(
        "  CPU per tick:  mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        mean(&cpu),
        pct(&cpu, 50),
        pct(&cpu, 95),
        pct(&cpu, 99)
    );
    println!(
        "  wall per tick: mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms",
        mean(&wall),
        pct(&wall, 50),
        pct(&wall, 95)
    );
    let phases: Vec<String> = Phase::ALL
        .iter()
        .zip(phase_totals().iter().zip(&phases_at_warmup))
        .map(|(p, (after, before))| {
            format!(
                "{} {:.2}",
                p.label(),
                (after - before) as f64 / TICKS as f64 / 1e3
            )
        })
        .collect();
    println!("  phases, mean wall ms: {}", phases.join(", "));
    println!("  recorded sample lookup: {sample_ns:.0} ns per sprite");
    println!(
        "  target: <= 20 ms CPU per tick -> {}",
        if mean(&cpu) <= 20.0 { "met" } else { "MISSED" }
    );
    pool.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
