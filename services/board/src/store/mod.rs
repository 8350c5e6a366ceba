//! Storage of the board service: migrations, entities and the queries behind each operation.
//! Every write appends its change to the feed in the same transaction.

mod entities;
mod migration;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use prost::Message;
use samsyn_kit::db::{StoreFailure, classify};
use samsyn_kit::feed::migration::CreateChangeFeed;
use samsyn_kit::feed::{ChangeFeed, NewChange};
use samsyn_kit::idempotency::{
    self, IdempotencyKey,
    migration::{AddRequestFingerprint, CreateIdempotencyKeys},
};
use samsyn_kit::paging::Page;
use samsyn_kit::write::{Begun, Write};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::domain::notice::{DecisionNotice, Fact};
use crate::domain::{
    self, Action, ActionId, BoardError, BoardEvent, BoardRepository, ConfigChange, Coordinator,
    Decision, Discussion, DiscussionId, ENTRY_KIND, Entry, EntryId, EntryUpdate, EventKind,
    Meeting, MeetingId, NewAction, NewDiscussion, NewEntry, NewMeeting, Outcome, ParticipantId,
    Reason, Staff, Status, StatusPoint, TakenOff, Team, TeamId, TeamSpec, Timeline, Trend, Window,
};
use crate::wire;
use entities::{
    board_action, board_entry, board_event, decision_notice, discussion, feed_cursor, meeting,
    participant_fact, status_point, team,
};

/// Every migration of the board database, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChangeFeed),
            Box::new(CreateIdempotencyKeys),
            Box::new(migration::CreateBoard),
            Box::new(AddRequestFingerprint),
            Box::new(migration::CreateAgendaFacts),
        ]
    }
}

impl From<DbErr> for BoardError {
    fn from(error: DbErr) -> Self {
        match classify(&error) {
            StoreFailure::Unavailable => BoardError::Unavailable,
            _ => BoardError::Storage(Box::new(error)),
        }
    }
}

impl From<idempotency::IdempotencyError> for BoardError {
    fn from(error: idempotency::IdempotencyError) -> Self {
        match error {
            idempotency::IdempotencyError::Reused => BoardError::KeyReused,
            idempotency::IdempotencyError::Db(error) => error.into(),
        }
    }
}

/// The time to record, to the microsecond: what PostgreSQL keeps, so an answer built in
/// memory equals the same record read back later.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn corrupt(what: &'static str) -> BoardError {
    BoardError::Storage(format!("stored {what} does not parse").into())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, BoardError> {
    serde_json::to_string(value).map_err(|e| BoardError::Storage(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, BoardError> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

/// The first instant of `day`, in UTC.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn revision(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn db_revision(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Idempotency scopes, one per create RPC.
mod scope {
    pub const CREATE_TEAM: &str = "board.CreateTeam";
    pub const PUT_ON_BOARD: &str = "board.PutOnBoard";
    pub const ADD_ACTION: &str = "board.AddAction";
    pub const START_MEETING: &str = "board.StartMeeting";
    pub const RECORD_DISCUSSION: &str = "board.RecordDiscussion";
}

/// The board's storage.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    feed: ChangeFeed,
}

impl Store {
    /// A store over a migrated database and its feed.
    pub fn new(db: DatabaseConnection, feed: ChangeFeed) -> Self {
        Self { db, feed }
    }

    /// The change feed (for watchers).
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    /// The last committed feed sequence (0 when empty).
    pub async fn cursor(&self) -> Result<u64, BoardError> {
        let last = samsyn_kit::feed::entity::Entity::find()
            .order_by_desc(samsyn_kit::feed::entity::Column::Sequence)
            .one(&self.db)
            .await?;
        Ok(last.map_or(0, |row| revision(row.sequence)))
    }

    /// A write with no idempotency key.
    async fn write(&self) -> Result<Write<'_>, BoardError> {
        Ok(Write::begin(&self.db, &self.feed).await?)
    }

    /// A write under `key` in `scope`, or the answer to replay.
    async fn write_keyed<'a>(
        &'a self,
        scope: &'a str,
        key: Option<&'a IdempotencyKey>,
    ) -> Result<Begun<'a>, BoardError> {
        Ok(Write::begin_keyed(&self.db, &self.feed, scope, key).await?)
    }

    // ---- entries ----

    /// How far the feed `feed` has been applied (0 for not at all).
    pub async fn feed_cursor(&self, feed: &str) -> Result<u64, BoardError> {
        let row = feed_cursor::Entity::find_by_id(feed.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.map_or(0, |r| revision(r.sequence)))
    }

    /// Applies facts learned from `feed` up to its sequence `through`, in one transaction
    /// with the cursor, so a restart resumes after the last change applied and applies
    /// nothing twice. Each entry on a board whose participant's facts changed is appended to
    /// the board's own feed in its new state, so live boards see it.
    pub async fn apply_facts(
        &self,
        feed: &str,
        facts: Vec<Fact>,
        through: u64,
    ) -> Result<(), BoardError> {
        use sea_orm::sea_query::OnConflict;
        let write = self.write().await?;
        let txn = write.txn();
        let mut touched: Vec<ParticipantId> = Vec::new();
        for fact in facts {
            let participant_id = fact.participant_id();
            let key = participant_id.to_string();
            let current = participant_fact::Entity::find_by_id(key.clone())
                .one(txn)
                .await?;
            let (mut revoked, mut latest) = current.as_ref().map_or((None, None), |r| {
                (r.consent_revoked_at, r.latest_decision_at)
            });
            match fact {
                Fact::Decision { mut notice, .. } => {
                    // To the microsecond, as PostgreSQL keeps it.
                    notice.noted_at = notice.noted_at.trunc_subsecs(6);
                    latest = Some(latest.map_or(notice.noted_at, |l| l.max(notice.noted_at)));
                    decision_notice::ActiveModel {
                        id: NotSet,
                        participant_id: Set(key.clone()),
                        noted_at: Set(notice.noted_at),
                        body: Set(to_json(&notice)?),
                    }
                    .insert(txn)
                    .await?;
                }
                Fact::ParticipationConsent { revoked_at, .. } => {
                    let revoked_at = revoked_at.map(|at| at.trunc_subsecs(6));
                    if revoked == revoked_at {
                        continue;
                    }
                    revoked = revoked_at;
                }
            }
            participant_fact::Entity::insert(participant_fact::ActiveModel {
                participant_id: Set(key),
                consent_revoked_at: Set(revoked),
                latest_decision_at: Set(latest),
            })
            .on_conflict(
                OnConflict::column(participant_fact::Column::ParticipantId)
                    .update_columns([
                        participant_fact::Column::ConsentRevokedAt,
                        participant_fact::Column::LatestDecisionAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            if !touched.contains(&participant_id) {
                touched.push(participant_id);
            }
        }
        if !touched.is_empty() {
            let rows = board_entry::Entity::find()
                .filter(
                    board_entry::Column::ParticipantId
                        .is_in(touched.iter().map(ToString::to_string)),
                )
                .filter(board_entry::Column::TakenOffAt.is_null())
                .all(txn)
                .await?;
            for row in rows {
                let id = EntryId::parse(&row.id).map_err(|_| corrupt("entry id"))?;
                let participant_id = ParticipantId::parse(&row.participant_id)
                    .map_err(|_| corrupt("participant id"))?;
                written_entry(&write, id, participant_id, "facts_changed").await?;
            }
        }
        feed_cursor::Entity::insert(feed_cursor::ActiveModel {
            feed: Set(feed.to_owned()),
            sequence: Set(db_revision(through)),
        })
        .on_conflict(
            OnConflict::column(feed_cursor::Column::Feed)
                .update_column(feed_cursor::Column::Sequence)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(write.commit().await?)
    }
}

impl BoardRepository for Store {
    /// Creates a team.
    async fn create_team(
        &self,
        key: Option<IdempotencyKey>,
        spec: TeamSpec,
    ) -> Result<Outcome<Team>, BoardError> {
        let write = match self.write_keyed(scope::CREATE_TEAM, key.as_ref()).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
        };
        let txn = write.txn();
        let now = now();
        let team = Team {
            id: TeamId::generate(),
            spec,
            revision: 1,
        };
        let result: Result<_, BoardError> = async {
            team::ActiveModel {
                id: Set(team.id.to_string()),
                name: Set(team.spec.name.as_str().to_owned()),
                owner_organisation_id: Set(team.spec.owner.as_str().to_owned()),
                coordinators: Set(to_json(&team.spec.coordinators)?),
                config: Set(to_json(&team.spec.config)?),
                revision: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(txn)
            .await?;
            let created = team_change(&team, "created");
            let answer = created.payload.clone();
            write.append(created);
            Ok((team, answer))
        }
        .await;
        write.finish(result).await
    }

    /// One team.
    async fn team(&self, id: TeamId) -> Result<Team, BoardError> {
        load_team(&self.db, id).await
    }

    /// A page of teams by id.
    async fn teams(&self, page: &Page) -> Result<(Vec<Team>, String), BoardError> {
        let mut query = team::Entity::find().order_by_asc(team::Column::Id);
        if let Some(after) = &page.after {
            query = query.filter(team::Column::Id.gt(after.as_str()));
        }
        let rows = query.limit(page.fetch_limit()).all(&self.db).await?;
        let mut teams = rows
            .into_iter()
            .map(team_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page.finish(&mut teams, |t| t.id.to_string());
        Ok((teams, next))
    }

    /// Replaces a team's name, coordinators and configuration.
    async fn update_team(
        &self,
        id: TeamId,
        expected_revision: u64,
        name: domain::TeamName,
        coordinators: Vec<Coordinator>,
        change: ConfigChange,
    ) -> Result<Team, BoardError> {
        let write = self.write().await?;
        let txn = write.txn();
        let mut team = load_team(txn, id).await?;
        if team.revision != expected_revision {
            return Err(BoardError::Stale {
                current: team.revision,
            });
        }
        let config = team.spec.config.changed(change)?;
        config.check_covers(&load_board(txn, id).await?)?;
        team.spec.name = name;
        team.spec.coordinators = coordinators;
        team.spec.config = config;
        team.revision += 1;
        let updated = team::Entity::update_many()
            .set(team::ActiveModel {
                name: Set(team.spec.name.as_str().to_owned()),
                coordinators: Set(to_json(&team.spec.coordinators)?),
                config: Set(to_json(&team.spec.config)?),
                revision: Set(db_revision(team.revision)),
                updated_at: Set(now()),
                ..Default::default()
            })
            .filter(team::Column::Id.eq(id.to_string()))
            .filter(team::Column::Revision.eq(db_revision(expected_revision)))
            .exec(txn)
            .await?;
        if updated.rows_affected != 1 {
            let current = load_team(txn, id).await?.revision;
            return Err(BoardError::Stale { current });
        }
        write.append(team_change(&team, "updated"));
        write.commit().await?;
        Ok(team)
    }

    /// Puts a participant on a team's board.
    async fn put_on_board(
        &self,
        key: Option<IdempotencyKey>,
        new: NewEntry,
    ) -> Result<Outcome<Entry>, BoardError> {
        let write = match self.write_keyed(scope::PUT_ON_BOARD, key.as_ref()).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
        };
        let txn = write.txn();
        let result: Result<_, BoardError> = async {
            let team = load_team(txn, new.team_id).await?;
            team.spec.config.check_criteria("criteria", &new.criteria)?;
            team.spec
                .config
                .check_level("status.level", new.status.level)?;
            let now = now();
            let id = EntryId::generate();
            let existing = board_entry::Entity::find()
                .filter(board_entry::Column::TeamId.eq(new.team_id.to_string()))
                .filter(board_entry::Column::ParticipantId.eq(new.participant_id.to_string()))
                .filter(board_entry::Column::TakenOffAt.is_null())
                .one(txn)
                .await?;
            if existing.is_some() {
                return Err(BoardError::AlreadyOnBoard);
            }
            board_entry::ActiveModel {
                id: Set(id.to_string()),
                team_id: Set(new.team_id.to_string()),
                participant_id: Set(new.participant_id.to_string()),
                reason: Set(new.reason.as_str().to_owned()),
                criteria: Set(to_json(&new.criteria)?),
                status_level: Set(i32::try_from(new.status.level).unwrap_or(i32::MAX)),
                trend: Set(new.status.trend.as_str().to_owned()),
                status_note: Set(new.status.note.as_str().to_owned()),
                next_review_on: Set(new.next_review_on),
                put_on_at: Set(now),
                put_on_by: Set(to_json(&new.recorded_by)?),
                taken_off_at: Set(None),
                taken_off_by: Set(None),
                take_off_reason: Set(None),
                revision: Set(1),
                updated_at: Set(now),
            }
            .insert(txn)
            .await
            .map_err(|e| match classify(&e) {
                StoreFailure::AlreadyExists => BoardError::AlreadyOnBoard,
                _ => e.into(),
            })?;
            let ctx = EventContext {
                entry_id: Some(id),
                team_id: new.team_id,
                participant_id: new.participant_id,
                at: now,
                by: &new.recorded_by,
            };
            insert_status(txn, &ctx, &new.status).await?;
            insert_event(txn, &ctx, EventKind::PutOn, new.reason.as_str(), None, None).await?;
            for action in &new.actions {
                insert_action(txn, &ctx, action, None).await?;
            }
            written_entry(&write, id, new.participant_id, "put_on").await
        }
        .await;
        write.finish(result).await
    }

    /// One entry of the participant.
    async fn entry(&self, id: EntryId, participant_id: ParticipantId) -> Result<Entry, BoardError> {
        load_entry(&self.db, id, participant_id).await
    }

    /// The entries on a team's board, most acute first, and the feed cursor read before them.
    async fn board(&self, team_id: TeamId) -> Result<(Vec<Entry>, u64), BoardError> {
        // The cursor is read first: a change committed in between is then both in the board
        // and replayed to a watcher, which is harmless because changes carry whole entries.
        let cursor = self.cursor().await?;
        load_team(&self.db, team_id).await?;
        let mut entries = load_board(&self.db, team_id).await?;
        domain::sort_board(&mut entries);
        Ok((entries, cursor))
    }

    /// Changes an entry.
    async fn update_entry(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        update: EntryUpdate,
    ) -> Result<Entry, BoardError> {
        let write = self.write().await?;
        let txn = write.txn();
        let entry = load_entry(txn, id, participant_id).await?;
        entry.check_writable(Some(update.expected_revision))?;
        let team = load_team(txn, entry.team_id).await?;
        if let Some(criteria) = &update.criteria {
            team.spec
                .config
                .check_criteria("criteria.codes", criteria)?;
        }
        if let Some(status) = &update.status {
            team.spec.config.check_level("status.level", status.level)?;
        }
        let now = now();
        let mut row = board_entry::ActiveModel {
            revision: Set(db_revision(entry.revision + 1)),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(reason) = &update.reason {
            row.reason = Set(reason.as_str().to_owned());
        }
        if let Some(criteria) = &update.criteria {
            row.criteria = Set(to_json(criteria)?);
        }
        if let Some(status) = &update.status {
            row.status_level = Set(i32::try_from(status.level).unwrap_or(i32::MAX));
            row.trend = Set(status.trend.as_str().to_owned());
            row.status_note = Set(status.note.as_str().to_owned());
        }
        if let Some(review) = update.next_review_on {
            row.next_review_on = Set(Some(review));
        }
        bump_entry(txn, &entry, row).await?;
        let ctx = EventContext {
            entry_id: Some(id),
            team_id: entry.team_id,
            participant_id,
            at: now,
            by: &update.recorded_by,
        };
        if let Some(status) = &update.status {
            insert_status(txn, &ctx, status).await?;
        }
        let detail = update
            .reason
            .as_ref()
            .map(|r| r.as_str())
            .unwrap_or_default();
        insert_event(txn, &ctx, EventKind::Updated, detail, None, None).await?;
        let kind = if update.status.is_some() {
            "status_changed"
        } else {
            "updated"
        };
        let (entry, _) = written_entry(&write, id, participant_id, kind).await?;
        write.commit().await?;
        Ok(entry)
    }

    /// Adds an agreed action to an entry.
    async fn add_action(
        &self,
        key: Option<IdempotencyKey>,
        id: EntryId,
        participant_id: ParticipantId,
        action: NewAction,
        by: Staff,
    ) -> Result<Outcome<Entry>, BoardError> {
        let write = match self.write_keyed(scope::ADD_ACTION, key.as_ref()).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
        };
        let txn = write.txn();
        let result: Result<_, BoardError> = async {
            let entry = load_entry(txn, id, participant_id).await?;
            entry.check_writable(None)?;
            if entry.open_actions() >= domain::MAX_OPEN_ACTIONS {
                return Err(BoardError::LimitReached(
                    "too many open actions on the entry",
                ));
            }
            let now = now();
            bump_entry(txn, &entry, touched(&entry, now)).await?;
            let ctx = EventContext {
                entry_id: Some(id),
                team_id: entry.team_id,
                participant_id,
                at: now,
                by: &by,
            };
            insert_action(txn, &ctx, &action, None).await?;
            written_entry(&write, id, participant_id, "action_added").await
        }
        .await;
        write.finish(result).await
    }

    /// Marks an action done; an action already done is left as it is.
    async fn complete_action(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        action_id: ActionId,
        by: Staff,
    ) -> Result<Entry, BoardError> {
        let write = self.write().await?;
        let txn = write.txn();
        let entry = load_entry(txn, id, participant_id).await?;
        let Some(action) = entry.actions.iter().find(|a| a.id == action_id) else {
            return Err(BoardError::ActionNotFound);
        };
        if action.done.is_some() {
            return Ok(entry);
        }
        entry.check_writable(None)?;
        let now = now();
        let description = action.description.as_str().to_owned();
        board_action::Entity::update_many()
            .set(board_action::ActiveModel {
                done_at: Set(Some(now)),
                done_by: Set(Some(to_json(&by)?)),
                ..Default::default()
            })
            .filter(board_action::Column::Id.eq(action_id.to_string()))
            .exec(txn)
            .await?;
        bump_entry(txn, &entry, touched(&entry, now)).await?;
        let ctx = EventContext {
            entry_id: Some(id),
            team_id: entry.team_id,
            participant_id,
            at: now,
            by: &by,
        };
        insert_event(
            txn,
            &ctx,
            EventKind::ActionCompleted,
            &description,
            Some(action_id),
            None,
        )
        .await?;
        let (entry, _) = written_entry(&write, id, participant_id, "action_completed").await?;
        write.commit().await?;
        Ok(entry)
    }

    /// Takes a participant off the board.
    async fn take_off(
        &self,
        id: EntryId,
        participant_id: ParticipantId,
        expected_revision: u64,
        reason: Reason,
        by: Staff,
    ) -> Result<Entry, BoardError> {
        let write = self.write().await?;
        let txn = write.txn();
        let entry = load_entry(txn, id, participant_id).await?;
        entry.check_writable(Some(expected_revision))?;
        let now = now();
        let mut row = touched(&entry, now);
        row.taken_off_at = Set(Some(now));
        row.taken_off_by = Set(Some(to_json(&by)?));
        row.take_off_reason = Set(Some(reason.as_str().to_owned()));
        bump_entry(txn, &entry, row).await?;
        let ctx = EventContext {
            entry_id: Some(id),
            team_id: entry.team_id,
            participant_id,
            at: now,
            by: &by,
        };
        insert_event(txn, &ctx, EventKind::TakenOff, reason.as_str(), None, None).await?;
        let (entry, _) = written_entry(&write, id, participant_id, "taken_off").await?;
        write.commit().await?;
        Ok(entry)
    }

    /// A participant's status points and events in a window, oldest first.
    async fn timeline(
        &self,
        participant_id: ParticipantId,
        window: Window,
        team_id: Option<TeamId>,
    ) -> Result<Timeline, BoardError> {
        let mut points = status_point::Entity::find()
            .filter(status_point::Column::ParticipantId.eq(participant_id.to_string()))
            .filter(status_point::Column::RecordedAt.gte(window.start))
            .order_by_asc(status_point::Column::RecordedAt)
            .order_by_asc(status_point::Column::Id);
        let mut events = board_event::Entity::find()
            .filter(board_event::Column::ParticipantId.eq(participant_id.to_string()))
            .filter(board_event::Column::OccurredAt.gte(window.start))
            .order_by_asc(board_event::Column::OccurredAt)
            .order_by_asc(board_event::Column::Id);
        if let Some(end) = window.end {
            points = points.filter(status_point::Column::RecordedAt.lt(end));
            events = events.filter(board_event::Column::OccurredAt.lt(end));
        }
        if let Some(team_id) = team_id {
            points = points.filter(status_point::Column::TeamId.eq(team_id.to_string()));
            events = events.filter(board_event::Column::TeamId.eq(team_id.to_string()));
        }
        let mut before = status_point::Entity::find()
            .filter(status_point::Column::ParticipantId.eq(participant_id.to_string()))
            .filter(status_point::Column::RecordedAt.lt(window.start))
            .order_by_desc(status_point::Column::RecordedAt)
            .order_by_desc(status_point::Column::Id);
        if let Some(team_id) = team_id {
            before = before.filter(status_point::Column::TeamId.eq(team_id.to_string()));
        }
        let before = before.one(&self.db).await?;
        // A participant's history is bounded by their time on boards; cap it anyway.
        let points = points.limit(5000).all(&self.db).await?;
        let events = events.limit(5000).all(&self.db).await?;
        Ok(Timeline {
            points: points
                .into_iter()
                .map(point_from_row)
                .collect::<Result<_, _>>()?,
            events: events
                .into_iter()
                .map(event_from_row)
                .collect::<Result<_, _>>()?,
            before: before.map(point_from_row).transpose()?,
        })
    }

    /// The agenda of a team's meeting on `on`: its items, and the municipal decisions to
    /// bring up per participant.
    async fn agenda(
        &self,
        team_id: TeamId,
        on: NaiveDate,
    ) -> Result<domain::repository::Agenda, BoardError> {
        load_team(&self.db, team_id).await?;
        let previous = meeting::Entity::find()
            .filter(meeting::Column::TeamId.eq(team_id.to_string()))
            .filter(meeting::Column::HeldOn.lt(on))
            .order_by_desc(meeting::Column::HeldOn)
            .one(&self.db)
            .await?
            .map(|m| m.held_on);
        let entries = load_board(&self.db, team_id).await?;
        let notices = if entries.is_empty() {
            Vec::new()
        } else {
            // From two days before the earliest day that can count, to the end of `on`.
            let since = previous
                .unwrap_or(on)
                .checked_sub_days(chrono::Days::new(2))
                .unwrap_or(on);
            decision_notice::Entity::find()
                .filter(
                    decision_notice::Column::ParticipantId
                        .is_in(entries.iter().map(|e| e.participant_id.to_string())),
                )
                .filter(decision_notice::Column::NotedAt.gte(day_start(since)))
                .order_by_asc(decision_notice::Column::NotedAt)
                .order_by_asc(decision_notice::Column::Id)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| {
                    Ok((
                        ParticipantId::parse(&row.participant_id)
                            .map_err(|_| corrupt("participant id"))?,
                        from_json::<DecisionNotice>(&row.body, "decision notice")?,
                    ))
                })
                .collect::<Result<Vec<_>, BoardError>>()?
        };
        let decisions = domain::agenda::decisions(&entries, notices, on, previous);
        Ok((domain::agenda::agenda(entries, on, previous), decisions))
    }

    /// Opens a meeting's minutes.
    async fn start_meeting(
        &self,
        key: Option<IdempotencyKey>,
        new: NewMeeting,
    ) -> Result<Outcome<Meeting>, BoardError> {
        let write = match self.write_keyed(scope::START_MEETING, key.as_ref()).await? {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
        };
        let txn = write.txn();
        let result: Result<_, BoardError> = async {
            load_team(txn, new.team_id).await?;
            let meeting = Meeting {
                id: MeetingId::generate(),
                spec: new,
                started_at: now(),
            };
            meeting::ActiveModel {
                id: Set(meeting.id.to_string()),
                team_id: Set(meeting.spec.team_id.to_string()),
                held_on: Set(meeting.spec.held_on),
                chair: Set(to_json(&meeting.spec.chair)?),
                attendees: Set(to_json(&meeting.spec.attendees)?),
                started_at: Set(meeting.started_at),
            }
            .insert(txn)
            .await?;
            let payload = wire::meeting(&meeting).encode_to_vec();
            write.append(change(
                "meeting",
                meeting.id.to_string(),
                "started",
                None,
                payload.clone(),
            ));
            Ok((meeting, payload))
        }
        .await;
        write.finish(result).await
    }

    /// Records one participant's discussion; new actions join their entry on the board.
    async fn record_discussion(
        &self,
        key: Option<IdempotencyKey>,
        new: NewDiscussion,
    ) -> Result<Outcome<Discussion>, BoardError> {
        let write = match self
            .write_keyed(scope::RECORD_DISCUSSION, key.as_ref())
            .await?
        {
            Begun::Fresh(write) => write,
            Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
        };
        let txn = write.txn();
        let result: Result<_, BoardError> = async {
            let meeting = load_meeting(txn, new.meeting_id).await?;
            let open = board_entry::Entity::find()
                .filter(board_entry::Column::TeamId.eq(meeting.spec.team_id.to_string()))
                .filter(board_entry::Column::ParticipantId.eq(new.participant_id.to_string()))
                .filter(board_entry::Column::TakenOffAt.is_null())
                .one(txn)
                .await?;
            let entry = match open {
                Some(row) => Some(entry_from_row(row, vec![])?),
                None => None,
            };
            if entry.is_none() && !new.actions.is_empty() {
                return Err(BoardError::NotOnBoard);
            }
            let now = now();
            let id = DiscussionId::generate();
            discussion::ActiveModel {
                id: Set(id.to_string()),
                meeting_id: Set(new.meeting_id.to_string()),
                participant_id: Set(new.participant_id.to_string()),
                entry_id: Set(entry.as_ref().map(|e| e.id.to_string())),
                notes: Set(new.notes.as_str().to_owned()),
                decisions: Set(to_json(&new.decisions)?),
                recorded_at: Set(now),
                recorded_by: Set(to_json(&new.recorded_by)?),
            }
            .insert(txn)
            .await?;
            let ctx = EventContext {
                entry_id: entry.as_ref().map(|e| e.id),
                team_id: meeting.spec.team_id,
                participant_id: new.participant_id,
                at: now,
                by: &new.recorded_by,
            };
            let detail = new
                .decisions
                .iter()
                .map(Decision::as_str)
                .collect::<Vec<_>>()
                .join("\n");
            insert_event(
                txn,
                &ctx,
                EventKind::Discussed,
                &detail,
                None,
                Some(new.meeting_id),
            )
            .await?;
            let mut actions = Vec::new();
            if let Some(entry) = &entry
                && !new.actions.is_empty()
            {
                if entry.open_actions() + new.actions.len() > domain::MAX_OPEN_ACTIONS {
                    return Err(BoardError::LimitReached(
                        "too many open actions on the entry",
                    ));
                }
                bump_entry(txn, entry, touched(entry, now)).await?;
                for action in &new.actions {
                    actions
                        .push(insert_action(txn, &ctx, action, Some((new.meeting_id, id))).await?);
                }
                written_entry(&write, entry.id, entry.participant_id, "action_added").await?;
            }
            let discussion = Discussion {
                id,
                meeting_id: new.meeting_id,
                participant_id: new.participant_id,
                entry_id: entry.as_ref().map(|e| e.id),
                notes: new.notes,
                decisions: new.decisions,
                actions,
                recorded_at: now,
                recorded_by: new.recorded_by.clone(),
            };
            let payload = wire::discussion(&discussion).encode_to_vec();
            write.append(change(
                "discussion",
                id.to_string(),
                "recorded",
                Some(new.participant_id),
                payload.clone(),
            ));
            Ok((discussion, payload))
        }
        .await;
        write.finish(result).await
    }

    /// A meeting and its minutes in the order recorded.
    async fn meeting(&self, id: MeetingId) -> Result<(Meeting, Vec<Discussion>), BoardError> {
        let meeting = load_meeting(&self.db, id).await?;
        let rows = discussion::Entity::find()
            .filter(discussion::Column::MeetingId.eq(id.to_string()))
            .order_by_asc(discussion::Column::RecordedAt)
            .order_by_asc(discussion::Column::Id)
            .all(&self.db)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut action_rows = if ids.is_empty() {
            vec![]
        } else {
            board_action::Entity::find()
                .filter(board_action::Column::DiscussionId.is_in(ids))
                .order_by_asc(board_action::Column::CreatedAt)
                .order_by_asc(board_action::Column::Id)
                .all(&self.db)
                .await?
        };
        let mut discussions = Vec::with_capacity(rows.len());
        for row in rows {
            let (mine, rest): (Vec<_>, Vec<_>) = action_rows
                .into_iter()
                .partition(|a| a.discussion_id.as_deref() == Some(row.id.as_str()));
            action_rows = rest;
            let actions = mine
                .into_iter()
                .map(action_from_row)
                .collect::<Result<_, _>>()?;
            discussions.push(Discussion {
                id: DiscussionId::parse(&row.id).map_err(|_| corrupt("discussion id"))?,
                meeting_id: id,
                participant_id: ParticipantId::parse(&row.participant_id)
                    .map_err(|_| corrupt("participant id"))?,
                entry_id: row
                    .entry_id
                    .as_deref()
                    .map(EntryId::parse)
                    .transpose()
                    .map_err(|_| corrupt("entry id"))?,
                notes: domain::MinutesNotes::from_stored(row.notes),
                decisions: from_json(&row.decisions, "decisions")?,
                actions,
                recorded_at: row.recorded_at,
                recorded_by: from_json(&row.recorded_by, "staff")?,
            });
        }
        Ok((meeting, discussions))
    }

    /// A page of a team's meetings, newest first.
    async fn meetings(
        &self,
        team_id: TeamId,
        page: &Page,
    ) -> Result<(Vec<Meeting>, String), BoardError> {
        load_team(&self.db, team_id).await?;
        // Ids are UUIDv7, so id order is the order meetings were opened.
        let mut query = meeting::Entity::find()
            .filter(meeting::Column::TeamId.eq(team_id.to_string()))
            .order_by_desc(meeting::Column::Id);
        if let Some(after) = &page.after {
            query = query.filter(meeting::Column::Id.lt(after.as_str()));
        }
        let rows = query.limit(page.fetch_limit()).all(&self.db).await?;
        let mut meetings = rows
            .into_iter()
            .map(meeting_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page.finish(&mut meetings, |m| m.id.to_string());
        Ok((meetings, next))
    }
}

// ---- helpers inside a transaction ----

/// A change-feed row of this service.
fn change(
    entity_kind: &'static str,
    entity_id: String,
    change_kind: &'static str,
    participant_id: Option<ParticipantId>,
    payload: Vec<u8>,
) -> NewChange {
    NewChange {
        entity_kind,
        entity_id,
        change_kind,
        participant_id: participant_id.map(|p| p.to_string()),
        payload,
    }
}

/// The feed row of a board entry in its new state.
fn entry_change(entry: &Entry, change_kind: &'static str) -> NewChange {
    change(
        ENTRY_KIND,
        entry.id.to_string(),
        change_kind,
        Some(entry.participant_id),
        wire::entry(entry, wire::today()).encode_to_vec(),
    )
}

/// Reads an entry back after a change and queues its feed row, whose payload is also the
/// answer a retry replays.
async fn written_entry(
    write: &Write<'_>,
    id: EntryId,
    participant_id: ParticipantId,
    change_kind: &'static str,
) -> Result<(Entry, Vec<u8>), BoardError> {
    let entry = load_entry(write.txn(), id, participant_id).await?;
    let change = entry_change(&entry, change_kind);
    let answer = change.payload.clone();
    write.append(change);
    Ok((entry, answer))
}

/// The feed row of a team in its new state.
fn team_change(team: &Team, change_kind: &'static str) -> NewChange {
    change(
        "team",
        team.id.to_string(),
        change_kind,
        None,
        wire::team(team).encode_to_vec(),
    )
}

/// Who, what and when, shared by the rows one change writes.
struct EventContext<'a> {
    entry_id: Option<EntryId>,
    team_id: TeamId,
    participant_id: ParticipantId,
    at: DateTime<Utc>,
    by: &'a Staff,
}

async fn insert_status<C: ConnectionTrait>(
    txn: &C,
    ctx: &EventContext<'_>,
    status: &Status,
) -> Result<(), BoardError> {
    status_point::ActiveModel {
        id: NotSet,
        entry_id: Set(ctx.entry_id.map(|e| e.to_string()).unwrap_or_default()),
        team_id: Set(ctx.team_id.to_string()),
        participant_id: Set(ctx.participant_id.to_string()),
        level: Set(i32::try_from(status.level).unwrap_or(i32::MAX)),
        trend: Set(status.trend.as_str().to_owned()),
        note: Set(status.note.as_str().to_owned()),
        recorded_at: Set(ctx.at),
        recorded_by: Set(to_json(ctx.by)?),
    }
    .insert(txn)
    .await?;
    Ok(())
}

async fn insert_event<C: ConnectionTrait>(
    txn: &C,
    ctx: &EventContext<'_>,
    kind: EventKind,
    detail: &str,
    action_id: Option<ActionId>,
    meeting_id: Option<MeetingId>,
) -> Result<(), BoardError> {
    board_event::ActiveModel {
        id: NotSet,
        entry_id: Set(ctx.entry_id.map(|e| e.to_string())),
        team_id: Set(ctx.team_id.to_string()),
        participant_id: Set(ctx.participant_id.to_string()),
        kind: Set(kind.as_str().to_owned()),
        occurred_at: Set(ctx.at),
        recorded_by: Set(to_json(ctx.by)?),
        detail: Set(detail.to_owned()),
        action_id: Set(action_id.map(|a| a.to_string())),
        meeting_id: Set(meeting_id.map(|m| m.to_string())),
    }
    .insert(txn)
    .await?;
    Ok(())
}

async fn insert_action<C: ConnectionTrait>(
    txn: &C,
    ctx: &EventContext<'_>,
    action: &NewAction,
    meeting: Option<(MeetingId, DiscussionId)>,
) -> Result<Action, BoardError> {
    let id = ActionId::generate();
    let entry_id = ctx
        .entry_id
        .ok_or_else(|| BoardError::Storage("an action needs an entry".into()))?;
    board_action::ActiveModel {
        id: Set(id.to_string()),
        entry_id: Set(entry_id.to_string()),
        description: Set(action.description.as_str().to_owned()),
        owner: Set(to_json(&action.owner)?),
        due_on: Set(action.due_on),
        done_at: Set(None),
        done_by: Set(None),
        created_at: Set(ctx.at),
        created_by: Set(to_json(ctx.by)?),
        meeting_id: Set(meeting.map(|(m, _)| m.to_string())),
        discussion_id: Set(meeting.map(|(_, d)| d.to_string())),
    }
    .insert(txn)
    .await?;
    insert_event(
        txn,
        ctx,
        EventKind::ActionAdded,
        action.description.as_str(),
        Some(id),
        meeting.map(|(m, _)| m),
    )
    .await?;
    Ok(Action {
        id,
        description: action.description.clone(),
        owner: action.owner.clone(),
        due_on: action.due_on,
        done: None,
        created_at: ctx.at,
        created_by: ctx.by.clone(),
        meeting_id: meeting.map(|(m, _)| m),
    })
}

/// The row change that only moves an entry's revision and update time.
fn touched(entry: &Entry, now: DateTime<Utc>) -> board_entry::ActiveModel {
    board_entry::ActiveModel {
        revision: Set(db_revision(entry.revision + 1)),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Writes `row` if the entry is still at the revision it was read at.
async fn bump_entry<C: ConnectionTrait>(
    txn: &C,
    entry: &Entry,
    row: board_entry::ActiveModel,
) -> Result<(), BoardError> {
    let updated = board_entry::Entity::update_many()
        .set(row)
        .filter(board_entry::Column::Id.eq(entry.id.to_string()))
        .filter(board_entry::Column::Revision.eq(db_revision(entry.revision)))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        let current = load_entry(txn, entry.id, entry.participant_id)
            .await?
            .revision;
        return Err(BoardError::Stale { current });
    }
    Ok(())
}

async fn load_team<C: ConnectionTrait>(db: &C, id: TeamId) -> Result<Team, BoardError> {
    let row = team::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or(BoardError::TeamNotFound)?;
    team_from_row(row)
}

async fn load_meeting<C: ConnectionTrait>(db: &C, id: MeetingId) -> Result<Meeting, BoardError> {
    let row = meeting::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or(BoardError::MeetingNotFound)?;
    meeting_from_row(row)
}

async fn load_entry<C: ConnectionTrait>(
    db: &C,
    id: EntryId,
    participant_id: ParticipantId,
) -> Result<Entry, BoardError> {
    let row = board_entry::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .filter(|row| row.participant_id == participant_id.to_string())
        .ok_or(BoardError::EntryNotFound)?;
    let actions = board_action::Entity::find()
        .filter(board_action::Column::EntryId.eq(id.to_string()))
        .order_by_asc(board_action::Column::CreatedAt)
        .order_by_asc(board_action::Column::Id)
        .all(db)
        .await?;
    let mut entry = entry_from_row(row, actions)?;
    with_facts(db, std::slice::from_mut(&mut entry)).await?;
    Ok(entry)
}

async fn load_board<C: ConnectionTrait>(db: &C, team_id: TeamId) -> Result<Vec<Entry>, BoardError> {
    let rows = board_entry::Entity::find()
        .filter(board_entry::Column::TeamId.eq(team_id.to_string()))
        .filter(board_entry::Column::TakenOffAt.is_null())
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut actions = board_action::Entity::find()
        .filter(board_action::Column::EntryId.is_in(ids))
        .order_by_asc(board_action::Column::CreatedAt)
        .order_by_asc(board_action::Column::Id)
        .all(db)
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let (mine, rest): (Vec<_>, Vec<_>) =
            actions.into_iter().partition(|a| a.entry_id == row.id);
        actions = rest;
        entries.push(entry_from_row(row, mine)?);
    }
    with_facts(db, &mut entries).await?;
    Ok(entries)
}

// ---- rows to domain ----

fn team_from_row(row: team::Model) -> Result<Team, BoardError> {
    Ok(Team {
        id: TeamId::parse(&row.id).map_err(|_| corrupt("team id"))?,
        spec: TeamSpec {
            name: domain::TeamName::from_stored(row.name),
            owner: domain::OrganisationId::parse(&row.owner_organisation_id)
                .map_err(|_| corrupt("organisation id"))?,
            coordinators: from_json(&row.coordinators, "coordinators")?,
            config: from_json(&row.config, "board configuration")?,
        },
        revision: revision(row.revision),
    })
}

fn action_from_row(row: board_action::Model) -> Result<Action, BoardError> {
    let done = match (row.done_at, row.done_by) {
        (Some(at), Some(by)) => Some((at, from_json(&by, "staff")?)),
        _ => None,
    };
    Ok(Action {
        id: ActionId::parse(&row.id).map_err(|_| corrupt("action id"))?,
        description: domain::ActionDescription::from_stored(row.description),
        owner: from_json(&row.owner, "staff")?,
        due_on: row.due_on,
        done,
        created_at: row.created_at,
        created_by: from_json(&row.created_by, "staff")?,
        meeting_id: row
            .meeting_id
            .as_deref()
            .map(MeetingId::parse)
            .transpose()
            .map_err(|_| corrupt("meeting id"))?,
    })
}

fn entry_from_row(
    row: board_entry::Model,
    actions: Vec<board_action::Model>,
) -> Result<Entry, BoardError> {
    let taken_off = match (row.taken_off_at, row.taken_off_by, row.take_off_reason) {
        (Some(at), Some(by), Some(reason)) => Some(TakenOff {
            at,
            by: from_json(&by, "staff")?,
            reason: Reason::from_stored(reason),
        }),
        _ => None,
    };
    Ok(Entry {
        id: EntryId::parse(&row.id).map_err(|_| corrupt("entry id"))?,
        team_id: TeamId::parse(&row.team_id).map_err(|_| corrupt("team id"))?,
        participant_id: ParticipantId::parse(&row.participant_id)
            .map_err(|_| corrupt("participant id"))?,
        reason: Reason::from_stored(row.reason),
        criteria: from_json(&row.criteria, "criteria")?,
        status: Status {
            level: u32::try_from(row.status_level).unwrap_or_default(),
            trend: Trend::from_stored(&row.trend),
            note: domain::StatusNote::from_stored(row.status_note),
        },
        next_review_on: row.next_review_on,
        actions: actions
            .into_iter()
            .map(action_from_row)
            .collect::<Result<_, _>>()?,
        put_on_at: row.put_on_at,
        put_on_by: from_json(&row.put_on_by, "staff")?,
        taken_off,
        revision: revision(row.revision),
        updated_at: row.updated_at,
        facts: domain::ParticipantFacts::default(),
    })
}

/// Fills in what the feeds said about each entry's participant.
async fn with_facts<C: ConnectionTrait>(db: &C, entries: &mut [Entry]) -> Result<(), BoardError> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e.participant_id.to_string())
        .collect();
    let rows = participant_fact::Entity::find()
        .filter(participant_fact::Column::ParticipantId.is_in(ids))
        .all(db)
        .await?;
    for entry in entries {
        let id = entry.participant_id.to_string();
        if let Some(row) = rows.iter().find(|r| r.participant_id == id) {
            entry.facts = domain::ParticipantFacts {
                participation_consent_revoked_at: row.consent_revoked_at,
                latest_decision_at: row.latest_decision_at,
            };
        }
    }
    Ok(())
}

fn point_from_row(row: status_point::Model) -> Result<StatusPoint, BoardError> {
    Ok(StatusPoint {
        entry_id: EntryId::parse(&row.entry_id).map_err(|_| corrupt("entry id"))?,
        team_id: TeamId::parse(&row.team_id).map_err(|_| corrupt("team id"))?,
        status: Status {
            level: u32::try_from(row.level).unwrap_or_default(),
            trend: Trend::from_stored(&row.trend),
            note: domain::StatusNote::from_stored(row.note),
        },
        recorded_at: row.recorded_at,
        recorded_by: from_json(&row.recorded_by, "staff")?,
    })
}

fn event_from_row(row: board_event::Model) -> Result<BoardEvent, BoardError> {
    Ok(BoardEvent {
        entry_id: row
            .entry_id
            .as_deref()
            .map(EntryId::parse)
            .transpose()
            .map_err(|_| corrupt("entry id"))?,
        team_id: TeamId::parse(&row.team_id).map_err(|_| corrupt("team id"))?,
        kind: EventKind::from_stored(&row.kind).ok_or_else(|| corrupt("event kind"))?,
        occurred_at: row.occurred_at,
        recorded_by: from_json(&row.recorded_by, "staff")?,
        detail: row.detail,
        action_id: row
            .action_id
            .as_deref()
            .map(ActionId::parse)
            .transpose()
            .map_err(|_| corrupt("action id"))?,
        meeting_id: row
            .meeting_id
            .as_deref()
            .map(MeetingId::parse)
            .transpose()
            .map_err(|_| corrupt("meeting id"))?,
    })
}

fn meeting_from_row(row: meeting::Model) -> Result<Meeting, BoardError> {
    Ok(Meeting {
        id: MeetingId::parse(&row.id).map_err(|_| corrupt("meeting id"))?,
        spec: NewMeeting {
            team_id: TeamId::parse(&row.team_id).map_err(|_| corrupt("team id"))?,
            held_on: row.held_on,
            chair: from_json(&row.chair, "staff")?,
            attendees: from_json(&row.attendees, "staff")?,
        },
        started_at: row.started_at,
    })
}
