//! The durable audit trail: every event committed before the call's response leaves,
//! hash-chained, with signed checkpoints, in the gateway's own database (SQLite by default,
//! PostgreSQL in production).
//!
//! **Chain.** Event `n` stores `hash(n) = SHA-256(n ‖ hash(n-1) ‖ body(n))`, where the body is
//! the event's canonical JSON. Editing, deleting or reordering rows breaks the chain at the
//! first row touched; [`AuditStore::verify`] recomputes it and names that position.
//!
//! **Checkpoints.** Every [`CHECKPOINT_EVERY`] events (and at the first) the head hash is
//! signed with the gateway's audit key (Ed25519) and stored. A purge of old events removes a
//! prefix ending at a checkpoint, so the remaining chain still verifies from a signed hash.
//!
//! **Group commit.** One writer takes every waiting event, writes them in one transaction
//! and answers each caller once it commits: durability costs one commit per batch, not per
//! call. On SQLite the writer is a thread with a connection of its own (`store/sqlite.rs`);
//! on PostgreSQL a task on the pool.
//!
//! **Several gateways, one chain.** Replicas behind a load balancer write the same database:
//! each batch appends under an exclusive lock (a PostgreSQL advisory lock held for the
//! transaction) and reads the head inside it, so the trail stays one chain that verifies as
//! a whole. They share the signing key (a deployment secret), so any checkpoint verifies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{AuditError, AuditEvent, AuditTrail, Outcome, RecordFuture};
use crate::policy::category_code;

mod sqlite;

/// Events between signed checkpoints.
pub const CHECKPOINT_EVERY: u64 = 1000;
/// Most events written in one transaction.
const MAX_BATCH: usize = 1024;
/// Times the writer yields for more events before committing a batch.
const LINGER_YIELDS: usize = 8;
/// Events waiting for the writer before callers are held back.
const QUEUE: usize = 8192;
/// Events read per query while verifying.
const VERIFY_PAGE: u64 = 2000;
/// The hash before the first event.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The shortest time events are kept online (Swedish log follow-up practice: 18 months).
pub const MIN_RETENTION_DAYS: i64 = 548;

/// The tables.
pub mod entity {
    /// One audit event.
    pub mod event {
        use sea_orm::entity::prelude::*;

        /// One event; `body` is its canonical JSON, the rest indexes it for follow-up.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "audit_event")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub position: i64,
            pub recorded_at: DateTimeUtc,
            pub principal_id: Option<String>,
            pub organisation: Option<String>,
            pub participant_id: Option<String>,
            pub owner_organisation: Option<String>,
            /// `allowed`, `disclosure`, `emergency` or `denied`.
            pub decision: String,
            pub body: String,
            pub prev_hash: String,
            pub hash: String,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// A signed head of the chain.
    pub mod checkpoint {
        use sea_orm::entity::prelude::*;

        /// The chain's hash at `position`, signed.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "audit_checkpoint")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub position: i64,
            pub hash: String,
            pub signed_at: DateTimeUtc,
            /// Hex Ed25519 signature of [`super::super::checkpoint_message`].
            pub signature: String,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// Where an event can be found: every participant it names or showed and every
    /// organisation with a stake. Derived from the chained body, so not chained itself.
    pub mod index {
        use sea_orm::entity::prelude::*;

        /// One way to find one event.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "audit_index")]
        pub struct Model {
            /// `p` for a participant, `o` for an organisation (or the security scope).
            #[sea_orm(primary_key, auto_increment = false)]
            pub kind: String,
            #[sea_orm(primary_key, auto_increment = false)]
            pub value: String,
            #[sea_orm(primary_key, auto_increment = false)]
            pub position: i64,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// Follow-up of emergency accesses: kept apart from the chained events, which never change.
    pub mod review {
        use sea_orm::entity::prelude::*;

        /// An emergency access event marked reviewed.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "audit_review")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub position: i64,
            pub reviewed_by: String,
            pub reviewed_at: DateTimeUtc,
        }

        /// Relates to nothing.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

mod migration {
    use sea_orm::{
        ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    };
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{
        big_integer, string, string_null, text, timestamp_with_time_zone,
    };

    /// Creates the audit tables.
    pub struct CreateAuditTables;

    impl MigrationName for CreateAuditTables {
        fn name(&self) -> &str {
            "m20261123_000200_create_audit_tables"
        }
    }

    #[derive(DeriveIden)]
    enum AuditEvent {
        Table,
        Position,
        RecordedAt,
        PrincipalId,
        Organisation,
        ParticipantId,
        OwnerOrganisation,
        Decision,
        Body,
        PrevHash,
        Hash,
    }

    #[derive(DeriveIden)]
    enum AuditCheckpoint {
        Table,
        Position,
        Hash,
        SignedAt,
        Signature,
    }

    /// Creates the index of participants and organisations per event.
    pub struct CreateAuditIndex;

    impl MigrationName for CreateAuditIndex {
        fn name(&self) -> &str {
            "m20261204_000300_create_audit_index"
        }
    }

    #[derive(DeriveIden)]
    enum AuditIndex {
        Table,
        Kind,
        Value,
        Position,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateAuditIndex {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(AuditIndex::Table)
                        .if_not_exists()
                        .col(string(AuditIndex::Kind))
                        .col(string(AuditIndex::Value))
                        .col(big_integer(AuditIndex::Position))
                        .primary_key(
                            Index::create()
                                .col(AuditIndex::Kind)
                                .col(AuditIndex::Value)
                                .col(AuditIndex::Position),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("audit_index_by_position")
                        .if_not_exists()
                        .table(AuditIndex::Table)
                        .col(AuditIndex::Position)
                        .to_owned(),
                )
                .await
        }
    }

    /// Finds every event through the index alone: indexes the events stored before it, then
    /// drops the three column indexes that found them. Each of those cost every append a page
    /// of the write-ahead log.
    pub struct IndexEarlierEvents;

    impl MigrationName for IndexEarlierEvents {
        fn name(&self) -> &str {
            "m20261205_000400_index_earlier_events"
        }
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for IndexEarlierEvents {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // Every key `Record::index` gives a new event, for those stored before: their
            // columns found them until now, and `AuditStore::verify` expects every key.
            let db = manager.get_connection();
            let mut after = 0i64;
            loop {
                let page = super::entity::event::Entity::find()
                    .filter(super::entity::event::Column::Position.gt(after))
                    .order_by_asc(super::entity::event::Column::Position)
                    .limit(super::VERIFY_PAGE)
                    .all(db)
                    .await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.position;
                // A body that does not parse is left to `verify`, which reports it.
                let keys: Vec<super::entity::index::ActiveModel> = page
                    .iter()
                    .filter_map(|row| {
                        serde_json::from_str::<super::Record>(&row.body)
                            .ok()
                            .map(|record| record.lasting_index(row.position))
                    })
                    .flatten()
                    .map(|key| super::entity::index::ActiveModel {
                        kind: Set(key.kind),
                        value: Set(key.value),
                        position: Set(key.position),
                    })
                    .collect();
                for chunk in keys.chunks(300) {
                    super::entity::index::Entity::insert_many(chunk.to_vec())
                        .on_conflict_do_nothing()
                        .exec(db)
                        .await?;
                }
            }
            for name in [
                "audit_event_by_participant",
                "audit_event_by_organisation",
                "audit_event_by_owner",
            ] {
                manager
                    .drop_index(
                        Index::drop()
                            .name(name)
                            .table(AuditEvent::Table)
                            .if_exists()
                            .to_owned(),
                    )
                    .await?;
            }
            Ok(())
        }
    }

    #[derive(DeriveIden)]
    enum AuditReview {
        Table,
        Position,
        ReviewedBy,
        ReviewedAt,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for CreateAuditTables {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(AuditEvent::Table)
                        .if_not_exists()
                        .col(big_integer(AuditEvent::Position).primary_key())
                        .col(timestamp_with_time_zone(AuditEvent::RecordedAt))
                        .col(string_null(AuditEvent::PrincipalId))
                        .col(string_null(AuditEvent::Organisation))
                        .col(string_null(AuditEvent::ParticipantId))
                        .col(string_null(AuditEvent::OwnerOrganisation))
                        .col(string(AuditEvent::Decision))
                        .col(text(AuditEvent::Body))
                        .col(string(AuditEvent::PrevHash))
                        .col(string(AuditEvent::Hash))
                        .to_owned(),
                )
                .await?;
            for (name, column) in [
                ("audit_event_by_participant", AuditEvent::ParticipantId),
                ("audit_event_by_principal", AuditEvent::PrincipalId),
                ("audit_event_by_organisation", AuditEvent::Organisation),
                ("audit_event_by_owner", AuditEvent::OwnerOrganisation),
                ("audit_event_by_time", AuditEvent::RecordedAt),
                ("audit_event_by_decision", AuditEvent::Decision),
            ] {
                manager
                    .create_index(
                        Index::create()
                            .name(name)
                            .if_not_exists()
                            .table(AuditEvent::Table)
                            .col(column)
                            .col(AuditEvent::Position)
                            .to_owned(),
                    )
                    .await?;
            }
            manager
                .create_table(
                    Table::create()
                        .table(AuditCheckpoint::Table)
                        .if_not_exists()
                        .col(big_integer(AuditCheckpoint::Position).primary_key())
                        .col(string(AuditCheckpoint::Hash))
                        .col(timestamp_with_time_zone(AuditCheckpoint::SignedAt))
                        .col(string(AuditCheckpoint::Signature))
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(AuditReview::Table)
                        .if_not_exists()
                        .col(big_integer(AuditReview::Position).primary_key())
                        .col(string(AuditReview::ReviewedBy))
                        .col(timestamp_with_time_zone(AuditReview::ReviewedAt))
                        .to_owned(),
                )
                .await?;
            Ok(())
        }
    }
}

/// The audit database's migrations.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![
            Box::new(migration::CreateAuditTables),
            Box::new(migration::CreateAuditIndex),
            Box::new(super::sessions::migration::CreateRevokedSessions),
            Box::new(migration::IndexEarlierEvents),
        ]
    }
}

/// One event as stored: its canonical form, hashed into the chain. Only internal ids, the
/// RPC path, codes and the emergency reason: no names, no personal identity numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When the decision was made (RFC 3339, microseconds).
    pub at: String,
    /// The caller's id; absent when unauthenticated.
    pub principal_id: Option<String>,
    /// `staff`, `system` or `participant`.
    pub principal_kind: Option<String>,
    /// The caller's organisation.
    pub organisation: Option<String>,
    /// The caller's unit.
    pub unit: Option<String>,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The assignment purpose.
    pub purpose: Option<String>,
    /// The link of the system the caller acted through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_through: Option<String>,
    /// The gRPC path.
    pub rpc: String,
    /// `read` or `write`.
    pub action: Option<String>,
    /// The data category code.
    pub category: String,
    /// The participant (internal id).
    pub participant_id: Option<String>,
    /// The organisation owning the data.
    pub owner_organisation: Option<String>,
    /// `allowed`, `disclosure`, `emergency` or `denied`.
    pub decision: String,
    /// The policies (or refusal reason) that decided.
    pub policies: Vec<String>,
    /// The emergency reason given.
    pub emergency_reason: Option<String>,
    /// Participants shown in list rows, with whether each was a disclosure.
    pub rows: Vec<(String, bool)>,
    /// `refused` or `forwarded`.
    pub outcome: String,
    /// The gRPC status code returned.
    pub status: i32,
    /// The trace id.
    pub trace_id: Option<String>,
    /// Organisations with a stake beyond caller and owner: the participant's home
    /// organisations (the region and the home municipality).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stakeholders: Vec<String>,
    /// Ties a write's intent to its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// A research export's study and row count. Absent from every other event's body, so
    /// events written before it existed hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<super::ExportAudit>,
}

/// The organisation scope of events no organisation can be held to: unauthenticated calls
/// and participants' own calls that name no one. Security auditors list it.
pub const SECURITY_SCOPE: &str = "*security*";

/// Index kind of a write's intent whose outcome is not yet in the trail.
const INTENT: &str = "i";

impl Record {
    /// The participants and organisations this event is found under.
    fn index(&self, position: i64) -> Vec<entity::index::Model> {
        let mut keys = std::collections::BTreeSet::new();
        for participant in self
            .participant_id
            .iter()
            .chain(self.rows.iter().map(|(id, _)| id))
        {
            keys.insert(("p", participant.as_str()));
        }
        let organisations: Vec<&str> = self
            .organisation
            .iter()
            .chain(&self.owner_organisation)
            .chain(&self.stakeholders)
            .map(String::as_str)
            .collect();
        if organisations.is_empty() {
            keys.insert(("o", SECURITY_SCOPE));
        }
        // An intent stays findable as open until its outcome is written.
        if self.outcome == "intended"
            && let Some(call) = &self.call_id
        {
            keys.insert((INTENT, call.as_str()));
        }
        for organisation in organisations {
            keys.insert(("o", organisation));
        }
        keys.into_iter()
            .map(|(kind, value)| entity::index::Model {
                kind: kind.to_owned(),
                value: value.to_owned(),
                position,
            })
            .collect()
    }

    /// The keys this event is found under once its call has ended: its index without an
    /// intent, which the outcome closes.
    fn lasting_index(&self, position: i64) -> impl Iterator<Item = entity::index::Model> + use<> {
        self.index(position)
            .into_iter()
            .filter(|key| key.kind != INTENT)
    }
}

impl Record {
    /// The stored form of an event.
    pub fn of(event: &AuditEvent) -> Self {
        let principal = event.principal.as_ref();
        let decision = if !event.allowed {
            "denied"
        } else if event.emergency {
            "emergency"
        } else if event.disclosure {
            "disclosure"
        } else {
            "allowed"
        };
        Self {
            at: event
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            principal_id: principal.map(|p| p.id.clone()),
            principal_kind: principal.map(|p| p.kind.as_str().to_owned()),
            organisation: principal.and_then(|p| p.organisation.clone()),
            unit: principal.and_then(|p| p.unit.clone()),
            roles: principal.map(|p| p.roles.clone()).unwrap_or_default(),
            purpose: principal.and_then(|p| p.purpose.clone()),
            acting_through: principal.and_then(|p| p.acting_through.clone()),
            rpc: event.rpc.clone(),
            action: event.action.map(|a| a.as_str().to_owned()),
            category: category_code(event.category).to_owned(),
            participant_id: event.participant_id.clone(),
            owner_organisation: event.owner_organisation.clone(),
            decision: decision.to_owned(),
            policies: event.policies.clone(),
            emergency_reason: event.emergency_reason.clone(),
            rows: event
                .rows
                .iter()
                .map(|r| (r.participant_id.clone(), r.disclosure))
                .collect(),
            outcome: match event.outcome {
                Outcome::Refused => "refused",
                Outcome::Forwarded => "forwarded",
                Outcome::Intended => "intended",
            }
            .to_owned(),
            status: event.status as i32,
            trace_id: event.trace_id.clone(),
            stakeholders: event.stakeholders.clone(),
            call_id: event.call_id.clone(),
            export: event.export.clone(),
        }
    }
}

/// A stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position (1, 2, ...).
    pub position: u64,
    /// The event.
    pub record: Record,
    /// When an emergency access was reviewed, and by whom.
    pub reviewed: Option<(String, DateTime<Utc>)>,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events checked.
    pub events: u64,
    /// Checkpoints whose signature was checked.
    pub checkpoints: u64,
    /// The first position where the chain is broken; `None` when it is intact.
    pub first_broken: Option<u64>,
    /// What is wrong there.
    pub problem: Option<String>,
}

/// Why the store cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    /// The database failed.
    #[error("audit database: {0}")]
    Database(#[from] DbErr),
    /// The signing key cannot be read or made.
    #[error("audit signing key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A purge would remove events younger than the retention period.
    #[error("events younger than {MIN_RETENTION_DAYS} days are kept")]
    TooRecent,
    /// The writer of an SQLite file cannot open it or start.
    #[error("audit writer: {0}")]
    Writer(String),
}

/// Selects events for follow-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// About this participant.
    pub participant_id: Option<String>,
    /// By this caller.
    pub principal_id: Option<String>,
    /// By callers of this organisation.
    pub organisation: Option<String>,
    /// Touching data this organisation owns.
    pub owner_organisation: Option<String>,
    /// By callers of this organisation or touching data it owns (an auditor's scope).
    pub any_organisation: Option<String>,
    /// With this decision (`allowed`, `disclosure`, `emergency`, `denied`).
    pub decision: Option<String>,
    /// With `any_organisation`: also events no organisation can be held to (a security
    /// auditor's scope).
    pub security_scope: bool,
    /// Emergency accesses not yet reviewed.
    pub unreviewed_emergencies: bool,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

struct Pending {
    record: Record,
    done: oneshot::Sender<Result<u64, AuditError>>,
}

/// Signs and checks checkpoints.
struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    /// Loads the key at `path`, creating it on first use.
    fn at(path: &Path) -> Result<Self, AuditStoreError> {
        let error = |reason: String| AuditStoreError::Key {
            path: path.to_owned(),
            reason,
        };
        if !path.exists() {
            let random = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random)
                .map_err(|_| error("cannot generate".into()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
            }
            samsyn_kit::tls::write_private(path, &hex(pkcs8.as_ref()))
                .map_err(|e| error(e.to_string()))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let bytes = unhex(text.trim()).ok_or_else(|| error("not hex".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| error("not a key".into()))?;
        Ok(Self { pair })
    }

    fn sign(&self, message: &[u8]) -> String {
        hex(self.pair.sign(message).as_ref())
    }

    fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(signature) = unhex(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, self.pair.public_key().as_ref())
            .verify(message, &signature)
            .is_ok()
    }
}

/// What a checkpoint's signature covers.
fn checkpoint_message(position: u64, hash: &str, signed_at: &DateTime<Utc>) -> Vec<u8> {
    format!(
        "samsyn-audit-checkpoint-v1|{position}|{hash}|{}",
        signed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
    .into_bytes()
}

/// The chain hash of event `position` after `prev` with `body`.
fn chain_hash(position: u64, prev: &str, body: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(&position.to_be_bytes());
    context.update(prev.as_bytes());
    context.update(body.as_bytes());
    hex(context.finish().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn position_i64(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

fn position_u64(position: i64) -> u64 {
    u64::try_from(position).unwrap_or_default()
}

/// The head of the chain as committed.
#[derive(Debug, Clone)]
struct Head {
    position: u64,
    hash: String,
    checkpointed: u64,
}

/// The durable audit trail.
pub struct AuditStore {
    db: DatabaseConnection,
    queue: mpsc::Sender<Pending>,
    signer: Arc<Signer>,
    revoked: Arc<crate::auth::RevokedSessions>,
    /// Transactions this store's writer committed.
    commits: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").finish_non_exhaustive()
    }
}

impl AuditStore {
    /// Opens (and migrates) the store at `database_url`, signing checkpoints with the key at
    /// `key_path` (created on first use), and starts its writer.
    pub async fn open(database_url: &str, key_path: &Path) -> Result<Self, AuditStoreError> {
        let signer = Arc::new(Signer::at(key_path)?);
        let db = samsyn_kit::db::connect_with::<Migrator>(
            database_url,
            samsyn_kit::db::Durability::PowerLoss,
        )
        .await?;
        let (queue, pending) = mpsc::channel(QUEUE);
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        match sqlite::file_of(database_url) {
            Some(file) => sqlite::start(&file, Arc::clone(&signer), pending, Arc::clone(&commits))?,
            None => {
                tokio::spawn(write_loop(
                    db.clone(),
                    Arc::clone(&signer),
                    pending,
                    Arc::clone(&commits),
                ));
            }
        }
        let revoked = Arc::new(crate::auth::RevokedSessions::default());
        revoked.add(super::sessions::in_force(&db, unix_now()).await?);
        tokio::spawn(follow_revocations(db.clone(), Arc::downgrade(&revoked)));
        Ok(Self {
            db,
            queue,
            signer,
            revoked,
            commits,
        })
    }

    /// How many transactions this store's writer has committed: with group commit, fewer
    /// than events.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refuses the sessions `revocation` names from now on: stored first, so it outlives a
    /// restart, then in force for the very next call.
    pub async fn revoke(&self, revocation: crate::auth::Revocation) -> Result<(), DbErr> {
        super::sessions::insert(&self.db, &revocation).await?;
        self.revoked.add([revocation]);
        Ok(())
    }

    /// The database, for follow-up queries and tests.
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Appends one record and waits until it is committed; its position.
    pub async fn append(&self, record: Record) -> Result<u64, AuditError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending { record, done })
            .await
            .map_err(|_| AuditError("writer stopped".into()))?;
        committed
            .await
            .map_err(|_| AuditError("writer stopped".into()))?
    }

    /// Events matching `filter` after `after_position`, oldest first, at most `limit`.
    pub async fn query(
        &self,
        filter: &Filter,
        after_position: u64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, DbErr> {
        use entity::event::Column;
        let mut condition = Condition::all().add(Column::Position.gt(position_i64(after_position)));
        let indexed = |kind: &str, value: &str| {
            Column::Position.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(entity::index::Column::Position)
                    .from(entity::index::Entity)
                    .and_where(entity::index::Column::Kind.eq(kind))
                    .and_where(entity::index::Column::Value.eq(value))
                    .to_owned(),
            )
        };
        if let Some(participant) = &filter.participant_id {
            condition = condition.add(indexed("p", participant));
        }
        let exact = [
            (Column::PrincipalId, &filter.principal_id),
            (Column::Organisation, &filter.organisation),
            (Column::OwnerOrganisation, &filter.owner_organisation),
            (Column::Decision, &filter.decision),
        ];
        for (column, value) in exact {
            if let Some(value) = value {
                condition = condition.add(column.eq(value.clone()));
            }
        }
        if let Some(organisation) = &filter.any_organisation {
            let mut scope = Condition::any().add(indexed("o", organisation));
            if filter.security_scope {
                scope = scope.add(indexed("o", SECURITY_SCOPE));
            }
            condition = condition.add(scope);
        }
        if filter.unreviewed_emergencies {
            let reviewed: Vec<i64> = entity::review::Entity::find()
                .all(&self.db)
                .await?
                .into_iter()
                .map(|r| r.position)
                .collect();
            condition = condition
                .add(Column::Decision.eq("emergency"))
                .add(Column::Position.is_not_in(reviewed));
        }
        if let Some(from) = filter.from {
            condition = condition.add(Column::RecordedAt.gte(from));
        }
        if let Some(until) = filter.until {
            condition = condition.add(Column::RecordedAt.lt(until));
        }
        let rows = entity::event::Entity::find()
            .filter(condition)
            .order_by_asc(Column::Position)
            .limit(limit)
            .all(&self.db)
            .await?;
        let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
        let reviews: std::collections::HashMap<i64, (String, DateTime<Utc>)> =
            entity::review::Entity::find()
                .filter(entity::review::Column::Position.is_in(positions))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|r| (r.position, (r.reviewed_by, r.reviewed_at)))
                .collect();
        rows.into_iter()
            .map(|row| {
                let record: Record = serde_json::from_str(&row.body)
                    .map_err(|e| DbErr::Custom(format!("audit event body: {e}")))?;
                Ok(StoredEvent {
                    position: position_u64(row.position),
                    reviewed: reviews.get(&row.position).cloned(),
                    record,
                })
            })
            .collect()
    }

    /// Marks an emergency access reviewed by `reviewer`; false when there is no such
    /// emergency event or it was reviewed already.
    pub async fn mark_reviewed(&self, position: u64, reviewer: &str) -> Result<bool, DbErr> {
        let Some(event) = entity::event::Entity::find_by_id(position_i64(position))
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        if event.decision != "emergency" {
            return Ok(false);
        }
        let inserted = entity::review::Entity::insert(entity::review::ActiveModel {
            position: Set(event.position),
            reviewed_by: Set(reviewer.to_owned()),
            reviewed_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec(&self.db)
        .await?;
        Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(_)))
    }

    /// Recomputes the whole chain and checks every checkpoint's signature.
    pub async fn verify(&self) -> Result<Verification, DbErr> {
        use entity::event::Column;
        let checkpoints = entity::checkpoint::Entity::find()
            .order_by_asc(entity::checkpoint::Column::Position)
            .all(&self.db)
            .await?;
        let mut verification = Verification {
            events: 0,
            checkpoints: 0,
            first_broken: None,
            problem: None,
        };
        let broken = |mut v: Verification, at: u64, problem: &str| {
            v.first_broken = Some(at);
            v.problem = Some(problem.to_owned());
            v
        };
        let mut signed = std::collections::HashMap::new();
        for checkpoint in &checkpoints {
            let position = position_u64(checkpoint.position);
            let message = checkpoint_message(position, &checkpoint.hash, &checkpoint.signed_at);
            if !self.signer.verifies(&message, &checkpoint.signature) {
                return Ok(broken(
                    verification,
                    position,
                    "checkpoint signature invalid",
                ));
            }
            verification.checkpoints += 1;
            signed.insert(position, checkpoint.hash.clone());
        }
        let mut expected_position: Option<u64> = None;
        let mut prev = String::new();
        let mut after = 0i64;
        loop {
            let page = entity::event::Entity::find()
                .filter(Column::Position.gt(after))
                .order_by_asc(Column::Position)
                .limit(VERIFY_PAGE)
                .all(&self.db)
                .await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break;
            };
            // The index is how auditors find events: an entry deleted from it would hide an
            // event from every query, so each must still be there.
            let indexed: std::collections::HashSet<(String, String, i64)> =
                entity::index::Entity::find()
                    .filter(entity::index::Column::Position.between(first.position, last.position))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|key| (key.kind, key.value, key.position))
                    .collect();
            after = last.position;
            for row in page {
                let position = position_u64(row.position);
                match expected_position {
                    None => {
                        // The first event kept: the genesis, or the successor of a checkpoint
                        // that a purge ended at.
                        prev = if position == 1 {
                            GENESIS.to_owned()
                        } else if let Some(hash) = signed.get(&(position - 1)) {
                            hash.clone()
                        } else {
                            // A purge may have ended at the newest checkpoint below: what
                            // follows it up to here is missing.
                            let from = signed
                                .keys()
                                .filter(|c| **c < position)
                                .max()
                                .map_or(1, |c| c + 1);
                            return Ok(broken(verification, from, "events are missing"));
                        };
                    }
                    Some(expected) if expected != position => {
                        return Ok(broken(verification, expected, "event missing"));
                    }
                    Some(_) => {}
                }
                if row.prev_hash != prev {
                    return Ok(broken(verification, position, "chain link broken"));
                }
                if chain_hash(position, &prev, &row.body) != row.hash {
                    return Ok(broken(verification, position, "event altered"));
                }
                let record = match serde_json::from_str::<Record>(&row.body) {
                    Ok(record)
                        if record.principal_id == row.principal_id
                            && record.organisation == row.organisation
                            && record.participant_id == row.participant_id
                            && record.owner_organisation == row.owner_organisation
                            && record.decision == row.decision =>
                    {
                        record
                    }
                    _ => return Ok(broken(verification, position, "index columns altered")),
                };
                if record
                    .lasting_index(row.position)
                    .any(|key| !indexed.contains(&(key.kind, key.value, key.position)))
                {
                    return Ok(broken(verification, position, "index entry missing"));
                }
                if let Some(hash) = signed.get(&position)
                    && *hash != row.hash
                {
                    return Ok(broken(
                        verification,
                        position,
                        "differs from its checkpoint",
                    ));
                }
                prev = row.hash;
                expected_position = Some(position + 1);
                verification.events += 1;
            }
        }
        // A checkpoint beyond the last event: the end of the trail was cut off.
        let end = expected_position.unwrap_or(1);
        if let Some(last) = checkpoints.last().map(|c| position_u64(c.position))
            && last >= end
        {
            return Ok(broken(verification, end, "events at the end are missing"));
        }
        Ok(verification)
    }

    /// Positions of writes whose intent is in the trail and whose outcome is not.
    pub async fn intents_without_outcome(&self) -> Result<Vec<u64>, DbErr> {
        let open = entity::index::Entity::find()
            .filter(entity::index::Column::Kind.eq(INTENT))
            .order_by_asc(entity::index::Column::Position)
            .all(&self.db)
            .await?;
        Ok(open
            .into_iter()
            .map(|row| position_u64(row.position))
            .collect())
    }

    /// Removes events recorded before `cutoff`, up to the newest checkpoint among them, so
    /// the rest still verifies from a signed hash. Refused for anything younger than
    /// [`MIN_RETENTION_DAYS`]. The number of events removed.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, AuditStoreError> {
        if cutoff > Utc::now() - chrono::Duration::days(MIN_RETENTION_DAYS) {
            return Err(AuditStoreError::TooRecent);
        }
        self.purge_through_checkpoint_before(cutoff).await
    }

    /// [`AuditStore::purge_before`] without the retention floor (tests).
    pub async fn purge_through_checkpoint_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, AuditStoreError> {
        use entity::event::Column;
        let checkpoints = entity::checkpoint::Entity::find()
            .order_by_desc(entity::checkpoint::Column::Position)
            .all(&self.db)
            .await?;
        for checkpoint in checkpoints {
            let Some(event) = entity::event::Entity::find_by_id(checkpoint.position)
                .one(&self.db)
                .await?
            else {
                continue;
            };
            if event.recorded_at < cutoff {
                let txn = self.db.begin().await?;
                let deleted = entity::event::Entity::delete_many()
                    .filter(Column::Position.lte(checkpoint.position))
                    .exec(&txn)
                    .await?;
                entity::index::Entity::delete_many()
                    .filter(entity::index::Column::Position.lte(checkpoint.position))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                return Ok(deleted.rows_affected);
            }
        }
        Ok(0)
    }
}

impl AuditTrail for AuditStore {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        let record = Record::of(&event);
        Box::pin(async move { self.append(record).await.map(drop) })
    }

    fn revoked_sessions(&self) -> Option<Arc<crate::auth::RevokedSessions>> {
        Some(Arc::clone(&self.revoked))
    }

    fn emergencies_since(&self, since: DateTime<Utc>) -> super::EmergenciesFuture<'_> {
        Box::pin(async move {
            use entity::event::Column;
            use sea_orm::sea_query::Expr;
            let rows: Vec<FirstEmergency> = entity::event::Entity::find()
                .select_only()
                .column(Column::PrincipalId)
                .column(Column::ParticipantId)
                .column_as(
                    Expr::from(sea_orm::sea_query::Func::min(Expr::col(Column::RecordedAt))),
                    "first",
                )
                .filter(Column::Decision.eq("emergency"))
                .filter(Column::RecordedAt.gt(since))
                .group_by(Column::PrincipalId)
                .group_by(Column::ParticipantId)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(|e| AuditError(format!("emergencies not read: {e}")))?;
            Ok(rows
                .into_iter()
                .filter_map(|(staff, participant, first)| Some(((staff?, participant?), first?)))
                .collect())
        })
    }
}

/// One row of the first-emergency query: staff id, participant id, first time.
type FirstEmergency = (Option<String>, Option<String>, Option<DateTime<Utc>>);

/// How often revocations stored by other gateways on the same database are read.
const REVOCATIONS_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads revocations stored by other gateways, and forgets expired ones, while `revoked`
/// lives.
async fn follow_revocations(
    db: DatabaseConnection,
    revoked: std::sync::Weak<crate::auth::RevokedSessions>,
) {
    let mut ticks = tokio::time::interval(REVOCATIONS_READ_EVERY);
    loop {
        ticks.tick().await;
        let Some(revoked) = revoked.upgrade() else {
            break;
        };
        let now = unix_now();
        match super::sessions::in_force(&db, now).await {
            Ok(stored) => {
                revoked.forget_before(now);
                revoked.add(stored);
            }
            Err(error) => tracing::warn!(%error, "revoked sessions not read"),
        }
    }
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn load_head(db: &impl sea_orm::ConnectionTrait) -> Result<Head, DbErr> {
    let last = entity::event::Entity::find()
        .order_by_desc(entity::event::Column::Position)
        .one(db)
        .await?;
    let checkpointed = entity::checkpoint::Entity::find()
        .order_by_desc(entity::checkpoint::Column::Position)
        .one(db)
        .await?
        .map_or(0, |c| position_u64(c.position));
    Ok(match last {
        Some(row) => Head {
            position: position_u64(row.position),
            hash: row.hash,
            checkpointed,
        },
        None => Head {
            position: 0,
            hash: GENESIS.to_owned(),
            checkpointed,
        },
    })
}

/// A batch chained after a head, ready to store: its rows, the intents its outcomes close,
/// and the checkpoint due, if one is.
struct Appending {
    events: Vec<entity::event::Model>,
    index: Vec<entity::index::Model>,
    /// The call ids of the intents the batch's outcomes close.
    closed: Vec<String>,
    checkpoint: Option<entity::checkpoint::Model>,
    /// The head once the batch is stored.
    head: Head,
}

impl Appending {
    /// `batch` chained after `head`, with a checkpoint signed where one is due.
    fn after(head: &Head, batch: &[Pending], signer: &Signer) -> Result<Self, serde_json::Error> {
        let mut next = head.clone();
        let mut events = Vec::with_capacity(batch.len());
        let mut index = Vec::new();
        let mut checkpoint = None;
        for Pending { record, .. } in batch {
            let body = serde_json::to_string(record)?;
            let position = next.position + 1;
            let hash = chain_hash(position, &next.hash, &body);
            index.extend(record.index(position_i64(position)));
            let recorded_at = DateTime::parse_from_rfc3339(&record.at)
                .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
            events.push(entity::event::Model {
                position: position_i64(position),
                recorded_at,
                principal_id: record.principal_id.clone(),
                organisation: record.organisation.clone(),
                participant_id: record.participant_id.clone(),
                owner_organisation: record.owner_organisation.clone(),
                decision: record.decision.clone(),
                body,
                prev_hash: next.hash.clone(),
                hash: hash.clone(),
            });
            next.position = position;
            next.hash = hash;
            if next.checkpointed == 0 || position >= next.checkpointed + CHECKPOINT_EVERY {
                checkpoint = Some((position, next.hash.clone()));
                next.checkpointed = position;
            }
        }
        let checkpoint = checkpoint.map(|(position, hash)| {
            let signed_at = Utc::now();
            let signature = signer.sign(&checkpoint_message(position, &hash, &signed_at));
            entity::checkpoint::Model {
                position: position_i64(position),
                hash,
                signed_at,
                signature,
            }
        });
        let closed = batch
            .iter()
            .filter(|p| p.record.outcome != "intended")
            .filter_map(|p| p.record.call_id.clone())
            .collect();
        Ok(Self {
            events,
            index,
            closed,
            checkpoint,
            head: next,
        })
    }

    /// The position of its first event.
    fn first_position(&self) -> u64 {
        self.events
            .first()
            .map_or(self.head.position + 1, |e| position_u64(e.position))
    }
}

/// Takes the events waiting in `pending` into `batch`, up to [`MAX_BATCH`]; `true` when the
/// writer should give up its turn once and look again.
///
/// Under load (the last commit, `last_batch`, carried several events), callers whose calls
/// are in flight are about to hand in theirs: the writer yields up to [`LINGER_YIELDS`] times
/// (counted in `lingered`) to let them, so one commit carries more events. A lone caller is
/// never kept waiting for nobody.
fn gather(
    batch: &mut Vec<Pending>,
    pending: &mut mpsc::Receiver<Pending>,
    last_batch: usize,
    lingered: &mut usize,
) -> bool {
    let linger = if last_batch > 1 { LINGER_YIELDS } else { 0 };
    while batch.len() < MAX_BATCH {
        match pending.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) if *lingered < linger => {
                *lingered += 1;
                return true;
            }
            Err(_) => return false,
        }
    }
    false
}

/// Tells each caller in `batch` how its event fared (its position once committed) and empties
/// the batch; counts the commit.
fn answer<E: std::fmt::Display>(
    batch: &mut Vec<Pending>,
    written: Result<u64, E>,
    commits: &std::sync::atomic::AtomicU64,
) {
    match written {
        Ok(first_position) => {
            commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (i, waiting) in batch.drain(..).enumerate() {
                let _ = waiting.done.send(Ok(first_position + i as u64));
            }
        }
        Err(error) => {
            tracing::error!(%error, events = batch.len(), "audit batch not committed");
            for waiting in batch.drain(..) {
                let _ = waiting
                    .done
                    .send(Err(AuditError("audit store unavailable".into())));
            }
        }
    }
}

/// The writer of a database reached through the pool (PostgreSQL): one task that commits
/// every waiting event in one transaction.
async fn write_loop(
    db: DatabaseConnection,
    signer: Arc<Signer>,
    mut pending: mpsc::Receiver<Pending>,
    commits: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_batch = 0;
    // The head as this writer last committed it, so that a batch need not read it first;
    // forgotten after any failure, and then read from the database again.
    let mut head: Option<Head> = None;
    while let Some(first) = pending.recv().await {
        batch.push(first);
        let mut lingered = 0;
        while gather(&mut batch, &mut pending, last_batch, &mut lingered) {
            tokio::task::yield_now().await;
        }
        last_batch = batch.len();
        let known = head.take();
        let retry = known.is_some();
        let written = match write_batch(&db, &signer, &batch, known).await {
            // Another writer of the same database may have appended since this one's last
            // commit, taking the position it meant to use: once more, from the stored head.
            Err(error) if retry => {
                tracing::debug!(%error, "audit batch not appended at the known head; retrying");
                write_batch(&db, &signer, &batch, None).await
            }
            written => written,
        };
        let written = written.map(|(first_position, new_head)| {
            head = Some(new_head);
            first_position
        });
        answer(&mut batch, written, &commits);
    }
}

/// The key of the PostgreSQL advisory lock that serialises appends to the one chain.
const APPEND_LOCK: i64 = 0x5341_4d53_594e_0001;

/// Appends `batch` to the chain in one transaction after `known` (read from the database
/// when `None`); the position of its first event and the new head.
///
/// Several gateways may write one database: each batch takes the append lock (PostgreSQL's
/// transaction-scoped advisory lock; SQLite's write lock is already exclusive), so the chain
/// stays one sequence whoever appends. A `known` head another writer has moved past fails
/// the batch on the position's primary key, and nothing of it is stored.
async fn write_batch(
    db: &DatabaseConnection,
    signer: &Signer,
    batch: &[Pending],
    known: Option<Head>,
) -> Result<(u64, Head), DbErr> {
    let txn = samsyn_kit::db::begin_write(db).await?;
    use sea_orm::ConnectionTrait;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [APPEND_LOCK.into()],
        ))
        .await?;
    }
    let head = match known {
        Some(head) => head,
        None => load_head(&txn).await?,
    };
    let appending = Appending::after(&head, batch, signer)
        .map_err(|e| DbErr::Custom(format!("audit record: {e}")))?;
    let first_position = appending.first_position();
    let Appending {
        events,
        index,
        closed,
        checkpoint,
        head: next,
    } = appending;
    // Insert in chunks: a statement has a bounded number of parameters.
    let mut rows = events
        .into_iter()
        .map(|event| event.into_active_model().reset_all())
        .peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(100).collect();
        entity::event::Entity::insert_many(chunk).exec(&txn).await?;
    }
    let mut index = index
        .into_iter()
        .map(|key| entity::index::ActiveModel {
            kind: Set(key.kind),
            value: Set(key.value),
            position: Set(key.position),
        })
        .peekable();
    while index.peek().is_some() {
        let chunk: Vec<_> = index.by_ref().take(300).collect();
        entity::index::Entity::insert_many(chunk).exec(&txn).await?;
    }
    if !closed.is_empty() {
        entity::index::Entity::delete_many()
            .filter(entity::index::Column::Kind.eq(INTENT))
            .filter(entity::index::Column::Value.is_in(closed))
            .exec(&txn)
            .await?;
    }
    if let Some(checkpoint) = checkpoint {
        entity::checkpoint::Entity::insert(checkpoint.into_active_model().reset_all())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok((first_position, next))
}
