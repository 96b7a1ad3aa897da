//! Commands and files inside a sprite: wake it if idle, keep it marked busy, and turn
//! what can happen during the work (a delete, a pause, a dead sandbox, an agent that
//! never answers) into a clean answer within a bounded time.

use std::future::Future;
use std::time::Duration;

use vmm_driver::{DriverError, ExecOutput, ExecRequest, ExecStream};

use super::{driver_error, machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::{PauseReason, SpriteState};

/// A command as the API takes it.
#[derive(Clone, Debug, Default)]
pub struct ExecParams {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub stdin: Vec<u8>,
    pub timeout_s: Option<u64>,
    /// Run on a terminal of this size (the exec WebSocket's `tty=1`).
    pub tty: Option<vmm_driver::TtySize>,
}

/// Longest a command may run.
pub const MAX_EXEC_TIMEOUT_S: u64 = 24 * 3600;
/// The timeout of a JSON exec that names none: the server always has a deadline.
pub const DEFAULT_EXEC_TIMEOUT_S: u64 = 3600;
/// How long past a command's own timeout the server waits for the agent to report it
/// (the agent kills the command at its timeout; this bounds an agent that does not).
const EXEC_GRACE: Duration = Duration::from_secs(10);
/// The server's deadline for one file read or write.
pub const FILE_DEADLINE: Duration = Duration::from_secs(120);
/// How often a call in flight checks whether its sprite was paused under it.
const PAUSE_POLL: Duration = Duration::from_millis(200);

impl ExecParams {
    /// Refuses what running the command would refuse, without running it: the WebSocket
    /// must answer before it upgrades, while the answer can still be problem+json.
    pub fn check(&self) -> Result<(), ApiError> {
        self.clone().into_request(0).map(drop)
    }

    fn into_request(self, max_output_bytes: usize) -> Result<ExecRequest, ApiError> {
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err(ApiError::Validation("cmd must name a program".into()));
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(ApiError::Validation(
                "cmd must not contain NUL bytes".into(),
            ));
        }
        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') {
                return Err(ApiError::Validation("cwd must be an absolute path".into()));
            }
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(ApiError::Validation(format!(
                    "env name {key:?} is not valid"
                )));
            }
        }
        let timeout = match self.timeout_s {
            Some(0) => return Err(ApiError::Validation("timeout_s must be at least 1".into())),
            Some(s) if s > MAX_EXEC_TIMEOUT_S => {
                return Err(ApiError::Validation(format!(
                    "timeout_s must be at most {MAX_EXEC_TIMEOUT_S}"
                )))
            }
            other => other.map(Duration::from_secs),
        };
        if let Some(size) = self.tty {
            check_tty(size)?;
        }
        Ok(ExecRequest {
            argv: self.argv,
            env: self.env,
            cwd: self.cwd,
            stdin: self.stdin,
            timeout,
            max_output_bytes,
            tty: self.tty,
        })
    }
}

/// The largest terminal side, in cells.
pub const MAX_TTY_CELLS: u16 = 1000;

/// Refuses a terminal with no cells or absurdly many.
pub fn check_tty(size: vmm_driver::TtySize) -> Result<(), ApiError> {
    let fits = |n: u16| (1..=MAX_TTY_CELLS).contains(&n);
    if fits(size.rows) && fits(size.cols) {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "rows and cols must be between 1 and {MAX_TTY_CELLS}, got {}x{}",
            size.rows, size.cols
        )))
    }
}

/// Validates an absolute path inside a sprite.
fn sprite_path(path: &str) -> Result<&str, ApiError> {
    if !path.starts_with('/') || path.contains('\0') || path.len() > 4096 {
        return Err(ApiError::Validation(format!(
            "path {path:?} must be an absolute path"
        )));
    }
    Ok(path)
}

impl Sprites {
    /// Marks activity, waking an idle sprite.
    async fn activity(&self, sprite: &SpriteRow, what: &str) -> Result<SpriteRow, ApiError> {
        let awake = self.wake(sprite, what).await?;
        db::sprites::touch(&self.pool, awake.id, what, db::now_s()).await?;
        Ok(awake)
    }

    /// When the sprite was paused or vanished under a call, say so instead of a backend
    /// error.
    async fn gone_or(&self, sprite: &SpriteRow, error: vmm_driver::DriverError) -> ApiError {
        // A pause or delete under way holds the sprite's lock until its state is written.
        drop(self.lock_of(sprite.id).lock().await);
        match db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id).await {
            Ok(Some(now)) if now.state == SpriteState::Paused => ApiError::Conflict(format!(
                "sprite {:?} was paused ({}) while the call ran; the call was ended",
                sprite.name,
                now.pause_reason.unwrap_or(PauseReason::User)
            )),
            Ok(Some(now)) if now.state != SpriteState::Deleting => driver_error(error),
            _ => ApiError::Conflict(format!(
                "sprite {:?} was deleted while the call ran",
                sprite.name
            )),
        }
    }

    /// Resolves when the sprite is no longer running (paused, deleted), with why. A
    /// paused sandbox is frozen, so a call into it would otherwise never answer.
    async fn left_running(&self, sprite: &SpriteRow) -> String {
        loop {
            tokio::time::sleep(PAUSE_POLL).await;
            match db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id).await {
                Ok(Some(now)) if now.state == SpriteState::Running => {}
                Ok(Some(now)) if now.state == SpriteState::Paused => {
                    return format!(
                        "was paused ({}) while the call ran",
                        now.pause_reason.unwrap_or(PauseReason::User)
                    )
                }
                Ok(Some(now)) => return format!("became {} while the call ran", now.state),
                Ok(None) => return "was deleted while the call ran".into(),
                // A database hiccup is not a reason to end the call.
                Err(_) => {}
            }
        }
    }

    /// Runs one driver call with the server's deadline, ending it early (which kills an
    /// abandoned command) when the sprite stops running; a failure is explained.
    async fn guarded<T>(
        &self,
        sprite: &SpriteRow,
        deadline: Duration,
        call: impl Future<Output = Result<T, DriverError>>,
    ) -> Result<T, ApiError> {
        tokio::select! {
            result = call => match result {
                Ok(value) => Ok(value),
                Err(error) => Err(self.failed(sprite, error).await),
            },
            why = self.left_running(sprite) => Err(ApiError::Conflict(format!(
                "sprite {:?} {why}; the call was ended", sprite.name
            ))),
            () = tokio::time::sleep(deadline) => Err(ApiError::Unavailable(format!(
                "sprite {:?} did not answer within {} s; the call was ended",
                sprite.name,
                deadline.as_secs()
            ))),
        }
    }

    /// Explains a failed call: a sandbox that died is brought back (and the answer
    /// says so), a deleted sprite is named as such.
    async fn failed(&self, sprite: &SpriteRow, error: DriverError) -> ApiError {
        match self.revive(sprite, &error).await {
            Ok(Some(why)) => ApiError::Conflict(format!(
                "sprite {:?} stopped unexpectedly ({why}) and was restarted with its disk; \
                 what was running in it was lost: run the command again",
                sprite.name
            )),
            Ok(None) => self.gone_or(sprite, error).await,
            Err(revive_error) => revive_error,
        }
    }

    /// Runs a command to completion.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn exec(
        &self,
        sprite: &SpriteRow,
        mut params: ExecParams,
    ) -> Result<ExecOutput, ApiError> {
        params.env.extend(self.secret_env(&sprite.tenant_id).await?);
        let mut request = params.into_request(self.config.max_exec_output_bytes as usize)?;
        let timeout = *request
            .timeout
            .get_or_insert(Duration::from_secs(DEFAULT_EXEC_TIMEOUT_S));
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "exec").await?;
        // Dropped (the client went away, the deadline passed), the driver's call kills
        // the command.
        let id = machine(&sprite);
        let call = self.driver.exec(&id, request);
        let output = self.guarded(&sprite, timeout + EXEC_GRACE, call).await?;
        db::sprites::touch(&self.pool, sprite.id, "exec", db::now_s()).await?;
        Ok(output)
    }

    /// Starts a streamed command; the sprite stays busy while `on_stream` runs.
    pub async fn exec_stream<F, Fut>(
        &self,
        sprite: &SpriteRow,
        params: ExecParams,
        on_stream: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce(ExecStream) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut params = params;
        params.env.extend(self.secret_env(&sprite.tenant_id).await?);
        let request = params.into_request(self.config.max_exec_output_bytes as usize)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "console").await?;
        let deadline = request.timeout.map(|t| t + EXEC_GRACE);
        let id = machine(&sprite);
        let call = self.driver.exec_stream(&id, request);
        let stream = self.guarded(&sprite, FILE_DEADLINE, call).await?;
        // A console has no deadline unless it asked for one; a pause still ends it.
        let forever = Duration::from_secs(MAX_EXEC_TIMEOUT_S) + EXEC_GRACE;
        let deadline = deadline.unwrap_or(forever);
        let streamed = async {
            on_stream(stream).await;
            Ok(())
        };
        self.guarded(&sprite, deadline, streamed).await?;
        db::sprites::touch(&self.pool, sprite.id, "console", db::now_s()).await?;
        Ok(())
    }

    /// Reads a file.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn read_file(&self, sprite: &SpriteRow, path: &str) -> Result<Vec<u8>, ApiError> {
        let path = sprite_path(path)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "files").await?;
        let id = machine(&sprite);
        let call = self.driver.read_file(&id, path, self.config.max_file_bytes);
        self.guarded(&sprite, FILE_DEADLINE, call).await
    }

    /// Writes a file.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn write_file(
        &self,
        sprite: &SpriteRow,
        path: &str,
        data: &[u8],
    ) -> Result<(), ApiError> {
        let path = sprite_path(path)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "files").await?;
        let id = machine(&sprite);
        let call = self.driver.write_file(&id, path, data);
        self.guarded(&sprite, FILE_DEADLINE, call).await
    }
}
