//! Corral's money: pricing, the hard-cap rule, the ledger and the metering loop.
