//! Images on a backend: the default image's tools, saved images (files and deletions
//! carried, layered, deleted only when nothing stands on them), fork (a running
//! process and its memory go on in both), and export (a tar of the whole filesystem).

use std::time::Duration;

use vmm_driver::{ImageId, ImageRef, MachineId};

use super::{fresh_id, run, spec, Backend};

async fn made_from(b: &Backend, image: ImageRef) -> MachineId {
    let id = fresh_id();
    let mut s = spec(&id);
    s.image = image;
    b.driver.create(&s).await.expect("create");
    b.driver.start(&id).await.expect("start");
    id
}

async fn ok(b: &Backend, id: &MachineId, cmd: &str) -> String {
    let (code, out, err) = run(&*b.driver, id, cmd).await;
    assert_eq!(code, 0, "{cmd}: {out}{err}");
    out
}

async fn counter(b: &Backend, id: &MachineId) -> u64 {
    counter_at(&*b.driver, id, "/tmp/counter").await
}

/// A number a loop in the machine keeps rewriting: read again while a read falls
/// between the file's truncation and its write.
pub async fn counter_at(d: &dyn vmm_driver::Driver, id: &MachineId, path: &str) -> u64 {
    let mut last = String::new();
    for _ in 0..50 {
        let (_, out, _) = super::run(d, id, &format!("cat {path}")).await;
        if let Ok(n) = out.trim().parse() {
            return n;
        }
        last = out;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} holds no number: {last:?}")
}

pub async fn scenario(b: &Backend) {
    let d = &*b.driver;
    let names: Vec<String> = d.images().into_iter().map(|i| i.name).collect();
    assert!(names.contains(&"default".to_string()) && names.contains(&"minimal".to_string()));

    // The default image is a developer machine.
    let a = made_from(b, ImageRef::Operator("default".into())).await;
    let tools = "python3 -c 'print(6*7)' && cd /tmp && git init -q repo && \
                 curl --version >/dev/null && ps -e >/dev/null && node -e 'process.exit(0)' && \
                 jq --version >/dev/null && echo tools-ok";
    assert!(ok(b, &a, tools).await.contains("42\ntools-ok"));

    // A saved image carries new files and deletions; one saved over it carries both.
    ok(b, &a, "echo from-a > /root/a.txt && rm /etc/debian_version").await;
    let first = ImageId::from_key(0xa1);
    let bytes = d.save_image(&a, &first).await.expect("save");
    assert!(
        bytes > 0 && bytes < 50 << 20,
        "a small change saved {bytes} bytes"
    );
    ok(b, &a, "echo after-save > /root/late.txt").await;
    let m2 = made_from(b, ImageRef::Saved(first.clone())).await;
    let seen = ok(b, &m2, "cat /root/a.txt; test -e /etc/debian_version || echo deleted; test -e /root/late.txt || echo not-later").await;
    assert_eq!(seen, "from-a\ndeleted\nnot-later\n");
    ok(b, &m2, "echo from-m2 > /root/b.txt").await;
    let second = ImageId::from_key(0xa2);
    d.save_image(&m2, &second)
        .await
        .expect("save over a saved image");
    let m3 = made_from(b, ImageRef::Saved(second.clone())).await;
    assert_eq!(
        ok(b, &m3, "cat /root/a.txt /root/b.txt").await,
        "from-a\nfrom-m2\n"
    );

    // Deleted images stay while something stands on them, then go (the one under too).
    d.delete_image(&first).await.expect("delete first");
    assert!(
        d.image_exists(&first),
        "m2 and the second image stand on it"
    );
    let mut refused = spec(&fresh_id());
    refused.image = ImageRef::Saved(first.clone());
    assert!(
        d.create(&refused).await.is_err(),
        "a deleted image makes no machine"
    );
    d.destroy(&m2).await.expect("destroy m2");
    assert!(
        d.image_exists(&first),
        "the second image still stands on it"
    );
    d.delete_image(&second).await.expect("delete second");
    assert!(d.image_exists(&second), "m3 stands on it");
    d.destroy(&m3).await.expect("destroy m3");
    assert!(
        !d.image_exists(&second) && !d.image_exists(&first),
        "both go with m3"
    );

    // A fork keeps the source's processes and memory going in both.
    ok(b, &a, "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done' >/dev/null 2>&1 &").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fork = fresh_id();
    d.fork(&a, &spec(&fork)).await.expect("fork");
    let (f1, a1) = (counter(b, &fork).await, counter(b, &a).await);
    assert!(f1 > 0, "the fork's counter starts where the source's was");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (f2, a2) = (counter(b, &fork).await, counter(b, &a).await);
    assert!(
        f2 > f1 && a2 > a1,
        "both counters go on: fork {f1}->{f2}, source {a1}->{a2}"
    );
    ok(b, &fork, "echo fork-only > /root/fork.txt").await;
    let (code, _, _) = run(d, &a, "test -e /root/fork.txt").await;
    assert_ne!(code, 0, "the fork's writes are its own");
    assert_eq!(ok(b, &fork, "cat /root/a.txt").await, "from-a\n");

    // Export: the whole filesystem as a tar, the sprite's own files in it.
    let tar = b.config.state_dir.join("export.tar");
    d.export(&a, &tar).await.expect("export");
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("tar");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines().any(|l| l == "./root/a.txt") && list.lines().any(|l| l == "./usr/bin/python3")
    );
    assert!(
        !list.lines().any(|l| l.starts_with("./.corral/")),
        "the agent is not exported"
    );
    assert!(
        counter(b, &a).await > a2,
        "the source runs on after an export"
    );
    d.destroy(&fork).await.expect("destroy fork");
    d.destroy(&a).await.expect("destroy a");
}
