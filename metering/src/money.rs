//! Money as integer nano-dollars (1e-9 USD): the `Nanos` newtype and its display form.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

/// An amount of money in nano-dollars. Never a float: every sum and every comparison
/// of the hard-cap rule is exact.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub i64);

/// The name the style guide uses for the same thing.
pub type Nanodollars = Nanos;

/// Nano-dollars in one dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

impl Nanos {
    /// Nothing.
    pub const ZERO: Nanos = Nanos(0);
    /// The largest amount: stands in for "no cap" where a number is needed.
    pub const MAX: Nanos = Nanos(i64::MAX);

    /// The raw count of nano-dollars.
    pub fn get(self) -> i64 {
        self.0
    }

    /// Whole dollars, for configuration and tests.
    pub fn from_usd(dollars: i64) -> Nanos {
        Nanos(dollars.saturating_mul(NANOS_PER_USD))
    }

    /// Clamps a wide intermediate (u128 pricing math) into the i64 range.
    pub fn from_u128_saturating(v: u128) -> Nanos {
        Nanos(i64::try_from(v).unwrap_or(i64::MAX))
    }

    /// Addition that sticks at the bounds instead of wrapping.
    pub fn saturating_add(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(other.0))
    }

    /// Subtraction that sticks at the bounds instead of wrapping.
    pub fn saturating_sub(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(other.0))
    }

    /// Multiplication by a count (seconds, sprites) that sticks at the bounds.
    pub fn saturating_mul(self, n: i64) -> Nanos {
        Nanos(self.0.saturating_mul(n))
    }

    /// The display string for `…_usd` fields: dollars with six decimals, rounded half
    /// away from zero, e.g. `$0.012345` or `-$1.500000`.
    pub fn usd(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = u128::from(self.0.unsigned_abs());
        // Round to micro-dollars: six decimals are what a person reads.
        let micros = (abs + 500) / 1000;
        let (dollars, frac) = (micros / 1_000_000, micros % 1_000_000);
        let sign = if neg && micros > 0 { "-" } else { "" };
        write!(f, "{sign}${dollars}.{frac:06}")
    }
}

impl Add for Nanos {
    type Output = Nanos;
    fn add(self, rhs: Nanos) -> Nanos {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Nanos {
    fn add_assign(&mut self, rhs: Nanos) {
        *self = *self + rhs;
    }
}

impl Sub for Nanos {
    type Output = Nanos;
    fn sub(self, rhs: Nanos) -> Nanos {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Nanos {
    fn sub_assign(&mut self, rhs: Nanos) {
        *self = *self - rhs;
    }
}

impl Sum for Nanos {
    fn sum<I: Iterator<Item = Nanos>>(iter: I) -> Nanos {
        iter.fold(Nanos::ZERO, Add::add)
    }
}

impl From<i64> for Nanos {
    fn from(v: i64) -> Nanos {
        Nanos(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_dollars_with_six_decimals() {
        assert_eq!(Nanos(12_345_000).usd(), "$0.012345");
        assert_eq!(Nanos(0).usd(), "$0.000000");
        assert_eq!(Nanos::from_usd(3).usd(), "$3.000000");
        assert_eq!(Nanos(1_500_000_000).usd(), "$1.500000");
        // Half a micro-dollar rounds up; less rounds down.
        assert_eq!(Nanos(500).usd(), "$0.000001");
        assert_eq!(Nanos(499).usd(), "$0.000000");
        assert_eq!(Nanos(-1_500_000_000).usd(), "-$1.500000");
        assert_eq!(Nanos(-499).usd(), "$0.000000");
        assert_eq!(Nanos(i64::MIN).usd(), "-$9223372036.854776");
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Nanos::MAX + Nanos(1), Nanos::MAX);
        assert_eq!(Nanos(i64::MIN) - Nanos(1), Nanos(i64::MIN));
        assert_eq!(Nanos::from_u128_saturating(u128::MAX), Nanos::MAX);
        let total: Nanos = [Nanos(1), Nanos(2), Nanos(3)].into_iter().sum();
        assert_eq!(total, Nanos(6));
    }
}
