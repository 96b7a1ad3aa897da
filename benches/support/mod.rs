//! What the benchmarks share: a real `corral serve` on a free port with its data in a
//! temporary directory (its machines removed with it, as the tests do), and
//! percentiles.

use std::process::{Command, Stdio};

#[path = "../../tests/common/machines.rs"]
mod machines;

pub use machines::image_dir;
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
    /// Its data directory (machines under `machines/`), removed with it.
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        machines::stop_server(&mut self.child);
        // Machines outlive their server by design (a warm pool's too); a benchmark's
        // must not.
        machines::destroy_machines(self.dir.path().join("machines"));
    }
}

/// The `p` quantile of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Starts `corral serve` with generous limits (a benchmark measures the path, not the
/// rate limiter) and `env` on top.
pub async fn start_server(env: &[(&str, String)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("serve")
        .env("CORRAL_DATA_DIR", dir.path())
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_IMAGE_DIR", image_dir())
        .env("CORRAL_TOKEN_RATE_PER_S", "1000000")
        .env("CORRAL_TOKEN_RATE_BURST", "1000000")
        .env("CORRAL_MAX_RUNNING_SPRITES", "1000")
        .env("CORRAL_MAX_TOTAL_CPUS", "1000")
        .env("CORRAL_MAX_TOTAL_MEMORY_MB", "1000000")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start corral");
    let addr_file = dir.path().join("corral.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() {
        assert!(Instant::now() < deadline, "corral did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("http://{}", std::fs::read_to_string(&addr_file).unwrap());
    Server { child, url, dir }
}

/// Signs a tenant up with a cap no fleet reaches (a thousand sprites' disks reserved to
/// the period's end pass the default $100); answers its session token.
pub async fn signup(url: &str) -> String {
    let signup: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/v1/signup"))
        .json(&serde_json::json!({"email": "bench@example.com", "password": "bench password", "org": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().unwrap().to_string();
    let raised = reqwest::Client::new()
        .put(format!("{url}/v1/budget"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"cap_nanos": 100_000_000_000_000_000i64}))
        .send()
        .await
        .unwrap();
    assert!(
        raised.status().is_success(),
        "{}",
        raised.text().await.unwrap()
    );
    token
}
