//! The per-scope half of a tick: spend after the tick, burn, the rule's verdict and the
//! alerts to queue, decided without touching the meter's memory until the transaction
//! has committed (a failed tick must not remember alerts it never queued).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::alerts::{self, AlertFacts};
use crate::db::{NewAlert, ScopeSpendWrite, TenantInfo};
use crate::money::Nanos;
use crate::period::Period;
use crate::rule;
use crate::scope::{Scope, TokenNode};
use crate::tick::{ScopeTotals, TickConfig};

/// How far back the burn rate looks.
const BURN_WINDOW_MS: i64 = 60_000;

/// What the meter remembers about scopes between ticks (rebuilt after a restart).
#[derive(Default)]
pub(super) struct ScopeMemory {
    /// Recent ticks per scope: (at, elapsed ms, cost).
    burn: HashMap<String, VecDeque<(i64, i64, Nanos)>>,
    /// Committed spend (spent + reserved) at the last tick, for threshold crossings.
    used: HashMap<String, Nanos>,
    /// (scope, period, threshold) already queued.
    alerted: HashSet<(String, i64, u32)>,
    /// Scopes written by the last tick: one that loses its last sprite is zeroed.
    pub written: HashSet<String>,
}

/// Everything `decide` reads.
pub(super) struct Inputs<'a> {
    pub cfg: &'a TickConfig,
    pub default_tenant_cap: Option<Nanos>,
    pub now_ms: i64,
    pub period: Period,
    /// Since the last tick, for the burn rate.
    pub elapsed_ms: i64,
    pub scopes: &'a HashMap<Scope, ScopeTotals>,
    /// `scopes`' keys, in the map's iteration order.
    pub keys: &'a [String],
    pub gone: &'a [String],
    pub before: &'a HashMap<String, Nanos>,
    pub tenants: &'a HashMap<String, TenantInfo>,
    pub tokens: &'a HashMap<String, TokenNode>,
    pub token_tenant: &'a HashMap<Scope, &'a str>,
    /// Sprite names by id, for the mails that say which sprites were paused.
    pub names: &'a HashMap<i64, &'a str>,
}

/// Memory updates to apply once the tick has committed.
#[derive(Default)]
pub(super) struct Pending {
    burn: Vec<(String, (i64, i64, Nanos))>,
    used: Vec<(String, Nanos)>,
    alerted: Vec<(String, i64, u32)>,
}

/// What a tick writes and does for its scopes.
pub(super) struct Decision<'a> {
    pub writes: Vec<ScopeSpendWrite<'a>>,
    pub alerts: Vec<NewAlert<'a>>,
    pub enforced: Vec<Scope>,
    pub pause: Vec<i64>,
    /// Of `pause`, those only billing stops (`pause_reason: billing`); a sprite a budget
    /// also stops pauses for `budget`, the stronger reason.
    pub billing_only: Vec<i64>,
    /// Tenants whose credit (not their cap) paused them, with that credit: a mail each.
    pub billing_paused: Vec<(&'a str, Nanos)>,
    /// Tenants whose committed spend crossed a threshold (< 100 %) of their credit,
    /// with the credit and the threshold: a warning mail each, before the pause.
    pub billing_warnings: Vec<(&'a str, Nanos, u32)>,
    pub pending: Pending,
}

impl ScopeMemory {
    /// Nanos per second over the last minute, this tick's `cost` included.
    fn burn_with(&self, key: &str, now_ms: i64, elapsed_ms: i64, cost: Nanos) -> Nanos {
        let recent = self.burn.get(key).into_iter().flatten();
        let (ms, sum) = recent
            .filter(|(at, _, _)| *at > now_ms - BURN_WINDOW_MS)
            .fold(
                (elapsed_ms, i128::from(cost.get())),
                |(ms, c), (_, e, x)| (ms + e, c + i128::from(x.get())),
            );
        let per_s = u128::try_from(sum * 1000)
            .unwrap_or(0)
            .div_ceil(ms.max(1) as u128);
        Nanos::from_u128_saturating(per_s)
    }

    /// Applies a committed tick: its memory updates and the scopes it wrote.
    pub fn commit(
        &mut self,
        pending: Pending,
        written: HashSet<String>,
        now_ms: i64,
        period: Period,
    ) {
        for (key, entry) in pending.burn {
            let w = self.burn.entry(key).or_default();
            w.push_back(entry);
            while w
                .front()
                .is_some_and(|(at, _, _)| *at <= now_ms - BURN_WINDOW_MS)
            {
                w.pop_front();
            }
        }
        self.used.extend(pending.used);
        self.alerted.extend(pending.alerted);
        self.written = written;
        self.burn.retain(|k, _| self.written.contains(k));
        self.used.retain(|k, _| self.written.contains(k));
        self.alerted.retain(|(_, p, _)| *p == period.start_ms);
    }

    /// Spend, verdicts and alerts for every scope of the tick.
    pub fn decide<'a>(&self, i: &Inputs<'a>) -> Decision<'a> {
        let remaining = i.period.remaining_ms(i.now_ms);
        let mut d = Decision {
            writes: Vec::with_capacity(i.keys.len() + i.gone.len()),
            alerts: Vec::new(),
            enforced: Vec::new(),
            pause: Vec::new(),
            billing_only: Vec::new(),
            billing_paused: Vec::new(),
            billing_warnings: Vec::new(),
            pending: Pending::default(),
        };
        let mut billing = Vec::new();
        for ((scope, t), key) in i.scopes.iter().zip(i.keys) {
            let spent = i.before.get(key).copied().unwrap_or_default() + t.grew;
            let burn = self.burn_with(key, i.now_ms, i.elapsed_ms, t.grew);
            d.pending
                .burn
                .push((key.clone(), (i.now_ms, i.elapsed_ms, t.grew)));
            d.writes.push(ScopeSpendWrite {
                scope: key,
                spent,
                stored_bytes: t.stored_bytes,
                sprites: t.sprites,
                burn_per_s: burn,
                worst_burn_per_s: t.worst_burn_per_s,
            });
            let mut credit = None;
            let (cap, tenant_id, token_name) = match scope {
                Scope::Tenant(id) => {
                    let info = i.tenants.get(id);
                    let cap = info.and_then(|x| x.cap).or(i.default_tenant_cap);
                    credit = info.and_then(|x| x.credit);
                    (cap, id.as_str(), None)
                }
                Scope::Token(id) => {
                    let node = i.tokens.get(id);
                    let tenant = i.token_tenant.get(scope).copied().unwrap_or_default();
                    (
                        node.and_then(|n| n.budget),
                        tenant,
                        node.map(|n| n.name.as_str()),
                    )
                }
            };
            // Billing's credit is a second cap: whichever leaves less decides, and
            // when it is the credit, the pause is billing's.
            if let Some(credit) = credit.filter(|c| cap.is_none_or(|cap| *c < cap)) {
                let input = t.rule_input(i.cfg, credit, spent);
                let verdict = rule::evaluate(&i.cfg.prices, &input, i.cfg.window_ms, remaining);
                if verdict.pause {
                    d.enforced.push(scope.clone());
                    billing.extend(&t.running);
                    d.billing_paused.push((tenant_id, credit));
                }
                let used = spent + verdict.storage_reserved;
                let used_before = self.used.get(key).copied().unwrap_or_default();
                if cap.is_none() {
                    d.pending.used.push((key.clone(), used));
                }
                if let Some(info) = i.tenants.get(tenant_id) {
                    let crossed = alerts::crossed(&info.thresholds_pct, credit, used_before, used);
                    d.billing_warnings.extend(
                        crossed
                            .into_iter()
                            .filter(|p| *p < 100)
                            .map(|p| (tenant_id, credit, p)),
                    );
                }
            }
            let Some(cap) = cap else { continue };
            let input = t.rule_input(i.cfg, cap, spent);
            let verdict = rule::evaluate(&i.cfg.prices, &input, i.cfg.window_ms, remaining);
            if verdict.pause {
                d.enforced.push(scope.clone());
                d.pause.extend(&t.running);
            }
            // Alerts: committed spend (spent plus the storage reservation) crossing a
            // threshold, and the top threshold when the scope is paused.
            let used = spent + verdict.storage_reserved;
            let used_before = self.used.get(key).copied().unwrap_or_default();
            d.pending.used.push((key.clone(), used));
            let Some(info) = i.tenants.get(tenant_id) else {
                continue;
            };
            let mut pcts = alerts::crossed(&info.thresholds_pct, cap, used_before, used);
            let top = alerts::top_threshold(&info.thresholds_pct).filter(|_| verdict.pause);
            pcts.extend(top.filter(|p| !pcts.contains(p)));
            for pct in pcts {
                let id = (key.clone(), i.period.start_ms, pct);
                if self.alerted.contains(&id) {
                    continue;
                }
                d.pending.alerted.push(id);
                let facts = AlertFacts {
                    scope,
                    token_name,
                    pct,
                    cap,
                    spent,
                    storage_reserved: verdict.storage_reserved,
                    period_end_ms: i.period.end_ms,
                    paused: top == Some(pct),
                    paused_sprites: if top == Some(pct) {
                        t.running
                            .iter()
                            .filter_map(|id| i.names.get(id).copied())
                            .collect()
                    } else {
                        Vec::new()
                    },
                };
                let (subject, body) = alerts::message(&facts);
                d.alerts.push(NewAlert {
                    tenant_id,
                    kind: "threshold",
                    scope: key,
                    threshold_pct: pct,
                    period_start_ms: i.period.start_ms,
                    to_email: &info.email,
                    subject,
                    body,
                    now_ms: i.now_ms,
                });
            }
        }
        for key in i.gone {
            let spent = i.before.get(key).copied().unwrap_or_default();
            d.writes.push(ScopeSpendWrite {
                scope: key,
                spent,
                stored_bytes: 0,
                sprites: 0,
                burn_per_s: Nanos::ZERO,
                worst_burn_per_s: Nanos::ZERO,
            });
        }
        d.pause.sort_unstable();
        d.pause.dedup();
        billing.sort_unstable();
        billing.dedup();
        d.billing_only = billing
            .into_iter()
            .filter(|id| d.pause.binary_search(id).is_err())
            .collect();
        d.pause.extend(&d.billing_only);
        d.pause.sort_unstable();
        d
    }
}
