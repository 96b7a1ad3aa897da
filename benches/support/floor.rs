//! The floor under an exec: `spawn_floor.c` (what the agent does for one command, without
//! the agent) built static with the host's gcc and timed inside a sprite, so the exec
//! figures can be read against what gVisor itself takes to start and end a process.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vmm_driver::{Driver, ExecRequest, MachineId};

/// Where the program goes inside the sprite.
const IN_SPRITE: &str = "/tmp/spawn-floor";

/// Builds the program in `dir`; its bytes.
pub fn build(dir: &Path) -> Vec<u8> {
    let out = dir.join("spawn-floor");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/spawn_floor.c");
    let status = Command::new("gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(source)
        .status()
        .expect("gcc (scripts/install.sh installs it)");
    assert!(status.success(), "gcc {source}: {status}");
    std::fs::read(out).unwrap()
}

fn argv(args: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

/// Runs the program `runs` times in machine `id`: each spawn's wall time, as timed
/// inside the sprite.
pub async fn measure(
    driver: &dyn Driver,
    id: &MachineId,
    program: &[u8],
    runs: usize,
) -> Vec<Duration> {
    driver.write_file(id, IN_SPRITE, program).await.unwrap();
    driver
        .exec(id, argv(&["chmod", "755", IN_SPRITE]))
        .await
        .unwrap();
    let out = driver
        .exec(id, argv(&[IN_SPRITE, &runs.to_string()]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|us| Duration::from_micros(us.trim().parse().expect("microseconds")))
        .collect()
}
