//! Database connections: SQLite (embedded default) or PostgreSQL, migrated at start.

use std::path::Path;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    RuntimeErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// The URL of an SQLite file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Connects to `url` and brings the schema up to date with `M`'s migrations.
///
/// Runs no DDL when the schema is already the binary's, so a role that may only read and
/// write rows can use it after `samsyn migrate`; refuses a schema newer than the binary's.
pub async fn connect<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with::<M>(url, Durability::ProcessCrash).await
}

/// What a committed transaction survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The process dying; the last commits before a power loss may be lost (SQLite's WAL
    /// syncs at checkpoints only). Enough for data the services can be told again.
    ProcessCrash,
    /// A power loss too: every commit waits for the disk (one `fdatasync` of the WAL on
    /// SQLite; PostgreSQL's default `synchronous_commit`). For the audit trail, whose
    /// events must exist once the call they record has been answered.
    PowerLoss,
}

/// As [`connect`], with commits as durable as `durability` says.
pub async fn connect_with<M: MigratorTrait>(
    url: &str,
    durability: Durability,
) -> Result<DatabaseConnection, DbErr> {
    let db = open(url, durability).await?;
    match schema_of::<M>(&db).await {
        Ok(()) => {}
        Err(SchemaError::Older { .. }) => M::up(&db, None).await?,
        Err(SchemaError::Db(error)) => return Err(error),
        Err(newer @ SchemaError::Newer { .. }) => return Err(DbErr::Custom(newer.to_string())),
    }
    Ok(db)
}

/// A database schema that is not the one this binary was built for.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Migrations of this binary are not applied yet.
    #[error(
        "the database schema is older than this binary: {} migrations pending ({}); \
         run `samsyn migrate <part>` first",
        pending.len(),
        pending.join(", ")
    )]
    Older {
        /// The names of the pending migrations.
        pending: Vec<String>,
    },
    /// The database has applied migrations this binary does not know: a newer release
    /// migrated it.
    #[error(
        "the database schema is newer than this binary: it has applied migrations this \
         binary does not know ({}); run the release that migrated it",
        unknown.join(", ")
    )]
    Newer {
        /// The names of the unknown applied migrations.
        unknown: Vec<String>,
    },
    /// The database could not be read.
    #[error("cannot read the schema's migrations: {0}")]
    Db(#[from] DbErr),
}

/// Checks, without changing anything, that the schema at `url` is exactly `M`'s.
pub async fn check<M: MigratorTrait>(url: &str) -> Result<(), SchemaError> {
    let db = open(url, Durability::ProcessCrash).await?;
    let checked = schema_of::<M>(&db).await;
    db.close().await?;
    checked
}

/// Applies `M`'s pending migrations at `url`; how many were applied (0: already current).
pub async fn migrate<M: MigratorTrait>(url: &str) -> Result<usize, DbErr> {
    let db = open(url, Durability::ProcessCrash).await?;
    let pending = match schema_of::<M>(&db).await {
        Ok(()) => 0,
        Err(SchemaError::Older { pending }) => pending.len(),
        Err(SchemaError::Db(error)) => return Err(error),
        Err(newer @ SchemaError::Newer { .. }) => return Err(DbErr::Custom(newer.to_string())),
    };
    if pending > 0 {
        M::up(&db, None).await?;
    }
    db.close().await?;
    Ok(pending)
}

/// Compares the applied migrations with `M`'s, reading only (no migration table is made).
async fn schema_of<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), SchemaError> {
    use sea_orm::ConnectionTrait;
    let known: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let table = M::migration_table_name();
    let exists = table_exists(db, &table.to_string()).await?;
    let applied: Vec<String> = if exists {
        let query = sea_orm::sea_query::Query::select()
            .column(sea_orm::sea_query::Alias::new("version"))
            .from(table)
            .to_owned();
        let builder = db.get_database_backend();
        db.query_all_raw(builder.build(&query))
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "version"))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let unknown: Vec<String> = applied
        .iter()
        .filter(|a| !known.contains(a))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(SchemaError::Newer { unknown });
    }
    let pending: Vec<String> = known.into_iter().filter(|k| !applied.contains(k)).collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Older { pending })
    }
}

/// Connects to `url` without touching the schema.
async fn open(url: &str, durability: Durability) -> Result<DatabaseConnection, DbErr> {
    let synchronous = match durability {
        Durability::ProcessCrash => sea_orm::sqlx::sqlite::SqliteSynchronous::Normal,
        Durability::PowerLoss => sea_orm::sqlx::sqlite::SqliteSynchronous::Full,
    };
    let mut options = ConnectOptions::new(url.to_owned());
    // Statements and their parameters may hold personal data: keep them out of logs and spans.
    options
        .sqlx_logging(false)
        .record_stmt_in_spans(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings a pooled connection on every checkout by default: a round trip to the
        // server (or, on SQLite, to the connection's worker thread) before each statement.
        // Only a connection idle long enough to have been dropped is worth checking.
        .test_before_acquire_if_idle_for(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // WAL lets readers (change-feed watchers) run beside the one writer; the busy
        // timeout makes a second writer wait instead of failing.
        options
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            })
            .max_connections(8);
    }
    let db = Database::connect(options).await?;
    Ok(db)
}

/// Whether `table` exists in the connection's schema (the search path on PostgreSQL).
async fn table_exists(db: &DatabaseConnection, table: &str) -> Result<bool, DbErr> {
    use sea_orm::ConnectionTrait;
    let (sql, backend) = match db.get_database_backend() {
        DbBackend::Postgres => (
            "SELECT count(*) AS n FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename = $1",
            DbBackend::Postgres,
        ),
        backend => (
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
            backend,
        ),
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [table.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// A transaction that reads and then writes.
///
/// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction
/// fails outright, without waiting, when another writer commits between its read and its
/// write, and the caller would get an internal error instead of a stale revision. On
/// PostgreSQL it is an ordinary transaction.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// What a storage error means to the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// A unique key already holds this value.
    AlreadyExists,
    /// A referenced record does not exist.
    MissingReference,
    /// The database could not be reached or timed out.
    Unavailable,
    /// Anything else: a bug or a broken database.
    Other,
}

/// Classifies a storage error where it arises, so services never match on SQL text.
pub fn classify(err: &DbErr) -> StoreFailure {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => return StoreFailure::AlreadyExists,
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => return StoreFailure::MissingReference,
        _ => {}
    }
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreFailure::Unavailable,
        _ if contended(err) => StoreFailure::Unavailable,
        _ => StoreFailure::Other,
    }
}

/// Whether the database gave up waiting for a lock another writer held: a busy moment, not
/// a fault, so the caller is told to retry (`UNAVAILABLE`) rather than `INTERNAL`.
fn contended(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(e) = &**e else {
        return false;
    };
    // SQLite: SQLITE_BUSY (5) and its extended codes, SQLITE_LOCKED (6). PostgreSQL:
    // lock_not_available, serialization_failure, deadlock_detected.
    matches!(
        e.code().as_deref(),
        Some("5" | "6" | "261" | "517" | "55P03" | "40001" | "40P01")
    )
}

/// The backend of a connection, for the few statements that differ.
pub fn backend(db: &impl sea_orm::ConnectionTrait) -> DbBackend {
    db.get_database_backend()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sea_orm::ConnectionTrait;

    use super::*;

    #[tokio::test]
    async fn a_writer_that_waits_out_another_is_told_to_retry_not_internal() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir.path().join("busy.db"));
        let impatient = |url: &str| {
            let mut options = ConnectOptions::new(url);
            options.max_connections(1).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_millis(10))
            });
            Database::connect(options)
        };
        let holder = impatient(&url).await.unwrap();
        holder
            .execute_unprepared("CREATE TABLE t (n INTEGER)")
            .await
            .unwrap();
        let other = impatient(&url).await.unwrap();
        let held = begin_write(&holder).await.unwrap();
        held.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let error = other
            .execute_unprepared("INSERT INTO t VALUES (2)")
            .await
            .unwrap_err();
        assert_eq!(classify(&error), StoreFailure::Unavailable, "{error}");
        held.commit().await.unwrap();
        let broken = other
            .execute_unprepared("INSERT INTO missing VALUES (3)")
            .await
            .unwrap_err();
        assert_eq!(classify(&broken), StoreFailure::Other, "{broken}");
    }
}
