//! The way out of sprites: the [`Gateway`] the driver hands every connection a program
//! in a sprite asks for through the agent's proxy. It decides by the sprite's policy,
//! then the tenant's, then the operator's default; resolves the name on the host;
//! refuses private and special addresses on the address actually dialled; dials; and
//! logs the decision with the bytes that flow. The sprite's identity comes from the
//! machine the stream arrived from, never from anything the sprite sends.

pub mod addresses;
mod intercept;
pub mod limit;
pub mod log;
pub mod policy;
pub mod secrets;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;
use vmm_driver::{Egress, EgressStream, MachineId};

use crate::db;
use crate::error::ApiError;
use crate::names::TenantId;
use addresses::Exceptions;
use log::{Entry, NetLog, Watched};
use policy::{Action, Effective, Rule};

/// How long a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the operator allows when no rule of the sprite or the tenant matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorDefault {
    /// Any public address.
    AllowPublic,
    /// Nothing.
    Deny,
}

impl OperatorDefault {
    /// Parses `CORRAL_EGRESS_DEFAULT`.
    pub fn parse(text: &str) -> Result<OperatorDefault, String> {
        match text {
            "allow-public" => Ok(OperatorDefault::AllowPublic),
            "deny" => Ok(OperatorDefault::Deny),
            other => Err(format!(
                "CORRAL_EGRESS_DEFAULT must be allow-public or deny, not {other:?}"
            )),
        }
    }
}

/// A policy as stored and shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// A sprite's (or the tenant's) policy with what it means.
#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    /// The rules as set (empty: none set).
    pub rules: Vec<Rule>,
    /// The rules with presets expanded.
    pub effective: Vec<Effective>,
    /// For a sprite: the tenant's rules, consulted when none of the sprite's matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Vec<Effective>>,
    /// What applies when no rule matches at all.
    pub default: OperatorDefault,
}

/// Decides and makes sprites' outbound connections.
pub struct Gateway {
    pool: SqlitePool,
    default: OperatorDefault,
    exceptions: Exceptions,
    own: Vec<IpAddr>,
    log: NetLog,
    /// Megabits per second each sprite may move.
    mbps: u32,
    limits: std::sync::Mutex<std::collections::HashMap<i64, std::sync::Arc<limit::Limiter>>>,
    /// Bytes each sprite moved since the server started (the meter's counter).
    moved: std::sync::Mutex<std::collections::HashMap<i64, std::sync::Arc<AtomicU64>>>,
    /// Tenants' secrets and the authority that lets the way out see requests to their
    /// hosts.
    secrets: Option<(std::sync::Arc<secrets::Secrets>, std::sync::Arc<tls::Tls>)>,
}

impl Gateway {
    /// A gateway with the operator's default and exceptions.
    pub fn new(
        pool: SqlitePool,
        default: OperatorDefault,
        exceptions: Exceptions,
        mbps: u32,
    ) -> Self {
        if exceptions.any() {
            tracing::warn!(
                allow = ?exceptions.allow,
                resolve = ?exceptions.resolve,
                "egress exceptions are set: sprites may reach these private ranges and names \
                 (CORRAL_EGRESS_ALLOW_RANGES, CORRAL_EGRESS_RESOLVE); for tests and development only"
            );
        }
        Self {
            pool,
            default,
            exceptions,
            own: addresses::host_addresses(),
            log: NetLog::default(),
            mbps,
            limits: Default::default(),
            moved: Default::default(),
            secrets: None,
        }
    }

    /// The gateway, with secrets swapped in on the way out.
    pub fn with_secrets(
        mut self,
        secrets: std::sync::Arc<secrets::Secrets>,
        tls: std::sync::Arc<tls::Tls>,
    ) -> Self {
        self.secrets = Some((secrets, tls));
        self
    }

    /// The stream the driver carries: the dialled one, or a relay that swaps the
    /// tenant's secrets in when it has any.
    async fn outward(
        &self,
        tenant_id: &TenantId,
        host: &str,
        upstream: Box<dyn EgressStream>,
    ) -> Box<dyn EgressStream> {
        let Some((secrets, tls)) = &self.secrets else {
            return upstream;
        };
        match secrets.open_all(tenant_id).await {
            Ok(list) if !list.is_empty() => {
                let (ours, theirs) = tokio::io::duplex(64 << 10);
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                tokio::spawn(intercept::relay(theirs, upstream, host, list, tls.clone()));
                Box::new(ours)
            }
            Ok(_) => upstream,
            Err(error) => {
                tracing::warn!(%error, "could not read the tenant's secrets; passing the connection through");
                upstream
            }
        }
    }

    /// A sprite's bandwidth in bytes per second (what the meter reserves for it), from
    /// its own setting.
    pub fn bytes_per_s(&self, own: Option<i64>) -> u64 {
        u64::from(self.mbps_of(own).max(1)) * 125_000
    }

    /// Bytes the sprite moved through the way out since the server started, both ways.
    pub fn moved(&self, sprite_id: i64) -> u64 {
        self.moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sprite_id)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn counter(&self, sprite_id: i64) -> std::sync::Arc<AtomicU64> {
        self.moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sprite_id)
            .or_default()
            .clone()
    }

    /// The sprite's bandwidth bucket at `mbps`, shared by all its connections (a new
    /// one when its bandwidth changed).
    fn limiter(&self, sprite_id: i64, mbps: u32) -> std::sync::Arc<limit::Limiter> {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        let entry = limits
            .entry(sprite_id)
            .or_insert_with(|| std::sync::Arc::new(limit::Limiter::new(mbps)));
        if entry.mbps() != mbps {
            *entry = std::sync::Arc::new(limit::Limiter::new(mbps));
        }
        entry.clone()
    }

    /// A sprite's bandwidth: its own setting within the operator's, else the operator's.
    pub fn mbps_of(&self, own: Option<i64>) -> u32 {
        own.and_then(|m| u32::try_from(m).ok())
            .filter(|m| *m >= 1)
            .map_or(self.mbps, |m| m.min(self.mbps))
    }

    /// The sprite's decisions, newest first.
    pub fn log_of(&self, sprite_id: i64) -> Vec<log::EntryView> {
        self.log.lines(sprite_id)
    }

    async fn stored(
        &self,
        tenant_id: &TenantId,
        sprite_id: Option<i64>,
    ) -> Result<Vec<Rule>, ApiError> {
        let text = db::network::rules(&self.pool, tenant_id, sprite_id).await?;
        match text {
            Some(text) => serde_json::from_str(&text).map_err(|e| ApiError::Internal(e.into())),
            None => Ok(Vec::new()),
        }
    }

    /// A sprite's policy (`Some(id)`) or the tenant's default (`None`), with meaning.
    pub async fn policy(
        &self,
        tenant_id: &TenantId,
        sprite_id: Option<i64>,
    ) -> Result<PolicyView, ApiError> {
        let rules = self.stored(tenant_id, sprite_id).await?;
        let effective = policy::expand(&rules)?;
        let tenant = match sprite_id {
            Some(_) => Some(policy::expand(&self.stored(tenant_id, None).await?)?),
            None => None,
        };
        Ok(PolicyView {
            rules,
            effective,
            tenant,
            default: self.default,
        })
    }

    /// Replaces a policy; open connections it no longer allows are cut at once.
    pub async fn set_policy(
        &self,
        tenant_id: &TenantId,
        sprite_id: Option<i64>,
        rules: Vec<Rule>,
    ) -> Result<PolicyView, ApiError> {
        policy::expand(&rules)?;
        let text = serde_json::to_string(&rules).map_err(|e| ApiError::Internal(e.into()))?;
        db::network::save_rules(&self.pool, tenant_id, sprite_id, &text, db::now_s()).await?;
        let affected = match sprite_id {
            Some(id) => vec![id],
            None => db::network::tenant_sprites(&self.pool, tenant_id).await?,
        };
        for sprite in affected {
            for open in self.log.open(sprite) {
                let (allowed, rule) = self
                    .decide(tenant_id, sprite, &open.host, open.port)
                    .await?;
                if !allowed {
                    tracing::info!(sprite, host = %open.host, port = open.port, %rule, "policy change cuts a connection");
                    open.cut();
                }
            }
        }
        self.policy(tenant_id, sprite_id).await
    }

    /// A connection into the sprite (`what`: its URL, a tunnel), logged, counted,
    /// limited and cut like the way out: one meter, one price, one bandwidth.
    pub fn inward<S>(
        &self,
        sprite_id: i64,
        own_mbps: Option<i64>,
        what: &str,
        port: u16,
        stream: S,
    ) -> Watched<S> {
        let entry = Entry::new(what, port, true, "into the sprite".into());
        self.log.record(sprite_id, &entry);
        let limiter = self.limiter(sprite_id, self.mbps_of(own_mbps));
        Watched::inward(stream, entry, limiter, self.counter(sprite_id))
    }

    /// Cuts every open connection of a sprite (paused, deleted).
    pub fn cut_all(&self, sprite_id: i64) {
        for open in self.log.open(sprite_id) {
            open.cut();
        }
    }

    /// Whether `host:port` is allowed for the sprite by the rules, and by which.
    async fn decide(
        &self,
        tenant_id: &TenantId,
        sprite_id: i64,
        host: &str,
        port: u16,
    ) -> Result<(bool, String), ApiError> {
        for (scope, id) in [("the sprite's", Some(sprite_id)), ("the tenant's", None)] {
            let rules = policy::expand(&self.stored(tenant_id, id).await?)?;
            if let Some(rule) = policy::decide(&rules, host, port) {
                let said = format!("rule \"{}\" of {scope} policy", policy::describe(rule));
                return Ok((rule.action == Action::Allow, said));
            }
        }
        Ok(match self.default {
            OperatorDefault::AllowPublic => (true, "the operator's default (allow-public)".into()),
            OperatorDefault::Deny => (
                false,
                "the operator's default (deny): no rule allows it".into(),
            ),
        })
    }

    /// The addresses to dial for `host:port`, or why none may be.
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let candidates: Vec<SocketAddr> = match self.exceptions.resolve.get(&key) {
            Some((ip, mapped)) => vec![SocketAddr::new(*ip, mapped.unwrap_or(port))],
            None => match host.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect(),
            },
        };
        let mut refused = None;
        let usable: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|addr| {
                let ip = addr.ip();
                if self.exceptions.allowed(ip) {
                    return true;
                }
                let why = addresses::never(ip)
                    .or_else(|| self.own.contains(&ip).then_some("one of this host's own"));
                if let Some(why) = why {
                    refused = Some(format!("{host} is {ip}, a {why} address: always refused"));
                    return false;
                }
                true
            })
            .collect();
        match (usable.is_empty(), refused) {
            (false, _) => Ok(usable),
            (true, Some(why)) => Err(why),
            (true, None) => Err(format!("{host} has no address")),
        }
    }
}

#[async_trait]
impl Egress for Gateway {
    async fn connect(
        &self,
        machine: &MachineId,
        host: &str,
        port: u16,
    ) -> Result<Box<dyn EgressStream>, String> {
        let Some(sprite_id) = machine.key().and_then(|k| i64::try_from(k).ok()) else {
            return Err("unknown machine".into());
        };
        let owner = db::network::sprite_owner(&self.pool, sprite_id)
            .await
            .map_err(|e| format!("the server could not look the sprite up: {e}"))?;
        let Some((tenant_id, mbps)) = owner else {
            return Err("this sprite is being deleted".into());
        };
        let refuse = |rule: String| {
            let entry = Entry::new(host, port, false, rule.clone());
            self.log.record(sprite_id, &entry);
            Err(format!("{host}:{port} not allowed: {rule}"))
        };
        let (allowed, rule) = match self.decide(&tenant_id, sprite_id, host, port).await {
            Ok(decision) => decision,
            Err(error) => return refuse(format!("the policy could not be read ({error})")),
        };
        if !allowed {
            return refuse(rule);
        }
        let addresses = match self.addresses(host, port).await {
            Ok(addresses) => addresses,
            Err(why) => return refuse(why),
        };
        let mut last = String::new();
        for addr in addresses {
            match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let entry = Entry::new(host, port, true, rule);
                    self.log.record(sprite_id, &entry);
                    let mbps = self.mbps_of(mbps);
                    let (limiter, counter) =
                        (self.limiter(sprite_id, mbps), self.counter(sprite_id));
                    let watched = Box::new(Watched::new(stream, entry, limiter, counter));
                    return Ok(self.outward(&tenant_id, host, watched).await);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no answer in {} s", DIAL_TIMEOUT.as_secs()),
            }
        }
        let entry = Entry::new(
            host,
            port,
            false,
            format!("allowed, but the dial failed ({last})"),
        );
        self.log.record(sprite_id, &entry);
        Err(format!("{host}:{port} could not be reached: {last}"))
    }
}
