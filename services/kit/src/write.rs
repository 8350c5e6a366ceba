//! One write path for every store: a transaction whose change-feed rows go in last, and for a
//! call a client may retry, the idempotent tail around it.
//!
//! The tail, in order: begin → replay an earlier answer for the same key → apply (the
//! store's own work) → remember the answer → append the feed rows → commit → wake watchers.
//! If two first attempts with one key race, the loser fails on a unique key (the remembered
//! answer or the record itself); it then rolls back and replays the winner's answer.
//!
//! ```text
//! let write = match Write::begin_keyed(&db, &feed, "board.CreateTeam", key.as_ref()).await? {
//!     Begun::Fresh(write) => write,
//!     Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
//! };
//! let result = async {
//!     insert_team(write.txn(), &team).await?;
//!     write.append(team_change(&team));
//!     Ok((team, encoded_team))
//! }
//! .await;
//! write.finish(result).await
//! ```

use std::sync::Mutex;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::feed::{ChangeFeed, NewChange};
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};

/// The result of an idempotent write: done now, or the first answer replayed.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Done by this call.
    Done(T),
    /// The remembered (encoded) answer of the first call with the same key.
    Replayed(Vec<u8>),
}

/// What [`Write::begin_keyed`] found: a fresh transaction, or the answer of an earlier call.
#[derive(Debug)]
pub enum Begun<'a> {
    /// No earlier answer: do the work in this write.
    Fresh(Write<'a>),
    /// The remembered answer of the first call with the same key.
    Replayed(Vec<u8>),
}

/// One write transaction with its change-feed rows and, when keyed, its idempotency key.
#[derive(Debug)]
pub struct Write<'a> {
    db: &'a DatabaseConnection,
    feed: &'a ChangeFeed,
    txn: DatabaseTransaction,
    key: Option<(&'a str, &'a IdempotencyKey)>,
    // A mutex, not a `RefCell`: the write is borrowed across awaits of a `Send` future.
    changes: Mutex<Vec<NewChange>>,
}

impl<'a> Write<'a> {
    /// Begins a write (see [`crate::db::begin_write`]) with no idempotency key.
    pub async fn begin(db: &'a DatabaseConnection, feed: &'a ChangeFeed) -> Result<Self, DbErr> {
        Ok(Self {
            db,
            feed,
            txn: crate::db::begin_write(db).await?,
            key: None,
            changes: Mutex::new(Vec::new()),
        })
    }

    /// Begins a write under `key` in `scope` (the RPC), or finds the answer to replay.
    pub async fn begin_keyed(
        db: &'a DatabaseConnection,
        feed: &'a ChangeFeed,
        scope: &'a str,
        key: Option<&'a IdempotencyKey>,
    ) -> Result<Begun<'a>, IdempotencyError> {
        let mut write = Self::begin(db, feed).await?;
        if let Some(key) = key {
            if let Some(answer) = idempotency::replay(&write.txn, scope, key).await? {
                return Ok(Begun::Replayed(answer));
            }
            write.key = Some((scope, key));
        }
        Ok(Begun::Fresh(write))
    }

    /// The transaction to do the work in.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Queues a change-feed row; the rows are appended in order, last in the transaction
    /// (see [`ChangeFeed::append`] for why last).
    pub fn append(&self, change: NewChange) {
        self.changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(change);
    }

    /// Appends the queued feed rows, commits, and wakes this process's watchers when there
    /// were any.
    pub async fn commit(self) -> Result<(), DbErr> {
        let changes = self
            .changes
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let any = !changes.is_empty();
        for change in changes {
            ChangeFeed::append(&self.txn, change).await?;
        }
        self.txn.commit().await?;
        if any {
            self.feed.notify_committed();
        }
        Ok(())
    }

    /// Ends a keyed write with the work's `result` (the value and its encoded answer):
    /// remembers the answer, appends and commits; when the work or the commit failed and an
    /// earlier call with the same key has since committed (a race), replays that call.
    pub async fn finish<T, E>(self, result: Result<(T, Vec<u8>), E>) -> Result<Outcome<T>, E>
    where
        E: From<DbErr> + From<IdempotencyError>,
    {
        let (db, key) = (self.db, self.key);
        let error = match result {
            Ok((value, answer)) => match self.remember_and_commit(answer).await {
                Ok(()) => return Ok(Outcome::Done(value)),
                Err(error) => E::from(error),
            },
            Err(error) => {
                // Rolls the transaction back before the replay reads.
                drop(self);
                error
            }
        };
        let Some((scope, key)) = key else {
            return Err(error);
        };
        match idempotency::replay(db, scope, key).await {
            Ok(Some(answer)) => Ok(Outcome::Replayed(answer)),
            Err(IdempotencyError::Reused) => Err(E::from(IdempotencyError::Reused)),
            Ok(None) | Err(IdempotencyError::Db(_)) => Err(error),
        }
    }

    async fn remember_and_commit(self, answer: Vec<u8>) -> Result<(), DbErr> {
        if let Some((scope, key)) = self.key {
            idempotency::remember(&self.txn, scope, key, answer).await?;
        }
        self.commit().await
    }
}
