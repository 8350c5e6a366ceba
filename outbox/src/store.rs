//! The durable queue: table `outbox_messages`, its migration and the [`Outbox`] handle.
//!
//! **Order.** Every message gets a `sequence` from the counter row in `outbox_sequence`,
//! taken inside the enqueueing transaction. The counter's row lock (PostgreSQL) or the
//! write lock (SQLite, `BEGIN IMMEDIATE`) serializes enqueues, so sequence order is commit
//! order: a reader that sees sequence `s` has seen every message below it.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::OutboxError;
use crate::message::{LinkId, LinkStats, MessageState, MessageSummary, OutboundMessage};

/// Rows per INSERT: SQLite allows 32766 parameters, a row has 15.
const INSERT_CHUNK: usize = 500;

/// The tables.
pub mod entity {
    /// One queued message.
    pub mod message {
        use sea_orm::entity::prelude::*;

        /// A message and its delivery state.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "outbox_messages")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub message_id: Uuid,
            pub link_id: String,
            pub ordering_key: String,
            #[sea_orm(unique)]
            pub sequence: i64,
            pub method: String,
            pub path: String,
            #[sea_orm(column_type = "Text")]
            pub body: String,
            pub content_type: String,
            /// `pending`, `delivered` or `dead`.
            pub state: String,
            pub attempts: i32,
            pub permanent_failures: i32,
            pub next_attempt_at: DateTimeUtc,
            pub last_status: Option<i32>,
            /// A failure category, never the far side's words.
            pub last_error: Option<String>,
            pub created_at: DateTimeUtc,
            pub delivered_at: Option<DateTimeUtc>,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// The sequence counter: one row.
    pub mod sequence {
        use sea_orm::entity::prelude::*;

        /// The next sequence to hand out.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "outbox_sequence")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: i32,
            pub next_sequence: i64,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// How far each feed consumer has enqueued.
    pub mod cursor {
        use sea_orm::entity::prelude::*;

        /// The last change a consumer turned into messages.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "outbox_cursors")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub consumer: String,
            pub sequence: i64,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::message::{self, Column};

mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{
        big_integer, big_integer_uniq, integer, integer_null, string, string_null, text,
        timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
    };

    /// Creates the outbox tables.
    pub struct CreateOutboxTables;

    impl MigrationName for CreateOutboxTables {
        fn name(&self) -> &str {
            "m20261130_000100_create_outbox_tables"
        }
    }

    #[derive(DeriveIden)]
    enum OutboxMessages {
        Table,
        MessageId,
        LinkId,
        OrderingKey,
        Sequence,
        Method,
        Path,
        Body,
        ContentType,
        State,
        Attempts,
        PermanentFailures,
        NextAttemptAt,
        LastStatus,
        LastError,
        CreatedAt,
        DeliveredAt,
    }

    /// Creates the table of feed consumers' cursors.
    pub struct CreateOutboxCursors;

    impl MigrationName for CreateOutboxCursors {
        fn name(&self) -> &str {
            "m20261130_000200_create_outbox_cursors"
        }
    }

    #[derive(DeriveIden)]
    enum OutboxCursors {
        Table,
        Consumer,
        Sequence,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateOutboxCursors {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(OutboxCursors::Table)
                        .if_not_exists()
                        .col(string(OutboxCursors::Consumer).primary_key())
                        .col(big_integer(OutboxCursors::Sequence))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(OutboxCursors::Table).to_owned())
                .await
        }
    }

    #[derive(DeriveIden)]
    enum OutboxSequence {
        Table,
        Id,
        NextSequence,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateOutboxTables {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(OutboxMessages::Table)
                        .if_not_exists()
                        .col(uuid(OutboxMessages::MessageId).primary_key())
                        .col(string(OutboxMessages::LinkId))
                        .col(string(OutboxMessages::OrderingKey))
                        .col(big_integer_uniq(OutboxMessages::Sequence))
                        .col(string(OutboxMessages::Method))
                        .col(text(OutboxMessages::Path))
                        .col(text(OutboxMessages::Body))
                        .col(string(OutboxMessages::ContentType))
                        .col(string(OutboxMessages::State))
                        .col(integer(OutboxMessages::Attempts))
                        .col(integer(OutboxMessages::PermanentFailures))
                        .col(timestamp_with_time_zone(OutboxMessages::NextAttemptAt))
                        .col(integer_null(OutboxMessages::LastStatus))
                        .col(string_null(OutboxMessages::LastError))
                        .col(timestamp_with_time_zone(OutboxMessages::CreatedAt))
                        .col(timestamp_with_time_zone_null(OutboxMessages::DeliveredAt))
                        .to_owned(),
                )
                .await?;
            // The sender's questions: the head (lowest undelivered sequence) of each
            // participant, what is new since a sequence, and the next due attempt.
            let indexes: [(&str, Vec<OutboxMessages>); 3] = [
                (
                    "outbox_messages_heads",
                    vec![
                        OutboxMessages::LinkId,
                        OutboxMessages::State,
                        OutboxMessages::OrderingKey,
                        OutboxMessages::Sequence,
                    ],
                ),
                (
                    "outbox_messages_by_sequence",
                    vec![OutboxMessages::LinkId, OutboxMessages::Sequence],
                ),
                (
                    "outbox_messages_next_due",
                    vec![
                        OutboxMessages::LinkId,
                        OutboxMessages::State,
                        OutboxMessages::NextAttemptAt,
                    ],
                ),
            ];
            for (name, columns) in indexes {
                let mut index = Index::create();
                index
                    .name(name)
                    .if_not_exists()
                    .table(OutboxMessages::Table);
                for column in columns {
                    index.col(column);
                }
                manager.create_index(index.to_owned()).await?;
            }
            manager
                .create_table(
                    Table::create()
                        .table(OutboxSequence::Table)
                        .if_not_exists()
                        .col(integer(OutboxSequence::Id).primary_key())
                        .col(big_integer(OutboxSequence::NextSequence))
                        .to_owned(),
                )
                .await?;
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(OutboxSequence::Table)
                        .columns([OutboxSequence::Id, OutboxSequence::NextSequence])
                        .values_panic([1.into(), 1.into()])
                        .to_owned(),
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(OutboxSequence::Table).to_owned())
                .await?;
            manager
                .drop_table(Table::drop().table(OutboxMessages::Table).to_owned())
                .await
        }
    }
}

/// The cursor row counting `link`'s revived dead letters.
fn revivals_counter(link: &LinkId) -> String {
    format!("revivals:{link}")
}

/// The outbox's migrations; their tables (and their own record of applied migrations)
/// start with `outbox_`, so they can share a database with another migration set, such as
/// the gateway's audit trail.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        sea_orm::sea_query::IntoIden::into_iden(sea_orm::sea_query::Alias::new("outbox_migrations"))
    }

    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![
            Box::new(migration::CreateOutboxTables),
            Box::new(migration::CreateOutboxCursors),
        ]
    }
}

/// What changed in the store, for the senders to notice without polling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Bumped by every enqueue that stored something.
    pub enqueued: u64,
    /// Bumped when messages change state behind the senders' backs (dead-letter retry).
    pub reloads: u64,
}

/// Which dead letters to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrySelection {
    /// Every dead letter of the link.
    All,
    /// These messages (ids of other links or states are ignored).
    Ids(Vec<Uuid>),
}

/// The durable outbox: enqueue in a transaction, inspect, retry dead letters.
///
/// Cheap to clone. One [`crate::Deliverer`] per link and store sends what it holds.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: DatabaseConnection,
    changes: Arc<watch::Sender<Changes>>,
}

/// The few columns the sender keeps per waiting message.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub(crate) struct HeadRow {
    pub message_id: Uuid,
    pub ordering_key: String,
    pub sequence: i64,
    pub state: String,
    pub attempts: i32,
    pub permanent_failures: i32,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, FromQueryResult)]
struct KeyHead {
    head: i64,
}

#[derive(Debug, FromQueryResult)]
struct MaxSequence {
    max_sequence: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct StateCount {
    link_id: String,
    state: String,
    count: i64,
    oldest: Option<DateTime<Utc>>,
}

/// What one send did to a message, for [`Outbox::record`].
#[derive(Debug, Clone)]
pub(crate) enum Recorded {
    Delivered {
        id: Uuid,
        status: u16,
    },
    Failed {
        id: Uuid,
        attempts: i32,
        /// The count of permanent failures the message had when it was sent.
        sent_with_permanent_failures: i32,
        permanent_failures: i32,
        next_attempt_at: DateTime<Utc>,
        status: Option<u16>,
        error: &'static str,
        dead: bool,
    },
}

impl Outbox {
    /// Opens the outbox on `db`, bringing its tables up to date.
    pub async fn open(db: DatabaseConnection) -> Result<Self, OutboxError> {
        Migrator::up(&db, None).await?;
        let (changes, _) = watch::channel(Changes::default());
        Ok(Self {
            db,
            changes: Arc::new(changes),
        })
    }

    /// The database, for callers that enqueue inside their own transaction.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// Stores `messages` in one transaction: all of them or none. Ids already stored are
    /// skipped (the first enqueue wins). Returns how many were new.
    pub async fn enqueue(&self, messages: Vec<OutboundMessage>) -> Result<u64, OutboxError> {
        self.enqueue_inner(messages, None).await
    }

    /// Stores `messages` and moves `consumer`'s cursor to `sequence` in one transaction: a
    /// feed consumer that restarts from [`Outbox::cursor`] neither loses nor repeats a change.
    /// `messages` may be empty (a change that sends nothing still moves the cursor).
    pub async fn enqueue_from(
        &self,
        messages: Vec<OutboundMessage>,
        consumer: &str,
        sequence: u64,
    ) -> Result<u64, OutboxError> {
        let sequence =
            i64::try_from(sequence).map_err(|_| OutboxError::Invalid("cursor sequence"))?;
        self.enqueue_inner(messages, Some((consumer, sequence)))
            .await
    }

    /// The last change `consumer` enqueued from (0: none yet).
    pub async fn cursor(&self, consumer: &str) -> Result<u64, OutboxError> {
        let row = entity::cursor::Entity::find_by_id(consumer.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.map_or(0, |r| u64::try_from(r.sequence).unwrap_or(0)))
    }

    async fn enqueue_inner(
        &self,
        messages: Vec<OutboundMessage>,
        cursor: Option<(&str, i64)>,
    ) -> Result<u64, OutboxError> {
        let mut seen = HashSet::with_capacity(messages.len());
        let mut unique = Vec::with_capacity(messages.len());
        for message in messages {
            message.validate()?;
            if seen.insert(message.id) {
                unique.push(message);
            }
        }
        if unique.is_empty() && cursor.is_none() {
            return Ok(0);
        }
        let count = i64::try_from(unique.len()).map_err(|_| OutboxError::Invalid("batch size"))?;
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                // Take the write lock before reading the counter: see the module docs.
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        entity::sequence::Entity::update_many()
            .col_expr(
                entity::sequence::Column::NextSequence,
                Expr::col(entity::sequence::Column::NextSequence).add(count),
            )
            .filter(entity::sequence::Column::Id.eq(1))
            .exec(&txn)
            .await?;
        let counter = entity::sequence::Entity::find_by_id(1)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("outbox_sequence".to_owned()))?;
        let first = counter.next_sequence - count;
        let now = Utc::now();
        let mut inserted = 0;
        let rows = unique
            .into_iter()
            .zip(first..)
            .map(|(m, sequence)| message::ActiveModel {
                message_id: Set(m.id),
                link_id: Set(m.link.as_str().to_owned()),
                ordering_key: Set(m.ordering_key),
                sequence: Set(sequence),
                method: Set(m.method.as_str().to_owned()),
                path: Set(m.path),
                body: Set(m.body),
                content_type: Set(m.content_type),
                state: Set(MessageState::Pending.as_str().to_owned()),
                attempts: Set(0),
                permanent_failures: Set(0),
                next_attempt_at: Set(now),
                last_status: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
            });
        let rows: Vec<_> = rows.collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let result = message::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::column(Column::MessageId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            inserted += result;
        }
        if let Some((consumer, sequence)) = cursor {
            entity::cursor::Entity::insert(entity::cursor::ActiveModel {
                consumer: Set(consumer.to_owned()),
                sequence: Set(sequence),
            })
            .on_conflict(
                OnConflict::column(entity::cursor::Column::Consumer)
                    .update_column(entity::cursor::Column::Sequence)
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        if inserted > 0 {
            self.changes.send_modify(|c| c.enqueued += 1);
        }
        Ok(inserted)
    }

    /// Messages of `link` waiting or being retried.
    pub async fn pending_count(&self, link: &LinkId) -> Result<u64, OutboxError> {
        self.count(link, MessageState::Pending).await
    }

    /// Messages of `link` the far side accepted.
    pub async fn delivered_count(&self, link: &LinkId) -> Result<u64, OutboxError> {
        self.count(link, MessageState::Delivered).await
    }

    async fn count(&self, link: &LinkId, state: MessageState) -> Result<u64, OutboxError> {
        use sea_orm::PaginatorTrait;
        Ok(message::Entity::find()
            .filter(Column::LinkId.eq(link.as_str()))
            .filter(Column::State.eq(state.as_str()))
            .count(&self.db)
            .await?)
    }

    /// Counts by state for every link that has messages.
    pub async fn stats(&self) -> Result<Vec<LinkStats>, OutboxError> {
        let rows = message::Entity::find()
            .select_only()
            .column(Column::LinkId)
            .column(Column::State)
            .column_as(Column::MessageId.count(), "count")
            .column_as(Column::CreatedAt.min(), "oldest")
            .group_by(Column::LinkId)
            .group_by(Column::State)
            .order_by_asc(Column::LinkId)
            .into_model::<StateCount>()
            .all(&self.db)
            .await?;
        let mut stats: Vec<LinkStats> = Vec::new();
        for row in rows {
            let Ok(link) = row.link_id.parse::<LinkId>() else {
                continue;
            };
            if stats.last().is_none_or(|s| s.link != link) {
                stats.push(LinkStats {
                    link,
                    pending: 0,
                    delivered: 0,
                    dead: 0,
                    oldest_pending_at: None,
                });
            }
            let Some(entry) = stats.last_mut() else {
                continue;
            };
            let count = u64::try_from(row.count).unwrap_or(0);
            match MessageState::parse(&row.state) {
                Some(MessageState::Pending) => {
                    entry.pending = count;
                    entry.oldest_pending_at = row.oldest;
                }
                Some(MessageState::Delivered) => entry.delivered = count,
                Some(MessageState::Dead) => entry.dead = count,
                None => {}
            }
        }
        Ok(stats)
    }

    /// The dead letters of `link`, oldest first.
    pub async fn dead_letters(&self, link: &LinkId) -> Result<Vec<MessageSummary>, OutboxError> {
        let rows = message::Entity::find()
            .filter(Column::LinkId.eq(link.as_str()))
            .filter(Column::State.eq(MessageState::Dead.as_str()))
            .order_by_asc(Column::Sequence)
            .all(&self.db)
            .await?;
        Ok(rows.iter().filter_map(summary).collect())
    }

    /// One message's summary, if it exists.
    pub async fn summary(&self, id: Uuid) -> Result<Option<MessageSummary>, OutboxError> {
        let row = message::Entity::find_by_id(id).one(&self.db).await?;
        Ok(row.as_ref().and_then(summary))
    }

    /// Makes dead letters of `link` pending again, due now, with their count of permanent
    /// failures reset. Returns how many.
    ///
    /// The operator says the far side is fixed, so refusals that pending messages of the
    /// selection collected before it are forgiven too and those messages are due now. That
    /// also voids a refusal still on its way back from before the retry: the sender records
    /// a refusal only against the count it sent with (see [`Outbox::record`]), so it cannot
    /// make a message dead after the operator queued it again.
    pub async fn retry_dead(
        &self,
        link: &LinkId,
        selection: RetrySelection,
    ) -> Result<u64, OutboxError> {
        let ids = match selection {
            RetrySelection::All => None,
            RetrySelection::Ids(ids) if ids.is_empty() => return Ok(0),
            RetrySelection::Ids(ids) => Some(ids),
        };
        let queue_again = |condition: Condition| {
            let update = message::Entity::update_many()
                .col_expr(Column::State, Expr::value(MessageState::Pending.as_str()))
                .col_expr(Column::PermanentFailures, Expr::value(0))
                .col_expr(Column::NextAttemptAt, Expr::value(Utc::now()))
                .filter(Column::LinkId.eq(link.as_str()))
                .filter(condition);
            match &ids {
                Some(ids) => update.filter(Column::MessageId.is_in(ids.iter().copied())),
                None => update,
            }
        };
        let txn = self.db.begin().await?;
        let revived =
            queue_again(Condition::all().add(Column::State.eq(MessageState::Dead.as_str())))
                .exec(&txn)
                .await?
                .rows_affected;
        let forgiven = queue_again(
            Condition::all()
                .add(Column::State.eq(MessageState::Pending.as_str()))
                .add(Column::PermanentFailures.gt(0)),
        )
        .exec(&txn)
        .await?
        .rows_affected;
        if revived + forgiven > 0 {
            // Counted in the database too, so the sender of a running gateway notices a
            // retry made by `samsyn outbox retry` in another process.
            let counter = revivals_counter(link);
            entity::cursor::Entity::insert(entity::cursor::ActiveModel {
                consumer: Set(counter),
                sequence: Set(1),
            })
            .on_conflict(
                OnConflict::column(entity::cursor::Column::Consumer)
                    .value(
                        entity::cursor::Column::Sequence,
                        Expr::col((entity::cursor::Entity, entity::cursor::Column::Sequence))
                            .add(1),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        if revived + forgiven > 0 {
            self.changes.send_modify(|c| c.reloads += 1);
        }
        Ok(revived)
    }

    /// How many times dead letters of `link` were queued again, by any process.
    pub(crate) async fn revivals(&self, link: &LinkId) -> Result<u64, OutboxError> {
        self.cursor(&revivals_counter(link)).await
    }

    /// Deletes delivered messages of every link delivered before `before`. Returns how many.
    pub async fn purge_delivered(&self, before: DateTime<Utc>) -> Result<u64, OutboxError> {
        Ok(message::Entity::delete_many()
            .filter(Column::State.eq(MessageState::Delivered.as_str()))
            .filter(Column::DeliveredAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// The highest sequence of `link`, or 0.
    pub(crate) async fn max_sequence(&self, link: &LinkId) -> Result<i64, OutboxError> {
        let row = message::Entity::find()
            .select_only()
            .column_as(Column::Sequence.max(), "max_sequence")
            .filter(Column::LinkId.eq(link.as_str()))
            .into_model::<MaxSequence>()
            .one(&self.db)
            .await?;
        Ok(row.and_then(|r| r.max_sequence).unwrap_or(0))
    }

    /// The head (lowest undelivered message) of each ordering key of `link` among
    /// sequences in `(after, up_to]`; with `keys`, of those keys only. With `include_dead`
    /// a dead head counts (it blocks its key); without, only pending messages do.
    pub(crate) async fn heads(
        &self,
        link: &LinkId,
        after: i64,
        up_to: i64,
        keys: Option<&[String]>,
        include_dead: bool,
    ) -> Result<Vec<HeadRow>, OutboxError> {
        let mut states = vec![MessageState::Pending.as_str()];
        if include_dead {
            states.push(MessageState::Dead.as_str());
        }
        let mut filter = Condition::all()
            .add(Column::LinkId.eq(link.as_str()))
            .add(Column::State.is_in(states))
            .add(Column::Sequence.gt(after))
            .add(Column::Sequence.lte(up_to));
        if let Some(keys) = keys {
            filter = filter.add(Column::OrderingKey.is_in(keys.iter().cloned()));
        }
        let heads = message::Entity::find()
            .select_only()
            .column_as(Column::Sequence.min(), "head")
            .filter(filter)
            .group_by(Column::OrderingKey)
            .into_model::<KeyHead>()
            .all(&self.db)
            .await?;
        let mut rows = Vec::with_capacity(heads.len());
        for chunk in heads.chunks(INSERT_CHUNK) {
            let sequences = chunk.iter().map(|h| h.head);
            let found = message::Entity::find()
                .select_only()
                .columns([
                    Column::MessageId,
                    Column::OrderingKey,
                    Column::Sequence,
                    Column::State,
                    Column::Attempts,
                    Column::PermanentFailures,
                    Column::NextAttemptAt,
                ])
                .filter(Column::LinkId.eq(link.as_str()))
                .filter(Column::Sequence.is_in(sequences))
                .into_model::<HeadRow>()
                .all(&self.db)
                .await?;
            rows.extend(found);
        }
        Ok(rows)
    }

    /// Full rows of the given pending messages, for sending.
    pub(crate) async fn load(&self, ids: &[Uuid]) -> Result<Vec<message::Model>, OutboxError> {
        Ok(message::Entity::find()
            .filter(Column::MessageId.is_in(ids.iter().copied()))
            .filter(Column::State.eq(MessageState::Pending.as_str()))
            .all(&self.db)
            .await?)
    }

    /// Writes the outcome of sends in one transaction. Returns the ids whose row changed
    /// since it was sent (a retry forgave its refusals): their outcome is not written.
    pub(crate) async fn record(&self, outcomes: &[Recorded]) -> Result<Vec<Uuid>, OutboxError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let mut stale = Vec::new();
        for outcome in outcomes {
            let pending = MessageState::Pending.as_str();
            let (id, written) = match outcome {
                Recorded::Delivered { id, status } => {
                    let written = message::Entity::update_many()
                        .col_expr(Column::State, Expr::value(MessageState::Delivered.as_str()))
                        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
                        .col_expr(Column::LastStatus, Expr::value(i32::from(*status)))
                        .col_expr(Column::DeliveredAt, Expr::value(now))
                        .filter(Column::MessageId.eq(*id))
                        .filter(Column::State.eq(pending))
                        .exec(&txn)
                        .await?
                        .rows_affected;
                    (id, written)
                }
                Recorded::Failed {
                    id,
                    attempts,
                    sent_with_permanent_failures,
                    permanent_failures,
                    next_attempt_at,
                    status,
                    error,
                    dead,
                } => {
                    let state = if *dead {
                        MessageState::Dead
                    } else {
                        MessageState::Pending
                    };
                    let written = message::Entity::update_many()
                        .col_expr(Column::State, Expr::value(state.as_str()))
                        .col_expr(Column::Attempts, Expr::value(*attempts))
                        .col_expr(Column::PermanentFailures, Expr::value(*permanent_failures))
                        .col_expr(Column::NextAttemptAt, Expr::value(*next_attempt_at))
                        .col_expr(Column::LastStatus, Expr::value(status.map(i32::from)))
                        .col_expr(Column::LastError, Expr::value(*error))
                        .filter(Column::MessageId.eq(*id))
                        .filter(Column::State.eq(pending))
                        .filter(Column::PermanentFailures.eq(*sent_with_permanent_failures))
                        .exec(&txn)
                        .await?
                        .rows_affected;
                    (id, written)
                }
            };
            if written == 0 {
                stale.push(*id);
            }
        }
        txn.commit().await?;
        Ok(stale)
    }
}

/// The summary of a stored row; `None` for a row this version cannot read.
pub(crate) fn summary(row: &message::Model) -> Option<MessageSummary> {
    Some(MessageSummary {
        id: row.message_id,
        link: row.link_id.parse().ok()?,
        ordering_key: row.ordering_key.clone(),
        sequence: row.sequence,
        method: row.method.clone(),
        path: row.path.clone(),
        state: MessageState::parse(&row.state)?,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_status: row.last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: row.last_error.clone(),
        created_at: row.created_at,
        delivered_at: row.delivered_at,
    })
}
