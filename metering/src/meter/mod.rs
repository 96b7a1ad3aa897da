//! The metering loop: every tick, sample the fleet, price it, write ledger, baselines,
//! spend and alerts in one transaction, then pause every scope that does not fit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use crate::db::{self, BudgetContext, RowWrite};
use crate::fleet::{Fleet, FleetSprite, Sample};
use crate::metrics::{Laps, MeterMetrics, Phase};
use crate::money::Nanos;
use crate::period::{minute_start, Period};
use crate::prices::Prices;
use crate::scope::{sprite_scopes, token_chain, Scope};
use crate::tick::{self, TickConfig};
use crate::window::RuleWindow;
use crate::Error;

mod outage;
mod pausing;
mod scopes;
use scopes::ScopeMemory;

/// The meter's configuration.
#[derive(Clone, Copy, Debug)]
pub struct MeterConfig {
    /// How often to tick (`CORRAL_TICK_MS`, default 1 s).
    pub tick: Duration,
    /// The longest a pause takes to stop a sprite: part of the worst case.
    pub pause_latency: Duration,
    /// The price table.
    pub prices: Prices,
    /// The cap of tenants whose `cap_nanos` is NULL (`None`: no cap).
    pub default_tenant_cap: Option<Nanos>,
    /// Extra growth per second a running sprite may reach beyond its disk (which is
    /// always reserved whole, see [`crate::FleetSprite::reserve_bytes`]); its storage to
    /// the period's end is reserved a window ahead. 0 by default.
    pub disk_growth_bytes_per_s: u64,
    /// Prepaid billing: each tenant's credit is a second cap (the lesser wins), and a
    /// scope paused by it pauses with `pause_reason: billing`.
    pub prepaid: bool,
}

impl Default for MeterConfig {
    fn default() -> MeterConfig {
        MeterConfig {
            tick: Duration::from_millis(1000),
            pause_latency: Duration::from_millis(1000),
            prices: Prices::default(),
            default_tenant_cap: None,
            disk_growth_bytes_per_s: 0,
            prepaid: false,
        }
    }
}

impl MeterConfig {
    /// Tick plus pause latency, milliseconds: the rule's window.
    pub fn window_ms(&self) -> i64 {
        (self.tick + self.pause_latency).as_millis() as i64
    }

    /// The context the budget reads need, at `now_ms`.
    pub fn budget_context(&self, now_ms: i64) -> BudgetContext {
        BudgetContext {
            prices: self.prices,
            default_tenant_cap: self.default_tenant_cap,
            now_ms,
            prepaid: self.prepaid,
        }
    }

    fn tick_config(&self) -> TickConfig {
        TickConfig {
            prices: self.prices,
            tick_ms: self.tick.as_millis() as i64,
            window_ms: self.window_ms(),
            disk_growth_bytes_per_s: self.disk_growth_bytes_per_s,
            catch_up: false,
        }
    }
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The tick's id; `None` when it was refused (an instant already covered).
    pub tick_id: Option<i64>,
    /// Sprites in the fleet.
    pub sprites: usize,
    /// What the tick cost, all scopes together.
    pub cost: Nanos,
    /// Scopes that did not fit.
    pub enforced: Vec<Scope>,
    /// Sprites asked to pause.
    pub paused: Vec<i64>,
    /// Alerts queued.
    pub alerts: usize,
}

/// The metering loop and its memory between ticks (none of it needed for correctness
/// after a restart: the database holds baselines and spend).
pub struct Meter {
    pool: SqlitePool,
    fleet: Arc<dyn Fleet>,
    config: MeterConfig,
    metrics: Arc<MeterMetrics>,
    last_tick_ms: Option<i64>,
    scopes: ScopeMemory,
    /// Sprites the last tick asked to pause, and what they may still be billed (ms).
    pausing: HashMap<i64, i64>,
    /// Wall time of the latest ticks, ms (at most [`RECENT_TICKS`]): a tick's own
    /// length is part of the rule's window, since sprites run on until the next tick
    /// has finished deciding.
    recent_ticks: VecDeque<i64>,
    /// The rule's window as published to admission (bare window plus the slowest of
    /// `recent_ticks`).
    window: Arc<RuleWindow>,
}

/// How many ticks' wall times the rule's window looks back on.
const RECENT_TICKS: usize = 60;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Meter {
    /// A meter over `pool` (migrated) and `fleet`.
    pub fn new(pool: SqlitePool, fleet: Arc<dyn Fleet>, config: MeterConfig) -> Meter {
        Meter {
            pool,
            fleet,
            config,
            metrics: Arc::default(),
            last_tick_ms: None,
            scopes: ScopeMemory::default(),
            pausing: HashMap::new(),
            recent_ticks: VecDeque::new(),
            window: Arc::new(RuleWindow::new(&config)),
        }
    }

    /// Publishes the rule's window into `window` (made from the same configuration),
    /// which admission reads for its runway: both move together.
    pub fn with_window(mut self, window: Arc<RuleWindow>) -> Meter {
        debug_assert_eq!(window.bare_ms(), self.config.window_ms());
        self.window = window;
        self
    }

    /// The rule's window this meter publishes.
    pub fn window(&self) -> Arc<RuleWindow> {
        self.window.clone()
    }

    /// The counters, to render on `/metrics`.
    pub fn metrics(&self) -> Arc<MeterMetrics> {
        self.metrics.clone()
    }

    /// Ticks every `config.tick` until `shutdown` resolves. A tick in progress is
    /// finished first; a failed tick is logged and the next one catches up.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut interval = tokio::time::interval(self.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.tick_at(now_ms()).await {
                self.metrics
                    .tick_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%error, "metering tick failed");
            }
        }
        tracing::info!("metering loop stopped: shutdown requested");
    }

    /// One tick at `now_ms`: sample, price, record in one transaction, enforce.
    #[tracing::instrument(skip_all, fields(now_ms))]
    pub async fn tick_at(&mut self, now_ms: i64) -> Result<TickReport, Error> {
        let started = Instant::now();
        let mut laps = Laps::default();
        let fleet = self
            .fleet
            .sprites()
            .await
            .map_err(|e| Error::Fleet(e.to_string()))?;
        laps.lap(Phase::List);
        // Usage is read on a blocking thread while the transaction reads baselines, rows
        // and caps (a few microseconds of system calls per sprite, off the tick's path).
        let ids: Vec<i64> = fleet.iter().map(|s| s.sprite_id).collect();
        let sampler = self.fleet.clone();
        let sampling = tokio::task::spawn_blocking(move || {
            ids.iter().map(|id| sampler.sample(*id)).collect::<Vec<_>>()
        });
        let listed = fleet.len();
        let Some((mut report, pause, billing_only)) =
            self.record(now_ms, fleet, sampling, &mut laps).await?
        else {
            self.metrics
                .ticks_skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(TickReport {
                sprites: listed,
                ..TickReport::default()
            });
        };
        let took = started.elapsed();
        self.metrics.observe_tick(took.as_micros() as u64);
        self.metrics.observe_phases(&laps);
        if self.recent_ticks.len() == RECENT_TICKS {
            self.recent_ticks.pop_front();
        }
        self.recent_ticks
            .push_back(i64::try_from(took.as_millis()).unwrap_or(i64::MAX) + 1);
        let slowest = self.recent_ticks.iter().copied().max().unwrap_or(0);
        self.window.publish_slowest_tick(slowest);
        self.metrics.rule_window_ms.store(
            u64::try_from(self.window.ms()).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        if !pause.is_empty() {
            let t = Instant::now();
            tracing::warn!(
                sprites = pause.len(),
                scopes = report.enforced.len(),
                "pausing sprites for budget"
            );
            let (billing, budget): (Vec<i64>, Vec<i64>) =
                pause.iter().partition(|id| billing_only.contains(id));
            if !budget.is_empty() {
                self.fleet.pause_for_budget(&budget).await;
            }
            if !billing.is_empty() {
                self.fleet.pause_for_billing(&billing).await;
            }
            let m = &self.metrics;
            m.last_pause_us.store(
                t.elapsed().as_micros() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            m.sprites_paused_for_budget
                .fetch_add(pause.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        report.paused = pause;
        self.fleet.metered().await;
        Ok(report)
    }

    /// The tick's single transaction. `None` when the instant was already covered.
    async fn record(
        &mut self,
        now_ms: i64,
        mut fleet: Vec<FleetSprite>,
        sampling: tokio::task::JoinHandle<Vec<Option<Sample>>>,
        laps: &mut Laps,
    ) -> Result<Option<(TickReport, Vec<i64>, Vec<i64>)>, Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let cfg = self.config.tick_config();
        let period = Period::containing(now_ms);
        let minute = minute_start(now_ms);
        let mut tx = self.pool.begin().await?;
        let Some(tick_id) = db::claim_tick(&mut tx, now_ms).await? else {
            return Ok(None);
        };
        let all_ids: Vec<i64> = fleet.iter().map(|s| s.sprite_id).collect();
        let known = db::known_sprites(&mut tx, &all_ids).await?;
        let keep: Vec<bool> = all_ids.iter().map(|id| known.contains(id)).collect();
        if known.len() != fleet.len() {
            tracing::warn!(
                unknown = fleet.len() - known.len(),
                "skipping sprites the database does not know"
            );
            fleet.retain(|s| known.contains(&s.sprite_id));
        }
        let ids: Vec<i64> = fleet.iter().map(|s| s.sprite_id).collect();
        let baselines = db::baselines(&mut tx, &ids).await?;
        if self.last_tick_ms.is_none() {
            // Started again: a sprite found paused may have been paused for budget just
            // before the stop, so it gets no more than the pause latency either.
            let latency = (cfg.window_ms - cfg.tick_ms).max(0);
            for sprite in fleet.iter().filter(|s| !s.running) {
                self.pausing.entry(sprite.sprite_id).or_insert(latency);
            }
        }
        let rows = db::minute_rows(&mut tx, minute).await?;
        let tenant_ids: Vec<&str> = unique(fleet.iter().map(|s| s.tenant_id.as_str()));
        let tenants =
            db::tenants(&mut tx, &tenant_ids, period.start_ms, self.config.prepaid).await?;
        let creators: Vec<&str> =
            unique(fleet.iter().filter_map(|s| s.created_by_token.as_deref()));
        let tokens = db::token_tree(&mut tx, &creators).await?;
        laps.lap(Phase::Read);
        let mut samples: Vec<Option<Sample>> = sampling
            .await
            .map_err(|e| Error::Fleet(format!("sampling failed: {e}")))?
            .into_iter()
            .zip(&keep)
            .filter_map(|(sample, keep)| keep.then_some(sample))
            .collect();
        laps.lap(Phase::Sample);
        let (mut real, mut cut) = pausing::limit(
            &fleet,
            &mut samples,
            &self.pausing,
            &baselines,
            now_ms,
            cfg.window_ms,
        );

        // Each sprite's scopes (tenant, then token chain), and each token's tenant.
        let mut chains: HashMap<(&str, Option<&str>), Vec<Scope>> = HashMap::new();
        let mut token_tenant: HashMap<Scope, &str> = HashMap::new();
        let mut of_sprite: HashMap<i64, Vec<Scope>> = HashMap::new();
        for s in &fleet {
            let key = (s.tenant_id.as_str(), s.created_by_token.as_deref());
            let scopes = chains.entry(key).or_insert_with(|| {
                let chain = key.1.map(|t| token_chain(&tokens, t)).unwrap_or_default();
                let scopes = sprite_scopes(key.0, &chain);
                for scope in &scopes[1..] {
                    token_tenant.insert(scope.clone(), key.0);
                }
                scopes
            });
            of_sprite.insert(s.sprite_id, scopes.clone());
        }
        let scopes_of = |s: &FleetSprite| of_sprite.get(&s.sprite_id).cloned().unwrap_or_default();
        let default_cap = self.config.default_tenant_cap;
        let cap_of = |scope: &Scope| match scope {
            Scope::Tenant(id) => {
                let info = tenants.get(id);
                let cap = info.and_then(|x| x.cap).or(default_cap);
                lesser(cap, info.and_then(|x| x.credit))
            }
            Scope::Token(id) => tokens.get(id).and_then(|n| n.budget),
        };
        // The first tick after a start bills what ran while no meter did, within caps.
        let cfg = TickConfig {
            catch_up: self.last_tick_ms.is_none(),
            ..cfg
        };
        if cfg.catch_up {
            let trial = tick::plan(
                &cfg, now_ms, period, &fleet, &samples, &baselines, &rows, scopes_of,
            );
            let keys: Vec<String> = trial.scopes.keys().map(Scope::key).collect();
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let before = db::read_scope_spend(&mut tx, period.start_ms, &refs).await?;
            let scopes = outage::Scopes {
                cfg: &cfg,
                now_ms,
                period,
                trial: &trial,
                of_sprite: &of_sprite,
                before: &before,
                cap: cap_of,
            };
            cut += outage::fit(&scopes, &fleet, &mut samples, &baselines, &mut real);
        }
        let (fleet, samples) = (fleet.as_slice(), samples.as_slice());
        let mut plan = tick::plan(
            &cfg, now_ms, period, fleet, samples, &baselines, &rows, scopes_of,
        );
        let by_id: HashMap<i64, &FleetSprite> = fleet.iter().map(|s| (s.sprite_id, s)).collect();
        let row_writes: Vec<RowWrite<'_>> = plan
            .updates
            .iter()
            .filter_map(|u| {
                Some(RowWrite {
                    sprite: by_id.get(&u.sprite_id)?,
                    row: u.row?,
                })
            })
            .collect();
        laps.lap(Phase::Plan);
        db::write_rows(&mut tx, minute, &row_writes).await?;
        pausing::restore(&mut plan.updates, &real);
        db::write_baselines(&mut tx, tick_id, &plan.updates).await?;
        laps.lap(Phase::Write);

        // Spend per scope: this tick's scopes, and those that just lost their sprites.
        if self.last_tick_ms.is_none() {
            let live = db::live_scopes(&mut tx, period.start_ms).await?;
            self.scopes.written = live.into_iter().collect();
        }
        let keys: Vec<String> = plan.scopes.keys().map(Scope::key).collect();
        let key_set: HashSet<String> = keys.iter().cloned().collect();
        let gone: Vec<String> = self.scopes.written.difference(&key_set).cloned().collect();
        let all_keys: Vec<&str> = keys.iter().chain(&gone).map(String::as_str).collect();
        let before = db::read_scope_spend(&mut tx, period.start_ms, &all_keys).await?;
        let names: HashMap<i64, &str> =
            by_id.iter().map(|(id, s)| (*id, s.name.as_str())).collect();
        // Sprites run on until the next tick has finished deciding, which may take as
        // long as the slowest recent tick: the rule's worst case includes that too (what
        // a tick bills stays capped at the bare window). Admission's runway reads the
        // same published window.
        let rule_cfg = TickConfig {
            window_ms: self.window.ms(),
            ..cfg
        };
        let inputs = scopes::Inputs {
            cfg: &rule_cfg,
            default_tenant_cap: self.config.default_tenant_cap,
            now_ms,
            period,
            elapsed_ms: self
                .last_tick_ms
                .map_or(cfg.tick_ms, |t| (now_ms - t).clamp(1, 60_000)),
            scopes: &plan.scopes,
            keys: &keys,
            gone: &gone,
            before: &before,
            tenants: &tenants,
            tokens: &tokens,
            token_tenant: &token_tenant,
            names: &names,
        };
        let decision = self.scopes.decide(&inputs);
        db::write_scope_spend(&mut tx, period.start_ms, now_ms, &decision.writes).await?;
        let mut queued = 0;
        for alert in &decision.alerts {
            queued += usize::from(db::queue_alert(&mut tx, alert).await?);
        }
        for (tenant_id, credit, pct) in &decision.billing_warnings {
            let Some(info) = tenants.get(*tenant_id) else {
                continue;
            };
            let scope = format!("billing:{tenant_id}:{}", credit.get());
            let alert = db::NewAlert {
                tenant_id,
                kind: "billing",
                scope: &scope,
                threshold_pct: *pct,
                period_start_ms: period.start_ms,
                to_email: &info.email,
                subject: format!("Corral: {pct}% of your prepaid credit is used"),
                body: format!(
                    "Your sprites have used (or keep reserved for stored data) {pct}% of \
                     the prepaid credit available this period ({}). When it is nearly \
                     used up they pause (pause_reason: billing). Add credit with POST \
                     /v1/billing/checkout or `corral billing topup`.\n",
                    credit.usd()
                ),
                now_ms,
            };
            queued += usize::from(db::queue_alert(&mut tx, &alert).await?);
        }
        for (tenant_id, credit) in &decision.billing_paused {
            let Some(info) = tenants.get(*tenant_id) else {
                continue;
            };
            // Once per credit level and period: a top-up is a new level.
            let scope = format!("billing:{tenant_id}:{}", credit.get());
            let alert = db::NewAlert {
                tenant_id,
                kind: "billing",
                scope: &scope,
                threshold_pct: 100,
                period_start_ms: period.start_ms,
                to_email: &info.email,
                subject: "Corral: prepaid credit used up, sprites paused".into(),
                body: format!(
                    "Your prepaid credit is nearly used up, so your running sprites were \
                     paused (pause_reason: billing) before it could run out. Nothing was \
                     deleted. Add credit with POST /v1/billing/checkout (or `corral billing \
                     topup`) and resume them.\n\nCredit this period: {}\n",
                    credit.usd()
                ),
                now_ms,
            };
            queued += usize::from(db::queue_alert(&mut tx, &alert).await?);
        }
        laps.lap(Phase::Spend);
        tx.commit().await?;
        laps.lap(Phase::Commit);

        self.scopes
            .commit(decision.pending, key_set, now_ms, period);
        self.last_tick_ms = Some(now_ms);
        self.pausing = pausing::allowances(
            &decision.pause,
            &self.pausing,
            &baselines,
            now_ms,
            cfg.window_ms,
            cfg.tick_ms,
        );
        let report = TickReport {
            tick_id: Some(tick_id),
            sprites: fleet.len(),
            cost: plan.cost,
            enforced: decision.enforced,
            paused: Vec::new(),
            alerts: queued,
        };
        let m = &self.metrics;
        m.last_tick_sprites.store(fleet.len() as u64, Relaxed);
        m.recorded_nanos
            .fetch_add(plan.cost.get().max(0) as u64, Relaxed);
        m.scopes_enforced
            .fetch_add(report.enforced.len() as u64, Relaxed);
        m.alerts_queued.fetch_add(queued as u64, Relaxed);
        m.clamped_samples.fetch_add(plan.clamped + cut, Relaxed);
        Ok(Some((report, decision.pause, decision.billing_only)))
    }
}

/// The lesser of two optional caps (`None` is no cap).
pub(crate) fn lesser(a: Option<Nanos>, b: Option<Nanos>) -> Option<Nanos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    items.filter(|s| seen.insert(*s)).collect()
}
