//! Builds (or rebuilds) the base image, for testing before `corral image build` exists:
//! `corral-image [image_dir]` (default `/var/lib/corral/images`).

use std::io::Write;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/var/lib/corral/images".into());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral-image: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(vmm_driver::gvisor::image::build(
        std::path::Path::new(&dir),
        |line| {
            let _ = writeln!(std::io::stderr(), "{line}");
        },
    ));
    match result {
        Ok(path) => {
            let _ = writeln!(std::io::stdout(), "{}", path.display());
        }
        Err(e) => {
            eprintln!("corral-image: {e}");
            std::process::exit(1);
        }
    }
}
