//! Threshold alerts: which thresholds a tick crossed, and the mail that says so.

use crate::money::Nanos;
use crate::period::rfc3339;
use crate::scope::Scope;

/// The thresholds (percent of `cap`) that `used` reached this tick and had not before.
/// Thresholds above 100 % or at 0 are ignored.
pub fn crossed(thresholds_pct: &[u32], cap: Nanos, before: Nanos, after: Nanos) -> Vec<u32> {
    let mut out: Vec<u32> = thresholds_pct
        .iter()
        .copied()
        .filter(|p| (1..=100).contains(p))
        .filter(|p| {
            let level = i128::from(cap.get()) * i128::from(*p) / 100;
            i128::from(before.get()) < level && i128::from(after.get()) >= level
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The highest threshold of a list (≤ 100 %): what a budget pause reports.
pub fn top_threshold(thresholds_pct: &[u32]) -> Option<u32> {
    thresholds_pct
        .iter()
        .copied()
        .filter(|p| (1..=100).contains(p))
        .max()
}

/// Facts a threshold mail states.
#[derive(Clone, Debug)]
pub struct AlertFacts<'a> {
    /// Whose budget.
    pub scope: &'a Scope,
    /// The token's name, for token scopes.
    pub token_name: Option<&'a str>,
    /// The threshold crossed.
    pub pct: u32,
    /// The cap.
    pub cap: Nanos,
    /// Spent this period.
    pub spent: Nanos,
    /// Reserved for stored data to the period's end.
    pub storage_reserved: Nanos,
    /// When the period resets.
    pub period_end_ms: i64,
    /// The scope's sprites were paused for budget this tick.
    pub paused: bool,
    /// The names of the sprites paused, when `paused`.
    pub paused_sprites: Vec<&'a str>,
}

/// Subject and plain-text body of a threshold mail.
pub fn message(f: &AlertFacts<'_>) -> (String, String) {
    let whose = match (f.scope, f.token_name) {
        (Scope::Token(id), name) => format!("API token \"{}\"", name.unwrap_or(id)),
        (Scope::Tenant(_), _) => "your account".to_owned(),
    };
    let what = if matches!(f.scope, Scope::Token(_)) {
        "budget"
    } else {
        "monthly spend cap"
    };
    let subject = if f.paused {
        format!("Corral: {whose} reached its {what}; its sprites are paused")
    } else {
        format!("Corral: {whose} has used {}% of its {what}", f.pct)
    };
    let mut body = format!(
        "{whose} has committed {} of its {what} of {}: {} spent this period and {} reserved \
         to keep its stored data until the period ends on {}.\n",
        (f.spent + f.storage_reserved).usd(),
        f.cap.usd(),
        f.spent.usd(),
        f.storage_reserved.usd(),
        rfc3339(f.period_end_ms),
    );
    if f.paused {
        let which = if f.paused_sprites.is_empty() {
            "Its running sprites were paused".to_owned()
        } else {
            format!(
                "Its running sprites were paused ({})",
                f.paused_sprites.join(", ")
            )
        };
        body.push_str(&format!(
            "{which} so that the cap is never passed. No data was deleted. Raise the cap \
             (PUT /v1/budget, or the budget page) to resume them, or wait for the next period.\n"
        ));
    }
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_is_crossed_once() {
        let cap = Nanos(1000);
        let th = [50, 80, 100, 150, 0, 80];
        assert_eq!(crossed(&th, cap, Nanos(0), Nanos(499)), Vec::<u32>::new());
        assert_eq!(crossed(&th, cap, Nanos(0), Nanos(500)), [50]);
        assert_eq!(crossed(&th, cap, Nanos(500), Nanos(900)), [80]);
        assert_eq!(crossed(&th, cap, Nanos(100), Nanos(1000)), [50, 80, 100]);
        assert_eq!(
            crossed(&th, cap, Nanos(1000), Nanos(5000)),
            Vec::<u32>::new()
        );
        assert_eq!(top_threshold(&th), Some(100));
        assert_eq!(top_threshold(&[150]), None);
    }

    #[test]
    fn mails_name_the_scope_and_the_money() {
        let scope = Scope::Token("tk1".into());
        let facts = AlertFacts {
            scope: &scope,
            token_name: Some("ci"),
            pct: 80,
            cap: Nanos::from_usd(10),
            spent: Nanos::from_usd(7),
            storage_reserved: Nanos::from_usd(1),
            period_end_ms: 1_796_083_200_000,
            paused: false,
            paused_sprites: vec!["dev", "web"],
        };
        let (subject, body) = message(&facts);
        assert_eq!(
            subject,
            "Corral: API token \"ci\" has used 80% of its budget"
        );
        assert!(
            body.contains("$8.000000 of its budget of $10.000000"),
            "{body}"
        );
        assert!(body.contains("2026-12-01T00:00:00Z"), "{body}");
        assert!(!body.contains("dev, web"), "{body}");
        let (subject, body) = message(&AlertFacts {
            paused: true,
            ..facts
        });
        assert!(subject.contains("paused"));
        assert!(body.contains("No data was deleted"));
        assert!(body.contains("sprites were paused (dev, web)"), "{body}");
    }
}
