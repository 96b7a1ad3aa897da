//! Corral's money: pricing, the hard-cap rule, the ledger and the metering loop.
#![warn(missing_docs)]

pub mod money;
pub mod period;
pub mod prices;
pub mod rule;

pub use money::{Nanodollars, Nanos};
pub use period::{Granularity, Period};
pub use prices::{Prices, Usage};
