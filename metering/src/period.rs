//! Time arithmetic for money: billing periods (calendar months, UTC), ledger minutes and
//! report buckets, on unix milliseconds, with our own days-from-civil conversion.

/// Milliseconds in one minute: the ledger's row width.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1–12, day 1–31) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A billing period: one calendar month in UTC, `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    /// First millisecond of the month.
    pub start_ms: i64,
    /// First millisecond of the next month.
    pub end_ms: i64,
}

impl Period {
    /// The month that contains the instant `ms`.
    pub fn containing(ms: i64) -> Period {
        let (year, month, _) = civil_from_days(ms.div_euclid(DAY_MS));
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Period {
            start_ms: days_from_civil(year, month, 1) * DAY_MS,
            end_ms: days_from_civil(next_year, next_month, 1) * DAY_MS,
        }
    }

    /// Milliseconds left in the period after `now_ms` (0 once it is over).
    pub fn remaining_ms(&self, now_ms: i64) -> i64 {
        (self.end_ms - now_ms).max(0)
    }
}

/// How usage reports group the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One row per ledger minute.
    Minute,
    /// One row per hour.
    Hour,
    /// One row per UTC day.
    Day,
}

impl Granularity {
    /// Parses the `by=` query value.
    pub fn parse(s: &str) -> Option<Granularity> {
        match s {
            "minute" => Some(Granularity::Minute),
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    /// The bucket width in milliseconds.
    pub fn width_ms(self) -> i64 {
        match self {
            Granularity::Minute => MINUTE_MS,
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }
}

/// The ledger minute an instant falls in.
pub fn minute_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
}

/// RFC 3339 UTC with second precision, e.g. `2026-12-01T00:00:00Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * DAY_MS
    }

    #[test]
    fn civil_round_trips_across_four_centuries() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in -146_097..(3 * 146_097) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn months_end_where_the_calendar_says() {
        // 30- and 31-day months.
        let april = Period::containing(ms(2026, 4, 15) + 5);
        assert_eq!(
            (april.start_ms, april.end_ms),
            (ms(2026, 4, 1), ms(2026, 5, 1))
        );
        assert_eq!(april.end_ms - april.start_ms, 30 * DAY_MS);
        let may = Period::containing(ms(2026, 5, 31) + DAY_MS - 1);
        assert_eq!(may.end_ms - may.start_ms, 31 * DAY_MS);
        // The last millisecond belongs to the month, the next one to the next month.
        assert_eq!(Period::containing(april.end_ms - 1), april);
        assert_eq!(Period::containing(april.end_ms).start_ms, april.end_ms);
    }

    #[test]
    fn february_knows_leap_years() {
        let feb = |y| {
            let p = Period::containing(ms(y, 2, 10));
            (p.end_ms - p.start_ms) / DAY_MS
        };
        assert_eq!(feb(2024), 29);
        assert_eq!(feb(2026), 28);
        assert_eq!(feb(2000), 29); // divisible by 400
        assert_eq!(feb(2100), 28); // divisible by 100 only
        assert_eq!(Period::containing(ms(2024, 2, 29)).end_ms, ms(2024, 3, 1));
    }

    #[test]
    fn december_rolls_into_the_next_year() {
        let dec = Period::containing(ms(2026, 12, 31) + DAY_MS - 1);
        assert_eq!(dec.start_ms, ms(2026, 12, 1));
        assert_eq!(dec.end_ms, ms(2027, 1, 1));
        let jan = Period::containing(dec.end_ms);
        assert_eq!(jan.start_ms, ms(2027, 1, 1));
        assert_eq!(jan.end_ms, ms(2027, 2, 1));
        assert_eq!(jan.remaining_ms(jan.end_ms + 5), 0);
        assert_eq!(jan.remaining_ms(jan.end_ms - 5), 5);
    }

    #[test]
    fn minutes_buckets_and_formatting() {
        assert_eq!(
            minute_start(ms(2026, 11, 28) + 61_999),
            ms(2026, 11, 28) + 60_000
        );
        assert_eq!(minute_start(-1), -60_000);
        assert_eq!(Granularity::parse("hour"), Some(Granularity::Hour));
        assert_eq!(Granularity::parse("week"), None);
        assert_eq!(rfc3339(ms(2027, 1, 1)), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339(ms(2024, 2, 29) + 3_723_456), "2024-02-29T01:02:03Z");
    }
}
