//! Storage of the consent service: each consent and restriction as its current state plus
//! one version row per change, the change feed and idempotency keys, all written in one
//! transaction per change.

mod entity;
mod migration;

use chrono::Utc;
use prost::Message;
use samsyn_kit::db::{StoreFailure, classify};
use samsyn_kit::feed::{ChangeFeed, NewChange, migration::CreateChangeFeed};
use samsyn_kit::idempotency::{
    self, IdempotencyKey,
    migration::{AddRequestFingerprint, CreateIdempotencyKeys},
};
use samsyn_kit::paging::Page;
use samsyn_kit::write::{Begun, Outcome, Write};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{
    Consent, ConsentError, ConsentRepository, ParticipantId, Record, Restriction, Version,
};
use crate::wire;

/// Every migration of the consent database, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChangeFeed),
            Box::new(CreateIdempotencyKeys),
            Box::new(migration::CreateConsentTables),
            Box::new(AddRequestFingerprint),
            Box::new(migration::NameResearchStudies),
        ]
    }
}

impl From<DbErr> for ConsentError {
    fn from(error: DbErr) -> Self {
        match classify(&error) {
            StoreFailure::Unavailable => {
                tracing::warn!(%error, "consent database unavailable");
                ConsentError::Unavailable
            }
            _ => ConsentError::Internal(Box::new(error)),
        }
    }
}

impl From<idempotency::IdempotencyError> for ConsentError {
    fn from(error: idempotency::IdempotencyError) -> Self {
        match error {
            idempotency::IdempotencyError::Reused => ConsentError::KeyReused,
            idempotency::IdempotencyError::Db(error) => error.into(),
        }
    }
}

/// A stored record that does not decode. Only the position is kept: serde's message may
/// quote the stored text, which can be personal data.
fn corrupt(error: serde_json::Error) -> ConsentError {
    ConsentError::Internal(
        format!(
            "stored record does not decode at line {} column {}",
            error.line(),
            error.column()
        )
        .into(),
    )
}

/// A record kind the store keeps: its name, id, owner and feed payload.
trait Stored: Serialize + DeserializeOwned + Clone + Send + Sync {
    /// The `kind` column, the feed's entity kind and the history's discriminator.
    const KIND: &'static str;
    /// What the caller calls it in NOT_FOUND.
    const NAME: &'static str;
    fn id(&self) -> String;
    fn participant(&self) -> &ParticipantId;
    fn revision(&self) -> u64;
    fn payload(&self) -> Vec<u8>;
}

impl Stored for Consent {
    const KIND: &'static str = "consent";
    const NAME: &'static str = "consent";
    fn id(&self) -> String {
        self.id.to_string()
    }
    fn participant(&self) -> &ParticipantId {
        &self.participant
    }
    fn revision(&self) -> u64 {
        self.revision
    }
    fn payload(&self) -> Vec<u8> {
        wire::consent(self).encode_to_vec()
    }
}

impl Stored for Restriction {
    const KIND: &'static str = "restriction";
    const NAME: &'static str = "restriction";
    fn id(&self) -> String {
        self.id.to_string()
    }
    fn participant(&self) -> &ParticipantId {
        &self.participant
    }
    fn revision(&self) -> u64 {
        self.revision
    }
    fn payload(&self) -> Vec<u8> {
        wire::restriction(self).encode_to_vec()
    }
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The consent service's storage.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    feed: ChangeFeed,
}

impl Store {
    /// Opens (and migrates) the database at `url`.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = samsyn_kit::db::connect::<Migrator>(url).await?;
        Ok(Self {
            feed: ChangeFeed::new(db.clone()),
            db,
        })
    }

    /// The database, for the readiness check.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The service's change feed.
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }
}

impl ConsentRepository for Store {
    /// Stores a new consent; a retry with the same key returns the first one.
    async fn record_consent(
        &self,
        consent: Consent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Consent, ConsentError> {
        self.create("RecordConsent", consent, "recorded", key).await
    }

    /// Stores a new restriction; a retry with the same key returns the first one.
    async fn create_restriction(
        &self,
        restriction: Restriction,
        key: Option<&IdempotencyKey>,
    ) -> Result<Restriction, ConsentError> {
        self.create("CreateRestriction", restriction, "created", key)
            .await
    }

    /// Applies `change` to the consent at `revision` and stores the result as a new version.
    async fn change_consent(
        &self,
        participant: &ParticipantId,
        id: &str,
        revision: u64,
        change_kind: &'static str,
        change: impl FnOnce(&mut Consent) -> Result<(), ConsentError> + Send,
    ) -> Result<Consent, ConsentError> {
        self.change(participant, id, revision, change_kind, None, change)
            .await
    }

    /// Applies `change` to the restriction at `revision`; with a key, a retry returns the
    /// restriction as it is now instead of changing it twice.
    async fn change_restriction(
        &self,
        participant: &ParticipantId,
        id: &str,
        revision: u64,
        change_kind: &'static str,
        key: Option<(&'static str, &IdempotencyKey)>,
        change: impl FnOnce(&mut Restriction) -> Result<(), ConsentError> + Send,
    ) -> Result<Restriction, ConsentError> {
        self.change(participant, id, revision, change_kind, key, change)
            .await
    }

    /// A page of the participant's consents, newest first.
    async fn consents(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> Result<(Vec<Consent>, String), ConsentError> {
        self.list(participant, page).await
    }

    /// A page of the participant's restrictions, newest first.
    async fn restrictions(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> Result<(Vec<Restriction>, String), ConsentError> {
        self.list(participant, page).await
    }

    /// Every consent and restriction of the participant: the facts of a decision.
    async fn facts(
        &self,
        participant: &ParticipantId,
    ) -> Result<(Vec<Consent>, Vec<Restriction>), ConsentError> {
        let rows = entity::record::Entity::find()
            .filter(entity::record::Column::ParticipantId.eq(participant.to_string()))
            .all(&self.db)
            .await?;
        let mut consents = Vec::new();
        let mut restrictions = Vec::new();
        for row in rows {
            match row.kind.as_str() {
                Consent::KIND => consents.push(serde_json::from_str(&row.body).map_err(corrupt)?),
                _ => restrictions.push(serde_json::from_str(&row.body).map_err(corrupt)?),
            }
        }
        Ok((consents, restrictions))
    }

    /// A page of every version of the participant's records, oldest first.
    async fn history(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> Result<(Vec<Version>, String), ConsentError> {
        use entity::record_version::{Column, Entity};
        let mut query = Entity::find()
            .filter(Column::ParticipantId.eq(participant.to_string()))
            .order_by_asc(Column::Sequence)
            .limit(page.fetch_limit());
        if let Some(after) = &page.after {
            let after: i64 = after.parse().map_err(|_| ConsentError::Invalid {
                field: "page.page_token",
                description: "not a token this server issued".into(),
            })?;
            query = query.filter(Column::Sequence.gt(after));
        }
        let mut rows = query.all(&self.db).await?;
        let next = page.finish(&mut rows, |row| row.sequence.to_string());
        let versions = rows
            .into_iter()
            .map(|row| {
                let record = match row.record_kind.as_str() {
                    Consent::KIND => Record::Consent(serde_json::from_str(&row.body)?),
                    _ => Record::Restriction(serde_json::from_str(&row.body)?),
                };
                Ok(Version {
                    change_kind: row.change_kind,
                    record,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(corrupt)?;
        Ok((versions, next))
    }
}

impl Store {
    async fn list<T: Stored>(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> Result<(Vec<T>, String), ConsentError> {
        use entity::record::{Column, Entity};
        // Ids are UUIDv7: ordering by id is ordering by creation.
        let mut query = Entity::find()
            .filter(Column::ParticipantId.eq(participant.to_string()))
            .filter(Column::Kind.eq(T::KIND))
            .order_by_desc(Column::Id)
            .limit(page.fetch_limit());
        if let Some(after) = &page.after {
            query = query.filter(Column::Id.lt(after.as_str()));
        }
        let mut rows = query.all(&self.db).await?;
        let next = page.finish(&mut rows, |row| row.id.clone());
        rows.iter()
            .map(|row| serde_json::from_str(&row.body).map_err(corrupt))
            .collect::<Result<Vec<T>, _>>()
            .map(|records| (records, next))
    }

    async fn create<T: Stored>(
        &self,
        scope: &'static str,
        record: T,
        change_kind: &'static str,
        key: Option<&IdempotencyKey>,
    ) -> Result<T, ConsentError> {
        let write = match Write::begin_keyed(&self.db, &self.feed, scope, key).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return self.replayed(answer).await,
        };
        let result: Result<_, ConsentError> = async {
            let body = serde_json::to_string(&record).map_err(corrupt)?;
            entity::record::ActiveModel {
                id: Set(record.id()),
                kind: Set(T::KIND.to_owned()),
                participant_id: Set(record.participant().to_string()),
                revision: Set(as_i64(record.revision())),
                body: Set(body.clone()),
            }
            .insert(write.txn())
            .await?;
            version(&write, &record, change_kind, body).await?;
            let answer = record.id().into_bytes();
            Ok((record, answer))
        }
        .await;
        self.finish(write, result).await
    }

    async fn change<T: Stored>(
        &self,
        participant: &ParticipantId,
        id: &str,
        revision: u64,
        change_kind: &'static str,
        key: Option<(&'static str, &IdempotencyKey)>,
        change: impl FnOnce(&mut T) -> Result<(), ConsentError> + Send,
    ) -> Result<T, ConsentError> {
        let (scope, key) = key.map_or(("", None), |(scope, key)| (scope, Some(key)));
        let write = match Write::begin_keyed(&self.db, &self.feed, scope, key).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return self.replayed(answer).await,
        };
        let result: Result<_, ConsentError> = async {
            let txn = write.txn();
            let Some(row) = entity::record::Entity::find_by_id(id.to_owned())
                .one(txn)
                .await?
                .filter(|row| row.kind == T::KIND && row.participant_id == participant.to_string())
            else {
                return Err(ConsentError::NotFound(T::NAME));
            };
            let current = u64::try_from(row.revision).unwrap_or_default();
            if current != revision {
                return Err(ConsentError::StaleRevision { current });
            }
            let mut record: T = serde_json::from_str(&row.body).map_err(corrupt)?;
            change(&mut record)?;
            let body = serde_json::to_string(&record).map_err(corrupt)?;
            // Compare-and-set on the revision: a concurrent change between our read and this
            // write leaves no row to update.
            let updated = entity::record::Entity::update_many()
                .col_expr(
                    entity::record::Column::Revision,
                    sea_orm::sea_query::Expr::value(as_i64(record.revision())),
                )
                .col_expr(
                    entity::record::Column::Body,
                    sea_orm::sea_query::Expr::value(body.clone()),
                )
                .filter(entity::record::Column::Id.eq(id))
                .filter(entity::record::Column::Revision.eq(row.revision))
                .exec(txn)
                .await?;
            if updated.rows_affected != 1 {
                return Err(stale::<T, _>(txn, id).await);
            }
            version(&write, &record, change_kind, body).await?;
            let answer = record.id().into_bytes();
            Ok((record, answer))
        }
        .await;
        self.finish(write, result).await
    }

    /// Ends a write with the record it made, or with the record an earlier call's answer
    /// names.
    async fn finish<T: Stored>(
        &self,
        write: Write<'_>,
        result: Result<(T, Vec<u8>), ConsentError>,
    ) -> Result<T, ConsentError> {
        match write.finish(result).await? {
            Outcome::Done(record) => Ok(record),
            Outcome::Replayed(answer) => self.replayed(answer).await,
        }
    }

    /// The record a remembered answer (its id) names, as it is now.
    async fn replayed<T: Stored>(&self, answer: Vec<u8>) -> Result<T, ConsentError> {
        let id = String::from_utf8(answer).map_err(|e| ConsentError::Internal(Box::new(e)))?;
        let row = entity::record::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(ConsentError::NotFound(T::NAME))?;
        serde_json::from_str(&row.body).map_err(corrupt)
    }
}

/// Why a compare-and-set on `id` updated nothing: its revision moved, or it is gone.
async fn stale<T: Stored, C: ConnectionTrait>(db: &C, id: &str) -> ConsentError {
    match entity::record::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
    {
        Ok(Some(row)) => ConsentError::StaleRevision {
            current: u64::try_from(row.revision).unwrap_or_default(),
        },
        Ok(None) => ConsentError::NotFound(T::NAME),
        Err(error) => error.into(),
    }
}

/// The version row of a change, and its change-feed row queued last in the write.
async fn version<T: Stored>(
    write: &Write<'_>,
    record: &T,
    change_kind: &'static str,
    body: String,
) -> Result<(), DbErr> {
    entity::record_version::ActiveModel {
        sequence: NotSet,
        participant_id: Set(record.participant().to_string()),
        record_kind: Set(T::KIND.to_owned()),
        record_id: Set(record.id()),
        revision: Set(as_i64(record.revision())),
        change_kind: Set(change_kind.to_owned()),
        recorded_at: Set(Utc::now()),
        body: Set(body),
    }
    .insert(write.txn())
    .await?;
    write.append(NewChange {
        entity_kind: T::KIND,
        entity_id: record.id(),
        change_kind,
        participant_id: Some(record.participant().to_string()),
        payload: record.payload(),
    });
    Ok(())
}
