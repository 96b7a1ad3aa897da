//! The in-sprite agent as its own binary, for tests and benchmarks (the `corral` binary
//! runs the same code as `corral agent`).

fn main() {
    std::process::exit(vmm_driver::agent::main());
}
