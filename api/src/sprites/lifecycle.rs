//! Creating, pausing, resuming, waking and deleting sprites.

use std::sync::atomic::Ordering;

use vmm_driver::{DriverError, MachineSpec};

use super::limits::{self, Limits};
use super::pool::Shape;
use super::{driver_error, machine, spec_of, Sprites};
use crate::caller::Caller;
use crate::db::{self, sprites::SpriteRow};
use crate::domain::SpriteName;
use crate::error::ApiError;
use crate::names::TenantId;
use crate::names::{PauseReason, SpriteState};

/// What a caller asked for; absent fields take the configured defaults.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSprite {
    pub name: String,
    pub cpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_mb: Option<i64>,
    pub idle_timeout_s: Option<i64>,
    /// The image to make it from (`GET /v1/images`); the operator's default when absent.
    pub image: Option<String>,
    /// Its bandwidth through the way out, megabits per second (both ways together), at
    /// most the operator's `CORRAL_NETWORK_MBPS`, which is also the default.
    pub network_mbps: Option<i64>,
    /// The port inside the sprite its URL reaches (default 8080).
    pub http_port: Option<i64>,
    /// Who may open its URL: `sprite` (default: a token with `sprites:http`, or a
    /// link's cookie) or `public` (anyone).
    pub url_auth: Option<crate::names::UrlAuth>,
}

/// The port a sprite's URL reaches when its create names none.
pub const DEFAULT_HTTP_PORT: i64 = 8080;

pub(super) fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::Validation(format!(
            "{field} must be between {min} and {max}, got {value}"
        )))
    }
}

impl Sprites {
    /// Creates and starts a sprite; with an idempotency key, a repeat answers with the
    /// sprite the first call made (`false` = not newly created).
    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant_id, sprite = %request.name))]
    pub async fn create(
        &self,
        caller: &Caller,
        request: CreateSprite,
        idempotency_key: Option<&str>,
    ) -> Result<(SpriteRow, bool), ApiError> {
        let name = SpriteName::parse(&request.name)?;
        if !caller.may_use_sprite(&name.0) {
            return Err(ApiError::Forbidden(format!(
                "this token cannot use a sprite named {:?}",
                name.0
            )));
        }
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::Validation(
                    "Idempotency-Key must be 1 to 200 characters".into(),
                ));
            }
        }
        let image = self
            .choose_image(&caller.tenant_id, request.image.as_deref())
            .await?;
        let limits = limits::effective(&self.pool, &self.config, &caller.tenant_id).await?;
        let default_idle = limits.default_idle_timeout_s;
        let disk_mb = in_range(
            "disk_mb",
            request
                .disk_mb
                .unwrap_or(self.config.default_disk_mb as i64),
            64,
            1 << 20,
        )?;
        if disk_mb > limits.max_disk_mb_per_sprite {
            return Err(ApiError::LimitExceeded(format!(
                "max_disk_mb_per_sprite: {disk_mb} MiB asked, the limit is {}",
                limits.max_disk_mb_per_sprite
            )));
        }
        let now = db::now_s();
        let mut row = SpriteRow {
            id: 0,
            tenant_id: caller.tenant_id.clone(),
            name: name.0,
            state: SpriteState::Creating,
            pause_reason: None,
            cpus: in_range(
                "cpus",
                request.cpus.unwrap_or(self.config.default_cpus.into()),
                1,
                64,
            )?,
            memory_mb: in_range(
                "memory_mb",
                request
                    .memory_mb
                    .unwrap_or(self.config.default_memory_mb as i64),
                64,
                1 << 20,
            )?,
            disk_mb,
            idle_timeout_s: in_range(
                "idle_timeout_s",
                request.idle_timeout_s.unwrap_or(default_idle),
                0,
                30 * 86_400,
            )?,
            created_by_token: Some(caller.token.id.clone()),
            created_at: now,
            last_active_at: now,
            last_activity: "create".into(),
            image: image.name,
            image_id: image.image_id,
            network_mbps: request
                .network_mbps
                .map(|m| in_range("network_mbps", m, 1, i64::from(self.config.network_mbps)))
                .transpose()?,
            http_port: in_range(
                "http_port",
                request.http_port.unwrap_or(DEFAULT_HTTP_PORT),
                1,
                65_535,
            )?,
            url_auth: request.url_auth.unwrap_or_default(),
        };
        // A machine of this shape made ahead becomes the sprite: its key is the id.
        let shape = Shape::of(&row);
        let pooled = shape.as_ref().and_then(|s| self.take_pooled(s));
        if let Some(id) = &pooled {
            row.id = id.key().and_then(|k| i64::try_from(k).ok()).unwrap_or(0);
        }
        let registered = self
            .register(caller, &limits, &mut row, idempotency_key)
            .await;
        if !matches!(registered, Ok(None)) {
            if let (Some(shape), Some(id)) = (shape, pooled.clone()) {
                self.return_pooled(shape, id);
            }
        }
        if let Some(done) = registered? {
            return Ok((done, false));
        }
        let spec = spec_of(&row);
        let started = match pooled {
            Some(_) => self.hand_over(&spec).await,
            None => {
                self.warm.cold_creates.fetch_add(1, Ordering::Relaxed);
                self.make(&spec).await
            }
        };
        self.started_or_removed(&mut row, started).await?;
        tracing::info!(id = row.id, pooled = pooled.is_some(), "sprite created");
        Ok((row, true))
    }

    /// Creates and starts a machine.
    async fn make(&self, spec: &MachineSpec) -> Result<(), DriverError> {
        self.driver.create(spec).await?;
        self.driver.start(&spec.id).await
    }

    /// Resumes a pool machine for its sprite; one that will not resume is replaced by a
    /// machine made now under the same id.
    async fn hand_over(&self, spec: &MachineSpec) -> Result<(), DriverError> {
        match self.driver.resume(&spec.id).await {
            Ok(()) => {
                self.warm.warm_creates.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(machine = %spec.id, %error, "a pool machine would not resume; making one");
                self.warm.cold_creates.fetch_add(1, Ordering::Relaxed);
                self.driver.destroy(&spec.id).await?;
                self.make(spec).await
            }
        }
    }

    /// Inserts a new sprite's row (`creating`) once it fits the tenant's scaling limits
    /// and budget, under the tenant's admission lock; with an idempotency key, the
    /// sprite an earlier call made instead, when there was one.
    pub(super) async fn register(
        &self,
        caller: &Caller,
        limits: &Limits,
        row: &mut SpriteRow,
        idempotency_key: Option<&str>,
    ) -> Result<Option<SpriteRow>, ApiError> {
        let admission = self.admission_of(&caller.tenant_id);
        let _admitted = admission.lock().await;
        // Under the admission lock: concurrent creates sharing a key see each other.
        if let Some(key) = idempotency_key {
            if let Some(done) = self.replay(caller, key, &row.name).await? {
                return Ok(Some(done));
            }
        }
        let taken = || ApiError::Conflict(format!("a sprite named {:?} already exists", row.name));
        if db::sprites::by_name(&self.pool, &caller.tenant_id, &row.name)
            .await?
            .is_some()
        {
            return Err(taken());
        }
        self.check_room(&caller.tenant_id, limits, row).await?;
        self.gate.allow_run(row).await?;
        let mut tx = self.pool.begin().await?;
        let Some(id) = db::sprites::insert(&mut tx, row).await? else {
            return Err(taken());
        };
        if let Some(key) = idempotency_key {
            let now = row.created_at;
            db::sprites::remember_idempotency(&mut tx, &caller.tenant_id, key, id, now).await?;
        }
        tx.commit().await?;
        row.id = id;
        Ok(None)
    }

    /// Marks a new sprite running when its machine `started`, else removes the machine
    /// and the row and answers the driver's error.
    pub(super) async fn started_or_removed(
        &self,
        row: &mut SpriteRow,
        started: Result<(), DriverError>,
    ) -> Result<(), ApiError> {
        if let Err(error) = started {
            tracing::warn!(error = ?error, "making the machine failed; removing it");
            let _ = self.driver.destroy(&machine(row)).await;
            db::sprites::mark_deleted(&self.pool, row.id, db::now_s()).await?;
            return Err(driver_error(error));
        }
        db::sprites::set_state(&self.pool, row.id, SpriteState::Running, None).await?;
        row.state = SpriteState::Running;
        Ok(())
    }

    /// Lets a stopped or paused sprite run again: within the tenant's scaling limits and
    /// its budget, checked and held under the tenant's admission lock (keep the guard
    /// until the sprite is running, so two admissions never both take the last room).
    pub(super) async fn admit(
        &self,
        current: &SpriteRow,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, ApiError> {
        let admitted = self.admission_of(&current.tenant_id).lock_owned().await;
        let limits = limits::effective(&self.pool, &self.config, &current.tenant_id).await?;
        self.check_room(&current.tenant_id, &limits, current)
            .await?;
        self.gate.allow_run(current).await?;
        Ok(admitted)
    }

    /// The sprite an earlier create with this Idempotency-Key made, when there was one.
    /// A key answers only a repeat of the same request: another name is a 422 that says
    /// nothing about the other sprite (the caller may not be allowed to see it).
    async fn replay(
        &self,
        caller: &Caller,
        key: &str,
        name: &str,
    ) -> Result<Option<SpriteRow>, ApiError> {
        let Some(id) = db::sprites::idempotent_sprite(&self.pool, &caller.tenant_id, key).await?
        else {
            return Ok(None);
        };
        match db::sprites::by_id(&self.pool, &caller.tenant_id, id).await? {
            Some(sprite) if sprite.name == name && caller.may_use_sprite(&sprite.name) => {
                Ok(Some(sprite))
            }
            Some(_) => Err(ApiError::Validation(
                "this Idempotency-Key was used for a different request; use a new key".into(),
            )),
            None => Err(ApiError::Conflict(
                "the sprite this Idempotency-Key created has been deleted".into(),
            )),
        }
    }

    /// Refuses (403 `limit_exceeded`, naming the limit) when `row` would not fit beside
    /// the tenant's running sprites.
    async fn check_room(
        &self,
        tenant_id: &TenantId,
        limits: &Limits,
        row: &SpriteRow,
    ) -> Result<(), ApiError> {
        let (count, cpus, memory) = db::sprites::running_totals(&self.pool, tenant_id).await?;
        let checks = [
            ("max_running_sprites", count + 1, limits.max_running_sprites),
            ("max_total_cpus", cpus + row.cpus, limits.max_total_cpus),
            (
                "max_total_memory_mb",
                memory + row.memory_mb,
                limits.max_total_memory_mb,
            ),
        ];
        for (name, wanted, limit) in checks {
            if wanted > limit {
                return Err(ApiError::LimitExceeded(format!(
                    "{name}: running this sprite would need {wanted}, the limit is {limit}"
                )));
            }
        }
        Ok(())
    }

    /// The caller's sprite called `name` (404 for other tenants' and for names the
    /// token is not limited to).
    pub async fn get(&self, caller: &Caller, name: &str) -> Result<SpriteRow, ApiError> {
        let name = SpriteName::parse(name)?;
        if !caller.may_use_sprite(&name.0) {
            return Err(ApiError::not_found(format!("sprite {:?}", name.0)));
        }
        db::sprites::by_name(&self.pool, &caller.tenant_id, &name.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("sprite {:?}", name.0)))
    }

    /// The caller's sprites.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<(SpriteRow, i64)>, ApiError> {
        let rows = db::sprites::list_with_costs(&self.pool, &caller.tenant_id).await?;
        Ok(rows
            .into_iter()
            .filter(|(s, _)| caller.may_use_sprite(&s.name))
            .collect())
    }

    pub(super) async fn reload(&self, sprite: &SpriteRow) -> Result<SpriteRow, ApiError> {
        db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("sprite {:?}", sprite.name)))
    }

    /// Pauses a running sprite for `reason`.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name, reason))]
    pub async fn pause(
        &self,
        sprite: &SpriteRow,
        reason: PauseReason,
    ) -> Result<SpriteRow, ApiError> {
        // The meter's first tick pauses for budget before it thaws: it must not wait
        // for itself.
        if reason != PauseReason::Budget {
            self.until_started().await;
        }
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let current = self.reload(sprite).await?;
        match current.state {
            SpriteState::Running => {
                self.driver
                    .pause(&machine(&current))
                    .await
                    .map_err(driver_error)?;
                db::sprites::set_state(&self.pool, current.id, SpriteState::Paused, Some(reason))
                    .await?;
                tracing::info!("sprite paused");
            }
            // A stronger reason replaces a weaker one: idle < user < budget.
            SpriteState::Paused
                if current
                    .pause_reason
                    .is_none_or(|now| reason.strength() > now.strength()) =>
            {
                db::sprites::set_state(&self.pool, current.id, SpriteState::Paused, Some(reason))
                    .await?;
            }
            SpriteState::Paused => {}
            other => {
                return Err(ApiError::Conflict(format!(
                    "a {other} sprite cannot be paused"
                )))
            }
        }
        self.reload(sprite).await
    }

    /// Resumes a paused sprite, within limits and budget.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn resume(&self, sprite: &SpriteRow, activity: &str) -> Result<SpriteRow, ApiError> {
        self.until_started().await;
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let current = self.reload(sprite).await?;
        if current.state == SpriteState::Running {
            return Ok(current);
        }
        if !matches!(
            current.state,
            SpriteState::Paused | SpriteState::Stopped | SpriteState::Lost
        ) {
            return Err(ApiError::Conflict(format!(
                "a {} sprite cannot be resumed",
                current.state
            )));
        }
        let _admitted = self.admit(&current).await?;
        let id = machine(&current);
        let resumed = match self.driver.resume(&id).await {
            Err(DriverError::InvalidState(_)) | Err(DriverError::NotFound(_)) => {
                self.driver.start(&id).await
            }
            other => other,
        };
        resumed.map_err(driver_error)?;
        db::sprites::set_state(&self.pool, current.id, SpriteState::Running, None).await?;
        db::sprites::touch(&self.pool, current.id, activity, db::now_s()).await?;
        tracing::info!("sprite resumed");
        self.reload(sprite).await
    }

    /// Makes sure a sprite can take work: an idle-paused sprite wakes transparently;
    /// any other pause is explained.
    pub async fn wake(&self, sprite: &SpriteRow, activity: &str) -> Result<SpriteRow, ApiError> {
        self.until_started().await;
        match (sprite.state, sprite.pause_reason) {
            (SpriteState::Running, _) => Ok(sprite.clone()),
            (SpriteState::Paused, Some(PauseReason::Idle)) => self.resume(sprite, activity).await,
            (SpriteState::Paused, Some(PauseReason::Budget)) => {
                self.gate.allow_run(sprite).await?;
                Err(ApiError::Conflict(format!(
                    "sprite {:?} was paused by the budget; the budget allows it again: resume it",
                    sprite.name
                )))
            }
            (SpriteState::Paused, reason) => Err(ApiError::Conflict(format!(
                "sprite {:?} is paused ({}); resume it first",
                sprite.name,
                reason.unwrap_or(PauseReason::User)
            ))),
            (state, _) => Err(ApiError::Conflict(format!(
                "sprite {:?} is {state}",
                sprite.name
            ))),
        }
    }

    /// Deletes a sprite: sandbox, disk and checkpoints.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn delete(&self, sprite: &SpriteRow) -> Result<(), ApiError> {
        self.until_started().await;
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let current = self.reload(sprite).await?;
        db::sprites::set_state(&self.pool, current.id, SpriteState::Deleting, None).await?;
        self.driver
            .destroy(&machine(&current))
            .await
            .map_err(driver_error)?;
        db::sprites::mark_deleted(&self.pool, current.id, db::now_s()).await?;
        if let Err(error) = self.collect_images().await {
            tracing::warn!(%error, "could not check deleted images");
        }
        self.locks.lock().expect("locks").remove(&current.id);
        self.disk_seen
            .lock()
            .expect("disk_seen")
            .remove(&current.id);
        tracing::info!("sprite deleted");
        Ok(())
    }
}
