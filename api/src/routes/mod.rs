//! One module per resource, each with its own `router()`.

pub mod accounts;
pub mod health;
pub mod tokens;
