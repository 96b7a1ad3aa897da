//! Crontab conversion checked against chrono's own calendar.

use chrono::{Datelike, TimeZone, Timelike, Utc, Weekday};

use super::Crontab;

/// Wednesday 2026-12-02 12:34:56 UTC.
fn wednesday() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 34, 56).unwrap()
}

fn weekdays(expr: &str, n: usize) -> Vec<Weekday> {
    Crontab::parse(expr, false)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .next_runs(wednesday(), n)
        .iter()
        .map(|t| t.weekday())
        .collect()
}

fn set(days: &[Weekday]) -> std::collections::BTreeSet<u32> {
    days.iter().map(|d| d.num_days_from_sunday()).collect()
}

#[test]
fn sunday_is_0_7_and_its_names() {
    for expr in [
        "0 3 * * 0",
        "0 3 * * 7",
        "0 3 * * sun",
        "0 3 * * SUN",
        "@weekly",
    ] {
        let runs = Crontab::parse(expr, false)
            .unwrap()
            .next_runs(wednesday(), 3);
        assert_eq!(runs.len(), 3, "{expr}");
        for t in &runs {
            assert_eq!(t.weekday(), Weekday::Sun, "{expr} fired {t}");
        }
        // One week apart, the first the coming Sunday.
        assert_eq!(runs[0].day(), 6, "{expr}");
        assert_eq!((runs[1] - runs[0]).num_days(), 7, "{expr}");
    }
}

#[test]
fn monday_at_nine_reports_mondays() {
    let runs = Crontab::parse("0 9 * * 1", false)
        .unwrap()
        .next_runs(wednesday(), 3);
    let shown: Vec<String> = runs.iter().map(|t| t.to_rfc3339()).collect();
    assert_eq!(
        shown,
        [
            "2026-12-07T09:00:00+00:00",
            "2026-12-14T09:00:00+00:00",
            "2026-12-21T09:00:00+00:00"
        ]
    );
    assert!(runs.iter().all(|t| t.weekday() == Weekday::Mon));
    assert_eq!(weekdays("0 9 * * mon", 3), [Weekday::Mon; 3]);
}

#[test]
fn every_day_of_week_number_is_that_day() {
    let all = [
        Weekday::Sun,
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
    ];
    for (n, day) in all.iter().enumerate() {
        assert_eq!(weekdays(&format!("0 0 * * {n}"), 4), [*day; 4], "dow {n}");
        let name = day.to_string().to_lowercase();
        assert_eq!(weekdays(&format!("0 0 * * {name}"), 2), [*day; 2], "{name}");
    }
}

#[test]
fn ranges_lists_and_steps_of_days() {
    use Weekday::*;
    let week = |expr: &str| set(&weekdays(expr, 14));
    assert_eq!(week("0 0 * * 1-5"), set(&[Mon, Tue, Wed, Thu, Fri]));
    assert_eq!(week("0 0 * * mon-fri"), set(&[Mon, Tue, Wed, Thu, Fri]));
    assert_eq!(week("0 0 * * 5-7"), set(&[Fri, Sat, Sun]));
    assert_eq!(week("0 0 * * 0,6"), set(&[Sun, Sat]));
    assert_eq!(week("0 0 * * 6,7"), set(&[Sat, Sun]));
    assert_eq!(week("0 0 * * */2"), set(&[Sun, Tue, Thu, Sat]));
    assert_eq!(week("0 0 * * 1-5/2"), set(&[Mon, Wed, Fri]));
    assert_eq!(
        week("0 0 * * 0-7"),
        set(&[Sun, Mon, Tue, Wed, Thu, Fri, Sat])
    );
    assert_eq!(week("0 0 * * 1,3-4,sat"), set(&[Mon, Wed, Thu, Sat]));
    // Fourteen daily runs are two of each day.
    assert_eq!(weekdays("0 0 * * 0-6", 14).len(), 14);
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_given() {
    // Crontab: the 1st of the month OR a Monday.
    let runs = Crontab::parse("0 0 1 * 1", false)
        .unwrap()
        .next_runs(wednesday(), 6);
    for t in &runs {
        assert!(t.day() == 1 || t.weekday() == Weekday::Mon, "{t}");
    }
    assert!(runs
        .iter()
        .any(|t| t.day() == 1 && t.weekday() != Weekday::Mon));
    assert!(runs.iter().any(|t| t.day() != 1));
    // A star-led field restricts with AND, as in Vixie cron.
    for t in Crontab::parse("0 0 */2 * 1", false)
        .unwrap()
        .next_runs(wednesday(), 5)
    {
        assert!(t.weekday() == Weekday::Mon && t.day() % 2 == 1, "{t}");
    }
}

#[test]
fn names_minutes_hours_and_months() {
    let next = |expr: &str| {
        Crontab::parse(expr, false)
            .unwrap()
            .after(wednesday())
            .unwrap()
            .to_rfc3339()
    };
    assert_eq!(next("@daily"), "2026-12-03T00:00:00+00:00");
    assert_eq!(next("@hourly"), "2026-12-02T13:00:00+00:00");
    assert_eq!(next("@monthly"), "2027-01-01T00:00:00+00:00");
    assert_eq!(next("@yearly"), "2027-01-01T00:00:00+00:00");
    assert_eq!(next("*/15 * * * *"), "2026-12-02T12:45:00+00:00");
    assert_eq!(next("* * * * *"), "2026-12-02T12:35:00+00:00");
    assert_eq!(next("0 3 * feb *"), "2027-02-01T03:00:00+00:00");
    assert_eq!(next("30 8-9 * * *"), "2026-12-03T08:30:00+00:00");
    let minutes: Vec<u32> = Crontab::parse("5,10-12 * * * *", false)
        .unwrap()
        .next_runs(wednesday(), 4)
        .iter()
        .map(|t| t.minute())
        .collect();
    assert_eq!(minutes, [5, 10, 11, 12]);
}

#[test]
fn seconds_only_when_allowed() {
    assert!(Crontab::parse("*/5 * * * * *", false).is_err());
    let runs = Crontab::parse("*/5 * * * * *", true)
        .unwrap()
        .next_runs(wednesday(), 2);
    assert_eq!(runs[0].second(), 0);
    assert_eq!((runs[1] - runs[0]).num_seconds(), 5);
}

#[test]
fn mistakes_are_named() {
    for (expr, needle) in [
        ("60 * * * *", "minute 60"),
        ("* 24 * * *", "hour 24"),
        ("* * 0 * *", "day of month 0"),
        ("* * * 13 *", "month 13"),
        ("* * * * 8", "day of week 8"),
        ("* * * * 5-1", "backwards"),
        ("* * * *", "4 fields"),
        ("@reboot", "not a schedule name"),
        ("*/0 * * * *", "step"),
        ("0 0 L * *", "not a number"),
        ("0 0 31 2 *", "never fires"),
    ] {
        let err = Crontab::parse(expr, false).unwrap_err();
        assert!(err.contains(needle), "{expr}: {err}");
    }
}
