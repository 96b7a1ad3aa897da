//! `wrk`'s figures for the benchmarks that load an HTTP path.

use std::process::Command;

/// Runs `wrk` with `args`; answers its requests per second and median latency lines, or
/// says how to install it.
pub fn wrk(args: &[String]) -> String {
    match Command::new("wrk").args(args).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let rps = text
                .lines()
                .find(|l| l.starts_with("Requests/sec"))
                .unwrap_or("Requests/sec: ?");
            let p50 = text
                .lines()
                .find(|l| l.trim_start().starts_with("50%"))
                .unwrap_or("50% ?");
            format!("{rps} | latency {}", p50.trim())
        }
        Err(error) => format!("wrk is not installed ({error}): apt-get install wrk"),
    }
}
