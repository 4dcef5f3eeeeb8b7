//! The database: one pool on SQLite or PostgreSQL, migrations, and the way requests reach it.
//!
//! Policy:
//! - Diesel is blocking, so every use of a connection runs on the blocking thread pool through
//!   [`Database::run`], never on an async worker.
//! - Queries are written once, against the [`Store`] trait, which is implemented for both
//!   connection types by the same source (see [`store`]). Handlers reach a connection through
//!   [`with_store!`], which hands the concrete connection to generic code.
//! - Writes go through [`Store::write_tx`]: `BEGIN IMMEDIATE` on SQLite (so a transaction never
//!   has to upgrade a read lock, the cause of `SQLITE_BUSY` deadlocks), an ordinary transaction on
//!   PostgreSQL.

pub mod admin_users;
pub mod audit;
pub mod changes;
pub mod checkpoint;
pub mod customers;
pub mod keys;
pub mod licensing;
pub mod models;
pub mod preferences;
pub mod releases;
pub mod server_settings;
pub mod sessions;
pub mod store;
pub mod timestamp;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use keysync_shared::DatabaseKind;

use crate::config::DatabaseTarget;
use crate::error::ApiError;

pub use store::Store;

/// Everything the handlers need from a connection, as one bound for generic code.
pub trait Db:
    Store
    + keys::KeyStore
    + customers::CustomerStore
    + admin_users::AdminStore
    + sessions::SessionStore
    + audit::AuditStore
    + changes::ChangeStore
    + licensing::LicensingStore
    + licensing::KeyLocks
    + releases::ReleaseStore
    + server_settings::SettingStore
    + preferences::PreferenceStore
{
}

impl<T> Db for T where
    T: Store
        + keys::KeyStore
        + customers::CustomerStore
        + admin_users::AdminStore
        + sessions::SessionStore
        + audit::AuditStore
        + changes::ChangeStore
        + licensing::LicensingStore
        + licensing::KeyLocks
        + releases::ReleaseStore
        + server_settings::SettingStore
        + preferences::PreferenceStore
{
}

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Names the migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x006b_6579_736d_6967;

pub type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;
pub type PgPool = Pool<ConnectionManager<PgConnection>>;

/// A pooled connection of either engine, handed to code inside [`Database::run`].
pub enum AnyConnection {
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
    Postgres(PooledConnection<ConnectionManager<PgConnection>>),
}

/// Runs `$body` with `$conn` bound to the concrete `&mut` connection inside an
/// [`AnyConnection`]. The body is compiled once per engine, so it may call any generic
/// `fn f<S: Store>(s: &mut S)`.
#[macro_export]
macro_rules! with_store {
    ($any:expr, |$conn:ident| $body:expr) => {
        match $any {
            $crate::db::AnyConnection::Sqlite(pooled) => {
                let $conn: &mut ::diesel::sqlite::SqliteConnection = &mut *pooled;
                $body
            }
            $crate::db::AnyConnection::Postgres(pooled) => {
                let $conn: &mut ::diesel::pg::PgConnection = &mut *pooled;
                $body
            }
        }
    };
}

/// The shared handle to the database; cheap to clone.
#[derive(Clone)]
pub enum Database {
    /// The pool and the handle that keeps its checkpoint thread running.
    Sqlite(SqlitePool, Arc<checkpoint::Checkpointer>),
    /// The pool and its URL (the change feed's listener opens its own connection with it).
    Postgres(PgPool, String),
}

/// Applies the SQLite settings keysync relies on to every new connection.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // busy_timeout comes first: switching to WAL itself needs a lock, and it makes a second
        // writer wait instead of failing at once. WAL lets readers run beside the writer; NORMAL
        // sync is durable across application crashes (an OS crash may lose the last
        // transactions, never corrupt the file). mmap lets reads of a large file come from the
        // OS page cache without copying into each connection's cache. Checkpoints normally run
        // on their own thread (see `checkpoint`); the pragma below is only the fallback.
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000;
             PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA mmap_size = 268435456;",
        )
        .and_then(|()| {
            conn.batch_execute(&format!(
                "PRAGMA wal_autocheckpoint = {};",
                checkpoint::FALLBACK_AUTOCHECKPOINT_PAGES
            ))
        })
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Opens a pool for `target`. The pool connects lazily, so a server whose PostgreSQL is
    /// down still starts its pool and reports the outage through `/api/health`.
    pub fn connect(
        target: &DatabaseTarget,
        pool_size: u32,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        match target {
            DatabaseTarget::Sqlite(path) => {
                create_parent_dir(path)?;
                let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
                let pool = Pool::builder()
                    .max_size(pool_size.max(1))
                    .connection_timeout(timeout)
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build(manager)?;
                let checkpointer = checkpoint::start(pool.clone());
                Ok(Self::Sqlite(pool, checkpointer))
            }
            DatabaseTarget::Postgres(url) => {
                let manager = ConnectionManager::<PgConnection>::new(url.as_str());
                let pool = Pool::builder()
                    .max_size(pool_size.max(1))
                    .min_idle(Some(0))
                    .connection_timeout(timeout)
                    .build_unchecked(manager);
                Ok(Self::Postgres(pool, url.clone()))
            }
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        match self {
            Self::Sqlite(..) => DatabaseKind::Sqlite,
            Self::Postgres(..) => DatabaseKind::Postgres,
        }
    }

    /// The PostgreSQL URL, for connections outside the pool.
    pub fn postgres_url(&self) -> Option<String> {
        match self {
            Self::Postgres(_, url) => Some(url.clone()),
            Self::Sqlite(..) => None,
        }
    }

    /// Takes a connection from the pool, on the calling thread. Only for blocking contexts.
    pub fn get_blocking(&self) -> Result<AnyConnection, ApiError> {
        match self {
            Self::Sqlite(pool, _) => pool.get().map(AnyConnection::Sqlite),
            Self::Postgres(pool, _) => pool.get().map(AnyConnection::Postgres),
        }
        .map_err(ApiError::from_pool)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<F, R>(&self, f: F) -> Result<R, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<R, ApiError> + Send + 'static,
        R: Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || {
            let mut conn = db.get_blocking()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// Applies every pending migration; returns how many ran.
    pub fn migrate_blocking(&self) -> anyhow::Result<usize> {
        let mut conn = self
            .get_blocking()
            .map_err(|e| anyhow::anyhow!("cannot reach the database to migrate it: {e}"))?;
        let applied = match &mut conn {
            // SQLite takes its write lock per migration transaction; concurrent migrators wait.
            AnyConnection::Sqlite(c) => {
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len())
            }
            AnyConnection::Postgres(c) => {
                // Instances starting together must not migrate at the same time.
                use diesel::RunQueryDsl;
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .execute(&mut **c)
                    .map_err(|e| anyhow::anyhow!("cannot take the migration lock: {e}"))?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len());
                let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .execute(&mut **c);
                result
            }
        }
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(applied)
    }
}

fn create_parent_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create database directory {}: {e}", dir.display())
        })?;
    }
    Ok(())
}
