//! End-to-end tests of the real `corral` binary over HTTP: one test binary, a fresh
//! server and SQLite file per test.

mod accounts;
mod billing;
mod channel;
mod crash;
mod hardening;
mod helpers;
mod idle_cpu;
mod images;
mod ingress;
mod isolation;
#[path = "../common/machines.rs"]
mod machines;
mod money;
mod network;
mod pool;
mod reliability;
mod schedules;
mod security;
mod sprites;
mod token_settings;
