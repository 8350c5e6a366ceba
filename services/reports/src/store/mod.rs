//! The read model's storage: facts as JSON by kind and id, and per feed the last sequence
//! applied, written in the same transaction as the facts it produced, so a restart resumes
//! exactly after the last change taken in.

mod entities;
mod migration;

use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::consultation::{CaseFact, MeetingFact};
use crate::domain::research::Allocation;
use crate::domain::{Facts, Feed, ParticipantFact, Update};
use entities::{fact, feed_cursor};

/// The read model's migrations.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(migration::CreateReadModel)]
    }
}

/// A stored fact that does not decode: the read model is broken.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// A row does not decode.
    #[error("stored {0} does not decode")]
    Corrupt(String),
}

const PARTICIPANT: &str = "participant";
const CASE_MANAGERS: &str = "case_managers";
const PLAN: &str = "plan";
const STAY: &str = "stay";
const RESEARCH_CONSENT: &str = "research_consent";
const EXPORT: &str = "research_export";
const CASE: &str = "consultation_case";
const MEETING: &str = "consultation_meeting";

fn allocation_kind(study: &str) -> String {
    format!("allocation:{study}")
}

/// One research export, as the export log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The study.
    pub study_id: String,
    /// Rows exported.
    pub row_count: u64,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who asked (staff id) and for which organisation.
    pub requested_by: String,
    /// The organisation they acted for.
    pub organisation: String,
}

/// The read model.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store over `db` (already migrated).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The last sequence applied from `feed` (0 for none).
    pub async fn cursor(&self, feed: Feed) -> Result<u64, StoreError> {
        let row = feed_cursor::Entity::find_by_id(feed.as_str().to_owned())
            .one(&self.db)
            .await?;
        Ok(row.map_or(0, |r| u64::try_from(r.sequence).unwrap_or(0)))
    }

    /// Applies `updates` (in feed order) and moves `feed`'s cursor to `sequence`, in one
    /// transaction.
    pub async fn apply(
        &self,
        feed: Feed,
        updates: Vec<Update>,
        sequence: u64,
    ) -> Result<(), StoreError> {
        let txn = samsyn_kit::db::begin_write(&self.db).await?;
        for update in updates {
            match update {
                Update::Participant {
                    id,
                    state,
                    event,
                    at,
                } => {
                    let mut fact: ParticipantFact =
                        load(&txn, PARTICIPANT, &id).await?.unwrap_or_default();
                    fact.apply(state, event, at);
                    save(&txn, PARTICIPANT, id, &fact).await?;
                }
                Update::CaseManagers { id, staff } => save(&txn, CASE_MANAGERS, id, &staff).await?,
                Update::Plan { id, fact } => save(&txn, PLAN, id, &fact).await?,
                Update::Stay { id, fact } => {
                    let previous = load(&txn, STAY, &id).await?;
                    save(&txn, STAY, id, &fact.after(previous)).await?;
                }
                Update::ResearchConsent { id, fact } => {
                    save(&txn, RESEARCH_CONSENT, id, &fact).await?;
                }
            }
        }
        feed_cursor::Entity::insert(feed_cursor::ActiveModel {
            feed: Set(feed.as_str().to_owned()),
            sequence: Set(i64::try_from(sequence).unwrap_or(i64::MAX)),
        })
        .on_conflict(
            OnConflict::column(feed_cursor::Column::Feed)
                .update_column(feed_cursor::Column::Sequence)
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Stores a consultation case.
    pub async fn save_case(&self, id: &str, case: &CaseFact) -> Result<(), StoreError> {
        insert_new(&self.db, CASE, id.to_owned(), case).await
    }

    /// The consultation cases, oldest first (ids are time-ordered).
    pub async fn cases(&self) -> Result<Vec<(String, CaseFact)>, StoreError> {
        let mut cases = all(&self.db, CASE).await?;
        cases.sort_by(|a: &(String, CaseFact), b| a.0.cmp(&b.0));
        Ok(cases)
    }

    /// Stores a consultation meeting.
    pub async fn save_meeting(&self, id: &str, meeting: &MeetingFact) -> Result<(), StoreError> {
        insert_new(&self.db, MEETING, id.to_owned(), meeting).await
    }

    /// The consultation meetings, oldest first.
    pub async fn meetings(&self) -> Result<Vec<(String, MeetingFact)>, StoreError> {
        let mut meetings = all(&self.db, MEETING).await?;
        meetings.sort_by(|a: &(String, MeetingFact), b| a.0.cmp(&b.0));
        Ok(meetings)
    }

    /// The recorded allocations of `study`, by participant id.
    pub async fn allocations(
        &self,
        study: &str,
    ) -> Result<HashMap<String, Allocation>, StoreError> {
        Ok(all(&self.db, &allocation_kind(study))
            .await?
            .into_iter()
            .collect())
    }

    /// Records the allocations an export drew and the export itself, together.
    pub async fn record_export(
        &self,
        record: ExportRecord,
        allocations: Vec<(String, Allocation)>,
    ) -> Result<(), StoreError> {
        let txn = samsyn_kit::db::begin_write(&self.db).await?;
        let kind = allocation_kind(&record.study_id);
        for (participant_id, allocation) in allocations {
            insert_new(&txn, &kind, participant_id, &allocation).await?;
        }
        let id = format!("{}-{}", record.at.timestamp_micros(), record.study_id);
        save(&txn, EXPORT, id, &record).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Every recorded export, oldest first.
    pub async fn exports(&self) -> Result<Vec<ExportRecord>, StoreError> {
        let mut records: Vec<ExportRecord> = all(&self.db, EXPORT)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        records.sort_by_key(|r: &ExportRecord| r.at);
        Ok(records)
    }

    /// Everything the read model holds.
    pub async fn facts(&self) -> Result<Facts, StoreError> {
        let txn = self.db.begin().await?;
        let facts = Facts {
            participants: all(&txn, PARTICIPANT).await?.into_iter().collect(),
            case_managers: all(&txn, CASE_MANAGERS)
                .await?
                .into_iter()
                .collect::<HashMap<_, _>>(),
            plans: all(&txn, PLAN).await?.into_iter().map(|(_, f)| f).collect(),
            stays: all(&txn, STAY).await?.into_iter().map(|(_, f)| f).collect(),
            research_consents: all(&txn, RESEARCH_CONSENT)
                .await?
                .into_iter()
                .map(|(_, f)| f)
                .collect(),
            consultation_cases: all(&txn, CASE).await?,
            consultation_meetings: all(&txn, MEETING)
                .await?
                .into_iter()
                .map(|(_, f)| f)
                .collect(),
        };
        txn.commit().await?;
        Ok(facts)
    }
}

async fn load<C: ConnectionTrait, T: DeserializeOwned>(
    db: &C,
    kind: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let row = fact::Entity::find_by_id((kind.to_owned(), id.to_owned()))
        .one(db)
        .await?;
    row.map(|r| serde_json::from_str(&r.body).map_err(|_| StoreError::Corrupt(kind.to_owned())))
        .transpose()
}

async fn save<C: ConnectionTrait, T: Serialize>(
    db: &C,
    kind: &str,
    id: String,
    value: &T,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(value).map_err(|_| StoreError::Corrupt(kind.to_owned()))?;
    fact::Entity::insert(fact::ActiveModel {
        kind: Set(kind.to_owned()),
        id: Set(id),
        body: Set(body),
    })
    .on_conflict(
        OnConflict::columns([fact::Column::Kind, fact::Column::Id])
            .update_column(fact::Column::Body)
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

async fn all<C: ConnectionTrait, T: DeserializeOwned>(
    db: &C,
    kind: &str,
) -> Result<Vec<(String, T)>, StoreError> {
    fact::Entity::find()
        .filter(fact::Column::Kind.eq(kind))
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::from_str(&r.body)
                .map(|f| (r.id, f))
                .map_err(|_| StoreError::Corrupt(kind.to_owned()))
        })
        .collect()
}

/// Inserts a fact that must not exist yet (an allocation is never redrawn).
async fn insert_new<C: ConnectionTrait, T: Serialize>(
    db: &C,
    kind: &str,
    id: String,
    value: &T,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(value).map_err(|_| StoreError::Corrupt(kind.to_owned()))?;
    fact::Entity::insert(fact::ActiveModel {
        kind: Set(kind.to_owned()),
        id: Set(id),
        body: Set(body),
    })
    .on_conflict_do_nothing_on([fact::Column::Kind, fact::Column::Id])
    .exec(db)
    .await?;
    Ok(())
}
