//! Crontab as people type it (five fields in UTC, `@daily`-style names, optionally a
//! leading seconds field) turned into the `cron` crate's seconds-first schedules.
//!
//! Each field is expanded to the set of values it names and handed to the crate as an
//! explicit list, so the crate's own numbering never leaks through: crontab counts the
//! week from Sunday = 0 (7 is Sunday again), the crate from Sunday = 1, and days of the
//! week are passed by name. Crontab fires when the day of the month *or* the day of the
//! week matches if both are restricted (neither starts with `*`); the crate requires
//! both, so such an expression becomes two schedules whose times are merged.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A parsed crontab expression.
#[derive(Clone, Debug)]
pub struct Crontab {
    /// What was typed, trimmed.
    pub text: String,
    /// The crate's expressions (two when day of month and day of week are alternatives).
    pub expressions: Vec<String>,
    schedules: Vec<cron::Schedule>,
}

const NAMES: [(&str, &str); 6] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/// The crate's day names, Sunday first like crontab's 0.
const CRATE_DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's range and the names it accepts (name `i` is value `first_name + i`).
struct Field {
    what: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    first_name: u32,
}

const SECOND: Field = Field {
    what: "second",
    lo: 0,
    hi: 59,
    names: &[],
    first_name: 0,
};
const MINUTE: Field = Field {
    what: "minute",
    lo: 0,
    hi: 59,
    names: &[],
    first_name: 0,
};
const HOUR: Field = Field {
    what: "hour",
    lo: 0,
    hi: 23,
    names: &[],
    first_name: 0,
};
const DOM: Field = Field {
    what: "day of month",
    lo: 1,
    hi: 31,
    names: &[],
    first_name: 0,
};
const MONTH: Field = Field {
    what: "month",
    lo: 1,
    hi: 12,
    names: &MONTHS,
    first_name: 1,
};
// 7 is accepted as Sunday and folded into 0.
const DOW: Field = Field {
    what: "day of week",
    lo: 0,
    hi: 7,
    names: &DAYS,
    first_name: 0,
};

impl Field {
    fn value(&self, raw: &str) -> Result<u32, String> {
        let lower = raw.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.first_name + i as u32);
        }
        let v: u32 = raw
            .parse()
            .map_err(|_| format!("{} {raw:?} is not a number", self.what))?;
        if v < self.lo || v > self.hi {
            return Err(format!(
                "{} {v} is outside {}-{}",
                self.what, self.lo, self.hi
            ));
        }
        Ok(v)
    }

    /// The values a field names: `*`, `N`, `N-M`, each optionally `/STEP`, in a list.
    fn expand(&self, raw: &str) -> Result<BTreeSet<u32>, String> {
        let mut out = BTreeSet::new();
        for part in raw.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
                        format!("{} step {step:?} is not a number from 1", self.what)
                    })?;
                    (range, step)
                }
                None => (part, 1),
            };
            let (from, to) = match range {
                "*" => (self.lo, self.hi),
                _ => match range.split_once('-') {
                    Some((a, b)) => (self.value(a)?, self.value(b)?),
                    // `N/STEP` runs from N to the field's end.
                    None if step > 1 => (self.value(range)?, self.hi),
                    None => {
                        let v = self.value(range)?;
                        (v, v)
                    }
                },
            };
            if from > to {
                return Err(format!("{} range {range:?} runs backwards", self.what));
            }
            out.extend((from..=to).step_by(step as usize));
        }
        Ok(out)
    }

    /// The crate's form of a set: `*` when it is the whole range, else a list.
    fn emit(&self, set: &BTreeSet<u32>) -> String {
        if set.len() as u32 == self.hi - self.lo + 1 {
            return "*".into();
        }
        set.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

impl Crontab {
    /// Parses five-field crontab (UTC) or an `@name`; with `seconds`, also six fields
    /// whose first is the second (the rest read as crontab).
    pub fn parse(text: &str, seconds: bool) -> Result<Crontab, String> {
        let text = text.trim();
        let expanded = if text.starts_with('@') {
            NAMES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text))
                .map(|(_, fields)| *fields)
                .ok_or_else(|| {
                    format!("{text:?} is not a schedule name; use @yearly, @monthly, @weekly, @daily or @hourly")
                })?
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 if seconds => (fields[0], &fields[1..]),
            6 => return Err("six fields: this server takes five-field crontab (minute hour day-of-month month day-of-week)".into()),
            n => return Err(format!("{n} fields: crontab has five (minute hour day-of-month month day-of-week)")),
        };
        let sec = SECOND.emit(&SECOND.expand(second)?);
        let min = MINUTE.emit(&MINUTE.expand(rest[0])?);
        let hour = HOUR.emit(&HOUR.expand(rest[1])?);
        let dom_set = DOM.expand(rest[2])?;
        let month = MONTH.emit(&MONTH.expand(rest[3])?);
        let mut dow_set = DOW.expand(rest[4])?;
        if dow_set.remove(&7) {
            dow_set.insert(0);
        }
        let dom = DOM.emit(&dom_set);
        let dow = if dow_set.len() == 7 {
            "*".to_string()
        } else {
            dow_set
                .iter()
                .map(|d| CRATE_DAYS[*d as usize])
                .collect::<Vec<_>>()
                .join(",")
        };
        let head = format!("{sec} {min} {hour}");
        let either = !rest[2].starts_with('*') && !rest[4].starts_with('*');
        let expressions = if either {
            vec![
                format!("{head} {dom} {month} *"),
                format!("{head} * {month} {dow}"),
            ]
        } else {
            vec![format!("{head} {dom} {month} {dow}")]
        };
        let schedules = expressions
            .iter()
            .map(|e| cron::Schedule::from_str(e).map_err(|err| format!("{text:?}: {err}")))
            .collect::<Result<Vec<_>, _>>()?;
        let crontab = Crontab {
            text: text.to_string(),
            expressions,
            schedules,
        };
        if crontab.after(Utc::now()).is_none() {
            return Err(format!("{text:?} never fires"));
        }
        Ok(crontab)
    }

    /// The first time strictly after `t`.
    pub fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedules
            .iter()
            .filter_map(|s| s.after(&t).next())
            .min()
    }

    /// The next `n` times after `t`.
    pub fn next_runs(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "crontab_tests.rs"]
mod tests;
