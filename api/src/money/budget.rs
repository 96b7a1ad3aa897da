//! Budgets as the API shows and changes them: the tenant's cap, thresholds and alert
//! address, the caller's token chain, and resuming what the budget paused.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use corral_metering::{db as mdb, period::rfc3339, Budget, Scope};

use crate::caller::Caller;
use crate::caller::Permission;
use crate::config::Config;
use crate::domain::Email;
use crate::error::{ApiError, ApiResult};
use crate::names::{PauseReason, SpriteState};
use crate::sprites::Sprites;

/// One scope's budget this period.
#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    /// `tenant`, or `token:<id>` for an API token's own budget.
    pub scope: String,
    pub period_start: String,
    /// When the period resets.
    pub period_end: String,
    /// `null`: no cap.
    pub cap_nanos: Option<i64>,
    pub cap_usd: Option<String>,
    pub spent_nanos: i64,
    pub spent_usd: String,
    /// Keeping today's stored bytes to the period's end.
    pub storage_reserved_nanos: i64,
    /// `cap − spent − storage_reserved`; `null` without a cap.
    pub available_nanos: Option<i64>,
    pub available_usd: Option<String>,
    /// Actual spend per second over the last minute.
    pub burn_nanos_per_s: i64,
    /// The running sprites flat out, per second.
    pub worst_burn_nanos_per_s: i64,
    /// When `available` runs out at the current burn.
    pub exhausts_at: Option<String>,
    pub thresholds_pct: Vec<u32>,
    /// Sprites paused with `pause_reason: budget`.
    pub paused_for_budget: i64,
    /// ok, paused, exhausted or unlimited.
    pub state: String,
}

impl BudgetView {
    fn new(b: &Budget) -> Self {
        Self {
            scope: match &b.scope {
                Scope::Tenant(_) => "tenant".into(),
                Scope::Token(id) => format!("token:{id}"),
            },
            period_start: rfc3339(b.period_start_ms),
            period_end: rfc3339(b.period_end_ms),
            cap_nanos: b.cap.map(|c| c.get()),
            cap_usd: b.cap.map(|c| c.usd()),
            spent_nanos: b.spent.get(),
            spent_usd: b.spent.usd(),
            storage_reserved_nanos: b.storage_reserved.get(),
            available_nanos: b.available.map(|a| a.get()),
            available_usd: b.available.map(|a| a.usd()),
            burn_nanos_per_s: b.burn_nanos_per_s.get(),
            worst_burn_nanos_per_s: b.worst_burn_nanos_per_s.get(),
            exhausts_at: b.exhausts_at_ms.map(rfc3339),
            thresholds_pct: b.thresholds_pct.clone(),
            paused_for_budget: b.paused_for_budget,
            state: b.state().into(),
        }
    }
}

/// `GET /v1/budget`: the tenant's budget, and the caller token's chain of budgets.
#[derive(Serialize, ToSchema)]
pub struct TenantBudget {
    #[serde(flatten)]
    pub budget: BudgetView,
    /// Where alerts go (the account's address unless one was set).
    pub alert_email: String,
    /// Budgets of the calling API token and its ancestors that have one.
    pub tokens: Vec<BudgetView>,
    /// Why a new sprite of the default size would be refused now (the cap or the
    /// prepaid credit leaves too little for its runway); `null` when it would start.
    pub start_refused: Option<String>,
    /// With `resume_paused`: the sprites resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Vec<String>>,
    /// With `resume_paused`: the sprites that still do not fit, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_paused: Option<Vec<StillPaused>>,
}

/// A budget-paused sprite `resume_paused` could not resume.
#[derive(Serialize, ToSchema)]
pub struct StillPaused {
    pub sprite: String,
    /// The refusal's code (`budget_exhausted`, `token_budget_exhausted`, …).
    pub code: String,
    pub detail: String,
}

/// `PUT /v1/budget`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetUpdate {
    /// The monthly cap in nano-dollars (0 stops all spending).
    pub cap_nanos: Option<i64>,
    /// Percentages of the cap (1–100) that send an alert, once each per period.
    pub thresholds_pct: Option<Vec<u32>>,
    /// Where alerts go; `""` goes back to the account's address.
    pub alert_email: Option<String>,
    /// Resume the sprites the budget paused that fit now.
    #[serde(default)]
    pub resume_paused: bool,
}

/// The largest cap accepted: a billion dollars.
const MAX_CAP_NANOS: i64 = 1_000_000_000 * 1_000_000_000;

/// The budgets service: reading and changing a tenant's budget, resuming what it paused.
pub struct Budgets<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) config: &'a Config,
    /// The sprites service, or why the backend cannot run here.
    pub(crate) sprites: Result<&'a Sprites, Option<&'a str>>,
}

impl Budgets<'_> {
    /// The tenant's budget and the caller's token chain.
    pub async fn show(&self, caller: &Caller) -> ApiResult<TenantBudget> {
        let ctx = super::budget_context(self.config);
        let mut conn = self.pool.acquire().await?;
        let token = (!caller.is_session()).then_some(caller.token.id.as_str());
        let chain = mdb::chain_budgets(&mut conn, caller.tenant_id.as_str(), token, &ctx).await?;
        let Some((tenant, tokens)) = chain.split_first() else {
            return Err(ApiError::not_found("tenant"));
        };
        let start_refused = match self.sprites {
            Ok(sprites) => sprites
                .start_refusal(&caller.tenant_id)
                .await?
                .map(|refusal| refusal.to_string()),
            Err(_) => None,
        };
        Ok(TenantBudget {
            start_refused,
            budget: BudgetView::new(tenant),
            alert_email: crate::db::accounts::alert_email(&mut conn, &caller.tenant_id).await?,
            tokens: tokens
                .iter()
                .filter(|b| b.cap.is_some())
                .map(BudgetView::new)
                .collect(),
            resumed: None,
            still_paused: None,
        })
    }

    /// Applies a change, then (with `resume_paused`) resumes what fits.
    pub async fn update(&self, caller: &Caller, change: BudgetUpdate) -> ApiResult<TenantBudget> {
        let cap = change.cap_nanos.map(check_cap).transpose()?;
        let thresholds = change.thresholds_pct.map(check_thresholds).transpose()?;
        let email = match change.alert_email.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(raw) => Some(Some(Email::parse(raw)?.0)),
        };
        if change.resume_paused {
            caller.require(Permission::SpritesWrite)?;
        }
        let mut conn = self.pool.acquire().await?;
        crate::db::accounts::save_budget(
            &mut conn,
            &caller.tenant_id,
            cap,
            thresholds.as_deref(),
            email,
        )
        .await?;
        drop(conn);
        tracing::info!(tenant = %caller.tenant_id, cap = ?cap, "budget changed");
        let resumed = if change.resume_paused {
            Some(self.resume_paused(caller).await?)
        } else {
            None
        };
        let mut view = self.show(caller).await?;
        if let Some((resumed, still)) = resumed {
            view.resumed = Some(resumed);
            view.still_paused = Some(still);
        }
        Ok(view)
    }
}

fn check_cap(cap: i64) -> ApiResult<i64> {
    if (0..=MAX_CAP_NANOS).contains(&cap) {
        Ok(cap)
    } else {
        Err(ApiError::Validation(format!(
            "cap_nanos must be between 0 and {MAX_CAP_NANOS} (a billion dollars), got {cap}"
        )))
    }
}

fn check_thresholds(mut list: Vec<u32>) -> ApiResult<String> {
    if list.len() > 10 {
        return Err(ApiError::Validation(
            "thresholds_pct takes at most 10 percentages".into(),
        ));
    }
    if let Some(bad) = list.iter().find(|p| !(1..=100).contains(*p)) {
        return Err(ApiError::Validation(format!(
            "thresholds_pct must be percentages from 1 to 100, got {bad}"
        )));
    }
    list.sort_unstable();
    list.dedup();
    Ok(serde_json::to_string(&list).expect("a list of numbers"))
}

impl Budgets<'_> {
    /// Resumes the caller's budget-paused sprites that fit now; the rest with the reason.
    async fn resume_paused(&self, caller: &Caller) -> ApiResult<(Vec<String>, Vec<StillPaused>)> {
        let sprites = self.sprites.map_err(crate::sprites::unavailable)?;
        let (mut resumed, mut still) = (Vec::new(), Vec::new());
        for (row, _) in sprites.list(caller).await? {
            if row.state != SpriteState::Paused || row.pause_reason != Some(PauseReason::Budget) {
                continue;
            }
            let resumed_one = match sprites.may_run(caller, &row).await {
                Ok(()) => sprites.resume(&row, "resume").await,
                Err(refused) => Err(refused),
            };
            match resumed_one {
                Ok(_) => resumed.push(row.name),
                Err(error @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => {
                    return Err(error)
                }
                Err(error) => still.push(StillPaused {
                    sprite: row.name,
                    code: error.status_code().1.into(),
                    detail: error.to_string(),
                }),
            }
        }
        Ok((resumed, still))
    }
}
