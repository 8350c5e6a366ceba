//! Database connections: SQLite (embedded default) or PostgreSQL, migrated at start.

use std::path::Path;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqlErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

/// The URL of an SQLite file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Connects to `url` and brings the schema up to date with `M`'s migrations.
pub async fn connect<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    // Statements and their parameters may hold personal data: keep them out of logs and spans.
    options
        .sqlx_logging(false)
        .record_stmt_in_spans(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        // WAL lets readers (change-feed watchers) run beside the one writer; the busy
        // timeout makes a second writer wait instead of failing.
        options
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            })
            .max_connections(8);
    }
    let db = Database::connect(options).await?;
    M::up(&db, None).await?;
    Ok(db)
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
        _ => StoreFailure::Other,
    }
}

/// The backend of a connection, for the few statements that differ.
pub fn backend(db: &impl sea_orm::ConnectionTrait) -> DbBackend {
    db.get_database_backend()
}
