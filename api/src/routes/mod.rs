//! One module per resource, each with its own `router()`.

pub mod accounts;
pub mod billing;
pub mod checkpoints;
pub mod exec;
pub mod files;
pub mod health;
pub mod images;
pub mod ingress;
pub mod limits;
pub mod money;
pub mod network;
pub mod schedules;
pub mod secrets;
pub mod sprites;
pub mod token_settings;
pub mod tokens;
