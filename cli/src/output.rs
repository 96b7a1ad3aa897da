//! How the CLI shows answers: aligned tables, key/value blocks, raw JSON, and the
//! formatting of money (exact, from nano-dollars), sizes and times.

use serde_json::Value;

/// Prints `value` as pretty JSON (the `--json` output).
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a Value always serializes")
    );
}

/// A field as text: strings bare, numbers and booleans as written, missing as `-`.
pub fn field(value: &Value, key: &str) -> String {
    text(value.get(key).unwrap_or(&Value::Null))
}

/// A value as text: strings bare, numbers and booleans as written, null as `-`.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// An integer field, if present.
pub fn int(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64)
}

/// A money field (`…_nanos`) as dollars, or `-`.
pub fn money(value: &Value, key: &str) -> String {
    int(value, key).map(usd).unwrap_or_else(|| "-".into())
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `key  value` lines with the keys aligned.
pub fn pairs(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        println!("{key:<width$}  {value}");
    }
}

/// Nano-dollars as exact dollars: at least cents, more digits only when they are there.
pub fn usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let (whole, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
    let mut digits = format!("{frac:09}");
    while digits.len() > 2 && digits.ends_with('0') {
        digits.pop();
    }
    format!("{sign}${whole}.{digits}")
}

/// Dollars as typed (`12.5`, `$0.75`, `3`) to exact nano-dollars; never via floats.
pub fn parse_usd(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an amount of dollars like 12.50");
    let t = text.trim().trim_start_matches('$');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(bad());
    }
    if frac.len() > 9 {
        return Err(format!("{text:?} has more than 9 decimals (a nano-dollar)"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Bytes in binary units (`1.5 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An RFC 3339 time shortened to the second, in UTC (`2026-11-28 16:03:48`).
pub fn time(value: &Value, key: &str) -> String {
    match value.get(key).and_then(Value::as_str) {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            Err(_) => s.to_string(),
        },
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_both_ways() {
        assert_eq!(usd(100_000_000_000), "$100.00");
        assert_eq!(usd(19_444), "$0.000019444");
        assert_eq!(usd(1_500_000_000), "$1.50");
        assert_eq!(usd(-2_000_000_001), "-$2.000000001");
        assert_eq!(parse_usd("12.50"), Ok(12_500_000_000));
        assert_eq!(parse_usd("$0.000000001"), Ok(1));
        assert_eq!(parse_usd("3"), Ok(3_000_000_000));
        assert_eq!(parse_usd(".5"), Ok(500_000_000));
        assert!(parse_usd("1.0000000001").is_err());
        assert!(parse_usd("-1").is_err());
        assert!(parse_usd("1e3").is_err());
        assert!(parse_usd("").is_err());
        assert!(parse_usd("99999999999999").is_err());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
    }
}
