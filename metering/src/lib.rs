//! Corral's money: pricing, the hard-cap rule, the ledger and the metering loop.
#![warn(missing_docs)]

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

pub use db::{Budget, BudgetContext, Refusal};
pub use fleet::{Fleet, FleetError, FleetSprite, Sample};
pub use meter::{now_ms, Meter, MeterConfig, TickReport};
pub use metrics::MeterMetrics;
pub use money::{Nanodollars, Nanos};
pub use period::{Granularity, Period};
pub use prices::{Prices, Usage};
pub use scope::Scope;

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
