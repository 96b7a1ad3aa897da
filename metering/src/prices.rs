//! The price table and every conversion from integer usage to nano-dollars (ceil, u128).

use serde::{Deserialize, Serialize};

use crate::money::Nanos;

/// Bytes in a GB as billed (decimal, like the public price lists).
pub const BYTES_PER_GB: u128 = 1_000_000_000;
/// Bytes in the MiB that `memory_mb` is given in (the cgroup limit is MiB).
pub const BYTES_PER_MIB: u64 = 1 << 20;
/// Milliseconds in a billing month as disk prices count it (730 hours).
pub const MS_PER_PRICE_MONTH: u128 = 730 * 3600 * 1000;
const NS_PER_S: u128 = 1_000_000_000;
const MS_PER_S: u128 = 1000;

/// The price table in force (configuration: `CORRAL_PRICE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    /// Per second of CPU time used (one vCPU busy for one second).
    pub cpu_nanos_per_cpu_s: u64,
    /// Per GB (1e9 bytes) of memory in use for one second.
    pub memory_nanos_per_gb_s: u64,
    /// Per GB stored for one month of 730 hours, checkpoints included.
    pub disk_nanos_per_gb_month: u64,
    /// Per GB (1e9 bytes) moved through the way out, either direction.
    pub network_nanos_per_gb: u64,
}

impl Default for Prices {
    /// Near public hosted-sprite prices: $0.07 per CPU-hour, $0.04375 per GB-hour of
    /// memory, $0.50 per GB-month of disk, $0.09 per GB of network (hosted egress).
    fn default() -> Prices {
        Prices {
            cpu_nanos_per_cpu_s: 19_444,
            memory_nanos_per_gb_s: 12_153,
            disk_nanos_per_gb_month: 500_000_000,
            network_nanos_per_gb: 90_000_000,
        }
    }
}

/// Integer usage totals: what one ledger row (one sprite, one minute) accumulates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use integrated over time, byte·milliseconds.
    pub memory_byte_ms: u64,
    /// Bytes stored integrated over time, byte·milliseconds.
    pub disk_byte_ms: u64,
    /// Bytes moved through the way out, both directions.
    pub network_bytes: u64,
}

impl Usage {
    /// Component-wise sum, saturating.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_add(other.cpu_ns),
            memory_byte_ms: self.memory_byte_ms.saturating_add(other.memory_byte_ms),
            disk_byte_ms: self.disk_byte_ms.saturating_add(other.disk_byte_ms),
            network_bytes: self.network_bytes.saturating_add(other.network_bytes),
        }
    }

    /// True when nothing was used.
    pub fn is_zero(self) -> bool {
        self == Usage::default()
    }
}

/// Bytes a bandwidth of `bytes_per_s` can move in `ms` (with a tenth of a second of
/// burst).
pub fn network_worst_bytes(bytes_per_s: u64, ms: i64) -> u64 {
    let ms = u64::try_from(ms).unwrap_or(0).saturating_add(100);
    bytes_per_s.saturating_mul(ms) / 1000
}

fn ceil_div(num: u128, den: u128) -> u128 {
    num.div_ceil(den)
}

impl Prices {
    /// Cost of CPU time, rounded up to the nano-dollar.
    pub fn cpu_cost(&self, cpu_ns: u64) -> Nanos {
        let n = u128::from(cpu_ns) * u128::from(self.cpu_nanos_per_cpu_s);
        Nanos::from_u128_saturating(ceil_div(n, NS_PER_S))
    }

    /// Cost of memory byte·ms, rounded up.
    pub fn memory_cost(&self, byte_ms: u64) -> Nanos {
        let n = u128::from(byte_ms) * u128::from(self.memory_nanos_per_gb_s);
        Nanos::from_u128_saturating(ceil_div(n, BYTES_PER_GB * MS_PER_S))
    }

    /// Cost of disk byte·ms, rounded up.
    pub fn disk_cost(&self, byte_ms: u64) -> Nanos {
        let n = u128::from(byte_ms) * u128::from(self.disk_nanos_per_gb_month);
        Nanos::from_u128_saturating(ceil_div(n, BYTES_PER_GB * MS_PER_PRICE_MONTH))
    }

    /// Cost of network bytes, rounded up.
    pub fn network_cost(&self, bytes: u64) -> Nanos {
        let n = u128::from(bytes) * u128::from(self.network_nanos_per_gb);
        Nanos::from_u128_saturating(ceil_div(n, BYTES_PER_GB))
    }

    /// Cost of a row's totals: each resource rounded up on its own, so a row is never
    /// more than 4 nano-dollars above the exact value however often it is updated.
    pub fn cost(&self, usage: Usage) -> Nanos {
        self.cpu_cost(usage.cpu_ns)
            + self.memory_cost(usage.memory_byte_ms)
            + self.disk_cost(usage.disk_byte_ms)
            + self.network_cost(usage.network_bytes)
    }

    /// Adds `delta` to a ledger row: the new totals and how much the row's cost grew,
    /// recomputed from the totals (not summed per tick) so rounding never drifts.
    pub fn price_row(&self, old: Usage, delta: Usage) -> (Usage, Nanos) {
        let new = old.plus(delta);
        (new, self.cost(new) - self.cost(old))
    }

    /// Cost of keeping `bytes` stored for `ms`, rounded up: the storage reservation.
    pub fn storage_cost(&self, bytes: u64, ms: i64) -> Nanos {
        let n = u128::from(bytes)
            .checked_mul(u128::try_from(ms).unwrap_or(0))
            .and_then(|byte_ms| byte_ms.checked_mul(u128::from(self.disk_nanos_per_gb_month)));
        match n {
            Some(n) => Nanos::from_u128_saturating(ceil_div(n, BYTES_PER_GB * MS_PER_PRICE_MONTH)),
            None => Nanos::MAX,
        }
    }

    /// The most a running sprite's compute (all vCPUs busy, all memory in use) can
    /// cost in `ms`, rounded up.
    pub fn compute_worst(&self, cpus: u64, memory_bytes: u64, ms: i64) -> Nanos {
        let ms = u64::try_from(ms).unwrap_or(0);
        let cpu_ns = cpus.saturating_mul(ms).saturating_mul(1_000_000);
        self.cpu_cost(cpu_ns) + self.memory_cost(memory_bytes.saturating_mul(ms))
    }

    /// Worst-case burn of a sprite per second: what the runway check charges for
    /// creating or resuming one with `cpus` vCPUs, `memory_mb` MiB and a bandwidth of
    /// `network_bytes_per_s`.
    pub fn sprite_worst_burn_per_s(
        &self,
        cpus: u32,
        memory_mb: u32,
        network_bytes_per_s: u64,
    ) -> Nanos {
        self.compute_worst(u64::from(cpus), u64::from(memory_mb) * BYTES_PER_MIB, 1000)
            + self.network_cost(network_bytes_per_s)
    }

    /// The most running sprites with `bytes_per_s` of bandwidth together can move in
    /// `ms`, and what it costs: their rate for the window plus a tenth of a second of
    /// burst each bucket may hold.
    pub fn network_worst(&self, bytes_per_s: u64, ms: i64) -> Nanos {
        self.network_cost(network_worst_bytes(bytes_per_s, ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_public_hourly_prices() {
        let p = Prices::default();
        // One vCPU busy for an hour: $0.07 (to within the per-second rounding).
        let hour = p.cpu_cost(3600 * 1_000_000_000);
        assert!((69_990_000..=70_010_000).contains(&hour.get()), "{hour:?}");
        // 1 GB for an hour: $0.04375.
        let mem = p.memory_cost(1_000_000_000 * 3_600_000);
        assert!((43_740_000..=43_760_000).contains(&mem.get()), "{mem:?}");
        // 1 GB for a 730-hour month: exactly $0.50.
        assert_eq!(
            p.storage_cost(1_000_000_000, 730 * 3_600_000),
            Nanos(500_000_000)
        );
    }

    #[test]
    fn each_resource_rounds_up_on_its_own() {
        let p = Prices::default();
        assert_eq!(p.cpu_cost(0), Nanos(0));
        assert_eq!(p.cpu_cost(1), Nanos(1)); // 1 ns of CPU is not free
        assert_eq!(p.cpu_cost(1_000_000_000), Nanos(19_444));
        assert_eq!(p.cpu_cost(1_000_000_001), Nanos(19_445));
        let u = Usage {
            network_bytes: 0,
            cpu_ns: 1,
            memory_byte_ms: 1,
            disk_byte_ms: 1,
        };
        assert_eq!(p.cost(u), Nanos(3));
    }

    #[test]
    fn a_row_updated_every_tick_costs_what_its_totals_cost() {
        // 60 one-second ticks of odd amounts: summing per-tick ceilings would drift by
        // up to 60 nanos per resource; recomputing from the totals does not.
        let p = Prices::default();
        let tick = Usage {
            network_bytes: 0,
            cpu_ns: 333_333_337,
            memory_byte_ms: 123_456_789_011,
            disk_byte_ms: 7_777_777_777_777,
        };
        let (mut row, mut cost, mut per_tick_ceil) = (Usage::default(), Nanos(0), Nanos(0));
        for _ in 0..60 {
            let (new, grew) = p.price_row(row, tick);
            assert!(grew >= Nanos(0));
            row = new;
            cost += grew;
            per_tick_ceil += p.cost(tick);
        }
        assert_eq!(cost, p.cost(row));
        let exact_cpu = 60 * 333_333_337u128 * 19_444;
        assert!(
            u128::try_from(p.cpu_cost(row.cpu_ns).get()).unwrap() * 1_000_000_000 - exact_cpu
                < 1_000_000_000
        );
        assert!(per_tick_ceil > cost, "per-tick rounding drifts upward");
    }

    #[test]
    fn huge_amounts_do_not_overflow() {
        let p = Prices {
            network_nanos_per_gb: 0,
            cpu_nanos_per_cpu_s: u64::MAX,
            memory_nanos_per_gb_s: u64::MAX,
            disk_nanos_per_gb_month: u64::MAX,
        };
        let u = Usage {
            network_bytes: 0,
            cpu_ns: u64::MAX,
            memory_byte_ms: u64::MAX,
            disk_byte_ms: u64::MAX,
        };
        assert_eq!(p.cost(u), Nanos::MAX);
        assert_eq!(p.storage_cost(u64::MAX, i64::MAX), Nanos::MAX);
        assert_eq!(p.storage_cost(5, -10), Nanos(0));
    }

    #[test]
    fn worst_burn_of_a_sprite() {
        let p = Prices::default();
        // 2 vCPUs and 1024 MiB: 2 * 19_444 + 1.073741824 GB * 12_153, rounded up.
        assert_eq!(
            p.sprite_worst_burn_per_s(2, 1024, 0),
            Nanos(38_888 + 13_050)
        );
        assert_eq!(
            p.compute_worst(2, 1 << 30, 1000),
            p.sprite_worst_burn_per_s(2, 1024, 0)
        );
    }
}
