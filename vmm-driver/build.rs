//! Builds the statx shim (`shim/statx.c`) that every sprite preloads; the driver embeds
//! it and installs it beside the agent. `cc` is the C compiler Rust links with.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "shim/statx.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("statx-shim.so");
    let status = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()))
        // Two load segments and no RELRO: every process in a sprite maps this, and
        // each mapping costs a round trip through gVisor.
        .args([
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Werror",
            "-nostartfiles",
        ])
        .args([
            "-Wl,-z,noseparate-code",
            "-Wl,-z,norelro",
            "-Wl,--hash-style=gnu",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .expect("running the C compiler (cc) for shim/statx.c");
    assert!(status.success(), "compiling {src} failed: {status}");
}
