//! Commands on a terminal: the size given, a resize followed, a terminal on stdin,
//! Ctrl-C typed as a key interrupting the foreground program and not the shell.

use std::time::Duration;

use vmm_driver::{ExecControl, ExecEvent, ExecRequest, ExecStream, TtySize};

use super::{started, Backend};

/// Reads output until it holds `needle`; returns all of it.
async fn until(stream: &mut ExecStream, needle: &str) -> String {
    let mut seen = String::new();
    let wait = async {
        while let Some(event) = stream.events.recv().await {
            match event {
                ExecEvent::Stdout(bytes) | ExecEvent::Stderr(bytes) => {
                    seen.push_str(&String::from_utf8_lossy(&bytes));
                    if seen.contains(needle) {
                        return;
                    }
                }
                ExecEvent::Exit(code) => {
                    seen.push_str(&format!("<exit {code}>"));
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(15), wait).await;
    assert!(seen.contains(needle), "waited for {needle:?}, got {seen:?}");
    seen
}

pub async fn scenario(b: &Backend) {
    let d = &*b.driver;
    let id = started(b).await;
    let request = ExecRequest {
        argv: vec!["bash".into(), "--norc".into(), "-i".into()],
        tty: Some(TtySize {
            rows: 33,
            cols: 101,
        }),
        ..Default::default()
    };
    let mut shell = d
        .exec_stream(&id, request)
        .await
        .expect("a shell on a terminal");
    let send = |s: &ExecStream, text: &str| {
        let (tx, text) = (s.stdin.clone(), text.as_bytes().to_vec());
        async move { tx.send(text).await.expect("stdin") }
    };
    send(&shell, "test -t 0 && echo on-a-$TERM; stty size\n").await;
    let seen = until(&mut shell, "33 101").await;
    assert!(seen.contains("on-a-xterm-256color"), "{seen:?}");
    shell
        .control
        .send(ExecControl::Resize(TtySize {
            rows: 50,
            cols: 160,
        }))
        .await
        .unwrap();
    send(&shell, "stty size\n").await;
    until(&mut shell, "50 160").await;
    send(&shell, "sleep 100\n").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&shell, "\x03").await;
    // bash reports 130 for a program ended by SIGINT, and carries on.
    send(&shell, "echo sleep-ended-$?\n").await;
    until(&mut shell, "sleep-ended-130").await;
    send(&shell, "exit 7\n").await;
    until(&mut shell, "<exit 7>").await;
    d.destroy(&id).await.expect("destroy");
}
