//! The change feed: a change row appended in the same transaction as the change, served as a
//! resumable, ordered server stream from a cursor.

use std::time::Duration;

use samsyn_proto::common::v1::{Change, ParticipantId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// The response header that names the last feed sequence a write appended: the gateway waits
/// for its access view to apply it, so a change made through the gateway (a revoked consent)
/// is in force for the caller's very next call.
pub const WRITTEN_SEQUENCE_HEADER: &str = "samsyn-feed-sequence";

/// The highest sequence appended while serving one request (see [`WRITTEN_SEQUENCE_HEADER`]).
pub(crate) mod written {
    use std::cell::Cell;

    tokio::task_local! {
        static WRITTEN: Cell<u64>;
    }

    /// Notes a sequence appended by the request being served, if one is being served.
    pub(crate) fn record(sequence: u64) {
        let _ = WRITTEN.try_with(|w| w.set(w.get().max(sequence)));
    }

    /// Runs `future` (one request) and returns its output with the highest sequence it
    /// appended (0 for none).
    pub(crate) async fn scope<F: std::future::Future>(future: F) -> (F::Output, u64) {
        WRITTEN
            .scope(Cell::new(0), async move {
                let output = future.await;
                (output, WRITTEN.with(Cell::get))
            })
            .await
    }
}

/// The change-feed table, owned by every service.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One committed change.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "change_feed")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub sequence: i64,
        pub entity_kind: String,
        pub entity_id: String,
        pub change_kind: String,
        pub participant_id: Option<String>,
        pub recorded_at: DateTimeUtc,
        pub payload: Vec<u8>,
        pub traceparent: String,
    }

    /// The feed relates to nothing: it is read by cursor only.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The migration that creates the change-feed table; every service lists it first.
pub mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{
        big_pk_auto, blob, string, string_null, timestamp_with_time_zone,
    };

    /// Creates `change_feed`.
    pub struct CreateChangeFeed;

    impl MigrationName for CreateChangeFeed {
        fn name(&self) -> &str {
            "m20261123_000001_create_change_feed"
        }
    }

    #[derive(DeriveIden)]
    enum ChangeFeed {
        Table,
        Sequence,
        EntityKind,
        EntityId,
        ChangeKind,
        ParticipantId,
        RecordedAt,
        Payload,
        Traceparent,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateChangeFeed {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(ChangeFeed::Table)
                        .if_not_exists()
                        .col(big_pk_auto(ChangeFeed::Sequence))
                        .col(string(ChangeFeed::EntityKind))
                        .col(string(ChangeFeed::EntityId))
                        .col(string(ChangeFeed::ChangeKind))
                        .col(string_null(ChangeFeed::ParticipantId))
                        .col(timestamp_with_time_zone(ChangeFeed::RecordedAt))
                        .col(blob(ChangeFeed::Payload))
                        .col(string(ChangeFeed::Traceparent))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(ChangeFeed::Table).to_owned())
                .await
        }
    }
}

/// A change to append, described by the service that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// What kind of record changed ("referral", "consent").
    pub entity_kind: &'static str,
    /// The record's id.
    pub entity_id: String,
    /// What happened ("created", "revoked").
    pub change_kind: &'static str,
    /// The participant the change concerns (internal id), when it concerns one.
    pub participant_id: Option<String>,
    /// The changed record, encoded as the service's own message type.
    pub payload: Vec<u8>,
}

/// Rows read from the database per query while catching up.
const BATCH: u64 = 256;

/// How often an idle watcher looks for changes committed by another process.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Any constant will do: it only has to be the same for every writer of one database.
const APPEND_LOCK_KEY: i64 = 0x5341_4D53_594E;

/// A service's change feed: append within a transaction, watch from a cursor.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    db: DatabaseConnection,
    committed: watch::Sender<()>,
    closing: watch::Sender<bool>,
    poll_interval: Duration,
}

impl ChangeFeed {
    /// A feed over the `change_feed` table of `db` (already migrated).
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            committed: watch::Sender::new(()),
            closing: watch::Sender::new(false),
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Changes how often idle watchers poll for changes from other processes.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Appends `change` inside the caller's transaction; returns its sequence number.
    ///
    /// Call it last in the transaction. On PostgreSQL it takes a transaction-scoped advisory
    /// lock so that sequence order is commit order: without it a watcher could read
    /// sequence 7 while 6 is still uncommitted, move its cursor past 6, and lose it.
    pub async fn append<C: ConnectionTrait>(txn: &C, change: NewChange) -> Result<u64, DbErr> {
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"))
                .await?;
        }
        let row = entity::ActiveModel {
            sequence: NotSet,
            entity_kind: Set(change.entity_kind.to_owned()),
            entity_id: Set(change.entity_id),
            change_kind: Set(change.change_kind.to_owned()),
            participant_id: Set(change.participant_id),
            recorded_at: Set(chrono::Utc::now()),
            payload: Set(change.payload),
            traceparent: Set(crate::telemetry::current_traceparent().unwrap_or_default()),
        }
        .insert(txn)
        .await?;
        let sequence = u64::try_from(row.sequence).unwrap_or_default();
        written::record(sequence);
        Ok(sequence)
    }

    /// Ends every watch stream of this feed (and refuses new ones): the part is shutting
    /// down, and a graceful shutdown waits for open streams, which never end on their own.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Wakes this process's watchers; call it after the transaction that appended commits.
    pub fn notify_committed(&self) {
        self.committed.send_replace(());
    }

    /// Up to `limit` changes after `after_sequence`, in order.
    pub async fn read_after(&self, after_sequence: u64, limit: u64) -> Result<Vec<Change>, DbErr> {
        let after = i64::try_from(after_sequence).unwrap_or(i64::MAX);
        let rows = entity::Entity::find()
            .filter(entity::Column::Sequence.gt(after))
            .order_by_asc(entity::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(to_proto).collect())
    }

    /// Every change after `after_sequence`, then each new one as it commits, until the
    /// receiver is dropped. A storage failure ends the stream with `UNAVAILABLE`; the
    /// consumer resumes from the last sequence it processed.
    pub fn watch(&self, after_sequence: u64) -> ChangeStream {
        self.watch_with_heartbeat(after_sequence, None)
    }

    /// Like [`ChangeFeed::watch`], and while idle a heartbeat every `heartbeat` (see
    /// `Change` in common.proto), so the consumer knows it is current.
    pub fn watch_with_heartbeat(
        &self,
        after_sequence: u64,
        heartbeat: Option<Duration>,
    ) -> ChangeStream {
        let (tx, rx) = mpsc::channel(64);
        let feed = self.clone();
        let mut committed = self.committed.subscribe();
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            let mut cursor = after_sequence;
            let mut last_sent = tokio::time::Instant::now();
            loop {
                if *closing.borrow_and_update() {
                    return;
                }
                committed.borrow_and_update();
                match feed.read_after(cursor, BATCH).await {
                    Ok(batch) => {
                        let full = batch.len() as u64 == BATCH;
                        if batch.is_empty()
                            && let Some(every) = heartbeat
                            && last_sent.elapsed() >= every
                        {
                            if tx.send(Ok(heartbeat_change(cursor))).await.is_err() {
                                return;
                            }
                            last_sent = tokio::time::Instant::now();
                        }
                        for change in batch {
                            cursor = change.sequence;
                            if tx.send(Ok(change)).await.is_err() {
                                return;
                            }
                            last_sent = tokio::time::Instant::now();
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "change feed read failed");
                        let _ = tx
                            .send(Err(Status::unavailable("change feed unavailable")))
                            .await;
                        return;
                    }
                }
                let wait = heartbeat.map_or(feed.poll_interval, |every| {
                    feed.poll_interval
                        .min(every.saturating_sub(last_sent.elapsed()))
                        .max(Duration::from_millis(1))
                });
                tokio::select! {
                    _ = committed.changed() => {}
                    _ = closing.changed() => {}
                    () = tokio::time::sleep(wait) => {}
                    () = tx.closed() => return,
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

/// The change kind of a heartbeat.
pub const HEARTBEAT: &str = "heartbeat";

/// The longest heartbeat interval a consumer may ask for.
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);

fn heartbeat_change(cursor: u64) -> Change {
    Change {
        sequence: cursor,
        change_kind: HEARTBEAT.to_owned(),
        recorded_at: Some(crate::time::to_timestamp(chrono::Utc::now())),
        ..Change::default()
    }
}

/// The server stream a `WatchChanges` handler returns.
pub type ChangeStream = ReceiverStream<Result<Change, Status>>;

fn to_proto(row: entity::Model) -> Change {
    Change {
        sequence: u64::try_from(row.sequence).unwrap_or_default(),
        entity_kind: row.entity_kind,
        entity_id: row.entity_id,
        change_kind: row.change_kind,
        participant_id: row.participant_id.map(|value| ParticipantId { value }),
        recorded_at: Some(crate::time::to_timestamp(row.recorded_at)),
        payload: row.payload,
        traceparent: row.traceparent,
    }
}

impl ChangeFeed {
    /// The body of every `WatchChanges` handler.
    pub fn watch_response(
        &self,
        request: tonic::Request<samsyn_proto::common::v1::WatchChangesRequest>,
    ) -> tonic::Response<ChangeStream> {
        let request = request.into_inner();
        let heartbeat = (request.heartbeat_seconds > 0)
            .then(|| Duration::from_secs(u64::from(request.heartbeat_seconds)).min(MAX_HEARTBEAT));
        tonic::Response::new(self.watch_with_heartbeat(request.after_sequence, heartbeat))
    }
}
