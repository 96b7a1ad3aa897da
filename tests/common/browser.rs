//! What the browser tests share: the real `corral serve` on a free port, and a headless
//! Chromium session through chromedriver (both killed when the test ends).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Finds a program on PATH, or fails saying how to install it.
pub fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/install.sh (it installs the Debian packages chromium and chromium-driver)")
        })
}

/// Starts `corral serve` on a free port with its data in `data_dir` and `env` on top;
/// answers its URL.
pub async fn start_server(data_dir: &Path, env: &[(&str, &str)]) -> (Killed, String) {
    let image_dir =
        std::env::var("CORRAL_IMAGE_DIR").unwrap_or_else(|_| "/var/lib/corral/images".into());
    let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("serve")
        .env("CORRAL_DATA_DIR", data_dir)
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_IMAGE_DIR", image_dir)
        .env("CORRAL_AGENT_PATH", env!("CARGO_BIN_EXE_corral"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start corral");
    let mut server = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(data_dir.join("corral.addr")) {
            let url = format!("http://{addr}");
            if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                return (server, url);
            }
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
            panic!("corral exited with {status}:\n{log}");
        }
        assert!(Instant::now() < deadline, "corral did not start in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts chromedriver on a free port and a headless Chromium session through it.
pub async fn start_browser(profile: &Path) -> (Killed, Client) {
    let (chromium, chromedriver) = (program("chromium"), program("chromedriver"));
    // Port 0: chromedriver picks a free port and says which on its standard output.
    let mut child = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver's stdout");
    let driver = Killed(child);
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        // Read to the end, so that chromedriver never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.split("started successfully on port ").nth(1) {
                if let Some(tx) = port_tx.take() {
                    let _ = tx.send(port.trim_end_matches('.').to_string());
                }
            }
        }
    });
    let port = tokio::time::timeout(Duration::from_secs(20), port_rx)
        .await
        .expect("chromedriver did not say its port in 20 s")
        .expect("chromedriver exited before saying its port");
    let url = format!("http://127.0.0.1:{port}");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,2000",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a Chromium session through chromedriver");
    (driver, client)
}
