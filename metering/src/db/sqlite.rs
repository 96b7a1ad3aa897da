//! SQLite in one place: the one function that opens the database (for the server,
//! `meter-bench` and the tests alike), and the list of what the SQL of both crates
//! uses that only SQLite has.
//!
//! A PostgreSQL backend later is one more module beside this one; these are the
//! statements it has to say differently:
//!
//! - `json_group_array(json_array(…))`: `api::db::sprites::list_with_costs` returns a
//!   tenant's whole sprite list as one JSON text (one thread hop instead of one per
//!   row). PostgreSQL: `json_agg(json_build_array(…))`.
//! - `ON CONFLICT (tenant_id, name) WHERE deleted_at IS NULL DO NOTHING`:
//!   `api::db::sprites::insert` names a partial unique index as the conflict target.
//!   PostgreSQL accepts the same form; other databases do not.
//! - `ORDER BY …, rowid`: `api::db::tokens::list` breaks ties by SQLite's implicit
//!   row id. PostgreSQL has none: order by `id` (or a sequence column) instead.
//! - `CASE WHEN ? THEN ? …` with a bound `bool`: `api::db::accounts::save_budget`;
//!   SQLite stores booleans as 0/1 integers, PostgreSQL has a real `boolean`.
//! - `?` placeholders everywhere (PostgreSQL: `$1, $2, …`) and `QueryBuilder<Sqlite>`
//!   in the multi-row writes of `ledger.rs` (bounded by SQLite's 32,766 variables:
//!   `CHUNK` rows per statement).
//! - `INTEGER PRIMARY KEY` as the row id and `TEXT` for every enum (sprite states,
//!   pause reasons) in `migrations/`.
//! - `BEGIN IMMEDIATE`: `db::chores::compact_ledger` takes the write lock before it
//!   reads. PostgreSQL: a plain transaction (row locks, no snapshot upgrade to fail).
//! - `CREATE TRIGGER … BEGIN … END` in `0010_schedules.sql` (schedules vanish with
//!   their sprite). PostgreSQL: a trigger calling a PL/pgSQL function.
//!
//! Portable already: `RETURNING`, `WITH RECURSIVE`, `ON CONFLICT … DO UPDATE SET x =
//! excluded.x`, `COALESCE`.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Opens (creating if missing) the database file at `path` in WAL mode with foreign
/// keys on, with at most `pool_size` connections, and applies every migration.
pub async fn open(path: &Path, pool_size: u32) -> sqlx::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL makes NORMAL safe against corruption; a power cut may lose the last
        // commits, which the meter bills again from the cgroup counters.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(pool_size.max(1))
        .connect_with(options)
        .await?;
    sqlx::migrate!("../migrations").run(&pool).await?;
    Ok(pool)
}
