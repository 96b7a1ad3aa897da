//! What the end-to-end suites share about sprites' machines: where the images are,
//! stopping a test server, and removing its machines once the test is over.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Stops a `corral serve`: SIGTERM first, so it freezes its sandboxes, then SIGKILL if
/// it has not exited within 15 s.
pub fn stop_server(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Where the images are (built once by the set-up command).
pub fn image_dir() -> PathBuf {
    std::env::var_os("CORRAL_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/corral/images".into())
}

/// Removes every machine the driver finds under `state_dir` (sandboxes, mounts, disks):
/// sprites outlive their server by design, a test's must not outlive the test.
pub fn destroy_machines(state_dir: PathBuf) {
    if !state_dir.exists() {
        return;
    }
    let work = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let config = vmm_driver::DriverConfig {
                kind: "gvisor".into(),
                state_dir,
                image_dir: image_dir(),
                agent_path: env!("CARGO_BIN_EXE_corral").into(),
            };
            let Ok(driver) = vmm_driver::from_config(&config).await else {
                return;
            };
            for machine in driver.list().await.unwrap_or_default() {
                let _ = driver.destroy(&machine.id).await;
            }
        });
    };
    // Its own thread: the caller may be inside a runtime already.
    let _ = std::thread::spawn(work).join();
}
