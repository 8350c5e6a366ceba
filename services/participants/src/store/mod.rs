//! Storage of the participants service: migrations, entities and queries. Every change is
//! written with its change-feed row in one transaction, after the domain rules ran on the
//! record read inside that transaction.

pub mod entities;
mod migrations;

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use samsyn_kit::db::{StoreFailure, classify};
use samsyn_kit::feed::migration::CreateChangeFeed;
use samsyn_kit::feed::{ChangeFeed, NewChange};
use samsyn_kit::idempotency::{
    self, IdempotencyKey,
    migration::{AddRequestFingerprint, CreateIdempotencyKeys},
};
use samsyn_kit::write::{self, Begun, Write};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::domain::{
    AdmissionCriteria, Assessment, Assignment, AssignmentChange, AssignmentId, AssignmentRole,
    CareRole, ConsentReference, CoordinatorRank, Created, Discharge, DischargeReason, Effect,
    Enrolment, FreeText, KnownConsent, ListFilter, MunicipalityCode, NewReferral, OnConsentRevoked,
    OrganisationId, Outcome, Participant, ParticipantId, ParticipantRepository, ParticipantSummary,
    ParticipantsError, ParticipantsSettings, PersonName, PersonalIdentityNumber, Principal,
    Referral, Review, Staff, StaffId, Status, UnitId, YearCount,
};
use crate::wire;
use entities::{assignment, feed_cursor, participant, participation_consent, referral, review};
pub use migrations::{CreateParticipants, FollowParticipationConsents};

/// Every migration of the participants database, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChangeFeed),
            Box::new(CreateIdempotencyKeys),
            Box::new(CreateParticipants),
            Box::new(AddRequestFingerprint),
            Box::new(FollowParticipationConsents),
        ]
    }
}

/// The idempotency scope of `CreateReferral`.
const CREATE_REFERRAL_SCOPE: &str = "participants.CreateReferral";

/// Feed entity kinds.
const PARTICIPANT_KIND: &str = "participant";
const CARE_TEAM_KIND: &str = "care_team";

/// A stored row that no longer parses: a bug or a hand-edited database.
#[derive(Debug, thiserror::Error)]
#[error("stored {0} row does not parse")]
struct CorruptRow(&'static str);

fn corrupt(what: &'static str) -> ParticipantsError {
    ParticipantsError::Storage(Box::new(CorruptRow(what)))
}

/// The time of a change, to the microsecond: what PostgreSQL keeps, so that an answer and a
/// later read of the same record agree.
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Translates a failed idempotency replay.
fn replayed(error: idempotency::IdempotencyError) -> ParticipantsError {
    match error {
        idempotency::IdempotencyError::Reused => ParticipantsError::KeyReused,
        idempotency::IdempotencyError::Db(error) => db(error),
    }
}

impl From<DbErr> for ParticipantsError {
    fn from(error: DbErr) -> Self {
        db(error)
    }
}

impl From<idempotency::IdempotencyError> for ParticipantsError {
    fn from(error: idempotency::IdempotencyError) -> Self {
        replayed(error)
    }
}

/// Translates a storage error where it arises.
fn db(error: DbErr) -> ParticipantsError {
    match classify(&error) {
        StoreFailure::Unavailable => {
            tracing::warn!(%error, "participants database unavailable");
            ParticipantsError::Unavailable
        }
        _ => ParticipantsError::Storage(Box::new(error)),
    }
}

/// The name the consent feed's cursor is kept under.
const CONSENT_FEED: &str = "consent";

/// A participation consent's state, taken from the consent service's feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentFact {
    /// The consent.
    pub consent: ConsentReference,
    /// Whose it is and whether it counts.
    pub known: KnownConsent,
}

/// The participants service's storage.
#[derive(Clone)]
pub struct ParticipantStore {
    db: DatabaseConnection,
    feed: ChangeFeed,
}

impl std::fmt::Debug for ParticipantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantStore").finish_non_exhaustive()
    }
}

impl ParticipantStore {
    /// Storage over a migrated database.
    pub fn new(db: DatabaseConnection, feed: ChangeFeed) -> Self {
        Self { db, feed }
    }

    /// The change feed.
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    /// How far the consent feed has been applied.
    pub async fn consent_cursor(&self) -> Result<u64, ParticipantsError> {
        let row = feed_cursor::Entity::find_by_id(CONSENT_FEED.to_owned())
            .one(&self.db)
            .await
            .map_err(db)?;
        Ok(row.map_or(0, |r| u64::try_from(r.sequence).unwrap_or_default()))
    }

    /// Applies one change of the consent feed at `sequence`: keeps the participation
    /// consent's state and, when it stopped counting, flags (or ends, per `on_revoked`) the
    /// participation enrolled under it. One transaction with the cursor, so a restart
    /// resumes after the last change applied and applies nothing twice.
    pub async fn apply_consent_change(
        &self,
        sequence: u64,
        fact: Option<ConsentFact>,
        on_revoked: OnConsentRevoked,
    ) -> Result<(), ParticipantsError> {
        use sea_orm::sea_query::OnConflict;
        let write = self.begin_write().await?;
        let txn = write.txn();
        if let Some(fact) = fact {
            participation_consent::Entity::insert(participation_consent::ActiveModel {
                consent_id: Set(fact.consent.to_string()),
                participant_id: Set(fact.known.participant_id.to_string()),
                active: Set(fact.known.active),
            })
            .on_conflict(
                OnConflict::column(participation_consent::Column::ConsentId)
                    .update_column(participation_consent::Column::Active)
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(db)?;
            if !fact.known.active {
                let enrolled: Vec<String> = referral::Entity::find()
                    .select_only()
                    .column(referral::Column::ParticipantId)
                    .filter(referral::Column::ConsentReference.eq(fact.consent.to_string()))
                    .filter(referral::Column::ConsentRevokedAt.is_null())
                    .into_tuple()
                    .all(txn)
                    .await
                    .map_err(db)?;
                for id in enrolled {
                    let id = ParticipantId::parse(&id).map_err(|_| corrupt("referral"))?;
                    let Some(mut p) = load(txn, id).await? else {
                        continue;
                    };
                    let expected = p.revision;
                    let now = now();
                    let Some(kind) = p.participation_consent_ended(fact.consent, on_revoked, now)
                    else {
                        continue;
                    };
                    save_participant(txn, &p, expected).await?;
                    referral::Entity::update(referral_row(&p))
                        .exec(txn)
                        .await
                        .map_err(db)?;
                    if p.status == Status::Discharged {
                        end_assignments(txn, id, None, now).await?;
                        write.append(NewChange {
                            entity_kind: CARE_TEAM_KIND,
                            entity_id: id.to_string(),
                            change_kind: "ended",
                            participant_id: Some(id.to_string()),
                            payload: wire::care_team_to_proto(&p, &[]).encode_to_vec(),
                        });
                    }
                    self.append_participant_change(&write, &p, kind);
                    tracing::info!(participant_id = %id, change = kind, "participation consent ended");
                }
            }
        }
        feed_cursor::Entity::insert(feed_cursor::ActiveModel {
            feed: Set(CONSENT_FEED.to_owned()),
            sequence: Set(i64::try_from(sequence).map_err(|_| corrupt("feed_cursor"))?),
        })
        .on_conflict(
            OnConflict::column(feed_cursor::Column::Feed)
                .update_column(feed_cursor::Column::Sequence)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .map_err(db)?;
        write.commit().await.map_err(db)
    }

    async fn begin_write(&self) -> Result<Write<'_>, ParticipantsError> {
        Write::begin(&self.db, &self.feed).await.map_err(db)
    }

    async fn try_create_referral(
        &self,
        new: NewReferral,
        key: Option<&IdempotencyKey>,
        settings: &ParticipantsSettings,
        blind: bool,
    ) -> Result<Created, ParticipantsError> {
        let write =
            match Write::begin_keyed(&self.db, &self.feed, CREATE_REFERRAL_SCOPE, key).await? {
                Begun::Fresh(write) => write,
                Begun::Replayed(answer) => return Ok(Created::Replayed(answer)),
            };
        let result: Result<_, ParticipantsError> = async {
            let txn = write.txn();
            let existing = load_where(
                txn,
                Key::PersonalIdentityNumber,
                new.pin.as_normalised().to_string(),
            )
            .await?;
            let now = now();
            let referred = Participant::refer(existing.as_ref(), new.clone(), settings, now);
            let p = match (referred, existing.as_ref()) {
                (Ok(p), _) => p,
                (Err(_), Some(known)) if blind => {
                    let answer = self.keep_referral(txn, known, new, now).await?;
                    return Ok((Created::Receipt(answer.clone()), answer));
                }
                (Err(error), _) => return Err(error),
            };
            match &existing {
                Some(previous) => save_participant(txn, &p, previous.revision).await?,
                None => {
                    participant::Entity::insert(participant_row(&p, now))
                        .exec_without_returning(txn)
                        .await
                        .map_err(db)?;
                }
            }
            referral::Entity::insert(referral_row(&p))
                .exec_without_returning(txn)
                .await
                .map_err(db)?;
            self.append_participant_change(&write, &p, "referred");
            Ok(if blind {
                let answer = wire::receipt(&p.referral).encode_to_vec();
                (Created::Receipt(answer.clone()), answer)
            } else {
                let answer = wire::participant_to_proto(&p).encode_to_vec();
                (Created::New(Box::new(p)), answer)
            })
        }
        .await;
        Ok(match write.finish(result).await? {
            write::Outcome::Done(created) => created,
            write::Outcome::Replayed(answer) => Created::Replayed(answer),
        })
    }

    /// Keeps a referral of a known person beside their record, changing nothing of it (and
    /// so appending nothing to the feed); returns the receipt.
    async fn keep_referral(
        &self,
        txn: &DatabaseTransaction,
        known: &Participant,
        new: NewReferral,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, ParticipantsError> {
        let mut kept = known.clone();
        kept.referral = Referral {
            id: uuid::Uuid::now_v7(),
            principal: new.principal,
            referred_by: new.referred_by,
            reason: new.reason,
            criteria: new.criteria,
            referred_at: now,
        };
        kept.outcome = None;
        kept.enrolment = None;
        kept.discharge = None;
        referral::Entity::insert(referral_row(&kept))
            .exec_without_returning(txn)
            .await
            .map_err(db)?;
        Ok(wire::receipt(&kept.referral).encode_to_vec())
    }

    fn append_participant_change(
        &self,
        write: &Write<'_>,
        p: &Participant,
        change_kind: &'static str,
    ) {
        write.append(NewChange {
            entity_kind: PARTICIPANT_KIND,
            entity_id: p.id.to_string(),
            change_kind,
            participant_id: Some(p.id.to_string()),
            payload: wire::participant_summary(p).encode_to_vec(),
        });
    }
}

impl ParticipantRepository for ParticipantStore {
    /// A participation consent as last taken from the consent feed.
    async fn participation_consent(
        &self,
        consent: ConsentReference,
    ) -> Result<Option<KnownConsent>, ParticipantsError> {
        let Some(row) = participation_consent::Entity::find_by_id(consent.to_string())
            .one(&self.db)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        Ok(Some(KnownConsent {
            participant_id: ParticipantId::parse(&row.participant_id)
                .map_err(|_| corrupt("participation_consent"))?,
            active: row.active,
        }))
    }

    /// Refers a person (new participant or new episode); a retry with `key` replays.
    ///
    /// A `blind` referrer (anyone the gateway forwards) gets a receipt that is the same
    /// whether the person is unknown, a former or an active participant: for an active one
    /// (or one a new episode cannot open for) the referral is kept beside the participant
    /// for its reviewers and the participant is left as it is.
    async fn create_referral(
        &self,
        new: NewReferral,
        key: Option<&IdempotencyKey>,
        settings: &ParticipantsSettings,
        blind: bool,
    ) -> Result<Created, ParticipantsError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .try_create_referral(new.clone(), key, settings, blind)
                .await
            {
                Err(ParticipantsError::Storage(source)) => {
                    // A racing first attempt for the same person (one with the same key was
                    // replayed by the write): a blind referrer's second try keeps the referral.
                    let unique = source
                        .downcast_ref::<DbErr>()
                        .is_some_and(|e| classify(e) == StoreFailure::AlreadyExists);
                    if !unique {
                        return Err(ParticipantsError::Storage(source));
                    }
                    if !blind || attempts > 1 {
                        return Err(ParticipantsError::AlreadyActive);
                    }
                }
                other => return other,
            }
        }
    }

    /// Applies `op` to the participant at revision `expected` and stores the result.
    async fn update<F>(
        &self,
        id: ParticipantId,
        expected: u64,
        op: F,
    ) -> Result<Participant, ParticipantsError>
    where
        F: FnOnce(&mut Participant, DateTime<Utc>) -> Result<Effect, ParticipantsError>,
    {
        let write = self.begin_write().await?;
        let txn = write.txn();
        let mut p = load(txn, id)
            .await?
            .ok_or(ParticipantsError::NotFound("participant"))?;
        p.check_revision(expected)?;
        let reviews_before = p.reviews.len();
        let now = now();
        let effect = op(&mut p, now)?;
        save_participant(txn, &p, expected).await?;
        referral::Entity::update(referral_row(&p))
            .exec(txn)
            .await
            .map_err(db)?;
        for r in p.reviews.get(reviews_before..).unwrap_or_default() {
            review::Entity::insert(review_row(&p, r))
                .exec_without_returning(txn)
                .await
                .map_err(db)?;
        }
        if effect.ends_assignments {
            let ended = end_assignments(txn, id, None, now).await?;
            if ended > 0 {
                let payload = wire::care_team_to_proto(&p, &[]).encode_to_vec();
                write.append(NewChange {
                    entity_kind: CARE_TEAM_KIND,
                    entity_id: id.to_string(),
                    change_kind: "ended",
                    participant_id: Some(id.to_string()),
                    payload,
                });
            }
        }
        self.append_participant_change(&write, &p, effect.change_kind);
        write.commit().await.map_err(db)?;
        Ok(p)
    }

    /// Changes the assignments of an enrolled participant at revision `expected`.
    async fn change_assignments<F>(
        &self,
        id: ParticipantId,
        expected: u64,
        change_kind: &'static str,
        op: F,
    ) -> Result<(Participant, Vec<Assignment>), ParticipantsError>
    where
        F: FnOnce(&[Assignment], DateTime<Utc>) -> Result<AssignmentChange, ParticipantsError>,
    {
        let write = self.begin_write().await?;
        let txn = write.txn();
        let mut p = load(txn, id)
            .await?
            .ok_or(ParticipantsError::NotFound("participant"))?;
        p.check_revision(expected)?;
        p.require_enrolled()?;
        let mut current = assignments(txn, id, false).await?;
        let now = now();
        let change = op(&current, now)?;
        if !change.end.is_empty() {
            end_assignments(txn, id, Some(&change.end), now).await?;
            current.retain(|a| !change.end.contains(&a.id));
        }
        if let Some(start) = change.start {
            assignment::Entity::insert(assignment_row(id, &start))
                .exec_without_returning(txn)
                .await
                .map_err(db)?;
            current.push(start);
        }
        p.touch(now);
        save_participant(txn, &p, expected).await?;
        write.append(NewChange {
            entity_kind: CARE_TEAM_KIND,
            entity_id: id.to_string(),
            change_kind,
            participant_id: Some(id.to_string()),
            payload: wire::care_team_to_proto(&p, &current).encode_to_vec(),
        });
        write.commit().await.map_err(db)?;
        Ok((p, current))
    }

    /// One participant.
    async fn get(&self, id: ParticipantId) -> Result<Participant, ParticipantsError> {
        load(&self.db, id)
            .await?
            .ok_or(ParticipantsError::NotFound("participant"))
    }

    /// A participant and their assignments (current, or all with `include_history`).
    async fn care_team(
        &self,
        id: ParticipantId,
        include_history: bool,
    ) -> Result<(Participant, Vec<Assignment>), ParticipantsError> {
        let p = self.get(id).await?;
        let rows = assignments(&self.db, id, include_history).await?;
        Ok((p, rows))
    }

    /// Up to `limit` participants matching `filter` with ids after `after`, in id order.
    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<ParticipantId>,
        limit: u64,
    ) -> Result<Vec<ParticipantSummary>, ParticipantsError> {
        let mut query = participant::Entity::find();
        if let Some(status) = filter.status {
            query = query.filter(participant::Column::Status.eq(status.as_str()));
        }
        if let Some(code) = &filter.home_municipality {
            query = query.filter(participant::Column::HomeMunicipalityCode.eq(code.as_str()));
        }
        if let Some(pin) = &filter.personal_identity_number {
            query =
                query.filter(participant::Column::PersonalIdentityNumber.eq(pin.as_normalised()));
        }
        if let Some(staff) = &filter.staff_id {
            query = query.filter(
                participant::Column::Id.in_subquery(
                    Query::select()
                        .column(assignment::Column::ParticipantId)
                        .from(assignment::Entity)
                        .and_where(assignment::Column::StaffId.eq(staff.as_str()))
                        .and_where(assignment::Column::ValidUntil.is_null())
                        .to_owned(),
                ),
            );
        }
        if let Some(org) = &filter.organisation_id {
            query = query.filter(
                Condition::any()
                    .add(
                        participant::Column::Id.in_subquery(
                            Query::select()
                                .column(assignment::Column::ParticipantId)
                                .from(assignment::Entity)
                                .and_where(assignment::Column::OrganisationId.eq(org.as_str()))
                                .and_where(assignment::Column::ValidUntil.is_null())
                                .to_owned(),
                        ),
                    )
                    .add(
                        participant::Column::CurrentReferralId.in_subquery(
                            Query::select()
                                .column(referral::Column::Id)
                                .from(referral::Entity)
                                .and_where(
                                    referral::Column::ReferredByOrganisationId.eq(org.as_str()),
                                )
                                .to_owned(),
                        ),
                    ),
            );
        }
        if let Some(after) = after {
            query = query.filter(participant::Column::Id.gt(after.to_string()));
        }
        let rows = query
            .order_by_asc(participant::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|row| {
                Ok(ParticipantSummary {
                    id: ParticipantId::parse(&row.id).map_err(|_| corrupt("participant"))?,
                    status: Status::from_stored(&row.status).ok_or(corrupt("participant"))?,
                    revision: u64::try_from(row.revision).map_err(|_| corrupt("participant"))?,
                    name: row.name,
                    home_municipality: row.home_municipality_code,
                })
            })
            .collect()
    }

    /// Enrolments per municipality (at enrolment) and year, for the years `from..=to`.
    async fn enrolment_counts(
        &self,
        from: i32,
        to: i32,
    ) -> Result<Vec<YearCount>, ParticipantsError> {
        let mut counts = Vec::new();
        // One grouped query per year keeps the SQL portable (no date functions).
        for year in from..=to {
            let (Some(first), Some(last)) = (
                NaiveDate::from_ymd_opt(year, 1, 1),
                NaiveDate::from_ymd_opt(year, 12, 31),
            ) else {
                continue;
            };
            let rows: Vec<(Option<String>, i64)> = referral::Entity::find()
                .select_only()
                .column(referral::Column::EnrolledMunicipalityCode)
                .column_as(referral::Column::Id.count(), "count")
                .filter(referral::Column::EnrolledOn.between(first, last))
                .group_by(referral::Column::EnrolledMunicipalityCode)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db)?;
            counts.extend(rows.into_iter().filter_map(|(code, count)| {
                Some(YearCount {
                    municipality: code?,
                    year,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                })
            }));
        }
        Ok(counts)
    }
}

/// Stores the participant row if it is still at `expected`; otherwise the revision is stale.
async fn save_participant<C: ConnectionTrait>(
    txn: &C,
    p: &Participant,
    expected: u64,
) -> Result<(), ParticipantsError> {
    let expected_i64 = i64::try_from(expected).map_err(|_| corrupt("participant"))?;
    let mut row = participant_row(p, p.updated_at);
    row.created_at = sea_orm::ActiveValue::NotSet;
    let result = participant::Entity::update_many()
        .set(row)
        .filter(participant::Column::Id.eq(p.id.to_string()))
        .filter(participant::Column::Revision.eq(expected_i64))
        .exec(txn)
        .await
        .map_err(db)?;
    if result.rows_affected == 1 {
        return Ok(());
    }
    // Another writer committed first.
    let current = participant::Entity::find_by_id(p.id.to_string())
        .one(txn)
        .await
        .map_err(db)?
        .and_then(|row| u64::try_from(row.revision).ok())
        .unwrap_or_default();
    Err(ParticipantsError::StaleRevision { current })
}

/// Ends the current assignments of `id` (only those in `which`, when given); returns how many.
async fn end_assignments<C: ConnectionTrait>(
    txn: &C,
    id: ParticipantId,
    which: Option<&[AssignmentId]>,
    now: DateTime<Utc>,
) -> Result<u64, ParticipantsError> {
    let mut update = assignment::Entity::update_many()
        .col_expr(assignment::Column::ValidUntil, Expr::value(now))
        .filter(assignment::Column::ParticipantId.eq(id.to_string()))
        .filter(assignment::Column::ValidUntil.is_null());
    if let Some(which) = which {
        update = update.filter(assignment::Column::Id.is_in(which.iter().map(ToString::to_string)));
    }
    Ok(update.exec(txn).await.map_err(db)?.rows_affected)
}

/// Which participant [`load_where`] reads.
#[derive(Clone, Copy)]
enum Key {
    Id,
    PersonalIdentityNumber,
}

/// The statement reading a participant, its current referral and that referral's reviews in
/// one round trip: the reviews left-joined, one row per review in recorded order (one row
/// with empty review columns when there is none), the referral left-joined so a missing one
/// reads as corrupt rather than as an unknown participant. Built once per key and backend;
/// the driver prepares it once per connection.
fn load_statement(key: Key, backend: DbBackend) -> &'static str {
    use sea_orm::{IdenStatic, Iterable};
    use std::sync::OnceLock;
    static STATEMENTS: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
    let (slot, column, placeholder) = match (key, backend) {
        (Key::Id, DbBackend::Postgres) => (0, "id", "$1"),
        (Key::PersonalIdentityNumber, DbBackend::Postgres) => (1, "personal_identity_number", "$1"),
        (Key::Id, _) => (2, "id", "?"),
        (Key::PersonalIdentityNumber, _) => (3, "personal_identity_number", "?"),
    };
    STATEMENTS[slot].get_or_init(|| {
        let mut columns: Vec<String> = Vec::new();
        columns.extend(participant::Column::iter().map(|c| format!("p.{0} AS p_{0}", c.as_str())));
        columns.extend(referral::Column::iter().map(|c| format!("r.{0} AS r_{0}", c.as_str())));
        columns.extend(review::Column::iter().map(|c| format!("v.{0} AS v_{0}", c.as_str())));
        format!(
            "SELECT {} FROM participant p \
             LEFT JOIN referral r ON r.id = p.current_referral_id \
             LEFT JOIN review v ON v.referral_id = r.id \
             WHERE p.{column} = {placeholder} \
             ORDER BY v.recorded_at, v.id",
            columns.join(", ")
        )
    })
}

async fn load<C: ConnectionTrait>(
    c: &C,
    id: ParticipantId,
) -> Result<Option<Participant>, ParticipantsError> {
    load_where(c, Key::Id, id.to_string()).await
}

/// The participant whose `key` is `value`, read in one statement ([`load_statement`]).
async fn load_where<C: ConnectionTrait>(
    c: &C,
    key: Key,
    value: String,
) -> Result<Option<Participant>, ParticipantsError> {
    use sea_orm::FromQueryResult;
    let backend = c.get_database_backend();
    let rows = c
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            load_statement(key, backend),
            [value.into()],
        ))
        .await
        .map_err(db)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let row =
        participant::Model::from_query_result(first, "p_").map_err(|_| corrupt("participant"))?;
    let r = referral::Model::from_query_result(first, "r_").map_err(|_| corrupt("referral"))?;
    let mut reviews = Vec::with_capacity(rows.len());
    for row in &rows {
        let present: Option<String> = row.try_get("v_", "id").map_err(|_| corrupt("review"))?;
        if present.is_some() {
            reviews
                .push(review::Model::from_query_result(row, "v_").map_err(|_| corrupt("review"))?);
        }
    }
    to_domain(row, r, reviews).map(Some)
}

fn to_domain(
    row: participant::Model,
    r: referral::Model,
    reviews: Vec<review::Model>,
) -> Result<Participant, ParticipantsError> {
    let today = Utc::now().date_naive();
    let bad = |_| corrupt("participant");
    let bad_referral = |_| corrupt("referral");
    let outcome = match (r.outcome_accepted, r.decided_at) {
        (Some(accepted), Some(decided_at)) => Some(Outcome {
            accepted,
            reason: FreeText::parse(r.outcome_reason.as_deref().unwrap_or_default())
                .map_err(bad_referral)?,
            decided_at,
        }),
        _ => None,
    };
    let enrolment = match (
        &r.consent_reference,
        r.enrolled_on,
        &r.enrolled_municipality_code,
    ) {
        (Some(consent), Some(enrolled_on), Some(code)) => Some(Enrolment {
            consent_reference: ConsentReference::parse(consent).map_err(|_| corrupt("referral"))?,
            enrolled_on,
            municipality: MunicipalityCode::parse(code).map_err(bad_referral)?,
            consent_revoked_at: r.consent_revoked_at,
        }),
        _ => None,
    };
    let discharge = match (&r.discharge_reason, r.discharged_on) {
        (Some(reason), Some(discharged_on)) => Some(Discharge {
            reason: DischargeReason::from_stored(reason).ok_or(corrupt("referral"))?,
            discharged_on,
            note: FreeText::parse(r.discharge_note.as_deref().unwrap_or_default())
                .map_err(bad_referral)?,
        }),
        _ => None,
    };
    let reviews = reviews
        .into_iter()
        .map(|v| {
            Ok(Review {
                principal: Principal::from_stored(&v.principal).ok_or(corrupt("review"))?,
                reviewed_by: staff(&v.staff_id, &v.organisation_id, v.unit_id.as_deref())
                    .ok_or(corrupt("review"))?,
                assessment: Assessment::from_stored(&v.assessment).ok_or(corrupt("review"))?,
                reason: FreeText::parse(&v.reason).map_err(|_| corrupt("review"))?,
                recorded_at: v.recorded_at,
            })
        })
        .collect::<Result<Vec<_>, ParticipantsError>>()?;
    Ok(Participant {
        id: ParticipantId::parse(&row.id).map_err(|_| corrupt("participant"))?,
        pin: PersonalIdentityNumber::parse(&row.personal_identity_number, today)
            .map_err(|_| corrupt("participant"))?,
        name: PersonName::parse(&row.name).map_err(bad)?,
        home_municipality: MunicipalityCode::parse(&row.home_municipality_code).map_err(bad)?,
        status: Status::from_stored(&row.status).ok_or(corrupt("participant"))?,
        referral: Referral {
            id: uuid::Uuid::try_parse(&r.id).map_err(|_| corrupt("referral"))?,
            principal: Principal::from_stored(&r.referring_principal).ok_or(corrupt("referral"))?,
            referred_by: staff(
                &r.referred_by_staff_id,
                &r.referred_by_organisation_id,
                r.referred_by_unit_id.as_deref(),
            )
            .ok_or(corrupt("referral"))?,
            reason: FreeText::parse(&r.reason).map_err(bad_referral)?,
            criteria: AdmissionCriteria {
                long_term_needs_from_both_principals: r.long_term_needs_from_both_principals,
                diagnosis_criteria_met: r.diagnosis_criteria_met,
            },
            referred_at: r.referred_at,
        },
        reviews,
        outcome,
        enrolment,
        discharge,
        revision: u64::try_from(row.revision).map_err(|_| corrupt("participant"))?,
        updated_at: row.updated_at,
    })
}

fn staff(staff_id: &str, organisation_id: &str, unit_id: Option<&str>) -> Option<Staff> {
    Some(Staff {
        staff_id: StaffId::parse(staff_id).ok()?,
        organisation_id: OrganisationId::parse(organisation_id).ok()?,
        unit_id: match unit_id {
            Some(unit) => Some(UnitId::parse(unit).ok()?),
            None => None,
        },
    })
}

async fn assignments<C: ConnectionTrait>(
    c: &C,
    id: ParticipantId,
    include_history: bool,
) -> Result<Vec<Assignment>, ParticipantsError> {
    let mut query =
        assignment::Entity::find().filter(assignment::Column::ParticipantId.eq(id.to_string()));
    if !include_history {
        query = query.filter(assignment::Column::ValidUntil.is_null());
    }
    query
        .order_by_asc(assignment::Column::ValidFrom)
        .order_by_asc(assignment::Column::Id)
        .all(c)
        .await
        .map_err(db)?
        .into_iter()
        .map(|row| assignment_from_row(row).ok_or(corrupt("assignment")))
        .collect()
}

fn assignment_from_row(row: assignment::Model) -> Option<Assignment> {
    let role = match row.kind.as_str() {
        "coordinator" => AssignmentRole::Coordinator {
            principal: Principal::from_stored(row.principal.as_deref()?)?,
            rank: CoordinatorRank::from_stored(row.rank.as_deref()?)?,
        },
        "care_team_member" => AssignmentRole::CareTeamMember {
            role: CareRole::from_stored(row.role.as_deref()?)?,
        },
        "fixed_care_contact" => AssignmentRole::FixedCareContact,
        _ => return None,
    };
    Some(Assignment {
        id: AssignmentId::parse(&row.id).ok()?,
        role,
        staff: staff(&row.staff_id, &row.organisation_id, row.unit_id.as_deref())?,
        valid_from: row.valid_from,
        valid_until: row.valid_until,
    })
}

fn assignment_row(participant_id: ParticipantId, a: &Assignment) -> assignment::ActiveModel {
    let (kind, principal, rank, role) = match a.role {
        AssignmentRole::Coordinator { principal, rank } => (
            "coordinator",
            Some(principal.as_str().to_owned()),
            Some(rank.as_str().to_owned()),
            None,
        ),
        AssignmentRole::CareTeamMember { role } => (
            "care_team_member",
            None,
            None,
            Some(role.as_str().to_owned()),
        ),
        AssignmentRole::FixedCareContact => ("fixed_care_contact", None, None, None),
    };
    assignment::ActiveModel {
        id: Set(a.id.to_string()),
        participant_id: Set(participant_id.to_string()),
        kind: Set(kind.to_owned()),
        principal: Set(principal),
        rank: Set(rank),
        role: Set(role),
        staff_id: Set(a.staff.staff_id.as_str().to_owned()),
        organisation_id: Set(a.staff.organisation_id.as_str().to_owned()),
        unit_id: Set(a.staff.unit_id.as_ref().map(|u| u.as_str().to_owned())),
        valid_from: Set(a.valid_from),
        valid_until: Set(a.valid_until),
    }
}

fn participant_row(p: &Participant, created_at: DateTime<Utc>) -> participant::ActiveModel {
    participant::ActiveModel {
        id: Set(p.id.to_string()),
        personal_identity_number: Set(p.pin.as_normalised().to_owned()),
        name: Set(p.name.as_str().to_owned()),
        home_municipality_code: Set(p.home_municipality.as_str().to_owned()),
        status: Set(p.status.as_str().to_owned()),
        current_referral_id: Set(p.referral.id.to_string()),
        revision: Set(i64::try_from(p.revision).unwrap_or(i64::MAX)),
        created_at: Set(created_at),
        updated_at: Set(p.updated_at),
    }
}

fn referral_row(p: &Participant) -> referral::ActiveModel {
    let r = &p.referral;
    referral::ActiveModel {
        id: Set(r.id.to_string()),
        participant_id: Set(p.id.to_string()),
        referring_principal: Set(r.principal.as_str().to_owned()),
        referred_by_staff_id: Set(r.referred_by.staff_id.as_str().to_owned()),
        referred_by_organisation_id: Set(r.referred_by.organisation_id.as_str().to_owned()),
        referred_by_unit_id: Set(r
            .referred_by
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())),
        reason: Set(r.reason.as_str().to_owned()),
        long_term_needs_from_both_principals: Set(r.criteria.long_term_needs_from_both_principals),
        diagnosis_criteria_met: Set(r.criteria.diagnosis_criteria_met),
        referred_at: Set(r.referred_at),
        outcome_accepted: Set(p.outcome.as_ref().map(|o| o.accepted)),
        outcome_reason: Set(p.outcome.as_ref().map(|o| o.reason.as_str().to_owned())),
        decided_at: Set(p.outcome.as_ref().map(|o| o.decided_at)),
        consent_reference: Set(p
            .enrolment
            .as_ref()
            .map(|e| e.consent_reference.to_string())),
        enrolled_on: Set(p.enrolment.as_ref().map(|e| e.enrolled_on)),
        enrolled_municipality_code: Set(p
            .enrolment
            .as_ref()
            .map(|e| e.municipality.as_str().to_owned())),
        discharge_reason: Set(p.discharge.as_ref().map(|d| d.reason.as_str().to_owned())),
        discharged_on: Set(p.discharge.as_ref().map(|d| d.discharged_on)),
        discharge_note: Set(p.discharge.as_ref().map(|d| d.note.as_str().to_owned())),
        consent_revoked_at: Set(p.enrolment.as_ref().and_then(|e| e.consent_revoked_at)),
    }
}

fn review_row(p: &Participant, r: &Review) -> review::ActiveModel {
    review::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        referral_id: Set(p.referral.id.to_string()),
        participant_id: Set(p.id.to_string()),
        principal: Set(r.principal.as_str().to_owned()),
        staff_id: Set(r.reviewed_by.staff_id.as_str().to_owned()),
        organisation_id: Set(r.reviewed_by.organisation_id.as_str().to_owned()),
        unit_id: Set(r
            .reviewed_by
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())),
        assessment: Set(r.assessment.as_str().to_owned()),
        reason: Set(r.reason.as_str().to_owned()),
        recorded_at: Set(r.recorded_at),
    }
}
