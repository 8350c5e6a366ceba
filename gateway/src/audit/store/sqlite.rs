//! The writer of an SQLite audit trail: one connection of its own, driven on a thread of its
//! own.
//!
//! Through sqlx, every statement of a batch (begin, the events, their index, commit) is handed
//! to the connection's worker thread and its answer handed back: four round trips between
//! threads per commit, each a wake-up. Here the whole batch runs where the connection lives,
//! with prepared statements kept for the next batch, and a caller waits for one hand-over each
//! way. The pool (`AuditStore::database`) still serves every read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::SecondsFormat;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{
    Appending, AuditStoreError, GENESIS, Head, INTENT, MAX_BATCH, Pending, Signer, answer, gather,
    position_u64,
};

/// How long a batch waits for another writer of the same file (another gateway, `samsyn
/// audit` purging) before it fails; as the pool's connections wait.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("audit database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("audit record: {0}")]
    Body(#[from] serde_json::Error),
}

/// The SQLite file behind `database_url`; `None` when the database is not a file (in memory).
pub(super) fn file_of(database_url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if !database_url.starts_with("sqlite:") {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    let path = options.get_filename();
    path.is_file().then(|| path.to_owned())
}

/// Starts the writer of the SQLite file at `path`, which the caller has migrated: it commits
/// what `pending` hands it until every sender is gone.
pub(super) fn start(
    path: &Path,
    signer: Arc<Signer>,
    pending: mpsc::Receiver<Pending>,
    commits: Arc<AtomicU64>,
) -> Result<(), AuditStoreError> {
    let connection = open(path).map_err(|error| AuditStoreError::Writer(error.to_string()))?;
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || write_loop(connection, &signer, pending, &commits))
        .map_err(|error| AuditStoreError::Writer(error.to_string()))?;
    Ok(())
}

/// A connection that commits as the trail must: every commit waits for the disk.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is synced at every commit, so an event exists once its call is answered
    // (NORMAL would sync at checkpoints only, and a power loss could take answered calls'
    // events back).
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

fn write_loop(
    mut connection: Connection,
    signer: &Signer,
    mut pending: mpsc::Receiver<Pending>,
    commits: &AtomicU64,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_batch = 0;
    // The head as this writer last committed it, so that a batch need not read it first;
    // forgotten after any failure, and then read from the database again.
    let mut head: Option<Head> = None;
    while let Some(first) = pending.blocking_recv() {
        batch.push(first);
        let mut lingered = 0;
        while gather(&mut batch, &mut pending, last_batch, &mut lingered) {
            std::thread::yield_now();
        }
        last_batch = batch.len();
        let known = head.take();
        let retry = known.is_some();
        let written = match write_batch(&mut connection, signer, &batch, known) {
            // Another writer of the same file may have appended since this one's last commit,
            // taking the position it meant to use: once more, from the stored head.
            Err(error) if retry => {
                tracing::debug!(%error, "audit batch not appended at the known head; retrying");
                write_batch(&mut connection, signer, &batch, None)
            }
            written => written,
        };
        let written = written.map(|(first_position, new_head)| {
            head = Some(new_head);
            first_position
        });
        answer(&mut batch, written, commits);
    }
}

/// Appends `batch` after `known` (read from the file when `None`) in one transaction; the
/// position of its first event and the new head. SQLite's write lock makes the append
/// exclusive; a `known` head another writer has moved past fails on the position's primary
/// key, and nothing of the batch is stored.
fn write_batch(
    connection: &mut Connection,
    signer: &Signer,
    batch: &[Pending],
    known: Option<Head>,
) -> Result<(u64, Head), WriteError> {
    let txn = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head = match known {
        Some(head) => head,
        None => load_head(&txn)?,
    };
    let appending = Appending::after(&head, batch, signer)?;
    let first_position = appending.first_position();
    {
        let mut insert = txn.prepare_cached(
            "INSERT INTO audit_event (position, recorded_at, principal_id, organisation, \
             participant_id, owner_organisation, decision, body, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for event in &appending.events {
            insert.execute(params![
                event.position,
                stored_time(&event.recorded_at),
                event.principal_id,
                event.organisation,
                event.participant_id,
                event.owner_organisation,
                event.decision,
                event.body,
                event.prev_hash,
                event.hash,
            ])?;
        }
        let mut index = txn.prepare_cached(
            "INSERT INTO audit_index (kind, value, position) VALUES (?1, ?2, ?3)",
        )?;
        for key in &appending.index {
            index.execute(params![key.kind, key.value, key.position])?;
        }
        let mut close =
            txn.prepare_cached("DELETE FROM audit_index WHERE kind = ?1 AND value = ?2")?;
        for call_id in &appending.closed {
            close.execute(params![INTENT, call_id])?;
        }
        if let Some(checkpoint) = &appending.checkpoint {
            txn.prepare_cached(
                "INSERT INTO audit_checkpoint (position, hash, signed_at, signature) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                checkpoint.position,
                checkpoint.hash,
                stored_time(&checkpoint.signed_at),
                checkpoint.signature,
            ])?;
        }
    }
    txn.commit()?;
    Ok((first_position, appending.head))
}

/// A time as the pool's driver (sqlx) stores a `DateTime<Utc>`, so that the store's range
/// queries compare text written by either alike.
fn stored_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The head of the chain as stored.
fn load_head(connection: &Connection) -> rusqlite::Result<Head> {
    let last: Option<(i64, String)> = connection
        .query_row(
            "SELECT position, hash FROM audit_event ORDER BY position DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let checkpointed: Option<i64> = connection
        .query_row(
            "SELECT position FROM audit_checkpoint ORDER BY position DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let checkpointed = checkpointed.map_or(0, position_u64);
    Ok(match last {
        Some((position, hash)) => Head {
            position: position_u64(position),
            hash,
            checkpointed,
        },
        None => Head {
            position: 0,
            hash: GENESIS.to_owned(),
            checkpointed,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_writer_syncs_every_commit_to_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        drop(Connection::open(&path).unwrap());
        let connection = open(&path).unwrap();
        let pragma = |name: &str| -> String {
            connection
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|value| match value {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(text) => text,
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(pragma("synchronous"), "2", "FULL");
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("busy_timeout"), "5000");
    }

    #[test]
    fn only_a_file_gets_a_writer_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        drop(Connection::open(&path).unwrap());
        let url = samsyn_kit::db::sqlite_url(&path);
        assert_eq!(file_of(&url), Some(path));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("postgres://postgres@127.0.0.1:5432/test"), None);
    }
}
