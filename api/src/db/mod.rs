//! The API's own queries (accounts, tokens, sprites, limits); the pool is opened by
//! `corral_metering::db::sqlite`, where SQLite's own constructs are listed.

pub mod accounts;
pub mod billing;
pub mod chores;
pub mod images;
pub mod limits;
pub mod network;
pub mod recharge;
pub mod schedules;
pub mod secrets;
pub mod sprites;
pub mod token_settings;
pub mod tokens;

use std::path::Path;

use sqlx::SqlitePool;

/// Opens (creating if missing) `corral.db` in `data_dir` and applies every migration
/// (`corral_metering::db::sqlite::open`, the one place a pool is opened).
pub async fn open(data_dir: &Path, pool_size: u32) -> anyhow::Result<SqlitePool> {
    let path = data_dir.join("corral.db");
    corral_metering::db::sqlite::open(&path, pool_size)
        .await
        .map_err(|e| anyhow::anyhow!("opening database {}: {e}", path.display()))
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
