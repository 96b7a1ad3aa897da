//! Network policy: rules by domain (`pypi.org`, `*.python.org`, `*`), allow or deny,
//! optionally for some ports only, and presets (`package-registries`). The most specific
//! matching rule of the sprite's policy decides; when none of its rules matches, the
//! tenant's policy does; when none of those does either, the operator's default.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
}

/// One rule: a domain pattern with an action, or a preset to include.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Rule {
    /// `{"domain": "pypi.org" | "*.python.org" | "*", "action": "allow", "ports"?: [443]}`
    Domain {
        domain: String,
        action: Action,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ports: Option<Vec<u16>>,
    },
    /// `{"include": "package-registries"}`
    Include { include: String },
}

/// The presets a policy may include, with what each expands to.
pub const PRESETS: &[(&str, &[&str])] = &[(
    "package-registries",
    &[
        "deb.debian.org",
        "security.debian.org",
        "pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
        "crates.io",
        "static.crates.io",
        "index.crates.io",
        "github.com",
        "*.github.com",
        "*.githubusercontent.com",
        "codeload.github.com",
        "proxy.golang.org",
    ],
)];

/// Most rules a policy may hold.
pub const MAX_RULES: usize = 500;

/// A rule with its presets expanded: what a decision is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Effective {
    pub domain: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    /// The preset it came from, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

fn valid_domain(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    pattern == "*"
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
        || pattern.parse::<std::net::IpAddr>().is_ok()
}

/// Checks the rules and expands presets; 422 naming what is wrong.
pub fn expand(rules: &[Rule]) -> Result<Vec<Effective>, ApiError> {
    if rules.len() > MAX_RULES {
        return Err(ApiError::Validation(format!(
            "a policy holds at most {MAX_RULES} rules, got {}",
            rules.len()
        )));
    }
    let mut out = Vec::new();
    for rule in rules {
        match rule {
            Rule::Domain {
                domain,
                action,
                ports,
            } => {
                let domain = domain.trim().to_ascii_lowercase();
                if !valid_domain(&domain) {
                    return Err(ApiError::Validation(format!(
                        "{domain:?} is not a domain pattern (use a name such as pypi.org, \
                         *.python.org for its subdomains, or * for everything)"
                    )));
                }
                if ports
                    .as_ref()
                    .is_some_and(|p| p.is_empty() || p.contains(&0))
                {
                    return Err(ApiError::Validation(format!(
                        "the ports of {domain:?} must be a non-empty list of 1 to 65535"
                    )));
                }
                out.push(Effective {
                    domain,
                    action: *action,
                    ports: ports.clone(),
                    from: None,
                });
            }
            Rule::Include { include } => {
                let Some((_, domains)) = PRESETS.iter().find(|(name, _)| name == include) else {
                    let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                    return Err(ApiError::Validation(format!(
                        "no preset {include:?}; the presets are: {}",
                        known.join(", ")
                    )));
                };
                out.extend(domains.iter().map(|d| Effective {
                    domain: d.to_string(),
                    action: Action::Allow,
                    ports: None,
                    from: Some(include.clone()),
                }));
            }
        }
    }
    Ok(out)
}

/// How specific a pattern's match of `host` is (higher wins), or `None`.
fn specificity(pattern: &str, host: &str) -> Option<usize> {
    if pattern == "*" {
        return Some(0);
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        let under = host.len() > suffix.len() + 1
            && host.ends_with(suffix)
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.';
        return under.then_some(suffix.len() + 1);
    }
    (pattern == host).then_some(pattern.len() + 1000)
}

/// The deciding rule for `host:port` among `rules`, when one matches.
pub fn decide<'a>(rules: &'a [Effective], host: &str, port: u16) -> Option<&'a Effective> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    rules
        .iter()
        .filter(|r| r.ports.as_ref().is_none_or(|p| p.contains(&port)))
        .filter_map(|r| specificity(&r.domain, &host).map(|s| (s, r)))
        // Among equally specific rules, a deny wins.
        .max_by_key(|(s, r)| (*s, r.action == Action::Deny))
        .map(|(_, r)| r)
}

/// A rule as a person reads it in a refusal or the log.
pub fn describe(rule: &Effective) -> String {
    let action = match rule.action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    };
    let ports = rule
        .ports
        .as_ref()
        .map(|p| {
            let list: Vec<String> = p.iter().map(u16::to_string).collect();
            format!(" ports {}", list.join(","))
        })
        .unwrap_or_default();
    let from = rule
        .from
        .as_ref()
        .map(|f| format!(" (preset {f})"))
        .unwrap_or_default();
    format!("{action} {}{ports}{from}", rule.domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<Effective> {
        expand(&serde_json::from_str::<Vec<Rule>>(json).unwrap()).unwrap()
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let r = rules(
            r#"[{"domain":"*","action":"allow"},{"domain":"*.evil.com","action":"deny"},
               {"domain":"ok.evil.com","action":"allow","ports":[443]}]"#,
        );
        let action = |h, p| decide(&r, h, p).map(|r| r.action);
        assert_eq!(action("pypi.org", 443), Some(Action::Allow));
        assert_eq!(action("a.evil.com", 443), Some(Action::Deny));
        assert_eq!(
            action("evil.com", 443),
            Some(Action::Allow),
            "*.x is only under x"
        );
        assert_eq!(action("ok.evil.com", 443), Some(Action::Allow));
        assert_eq!(action("ok.evil.com", 80), Some(Action::Deny));
        assert_eq!(action("OK.Evil.com.", 443), Some(Action::Allow));
        assert!(decide(
            &rules(r#"[{"domain":"pypi.org","action":"allow"}]"#),
            "x.org",
            80
        )
        .is_none());
    }

    #[test]
    fn presets_expand_and_bad_rules_are_named() {
        let r = rules(r#"[{"include":"package-registries"}]"#);
        assert!(r
            .iter()
            .any(|e| e.domain == "pypi.org" && e.from.as_deref() == Some("package-registries")));
        assert_eq!(
            decide(&r, "raw.githubusercontent.com", 443).map(|r| r.action),
            Some(Action::Allow)
        );
        for bad in [
            r#"[{"include":"nope"}]"#,
            r#"[{"domain":"a b","action":"allow"}]"#,
            r#"[{"domain":"x.org","action":"allow","ports":[]}]"#,
        ] {
            let parsed: Vec<Rule> = serde_json::from_str(bad).unwrap();
            assert!(expand(&parsed).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_str::<Vec<Rule>>(r#"[{"domain":"x.org","action":"maybe"}]"#).is_err()
        );
    }
}
