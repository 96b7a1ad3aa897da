//! Corral's money: pricing, the hard-cap rule, the ledger and the metering loop.
//!
//! The api crate implements [`Fleet`] over its sprites service, starts one [`Meter`]
//! with `tokio::spawn(meter.run(shutdown))`, renders [`MeterMetrics::render`] on
//! `/metrics`, and answers the money calls with the [`db`] functions: budgets
//! ([`db::tenant_budget`], [`db::token_budget`], [`db::chain_budgets`]), usage reports
//! ([`db::usage`]), live sprite costs ([`db::sprite_costs`]) and the alert outbox
//! ([`db::undelivered`]). Whether a sprite may run at all is [`Admissions`]: the runway
//! check behind 402s with the memory of admissions the meter has not seen yet.
#![warn(missing_docs)]

pub mod admission;
pub mod alerts;
pub mod db;
pub mod fleet;
pub mod meter;
pub mod metrics;
pub mod money;
pub mod period;
pub mod prices;
pub mod recorded;
pub mod rule;
pub mod scope;
pub mod tick;
pub mod window;

pub use admission::{Admissions, Candidate};
pub use db::{Budget, BudgetContext, Refusal};
pub use fleet::{Fleet, FleetError, FleetSprite, Sample};
pub use meter::{now_ms, Meter, MeterConfig, TickReport};
pub use metrics::MeterMetrics;
pub use money::{Nanodollars, Nanos};
pub use period::{Granularity, Period};
pub use prices::{Prices, Usage};
pub use scope::Scope;
pub use window::RuleWindow;

/// What can go wrong in metering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("metering database error")]
    Db(#[from] sqlx::Error),
    /// The fleet could not be listed.
    #[error("the fleet could not be listed: {0}")]
    Fleet(String),
}
