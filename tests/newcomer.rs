//! The README's path as a newcomer walks it: `corral serve` started the way
//! `scripts/setup.sh` starts it (from a checkout, no `CORRAL_DATA_DIR`, so the relative
//! default `./corral-data`; or a relative one given), then a sprite's whole life over
//! HTTP; and the README's "Using it" block run as written, in a shell, against such a
//! server on the default address.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "common/machines.rs"]
mod machines;

const BIN: &str = env!("CARGO_BIN_EXE_corral");

/// `corral serve` run from `checkout` with only the variables set-up exports.
struct Server {
    child: Child,
    data_dir: PathBuf,
    url: String,
    _checkout: tempfile::TempDir,
}

impl Server {
    /// Starts in a fresh directory; `data_dir` is `CORRAL_DATA_DIR` as typed (relative)
    /// or `None` for the default.
    fn start(data_dir: Option<&str>, listen: &str) -> Server {
        let checkout = tempfile::tempdir().expect("checkout dir");
        let log = std::fs::File::create(checkout.path().join("server.log")).expect("log");
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .current_dir(checkout.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CORRAL_IMAGE_DIR", machines::image_dir())
            .env("CORRAL_LISTEN", listen)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(dir) = data_dir {
            command.env("CORRAL_DATA_DIR", dir);
        }
        let mut child = command.spawn().expect("start corral serve");
        let data_dir = checkout.path().join(data_dir.unwrap_or("corral-data"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(addr) = std::fs::read_to_string(data_dir.join("corral.addr")) {
                if std::net::TcpStream::connect(addr.trim()).is_ok() {
                    break format!("http://{}", addr.trim());
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "corral serve exited with {status}:\n{}",
                    std::fs::read_to_string(checkout.path().join("server.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "corral serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            data_dir,
            url,
            _checkout: checkout,
        }
    }

    fn log(&self) -> String {
        let path = self.data_dir.parent().unwrap().join("server.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        machines::stop_server(&mut self.child);
        machines::destroy_machines(self.data_dir.join("machines"));
    }
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{}{path}", server.url));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Signs up, then creates, execs in, checkpoints, restores and deletes a sprite.
async fn a_sprites_whole_life(server: &Server) {
    use reqwest::Method;
    let expect = |what: &str, got: (u16, Value), status: u16| -> Value {
        assert_eq!(got.0, status, "{what}: {}\n{}", got.1, server.log());
        got.1
    };
    let signup = json!({"email": "new@example.com", "password": "correct horse", "org": "Acme"});
    let token = expect(
        "signup",
        call(server, Method::POST, "/v1/signup", "", Some(signup)).await,
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let t = token.as_str();
    let created = expect(
        "create",
        call(
            server,
            Method::POST,
            "/v1/sprites",
            t,
            Some(json!({"name": "dev", "cpus": 4})),
        )
        .await,
        201,
    );
    assert_eq!(created["state"], "running", "{created}");
    let exec = |cmd: &str| {
        let body = json!({"cmd": ["sh", "-c", cmd]});
        call(server, Method::POST, "/v1/sprites/dev/exec", t, Some(body))
    };
    let out = expect("exec", exec("echo kept > /root/note; nproc").await, 200);
    assert_eq!(out["exit_code"], 0, "{out}");
    // runsc shows the quota's CPUs, never fewer than 2 and never more than the host has.
    let host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shown = 4.min(host).max(2.min(host));
    assert_eq!(
        out["stdout"],
        format!("{shown}\n"),
        "a 4-vCPU sprite: {out}"
    );
    let checkpoint = expect(
        "checkpoint",
        call(
            server,
            Method::POST,
            "/v1/sprites/dev/checkpoints",
            t,
            Some(json!({"comment": "clean"})),
        )
        .await,
        201,
    );
    assert!(
        checkpoint["size_bytes"].as_i64().unwrap() > 0,
        "{checkpoint}"
    );
    expect("exec", exec("rm /root/note").await, 200);
    let id = checkpoint["id"].clone();
    let id = id
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string());
    let restored = expect(
        "restore",
        call(
            server,
            Method::POST,
            &format!("/v1/sprites/dev/checkpoints/{id}/restore"),
            t,
            None,
        )
        .await,
        200,
    );
    assert_eq!(restored["state"], "running", "{restored}");
    let out = expect("exec", exec("cat /root/note").await, 200);
    assert_eq!(out["stdout"], "kept\n", "restored: {out}");
    expect(
        "delete",
        call(server, Method::DELETE, "/v1/sprites/dev", t, None).await,
        204,
    );
}

#[tokio::test]
async fn serve_with_the_default_relative_data_dir() {
    let server = Server::start(None, "127.0.0.1:0");
    a_sprites_whole_life(&server).await;
    assert!(server.data_dir.join("corral.db").exists());
}

#[tokio::test]
async fn serve_with_a_relative_data_dir_given() {
    let server = Server::start(Some("state/here"), "127.0.0.1:0");
    a_sprites_whole_life(&server).await;
    assert!(server.data_dir.join("corral.db").exists());
}

/// The fenced shell blocks of the README's "Using it" section, in order.
fn using_it_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Using it")
        .nth(1)
        .expect("README has a \"Using it\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_readme_using_it_block_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let blocks = using_it_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "the CLI block, the HTTP block and the images block: {blocks:?}"
    );
    // The address a newcomer's server has, so the commands need no --url.
    if std::net::TcpStream::connect("127.0.0.1:8080").is_ok() {
        panic!(
            "127.0.0.1:8080 is taken (a server from scripts/setup.sh?): stop it to run this test"
        );
    }
    let server = Server::start(None, "127.0.0.1:8080");
    // A second shell: its own home, `corral` on the PATH, nothing else set.
    let shell = tempfile::tempdir().expect("home");
    let bin_dir = shell.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.join("corral")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks.iter().enumerate() {
        let script = format!("set -euo pipefail\nset -x\n{block}");
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(shell.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", shell.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        // `corral signup` asks for the password on stdin.
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(b"correct horse battery\n");
        }
        let out = child.wait_with_output().expect("bash output");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "README block {i} failed ({}):\n{block}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
            out.status,
            server.log()
        );
        eprintln!("README block {i}:\n{stdout}");
        if i == 0 {
            assert!(stdout.contains("signed up you@example.com"), "{stdout}");
            assert!(stdout.contains("hello from"), "{stdout}");
        } else if i == 2 {
            assert!(
                stdout.contains("\n42\n") && stdout.contains("forked web2 into web3"),
                "{stdout}"
            );
            let archive = shell.path().join("web3.oci.tar");
            assert!(archive.metadata().expect("the export").len() > 100 << 20);
        } else if i == 3 {
            // The sprite's page through its URL, then a link for its private URL.
            assert!(stdout.contains("\nhello from a sprite\n"), "{stdout}");
            assert!(stdout.contains(".sprites.localhost:"), "{stdout}");
            assert!(stdout.contains("/.corral/login?pass="), "{stdout}");
        } else {
            assert!(stdout.contains("\"exit_code\":0"), "{stdout}");
            assert!(
                stdout.contains("Linux"),
                "uname -a ran in the sprite: {stdout}"
            );
        }
    }
}
