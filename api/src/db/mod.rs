//! The SQLite pool and the API's own queries (accounts, tokens, sprites).

pub mod accounts;
pub mod limits;
pub mod sprites;
pub mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Opens (creating if missing) the database in WAL mode and applies every migration.
pub async fn open(data_dir: &Path, pool_size: u32) -> anyhow::Result<SqlitePool> {
    let path = data_dir.join("corral.db");
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(pool_size.max(1))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("opening database {}: {e}", path.display()))?;
    sqlx::migrate!("../migrations").run(&pool).await?;
    Ok(pool)
}

/// Now, in unix seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Whether the database answers (for `/readyz`).
pub async fn ping(pool: &SqlitePool) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}
