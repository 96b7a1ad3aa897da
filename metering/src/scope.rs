//! Budget scopes (a tenant, or one API token) and the token chain a sprite's spend
//! counts against: the creating token first, then every ancestor.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::money::Nanos;

/// Whose money a spend is: the tenant's cap, or one token's budget.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A tenant's monthly cap.
    Tenant(String),
    /// An API token's budget (the token and all of its descendants' sprites).
    Token(String),
}

impl Scope {
    /// The key stored in `scope_spend.scope` and `outbox.scope`.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// Parses a stored key back.
    pub fn parse(key: &str) -> Option<Scope> {
        if let Some(id) = key.strip_prefix("tenant:") {
            Some(Scope::Tenant(id.to_owned()))
        } else {
            key.strip_prefix("token:")
                .map(|id| Scope::Token(id.to_owned()))
        }
    }

    /// The 402 code for this scope running out.
    pub fn exhausted_code(&self) -> &'static str {
        match self {
            Scope::Tenant(_) => "budget_exhausted",
            Scope::Token(_) => "token_budget_exhausted",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Tenant(id) => write!(f, "tenant:{id}"),
            Scope::Token(id) => write!(f, "token:{id}"),
        }
    }
}

/// One API token as budgets see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenNode {
    /// The token's id.
    pub id: String,
    /// The token that minted it.
    pub parent_id: Option<String>,
    /// Its budget per billing period; `None` is no budget of its own.
    pub budget: Option<Nanos>,
    /// Its name, for alert mails.
    pub name: String,
}

/// Tokens deeper than this are treated as broken data, not followed.
const MAX_CHAIN: usize = 64;

/// The chain a sprite created by `creator` counts against: `creator` first, then each
/// ancestor. Unknown tokens end the chain; a cycle (corrupt data) is cut, not looped.
pub fn token_chain<'a>(
    tokens: &'a HashMap<String, TokenNode>,
    creator: &str,
) -> Vec<&'a TokenNode> {
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(creator);
    while let Some(id) = next {
        let Some(node) = tokens.get(id) else { break };
        if !seen.insert(id) || chain.len() == MAX_CHAIN {
            break;
        }
        chain.push(node);
        next = node.parent_id.as_deref();
    }
    chain
}

/// Every scope a sprite's spend counts against: its tenant, then its token chain.
pub fn sprite_scopes(tenant_id: &str, chain: &[&TokenNode]) -> Vec<Scope> {
    let mut scopes = Vec::with_capacity(chain.len() + 1);
    scopes.push(Scope::Tenant(tenant_id.to_owned()));
    scopes.extend(chain.iter().map(|t| Scope::Token(t.id.clone())));
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(edges: &[(&str, Option<&str>)]) -> HashMap<String, TokenNode> {
        edges
            .iter()
            .map(|(id, parent)| {
                let node = TokenNode {
                    id: (*id).to_owned(),
                    parent_id: parent.map(str::to_owned),
                    budget: None,
                    name: format!("name-{id}"),
                };
                ((*id).to_owned(), node)
            })
            .collect()
    }

    fn ids(chain: &[&TokenNode]) -> Vec<String> {
        chain.iter().map(|t| t.id.clone()).collect()
    }

    #[test]
    fn chain_runs_from_the_creator_to_the_root() {
        let t = tree(&[
            ("root", None),
            ("ci", Some("root")),
            ("job", Some("ci")),
            ("other", Some("root")),
        ]);
        assert_eq!(ids(&token_chain(&t, "job")), ["job", "ci", "root"]);
        assert_eq!(ids(&token_chain(&t, "other")), ["other", "root"]);
        assert_eq!(ids(&token_chain(&t, "root")), ["root"]);
        assert!(token_chain(&t, "unknown").is_empty());
        let scopes = sprite_scopes("t1", &token_chain(&t, "job"));
        let keys: Vec<String> = scopes.iter().map(Scope::key).collect();
        assert_eq!(keys, ["tenant:t1", "token:job", "token:ci", "token:root"]);
    }

    #[test]
    fn a_missing_parent_ends_the_chain_and_a_cycle_is_cut() {
        let t = tree(&[("a", Some("gone"))]);
        assert_eq!(ids(&token_chain(&t, "a")), ["a"]);
        let t = tree(&[("a", Some("b")), ("b", Some("a"))]);
        assert_eq!(ids(&token_chain(&t, "a")), ["a", "b"]);
    }

    #[test]
    fn scope_keys_round_trip() {
        for s in [Scope::Tenant("t-1".into()), Scope::Token("tok:odd".into())] {
            assert_eq!(Scope::parse(&s.key()), Some(s));
        }
        assert_eq!(Scope::parse("nope:x"), None);
        assert_eq!(
            Scope::Token("x".into()).exhausted_code(),
            "token_budget_exhausted"
        );
    }
}
