//! `corral console` and `exec -t` in a real terminal: tmux runs them against a real
//! sprite, keys go in with `send-keys`, the screen is read with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{create, Server, User, BIN};

/// A tmux server of its own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("corral-test-{}", std::process::id()),
        };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(status.success());
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]).args(args);
        cmd
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-t", "t", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; returns it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

fn has_line(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == line)
}

/// The shell command that runs the CLI as `user` inside tmux.
fn as_user(user: &User, args: &str) -> String {
    let home = user.home.path().display();
    format!(
        "env HOME={home} XDG_CONFIG_HOME={home}/xdg CORRAL_URL={} {BIN} {args}",
        user.url
    )
}

#[test]
fn console_is_a_real_terminal_and_gives_the_local_one_back() {
    let server = Server::start();
    let user = User::new(&server);
    user.signup("term@example.com");
    create(&user, &["create", "box", "--idle-timeout-s", "0"], &server);
    let console = as_user(&user, "console box");
    let tmux = Tmux::start(&format!(
        "{console}; echo SESSION-ENDED=$?; stty -a; sleep 600"
    ));
    tmux.wait_for("a prompt", |s| s.contains("root@sprite:"));

    // The window's size, and a resize followed.
    tmux.keys(&["stty size; echo $TERM", "Enter"]);
    tmux.wait_for("30 rows, 100 columns", |s| {
        s.contains("\n30 100\nxterm-256color")
    });
    assert!(tmux
        .cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"])
        .status()
        .unwrap()
        .success());
    tmux.keys(&["clear; stty size", "Enter"]);
    tmux.wait_for("40 rows, 120 columns", |s| has_line(s, "40 120"));

    // A full-screen program draws the whole window, and takes keys.
    tmux.keys(&["vi /tmp/typed", "Enter"]);
    let vi = tmux.wait_for("vi's screen", |s| s.contains("[New File]"));
    let tildes = vi.lines().filter(|l| l.trim() == "~").count();
    assert!(
        tildes >= 30,
        "vi fills the 40-row window: {tildes} empty lines\n{vi}"
    );
    tmux.keys(&["ihello from vi", "Escape", ":wq", "Enter"]);
    tmux.keys(&["clear; cat /tmp/typed; top -bn1 | head -1", "Enter"]);
    tmux.wait_for("the file vi wrote, and top", |s| {
        has_line(s, "hello from vi") && s.contains("top - ")
    });

    // Ctrl-C interrupts the command, not the session.
    tmux.keys(&["sleep 100", "Enter"]);
    tmux.wait_for("sleep to start", |s| s.contains("sleep 100"));
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    tmux.keys(&["C-c"]);
    tmux.keys(&["echo still-here-$((6*7))", "Enter"]);
    tmux.wait_for("the shell after Ctrl-C", |s| has_line(s, "still-here-42"));
    assert!(interrupted.elapsed() < Duration::from_secs(10));

    // Ctrl-D ends it; the local terminal is itself again.
    tmux.keys(&["C-d"]);
    // `stty -a` prints after the session's end line: wait for both (a busy host
    // showed the screen between the two).
    let after = tmux.wait_for("the end of the session and stty", |s| {
        s.contains("SESSION-ENDED=") && s.contains("icanon")
    });
    assert!(after.contains("SESSION-ENDED=0"), "{after}");
    for sane in [" icanon ", " echo ", " isig ", " icrnl "] {
        assert!(
            after.replace('\n', " ").contains(sane),
            "{sane:?} after the session:\n{after}"
        );
    }

    // exec -t: a one-off command on a terminal.
    let exec = as_user(
        &user,
        "exec -t box -- sh -c 'test -t 0 && echo on-a-tty; stty size'",
    );
    let tmux = Tmux {
        socket: format!("corral-test-exec-{}", std::process::id()),
    };
    assert!(tmux
        .cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "90",
            "-y",
            "20",
            &format!("{exec}; echo EXEC-DONE=$?; sleep 600")
        ])
        .status()
        .unwrap()
        .success());
    tmux.wait_for("exec -t's output", |s| {
        s.contains("on-a-tty") && s.contains("20 90") && s.contains("EXEC-DONE=0")
    });
}
