//! The read model's storage: facts as JSON by kind and id, and per feed the last sequence
//! applied, written in the same transaction as the facts it produced, so a restart resumes
//! exactly after the last change taken in.
//!
//! Reports read the facts from memory: loaded from the database by the first report, then
//! kept current by every write as it commits (one writer at a time, so a write is never
//! missed by, nor applied twice to, the copy in memory). A report takes a snapshot (an
//! `Arc`) and builds from it; a write that finds a report still holding the snapshot
//! changes a copy.

mod entities;
mod migration;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::consultation::{CaseFact, MeetingFact};
use crate::domain::repository::ReadModel;
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

pub use crate::domain::repository::{ExportRecord, ReadModelError as StoreError};

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        Self::Db(Box::new(error))
    }
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

/// The read model.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// The facts in memory, once a report has asked for them.
    cache: Arc<RwLock<Option<Arc<Facts>>>>,
    /// One writer (or first load) at a time.
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// A fact as written, to be put in the copy in memory after the commit.
enum Written {
    Participant(String, ParticipantFact),
    CaseManagers(String, Vec<String>),
    Plan(String, crate::domain::PlanFact),
    Stay(String, crate::domain::StayFact),
    ResearchConsent(String, crate::domain::ConsentFact),
    Case(String, CaseFact),
    Meeting(MeetingFact),
}

impl Store {
    /// A store over `db` (already migrated).
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            cache: Arc::new(RwLock::new(None)),
            writing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Everything the read model holds, from memory (loaded by the first call).
    pub async fn facts(&self) -> Result<Arc<Facts>, StoreError> {
        if let Some(facts) = self.snapshot() {
            return Ok(facts);
        }
        let _one_writer = self.writing.lock().await;
        if let Some(facts) = self.snapshot() {
            return Ok(facts);
        }
        let facts = Arc::new(self.load_facts().await?);
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&facts));
        Ok(facts)
    }

    /// Puts what was just committed in the copy in memory, if there is one yet.
    fn remember(&self, written: Vec<Written>) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        let Some(facts) = cache.as_mut() else { return };
        let facts = Arc::make_mut(facts);
        for fact in written {
            match fact {
                Written::Participant(id, f) => {
                    facts.participants.insert(id, f);
                }
                Written::CaseManagers(id, staff) => {
                    facts.case_managers.insert(id, staff);
                }
                Written::Plan(id, f) => {
                    facts.plans.insert(id, f);
                }
                Written::Stay(id, f) => {
                    facts.stays.insert(id, f);
                }
                Written::ResearchConsent(id, f) => {
                    facts.research_consents.insert(id, f);
                }
                Written::Case(id, case) => {
                    if !facts
                        .consultation_cases
                        .iter()
                        .any(|(known, _)| *known == id)
                    {
                        let at = facts
                            .consultation_cases
                            .partition_point(|(known, _)| *known < id);
                        facts.consultation_cases.insert(at, (id, case));
                    }
                }
                Written::Meeting(meeting) => facts.consultation_meetings.push(meeting),
            }
        }
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
        let _one_writer = self.writing.lock().await;
        let txn = samsyn_kit::db::begin_write(&self.db).await?;
        let mut written = Vec::with_capacity(updates.len());
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
                    save(&txn, PARTICIPANT, id.clone(), &fact).await?;
                    written.push(Written::Participant(id, fact));
                }
                Update::CaseManagers { id, staff } => {
                    save(&txn, CASE_MANAGERS, id.clone(), &staff).await?;
                    written.push(Written::CaseManagers(id, staff));
                }
                Update::Plan { id, fact } => {
                    save(&txn, PLAN, id.clone(), &fact).await?;
                    written.push(Written::Plan(id, fact));
                }
                Update::Stay { id, fact } => {
                    let previous = load(&txn, STAY, &id).await?;
                    let fact = fact.after(previous);
                    save(&txn, STAY, id.clone(), &fact).await?;
                    written.push(Written::Stay(id, fact));
                }
                Update::ResearchConsent { id, fact } => {
                    save(&txn, RESEARCH_CONSENT, id.clone(), &fact).await?;
                    written.push(Written::ResearchConsent(id, fact));
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
        self.remember(written);
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

    fn snapshot(&self) -> Option<Arc<Facts>> {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything the read model holds, read from the database.
    pub async fn load_facts(&self) -> Result<Facts, StoreError> {
        let txn = self.db.begin().await?;
        let mut cases = all(&txn, CASE).await?;
        cases.sort_by(|a: &(String, CaseFact), b| a.0.cmp(&b.0));
        let facts = Facts {
            participants: all(&txn, PARTICIPANT).await?.into_iter().collect(),
            case_managers: all(&txn, CASE_MANAGERS)
                .await?
                .into_iter()
                .collect::<HashMap<_, _>>(),
            plans: all(&txn, PLAN).await?.into_iter().collect(),
            stays: all(&txn, STAY).await?.into_iter().collect(),
            research_consents: all(&txn, RESEARCH_CONSENT).await?.into_iter().collect(),
            consultation_cases: cases,
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

impl ReadModel for Store {
    async fn facts(&self) -> Result<Arc<Facts>, StoreError> {
        Store::facts(self).await
    }

    /// The recorded allocations of `study`, by participant id.
    async fn allocations(&self, study: &str) -> Result<HashMap<String, Allocation>, StoreError> {
        Ok(all(&self.db, &allocation_kind(study))
            .await?
            .into_iter()
            .collect())
    }

    /// Records the allocations an export drew and the export itself, together.
    async fn record_export(
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

    /// Stores a consultation case.
    async fn save_case(&self, id: &str, case: &CaseFact) -> Result<(), StoreError> {
        let _one_writer = self.writing.lock().await;
        insert_new(&self.db, CASE, id.to_owned(), case).await?;
        self.remember(vec![Written::Case(id.to_owned(), case.clone())]);
        Ok(())
    }

    /// The consultation cases, oldest first (ids are time-ordered).
    async fn cases(&self) -> Result<Vec<(String, CaseFact)>, StoreError> {
        let mut cases = all(&self.db, CASE).await?;
        cases.sort_by(|a: &(String, CaseFact), b| a.0.cmp(&b.0));
        Ok(cases)
    }

    /// Stores a consultation meeting.
    async fn save_meeting(&self, id: &str, meeting: &MeetingFact) -> Result<(), StoreError> {
        let _one_writer = self.writing.lock().await;
        insert_new(&self.db, MEETING, id.to_owned(), meeting).await?;
        self.remember(vec![Written::Meeting(meeting.clone())]);
        Ok(())
    }

    /// The consultation meetings, oldest first.
    async fn meetings(&self) -> Result<Vec<(String, MeetingFact)>, StoreError> {
        let mut meetings = all(&self.db, MEETING).await?;
        meetings.sort_by(|a: &(String, MeetingFact), b| a.0.cmp(&b.0));
        Ok(meetings)
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
