//! End-to-end tests of the `corral` command line: the real server binary on a random
//! port with a fresh data directory, and the CLI run as a user would run it, with its
//! own home and config directory, judged by what it prints and how it exits.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/machines.rs"]
mod machines;
#[path = "cli/terminal.rs"]
mod terminal;
#[path = "cli/token_budget.rs"]
mod token_budget;

const BIN: &str = env!("CARGO_BIN_EXE_corral");
const PASSWORD: &str = "correct horse battery";
/// Longest any one CLI run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `corral serve`, stopped when dropped.
struct Server {
    url: String,
    data_dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    fn start() -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(data_dir.path().join("server.log")).expect("log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .env("CORRAL_DATA_DIR", data_dir.path())
            .env("CORRAL_LISTEN", "127.0.0.1:0")
            .env("CORRAL_IMAGE_DIR", machines::image_dir())
            .env("CORRAL_AGENT_PATH", BIN)
            // The budget test reads this cap back as $100.00.
            .env("CORRAL_DEFAULT_CAP_NANOS", "100000000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start corral serve");
        let addr_file = data_dir.path().join("corral.addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if std::net::TcpStream::connect(addr.trim()).is_ok() {
                    let url = format!("http://{}", addr.trim());
                    return Server {
                        url,
                        data_dir,
                        child,
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(data_dir.path().join("server.log"));
                panic!(
                    "corral serve exited with {status}:\n{}",
                    log.unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "corral serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        machines::stop_server(&mut self.child);
        machines::destroy_machines(self.data_dir.path().join("machines"));
    }
}

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A person at a terminal: their own home directory and config, one server.
struct User {
    home: tempfile::TempDir,
    url: String,
    xdg: bool,
    /// The server's log, quoted when a run fails.
    log: PathBuf,
}

impl User {
    fn new(server: &Server) -> User {
        User {
            home: tempfile::tempdir().expect("home"),
            url: server.url.clone(),
            xdg: true,
            log: server.data_dir.path().join("server.log"),
        }
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("\n--- server log (end) ---\n{tail}")
    }

    fn config_file(&self) -> PathBuf {
        if self.xdg {
            self.home.path().join("xdg/corral/config.toml")
        } else {
            self.home.path().join(".config/corral/config.toml")
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("CORRAL_URL", &self.url)
            .env_remove("CORRAL_TOKEN")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        if self.xdg {
            command.env("XDG_CONFIG_HOME", self.home.path().join("xdg"));
        }
        command
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run corral");
        let mut input = child.stdin.take().expect("stdin");
        let stdin = stdin.to_vec();
        std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = pipe.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        // A hung command must fail the test, not hang the suite.
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "corral {args:?} did not finish in {RUN_TIMEOUT:?}{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], b"")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            0,
            "corral {args:?} failed: {run:?}{}",
            self.log_tail()
        );
        run.stdout
    }

    /// Runs with `--json` and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    fn signup(&self, email: &str) {
        let out = self.ok(&[
            "signup",
            "--email",
            email,
            "--org",
            "Acme",
            "--password",
            PASSWORD,
        ]);
        assert!(out.contains(&format!("signed up {email}")), "{out}");
    }
}

/// Asserts a failure told as exactly one line `error: <start>…`; returns the line.
fn one_error_line(run: &Run, start: &str) -> String {
    assert_ne!(run.code, 0, "expected a failure: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {run:?}");
    assert!(
        lines[0].starts_with(&format!("error: {start}")),
        "expected `error: {start}…`, got {:?}",
        lines[0]
    );
    lines[0].to_string()
}

fn saved_token(user: &User) -> String {
    let text = std::fs::read_to_string(user.config_file()).expect("config file");
    let line = text
        .lines()
        .find(|l| l.starts_with("token = "))
        .unwrap_or_else(|| panic!("no token in {text}"));
    line.trim_start_matches("token = ")
        .trim_matches('"')
        .to_string()
}

#[test]
fn signup_login_and_tokens_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("ada@example.com");

    // The session token is kept in the config dir, readable by its owner only.
    let meta = std::fs::metadata(user.config_file()).expect("config written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(user.config_file()).unwrap();
    assert!(
        text.contains(&format!("url = \"{}\"", server.url)),
        "{text}"
    );
    let session = saved_token(&user);
    assert!(!session.is_empty());

    let me = user.ok(&["whoami"]);
    assert!(
        me.contains("ada@example.com") && me.contains("tokens:create"),
        "{me}"
    );

    // Login reads the password from stdin for scripts, and replaces the saved token.
    let run = user.run_with(
        &["login", "--email", "ada@example.com", "--password-stdin"],
        &[],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("logged in as ada@example.com"),
        "{run:?}"
    );
    assert_ne!(saved_token(&user), session);

    let wrong = user.run(&[
        "login",
        "--email",
        "ada@example.com",
        "--password",
        "nope nope nope",
    ]);
    one_error_line(&wrong, "unauthorized: ");

    // Minting prints the secret once; listing never does.
    let out = user.ok(&[
        "tokens",
        "create",
        "ci",
        "--scope",
        "sprites:read,exec",
        "--budget-usd",
        "2.50",
    ]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (id, secret) = (field("id "), field("token "));
    assert!(
        out.contains("sprites:read,exec") && out.contains("$2.50"),
        "{out}"
    );
    let table = user.ok(&["tokens", "ls"]);
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("token listed");
    assert!(
        row.contains(" ci ") && row.contains("active") && row.contains("$2.50"),
        "{table}"
    );
    assert!(!table.contains(&secret));
    let listed = user.json(&["tokens", "ls"]);
    let entry = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("token in JSON");
    assert_eq!(entry["revoked"], false);
    assert_eq!(entry["budget_nanos"], 2_500_000_000i64);

    // The minted token works where its scopes allow, and is refused where they don't.
    let with_ci = [("CORRAL_TOKEN", secret.as_str())];
    let run = user.run_with(&["whoami"], &with_ci, b"");
    assert!(run.code == 0 && run.stdout.contains("(ci, api)"), "{run:?}");
    one_error_line(
        &user.run_with(&["tokens", "ls"], &with_ci, b""),
        "forbidden: ",
    );

    let out = user.ok(&["tokens", "revoke", &id]);
    assert!(out.contains(&format!("revoked {id}")), "{out}");
    let table = user.ok(&["tokens", "ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{table}"
    );
    let line = one_error_line(&user.run_with(&["whoami"], &with_ci, b""), "unauthorized: ");
    assert!(line.contains("corral login"), "{line}");
    one_error_line(
        &user.run(&["tokens", "revoke", "no-such-token"]),
        "not_found: ",
    );

    // Logging out ends the session on the server and forgets the token, not the server.
    let session = saved_token(&user);
    assert!(user.ok(&["logout"]).contains(&server.url));
    one_error_line(&user.run(&["whoami"]), "not logged in");
    let copied = user.run_with(&["whoami"], &[("CORRAL_TOKEN", &session)], b"");
    one_error_line(&copied, "unauthorized: ");
    // Logging out again (nothing saved) is fine.
    user.ok(&["logout"]);

    // Without flags, login reads what it needs from stdin (prompting only at a terminal).
    let answers = format!("ada@example.com\n{PASSWORD}\n");
    let run = user.run_with(&["login"], &[], answers.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("logged in as ada@example.com"),
        "{run:?}"
    );
    assert!(user.ok(&["whoami"]).contains("ada@example.com"));
    let run = user.run_with(&["login", "--email", "ada@example.com"], &[], b"");
    one_error_line(&run, "no password given");
}

#[test]
fn errors_are_one_clear_line_and_a_failing_exit() {
    let server = Server::start();
    // Without XDG_CONFIG_HOME the config lives in ~/.config.
    let mut user = User::new(&server);
    user.xdg = false;

    one_error_line(&user.run(&["ls"]), "not logged in");
    user.signup("bob@example.com");
    assert!(user.config_file().exists());

    let again = user.run(&[
        "signup",
        "--email",
        "bob@example.com",
        "--org",
        "Acme",
        "--password",
        PASSWORD,
    ]);
    one_error_line(&again, "conflict: ");
    let bad = user.run(&[
        "signup",
        "--email",
        "not-an-email",
        "--org",
        "Acme",
        "--password",
        PASSWORD,
    ]);
    one_error_line(&bad, "validation: ");
    let scope = user.run(&["tokens", "create", "x", "--scope", "root"]);
    one_error_line(&scope, "validation: ");

    // Nothing listens on port 1: the line names the server.
    let down = user.run(&["--url", "http://127.0.0.1:1", "--token", "t", "ls"]);
    let line = one_error_line(&down, "cannot reach http://127.0.0.1:1");
    assert!(line.to_lowercase().contains("refused"), "{line}");
    one_error_line(
        &user.run(&["--url", "ftp://x", "--token", "t", "ls"]),
        "\"ftp://x\" is not a server URL",
    );

    // A saved token is never sent to another server.
    let elsewhere = user.run(&["--url", "http://127.0.0.1:1", "ls"]);
    one_error_line(&elsewhere, "not logged in");

    one_error_line(&user.run(&["cp", "a", "b"]), "one side must be in a sprite");
    one_error_line(
        &user.run(&["cp", "a", "box:rel/path"]),
        "\"box:rel/path\": the path",
    );
    one_error_line(&user.run(&["budget", "set"]), "say what to change");
    // `serve --help` still lists every setting.
    let help = user.ok(&["serve", "--help"]);
    assert!(help.contains("CORRAL_LISTEN") && help.contains("CORRAL_PRICE_CPU_NANOS_PER_CPU_S"));
    // Usage errors are clap's: a non-zero exit, not a crash.
    let run = user.run(&["create"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn budget_and_usage_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("cy@example.com");
    let probe = user.run(&["budget"]);
    assert_eq!(probe.code, 0, "{probe:?}\n{}", server.log());
    assert!(
        probe.stdout.contains("cap") && probe.stdout.contains("$100.00"),
        "{probe:?}"
    );

    // `corral budget | head -0`: a reader gone before the output ends the client as
    // it ends `ls`, by SIGPIPE, not a panic.
    let mut piped = user
        .command(&["budget"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let closed = piped.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&closed.status),
        Some(13), // SIGPIPE
        "{closed:?}"
    );
    assert!(closed.stderr.is_empty(), "{closed:?}");

    let out = user.ok(&[
        "budget",
        "set",
        "--cap-usd",
        "12.50",
        "--thresholds",
        "50,90",
    ]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("cap") && l.ends_with("$12.50")),
        "{out}"
    );
    assert!(out.contains("50%, 90%"), "{out}");
    let budget = user.json(&["budget"]);
    assert_eq!(budget["cap_nanos"], 12_500_000_000i64);
    assert_eq!(budget["thresholds_pct"], serde_json::json!([50, 90]));
    let budget = user.json(&["budget", "set", "--cap-nanos", "7"]);
    assert_eq!(budget["cap_nanos"], 7);
    assert_eq!(user.run(&["budget", "set", "--cap-usd", "1.5.0"]).code, 2);

    // Nothing left to spend: the refusal is one line with the problem's code.
    user.ok(&["budget", "set", "--cap-nanos", "0"]);
    one_error_line(&user.run(&["create", "broke"]), "budget_exhausted: ");
    user.ok(&["budget", "set", "--cap-usd", "12.50"]);

    let run = user.run(&["usage", "--by", "hour"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("total $"),
        "{run:?}"
    );
    let prices = user.ok(&["prices"]);
    assert!(
        prices
            .lines()
            .any(|l| l.starts_with("cpu") && l.ends_with("per CPU-second used")),
        "{prices}"
    );
    assert!(user.json(&["alerts"])["alerts"].is_array());
    let usage = user.json(&["usage", "--by", "day"]);
    assert!(
        usage["rows"].is_array() && usage["total_nanos"].is_i64(),
        "{usage}"
    );
}

#[test]
fn limits_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("eve@example.com");
    // The table shows what the JSON says (the operator's maximums, as configured).
    let operator = user.json(&["limits"])["max_running_sprites"].to_string();
    let out = user.ok(&["limits"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("running sprites") && l.ends_with(&format!(" {operator}"))),
        "{out}"
    );
    let out = user.ok(&["limits", "set", "--max-running-sprites", "1"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("running sprites") && l.ends_with(" 1")),
        "{out}"
    );
    assert_eq!(user.json(&["limits"])["max_running_sprites"], 1);
    let out = user.ok(&["limits", "set", "--default-idle-timeout-s", "300"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("idle seconds") && l.ends_with(" 300")),
        "{out}"
    );
    let above = user.run(&["limits", "set", "--max-running-sprites", "999"]);
    one_error_line(&above, "limit_exceeded: ");
    one_error_line(&user.run(&["limits", "set"]), "say which limit");

    // With sprites: the second running one is refused, naming the limit.
    let args = ["create", "one", "--idempotency-key", "k-1"];
    create(&user, &args, &server);
    // The same key again is the same create, not a conflict.
    assert!(user.ok(&args).starts_with("created one"));
    let line = one_error_line(&user.run(&["create", "two"]), "limit_exceeded: ");
    assert!(line.contains("max_running_sprites"), "{line}");
    user.ok(&["rm", "one"]);
}

#[test]
fn an_idle_sprite_pauses_and_wakes_for_exec() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("fay@example.com");
    let args = ["create", "nap", "--idle-timeout-s", "1"];
    create(&user, &args, &server);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = user.ok(&["ls"]);
        if table
            .lines()
            .any(|l| l.starts_with("nap ") && l.contains("paused (idle)"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never paused for idle: {table}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let run = user.run(&["exec", "nap", "--", "echo", "awake"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "awake\n"), "{run:?}");
    user.ok(&["rm", "nap"]);
}

/// `corral create …`, which must succeed (this machine runs real sprites).
fn create(user: &User, args: &[&str], server: &Server) -> String {
    let run = user.run(args);
    assert_eq!(run.code, 0, "{run:?}\n{}", server.log());
    run.stdout
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write local file");
}

#[test]
fn a_sprites_whole_life_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("dee@example.com");
    let out = create(&user, &["create", "box", "--idle-timeout-s", "0"], &server);
    assert!(out.starts_with("created box"), "{out}");
    let table = user.ok(&["ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("box ") && l.contains("running")),
        "{table}"
    );
    one_error_line(&user.run(&["create", "box"]), "conflict: ");

    // exec streams both outputs and exits with the command's code.
    let run = user.run(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!((run.code, run.stdout.as_str()), (7, "out\n"), "{run:?}");
    assert!(run.stderr.contains("err"), "{run:?}");
    let run = user.run_with(
        &["exec", "box", "--", "tr", "a-z", "A-Z"],
        &[],
        b"hello\nworld\n",
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "HELLO\nWORLD\n"),
        "{run:?}"
    );
    let run = user.run(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "printf '%s|' \"$@\"",
        "-",
        "a b",
        "c",
    ]);
    assert_eq!(run.stdout, "a b|c|", "argv kept apart: {run:?}");
    let run = user.run(&[
        "exec",
        "-e",
        "GREETING=hi",
        "--cwd",
        "/tmp",
        "box",
        "--",
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ]);
    assert_eq!(run.stdout, "hi\n/tmp\n", "env and cwd: {run:?}");
    one_error_line(&user.run(&["exec", "nope", "--", "true"]), "not_found: ");
    let answer = user.run(&["--json", "exec", "box", "--", "sh", "-c", "echo j; exit 3"]);
    assert_eq!(answer.code, 3, "{answer:?}");
    let answer: Value = serde_json::from_str(&answer.stdout).expect("exec JSON");
    assert_eq!(answer["stdout"], "j\n");

    // The console is a shell fed from stdin.
    let run = user.run_with(&["console", "box"], &[], b"echo from-console\nexit 4\n");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (4, "from-console\n"),
        "{run:?}"
    );

    // cp up and down, small and a few MB, byte for byte.
    let local = tempfile::tempdir().unwrap();
    let small = local.path().join("note.txt");
    write_file(&small, b"first version\n");
    let out = user.ok(&["cp", small.to_str().unwrap(), "box:/root/"]);
    assert!(out.contains("box:/root/note.txt"), "{out}");
    let run = user.run(&["exec", "box", "--", "cat", "/root/note.txt"]);
    assert_eq!(run.stdout, "first version\n", "{run:?}");
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_path = local.path().join("big.bin");
    write_file(&big_path, &big);
    user.ok(&["cp", big_path.to_str().unwrap(), "box:/root/big.bin"]);
    let back = local.path().join("back.bin");
    let out = user.ok(&["cp", "box:/root/big.bin", back.to_str().unwrap()]);
    assert!(out.contains("back.bin"), "{out}");
    assert!(
        std::fs::read(&back).unwrap() == big,
        "the round trip changed the bytes"
    );
    user.ok(&["cp", "box:/root/note.txt", local.path().to_str().unwrap()]);
    let into_dir = std::fs::read(local.path().join("note.txt")).unwrap();
    assert_eq!(into_dir, b"first version\n");
    one_error_line(
        &user.run(&["cp", "box:/root/missing", back.to_str().unwrap()]),
        "not_found: ",
    );
    // `-` is stdin and stdout.
    let run = user.run_with(&["cp", "-", "box:/root/piped"], &[], b"through a pipe");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(user.ok(&["cp", "box:/root/piped", "-"]), "through a pipe");

    // Pause and resume.
    user.ok(&["pause", "box"]);
    let shown = user.json(&["show", "box"]);
    assert_eq!(
        (shown["state"].as_str(), shown["pause_reason"].as_str()),
        (Some("paused"), Some("user"))
    );
    user.ok(&["resume", "box"]);
    assert_eq!(user.json(&["show", "box"])["state"], "running");

    // A checkpoint, a change, a restore: the change is gone.
    let out = user.ok(&["checkpoint", "create", "box", "-m", "before"]);
    let id = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_string();
    let table = user.ok(&["checkpoint", "ls", "box"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.ends_with("before")),
        "{table}"
    );
    user.ok(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo second > /root/note.txt",
    ]);
    assert!(user
        .ok(&["checkpoint", "restore", "box", &id])
        .contains("restored box"));
    let run = user.run(&["exec", "box", "--", "cat", "/root/note.txt"]);
    assert_eq!(run.stdout, "first version\n", "{run:?}");
    user.ok(&["checkpoint", "rm", "box", &id]);
    assert!(!user.ok(&["checkpoint", "ls", "box"]).contains(&id));

    // Then it goes.
    assert!(user.ok(&["rm", "box"]).contains("removed box"));
    one_error_line(&user.run(&["show", "box"]), "not_found: ");
    let listed = user.json(&["ls"]);
    assert_eq!(listed["sprites"], serde_json::json!([]));
}

#[test]
fn schedules_through_the_cli() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("cron-cli@example.com");
    create(&user, &["create", "job", "--idle-timeout-s", "0"], &server);
    let out = user.ok(&[
        "schedule",
        "add",
        "job",
        "0 9 * * 1",
        "--",
        "echo",
        "hi there",
    ]);
    assert!(out.starts_with("added schedule "), "{out}");
    let next: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("  next: "))
        .collect();
    assert_eq!(next.len(), 3, "{out}");
    assert!(next.iter().all(|t| t.ends_with("T09:00:00Z")), "{out}");
    let snap = user.json(&[
        "schedule",
        "add",
        "job",
        "@daily",
        "--checkpoint",
        "--comment",
        "nightly",
    ]);
    assert_eq!(snap["checkpoint"], true, "{snap}");
    let table = user.ok(&["schedule", "ls", "job"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("0 9 * * 1") && l.contains("echo 'hi there'")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("@daily") && l.contains("checkpoint")),
        "{table}"
    );
    one_error_line(
        &user.run(&["schedule", "add", "job", "0 9 * * 8", "--", "true"]),
        "validation: ",
    );
    one_error_line(
        &user.run(&["schedule", "add", "job", "@daily"]),
        "give a command",
    );
    let id = snap["id"].as_str().unwrap();
    let out = user.ok(&["schedule", "rm", "job", id]);
    assert_eq!(out, format!("deleted schedule {id} of job\n"));
    let listed = user.json(&["schedule", "ls", "job"]);
    assert_eq!(listed["schedules"].as_array().unwrap().len(), 1, "{listed}");
    user.ok(&["rm", "job"]);
}
