//! Commands and files inside a sprite: wake it if idle, keep it marked busy, and turn
//! a delete during the work into a clean answer.

use std::time::Duration;

use vmm_driver::{ExecOutput, ExecRequest, ExecStream};

use super::{driver_error, machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;

/// A command as the API takes it.
#[derive(Debug, Default)]
pub struct ExecParams {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub stdin: Vec<u8>,
    pub timeout_s: Option<u64>,
}

/// Longest a command may run.
pub const MAX_EXEC_TIMEOUT_S: u64 = 24 * 3600;

impl ExecParams {
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
        Ok(ExecRequest {
            argv: self.argv,
            env: self.env,
            cwd: self.cwd,
            stdin: self.stdin,
            timeout,
            max_output_bytes,
        })
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

    /// When the sprite vanished under a call, say so instead of a backend error.
    async fn gone_or(&self, sprite: &SpriteRow, error: vmm_driver::DriverError) -> ApiError {
        match db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id).await {
            Ok(Some(now)) if now.state != "deleting" => driver_error(error),
            _ => ApiError::Conflict(format!(
                "sprite {:?} was deleted while the call ran",
                sprite.name
            )),
        }
    }

    /// Runs a command to completion.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn exec(
        &self,
        sprite: &SpriteRow,
        params: ExecParams,
    ) -> Result<ExecOutput, ApiError> {
        let request = params.into_request(self.config.max_exec_output_bytes as usize)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "exec").await?;
        let result = self.driver.exec(&machine(&sprite), request).await;
        db::sprites::touch(&self.pool, sprite.id, "exec", db::now_s()).await?;
        match result {
            Ok(output) => Ok(output),
            Err(error) => Err(self.gone_or(&sprite, error).await),
        }
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
        let request = params.into_request(self.config.max_exec_output_bytes as usize)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "console").await?;
        let stream = match self.driver.exec_stream(&machine(&sprite), request).await {
            Ok(stream) => stream,
            Err(error) => return Err(self.gone_or(&sprite, error).await),
        };
        on_stream(stream).await;
        db::sprites::touch(&self.pool, sprite.id, "console", db::now_s()).await?;
        Ok(())
    }

    /// Reads a file.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn read_file(&self, sprite: &SpriteRow, path: &str) -> Result<Vec<u8>, ApiError> {
        let path = sprite_path(path)?;
        let _busy = self.busy(sprite.id);
        let sprite = self.activity(sprite, "files").await?;
        match self
            .driver
            .read_file(&machine(&sprite), path, self.config.max_file_bytes)
            .await
        {
            Ok(bytes) => Ok(bytes),
            Err(error) => Err(self.gone_or(&sprite, error).await),
        }
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
        match self.driver.write_file(&machine(&sprite), path, data).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.gone_or(&sprite, error).await),
        }
    }
}
