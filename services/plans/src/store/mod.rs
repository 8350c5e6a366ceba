//! Storage of the plans service: migrations, entities and the SQL implementation of the
//! domain's [`PlanRepository`]. Plans are stored as JSON snapshots of the domain aggregate:
//! the current one in `plan`, every revision in `plan_revision`; open follow-ups of active
//! plans are indexed in `follow_up_index` for the due list.

mod entities;
pub mod migrations;

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_kit::db::{StoreFailure, classify};
use samsyn_kit::feed::migration::CreateChangeFeed;
use samsyn_kit::feed::{ChangeFeed, NewChange};
use samsyn_kit::idempotency::{
    self, IdempotencyKey,
    migration::{AddRequestFingerprint, CreateIdempotencyKeys},
};
use samsyn_kit::paging::Page;
use samsyn_kit::write::{Begun, Outcome, Write};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

use crate::domain::PlansError;
use crate::domain::catalogue::{CatalogueEntry, Principal};
use crate::domain::decision::{
    Decision, DecisionReceipt, Disposition, InboxState, ParkReason, ParkedDecision, Resolver,
    Versioned,
};
use crate::domain::plan::{Plan, PlanStatus, RevisionKind};
use crate::domain::repository::{
    DueFollowUp, FollowUpOwner, InboxNote, Paged, PlanRepository, PlanSummary, RevisionSummary,
};
use crate::domain::values::{
    CatalogueCode, Day, ItemId, OrganisationId, ParticipantId, PlanId, TeamId, Text,
};
use crate::wire;
use entities::{catalogue_entry, decision, decision_inbox, follow_up_index, plan, plan_revision};

/// Every migration of the plans database, oldest first.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChangeFeed),
            Box::new(CreateIdempotencyKeys),
            Box::new(migrations::CreatePlans),
            Box::new(migrations::SeedCatalogue),
            Box::new(AddRequestFingerprint),
            Box::new(migrations::CreateDecisionInbox),
            Box::new(migrations::AddRevisionInboxNote),
        ]
    }
}

/// The columns a plan summary is read from: id, status, revision, created, updated.
type SummaryColumns = (String, String, i64, DateTime<Utc>, DateTime<Utc>);

/// The idempotency scope of plan creation.
const CREATE_SCOPE: &str = "plans.CreatePlan";

/// Plans, decisions and the catalogue in an SQL database, with the change feed.
#[derive(Debug, Clone)]
pub struct SqlPlans {
    db: DatabaseConnection,
    feed: ChangeFeed,
}

impl SqlPlans {
    /// A repository over a migrated database and its change feed.
    pub fn new(db: DatabaseConnection, feed: ChangeFeed) -> Self {
        Self { db, feed }
    }
}

fn storage(error: DbErr) -> PlansError {
    match classify(&error) {
        StoreFailure::Unavailable => PlansError::Unavailable,
        _ => PlansError::Storage(Box::new(error)),
    }
}

impl From<DbErr> for PlansError {
    fn from(error: DbErr) -> Self {
        storage(error)
    }
}

impl From<idempotency::IdempotencyError> for PlansError {
    fn from(error: idempotency::IdempotencyError) -> Self {
        match error {
            idempotency::IdempotencyError::Reused => PlansError::KeyReused,
            idempotency::IdempotencyError::Db(error) => storage(error),
        }
    }
}

fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> PlansError {
    PlansError::Storage(Box::new(error))
}

fn status_name(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Active => "active",
        PlanStatus::Closed => "closed",
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A stored JSON body that does not decode. serde's message can quote the stored value
/// (free text), so only the position is kept for the log.
fn bad_json(error: &serde_json::Error) -> PlansError {
    corrupt(std::io::Error::other(format!(
        "stored record does not decode ({:?} at line {} column {})",
        error.classify(),
        error.line(),
        error.column()
    )))
}

fn from_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, PlansError> {
    serde_json::from_str(body).map_err(|e| bad_json(&e))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PlansError> {
    serde_json::to_string(value).map_err(|e| bad_json(&e))
}

fn decode(body: &str) -> Result<Plan, PlansError> {
    from_json(body)
}

fn encode(plan: &Plan) -> Result<String, PlansError> {
    to_json(plan)
}

fn plan_change(plan: &Plan, change_kind: &'static str) -> NewChange {
    NewChange {
        entity_kind: "plan",
        entity_id: plan.id.to_string(),
        change_kind,
        participant_id: Some(plan.participant_id.to_string()),
        payload: wire::plan_to(plan).encode_to_vec(),
    }
}

/// The plan row of `plan_id` if it belongs to `participant_id`.
async fn plan_row<C: ConnectionTrait>(
    db: &C,
    participant_id: ParticipantId,
    plan_id: PlanId,
) -> Result<plan::Model, PlansError> {
    plan::Entity::find_by_id(plan_id.to_string())
        .one(db)
        .await
        .map_err(storage)?
        .filter(|row| row.participant_id == participant_id.to_string())
        .ok_or(PlansError::PlanNotFound)
}

async fn active_row<C: ConnectionTrait>(
    db: &C,
    participant_id: ParticipantId,
) -> Result<Option<plan::Model>, PlansError> {
    plan::Entity::find()
        .filter(plan::Column::ActiveParticipantId.eq(participant_id.to_string()))
        .one(db)
        .await
        .map_err(storage)
}

/// Stores `plan` (already at its new revision) in place of `previous`, with its revision
/// snapshot and follow-up index. Appends nothing to the feed.
async fn store_revision<C: ConnectionTrait>(
    txn: &C,
    plan: &Plan,
    kind: RevisionKind,
    previous: Option<u64>,
) -> Result<(), PlansError> {
    let body = encode(plan)?;
    let active = (plan.status == PlanStatus::Active).then(|| plan.participant_id.to_string());
    match previous {
        None => {
            plan::ActiveModel {
                id: Set(plan.id.to_string()),
                participant_id: Set(plan.participant_id.to_string()),
                active_participant_id: Set(active.clone()),
                status: Set(status_name(plan.status).to_owned()),
                revision: Set(to_i64(plan.revision)),
                body: Set(body.clone()),
                created_at: Set(plan.created_at),
                updated_at: Set(plan.updated_at),
            }
            .insert(txn)
            .await
            .map_err(|e| match classify(&e) {
                StoreFailure::AlreadyExists => PlansError::ActivePlanExists,
                _ => storage(e),
            })?;
        }
        Some(previous) => {
            // The revision condition makes a concurrent writer's change visible as stale
            // even if it committed between our read and this write.
            let updated = plan::Entity::update_many()
                .col_expr(
                    plan::Column::ActiveParticipantId,
                    Expr::value(active.clone()),
                )
                .col_expr(plan::Column::Status, Expr::value(status_name(plan.status)))
                .col_expr(plan::Column::Revision, Expr::value(to_i64(plan.revision)))
                .col_expr(plan::Column::Body, Expr::value(body.clone()))
                .col_expr(plan::Column::UpdatedAt, Expr::value(plan.updated_at))
                .filter(plan::Column::Id.eq(plan.id.to_string()))
                .filter(plan::Column::Revision.eq(to_i64(previous)))
                .exec(txn)
                .await
                .map_err(storage)?;
            if updated.rows_affected != 1 {
                let current: Option<i64> = plan::Entity::find_by_id(plan.id.to_string())
                    .select_only()
                    .column(plan::Column::Revision)
                    .into_tuple()
                    .one(txn)
                    .await
                    .map_err(storage)?;
                return Err(PlansError::StaleRevision {
                    current: current.map_or(previous + 1, to_u64),
                });
            }
        }
    }
    plan_revision::ActiveModel {
        plan_id: Set(plan.id.to_string()),
        revision: Set(to_i64(plan.revision)),
        kind: Set(kind.as_str().to_owned()),
        body: Set(body),
        recorded_at: Set(plan.updated_at),
        inbox_note: Set(None),
    }
    .insert(txn)
    .await
    .map_err(storage)?;
    follow_up_index::Entity::delete_many()
        .filter(follow_up_index::Column::PlanId.eq(plan.id.to_string()))
        .exec(txn)
        .await
        .map_err(storage)?;
    if plan.status == PlanStatus::Active {
        let rows = plan
            .open_follow_ups()
            .map(|f| {
                Ok(follow_up_index::ActiveModel {
                    plan_id: Set(plan.id.to_string()),
                    follow_up_id: Set(f.id.to_string()),
                    participant_id: Set(plan.participant_id.to_string()),
                    organisation_id: Set(f.organisation_id.to_string()),
                    team_id: Set(f.team_id.as_ref().map(ToString::to_string)),
                    due_on: Set(f.due_on.iso()),
                    body: Set(to_json(f)?),
                })
            })
            .collect::<Result<Vec<_>, PlansError>>()?;
        if !rows.is_empty() {
            follow_up_index::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await
                .map_err(storage)?;
        }
    }
    Ok(())
}

fn receipt(row: &decision::Model, replayed: bool) -> Result<DecisionReceipt, PlansError> {
    Ok(DecisionReceipt {
        disposition: Disposition::Applied {
            plan_id: PlanId::parse(&row.plan_id).map_err(corrupt)?,
            intervention_id: ItemId::parse(&row.intervention_id).map_err(corrupt)?,
            plan_revision: to_u64(row.plan_revision),
        },
        replayed,
    })
}

fn inbox_state_name(state: &InboxState) -> &'static str {
    match state {
        InboxState::Parked => "parked",
        InboxState::Linked { .. } => "linked",
        InboxState::Dismissed { .. } => "dismissed",
    }
}

/// The feed row of a municipal decision, by its (organisation, external id).
fn decision_change(decision: &Decision, change_kind: &'static str) -> NewChange {
    NewChange {
        entity_kind: "decision",
        entity_id: format!(
            "{}/{}",
            decision.organisation_id, decision.external_decision_id
        ),
        change_kind,
        participant_id: Some(decision.participant_id.to_string()),
        payload: wire::decision_to(decision).encode_to_vec(),
    }
}

fn inbox_change(parked: &ParkedDecision, change_kind: &'static str) -> NewChange {
    NewChange {
        entity_kind: "decision_inbox",
        entity_id: parked.inbox_id.to_string(),
        change_kind,
        participant_id: Some(parked.decision.participant_id.to_string()),
        payload: wire::parked_to(parked).encode_to_vec(),
    }
}

/// The inbox entry `inbox_id` if it is `participant_id`'s.
async fn inbox_row<C: ConnectionTrait>(
    db: &C,
    participant_id: ParticipantId,
    inbox_id: ItemId,
) -> Result<ParkedDecision, PlansError> {
    let row = decision_inbox::Entity::find_by_id(inbox_id.to_string())
        .one(db)
        .await
        .map_err(storage)?
        .filter(|row| row.participant_id == participant_id.to_string())
        .ok_or(PlansError::InboxEntryNotFound)?;
    from_json(&row.body)
}

/// Stores the new state of an inbox entry (its row exists).
async fn save_inbox<C: ConnectionTrait>(db: &C, parked: &ParkedDecision) -> Result<(), PlansError> {
    decision_inbox::Entity::update_many()
        .col_expr(
            decision_inbox::Column::State,
            Expr::value(inbox_state_name(&parked.state)),
        )
        .col_expr(decision_inbox::Column::Body, Expr::value(to_json(parked)?))
        .filter(decision_inbox::Column::InboxId.eq(parked.inbox_id.to_string()))
        .exec(db)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Notes on the plan's revision `plan.revision` what it did with a parked decision.
async fn note_inbox<C: ConnectionTrait>(
    txn: &C,
    plan: &Plan,
    parked: &ParkedDecision,
) -> Result<(), PlansError> {
    let Some(note) = InboxNote::of(parked) else {
        return Ok(());
    };
    plan_revision::Entity::update_many()
        .col_expr(
            plan_revision::Column::InboxNote,
            Expr::value(Some(to_json(&note)?)),
        )
        .filter(plan_revision::Column::PlanId.eq(plan.id.to_string()))
        .filter(plan_revision::Column::Revision.eq(to_i64(plan.revision)))
        .exec(txn)
        .await
        .map_err(storage)?;
    Ok(())
}

/// Fills in the teams that follow up each parked decision's participant (their active
/// plan's open follow-ups name them).
async fn teams_of<C: ConnectionTrait>(
    db: &C,
    parked: &mut [ParkedDecision],
) -> Result<(), PlansError> {
    if parked.is_empty() {
        return Ok(());
    }
    let participants: Vec<String> = parked
        .iter()
        .map(|p| p.decision.participant_id.to_string())
        .collect();
    let rows: Vec<(String, Option<String>)> = follow_up_index::Entity::find()
        .select_only()
        .column(follow_up_index::Column::ParticipantId)
        .column(follow_up_index::Column::TeamId)
        .filter(follow_up_index::Column::ParticipantId.is_in(participants))
        .filter(follow_up_index::Column::TeamId.is_not_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await
        .map_err(storage)?;
    for p in parked {
        let id = p.decision.participant_id.to_string();
        let mut teams: Vec<TeamId> = rows
            .iter()
            .filter(|(participant, _)| *participant == id)
            .filter_map(|(_, team)| TeamId::parse(team.as_deref()?).ok())
            .collect();
        teams.sort_by_key(ToString::to_string);
        teams.dedup();
        p.teams = teams;
    }
    Ok(())
}

fn catalogue_from(row: catalogue_entry::Model) -> Result<CatalogueEntry, PlansError> {
    Ok(CatalogueEntry {
        code: CatalogueCode::parse(&row.code).map_err(corrupt)?,
        principal: Principal::parse(&row.principal)
            .ok_or_else(|| corrupt(std::io::Error::other("unknown principal")))?,
        name: Text::optional(&row.name, Text::SHORT).map_err(corrupt)?,
        active: row.active,
    })
}

impl SqlPlans {
    async fn write(&self) -> Result<Write<'_>, PlansError> {
        Write::begin(&self.db, &self.feed).await.map_err(storage)
    }

    /// The plan a remembered create answer (its id) names, as it was created.
    async fn replayed_plan(
        &self,
        participant_id: ParticipantId,
        answer: Vec<u8>,
    ) -> Result<Plan, PlansError> {
        let id = String::from_utf8(answer).map_err(corrupt)?;
        let id = PlanId::parse(&id).map_err(corrupt)?;
        self.plan_at(participant_id, id, 1).await
    }

    async fn try_push_decision(&self, decision: &Decision) -> Result<DecisionReceipt, PlansError> {
        let key = (
            decision.organisation_id.to_string(),
            decision.external_decision_id.to_string(),
        );
        let write = self.write().await?;
        let txn = write.txn();
        if let Some(row) = decision::Entity::find_by_id(key.clone())
            .one(txn)
            .await
            .map_err(storage)?
        {
            return self.next_version(write, row, decision).await;
        }
        if let Some(row) = decision_inbox::Entity::find()
            .filter(decision_inbox::Column::OrganisationId.eq(key.0.clone()))
            .filter(decision_inbox::Column::ExternalId.eq(key.1.clone()))
            .one(txn)
            .await
            .map_err(storage)?
        {
            let mut parked: ParkedDecision = from_json(&row.body)?;
            let versioned = decision.against(&parked.decision, &parked.earlier)?;
            let receipt = DecisionReceipt {
                disposition: Disposition::Parked {
                    inbox_id: parked.inbox_id,
                    reason: parked.reason,
                },
                replayed: versioned == Versioned::Replay,
            };
            if versioned == Versioned::Next {
                // A later version of a parked decision stays parked, the earlier ones kept.
                if parked.state != InboxState::Parked {
                    return Err(PlansError::NotParked);
                }
                let earlier = std::mem::replace(&mut parked.decision, decision.clone());
                parked.earlier.push(earlier);
                save_inbox(txn, &parked).await?;
                write.append(inbox_change(&parked, "changed"));
                write.commit().await.map_err(storage)?;
            }
            return Ok(receipt);
        }
        if decision.version > 1 {
            return Err(PlansError::DecisionNotFound);
        }
        let Some(row) = active_row(txn, decision.participant_id).await? else {
            return self
                .park(write, decision.clone(), ParkReason::NoActivePlan)
                .await;
        };
        let mut plan = decode(&row.body)?;
        let previous = plan.revision;
        let intervention_id = match plan.apply_decision(decision) {
            Ok(id) => id,
            Err(e) => match ParkReason::of(&e) {
                Some(reason) => return self.park(write, decision.clone(), reason).await,
                None => return Err(e),
            },
        };
        plan.next_revision(Utc::now());
        store_revision(txn, &plan, RevisionKind::DecisionRecorded, Some(previous)).await?;
        let row = decision::ActiveModel {
            organisation_id: Set(key.0),
            external_id: Set(key.1),
            participant_id: Set(decision.participant_id.to_string()),
            body: Set(to_json(decision)?),
            plan_id: Set(plan.id.to_string()),
            intervention_id: Set(intervention_id.to_string()),
            plan_revision: Set(to_i64(plan.revision)),
            recorded_at: Set(plan.updated_at),
        }
        .insert(txn)
        .await
        .map_err(|e| match classify(&e) {
            // A concurrent push of the same id won; `push_decision` retries, and replays.
            StoreFailure::AlreadyExists => PlansError::StaleRevision {
                current: plan.revision,
            },
            _ => storage(e),
        })?;
        write.append(plan_change(&plan, "decision_recorded"));
        write.append(decision_change(decision, "recorded"));
        write.commit().await.map_err(storage)?;
        receipt(&row, false)
    }
}

impl SqlPlans {
    /// A push under the id of a decision already applied (`row`): a replay of a recorded
    /// version, or the next version, applied to the intervention the decision decided as a
    /// new plan revision. The plan keeps every version.
    async fn next_version(
        &self,
        write: Write<'_>,
        row: decision::Model,
        decision: &Decision,
    ) -> Result<DecisionReceipt, PlansError> {
        let txn = write.txn();
        let latest: Decision = from_json(&row.body)?;
        let plan_row = plan::Entity::find_by_id(row.plan_id.clone())
            .one(txn)
            .await
            .map_err(storage)?
            .ok_or_else(|| corrupt(std::io::Error::other("decision of a missing plan")))?;
        let mut plan = decode(&plan_row.body)?;
        let earlier: Vec<Decision> = plan
            .decisions
            .iter()
            .filter(|d| {
                d.organisation_id == decision.organisation_id
                    && d.external_decision_id == decision.external_decision_id
            })
            .cloned()
            .collect();
        if decision.against(&latest, &earlier)? == Versioned::Replay {
            return receipt(&row, true);
        }
        let intervention = ItemId::parse(&row.intervention_id).map_err(corrupt)?;
        let previous = plan.revision;
        plan.apply_decision_to(intervention, decision)?;
        plan.next_revision(Utc::now());
        store_revision(txn, &plan, RevisionKind::DecisionRecorded, Some(previous)).await?;
        let updated = decision::Model {
            body: to_json(decision)?,
            plan_revision: to_i64(plan.revision),
            recorded_at: plan.updated_at,
            ..row
        };
        decision::Entity::update(decision::ActiveModel {
            organisation_id: Set(updated.organisation_id.clone()),
            external_id: Set(updated.external_id.clone()),
            participant_id: Set(updated.participant_id.clone()),
            body: Set(updated.body.clone()),
            plan_id: Set(updated.plan_id.clone()),
            intervention_id: Set(updated.intervention_id.clone()),
            plan_revision: Set(updated.plan_revision),
            recorded_at: Set(updated.recorded_at),
        })
        .exec(txn)
        .await
        .map_err(storage)?;
        write.append(plan_change(&plan, "decision_recorded"));
        write.append(decision_change(decision, "changed"));
        write.commit().await.map_err(storage)?;
        receipt(&updated, false)
    }

    /// Parks `decision` in its organisation's inbox, in `txn`, and commits.
    async fn park(
        &self,
        write: Write<'_>,
        decision: Decision,
        reason: ParkReason,
    ) -> Result<DecisionReceipt, PlansError> {
        let txn = write.txn();
        let parked = ParkedDecision::park(decision, reason, Utc::now());
        decision_inbox::ActiveModel {
            inbox_id: Set(parked.inbox_id.to_string()),
            organisation_id: Set(parked.decision.organisation_id.to_string()),
            external_id: Set(parked.decision.external_decision_id.to_string()),
            participant_id: Set(parked.decision.participant_id.to_string()),
            state: Set(inbox_state_name(&parked.state).to_owned()),
            body: Set(to_json(&parked)?),
            parked_at: Set(parked.parked_at),
        }
        .insert(txn)
        .await
        .map_err(|e| match classify(&e) {
            // A concurrent push of the same id won; `push_decision` retries, and replays.
            StoreFailure::AlreadyExists => PlansError::StaleRevision { current: 0 },
            _ => storage(e),
        })?;
        write.append(inbox_change(&parked, "parked"));
        write.commit().await.map_err(storage)?;
        Ok(DecisionReceipt {
            disposition: Disposition::Parked {
                inbox_id: parked.inbox_id,
                reason,
            },
            replayed: false,
        })
    }
}

impl PlanRepository for SqlPlans {
    async fn create_plan(
        &self,
        plan: Plan,
        supersede_active: bool,
        request_id: Option<IdempotencyKey>,
    ) -> Result<Plan, PlansError> {
        let participant_id = plan.participant_id;
        let write =
            match Write::begin_keyed(&self.db, &self.feed, CREATE_SCOPE, request_id.as_ref())
                .await?
            {
                Begun::Fresh(write) => write,
                Begun::Replayed(answer) => return self.replayed_plan(participant_id, answer).await,
            };
        let result: Result<_, PlansError> = async {
            let txn = write.txn();
            if let Some(row) = active_row(txn, plan.participant_id).await? {
                if !supersede_active {
                    return Err(PlansError::ActivePlanExists);
                }
                let mut earlier = decode(&row.body)?;
                let previous = earlier.revision;
                earlier.close();
                earlier.next_revision(plan.created_at);
                store_revision(txn, &earlier, RevisionKind::Closed, Some(previous)).await?;
                write.append(plan_change(&earlier, "closed"));
            }
            store_revision(txn, &plan, RevisionKind::Created, None).await?;
            write.append(plan_change(&plan, "created"));
            let answer = plan.id.to_string().into_bytes();
            Ok((plan, answer))
        }
        .await;
        match write.finish(result).await? {
            Outcome::Done(plan) => Ok(plan),
            Outcome::Replayed(answer) => self.replayed_plan(participant_id, answer).await,
        }
    }

    async fn plan(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
    ) -> Result<Plan, PlansError> {
        decode(&plan_row(&self.db, participant_id, plan_id).await?.body)
    }

    async fn active_plan(&self, participant_id: ParticipantId) -> Result<Plan, PlansError> {
        let row = active_row(&self.db, participant_id)
            .await?
            .ok_or(PlansError::PlanNotFound)?;
        decode(&row.body)
    }

    async fn plans_of(
        &self,
        participant_id: ParticipantId,
    ) -> Result<Vec<PlanSummary>, PlansError> {
        // Summaries come from the columns; the bodies are not read.
        let rows: Vec<SummaryColumns> = plan::Entity::find()
            .select_only()
            .column(plan::Column::Id)
            .column(plan::Column::Status)
            .column(plan::Column::Revision)
            .column(plan::Column::CreatedAt)
            .column(plan::Column::UpdatedAt)
            .filter(plan::Column::ParticipantId.eq(participant_id.to_string()))
            .order_by_desc(plan::Column::CreatedAt)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|(id, status, revision, created_at, updated_at)| {
                Ok(PlanSummary {
                    id: PlanId::parse(&id).map_err(corrupt)?,
                    participant_id,
                    status: if status == "active" {
                        PlanStatus::Active
                    } else {
                        PlanStatus::Closed
                    },
                    revision: to_u64(revision),
                    created_at,
                    updated_at,
                })
            })
            .collect()
    }

    async fn plan_at(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        revision: u64,
    ) -> Result<Plan, PlansError> {
        plan_row(&self.db, participant_id, plan_id).await?;
        let row = plan_revision::Entity::find_by_id((plan_id.to_string(), to_i64(revision)))
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or(PlansError::RevisionNotFound)?;
        decode(&row.body)
    }

    async fn revisions(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        page: Page,
    ) -> Result<Paged<RevisionSummary>, PlansError> {
        plan_row(&self.db, participant_id, plan_id).await?;
        let after = match &page.after {
            None => 0,
            Some(token) => token.parse::<i64>().map_err(|_| {
                PlansError::Invalid(crate::domain::Violations(vec![(
                    "page.page_token".into(),
                    "not a token this server issued".into(),
                )]))
            })?,
        };
        let rows: Vec<(i64, String, DateTime<Utc>, Option<String>)> = plan_revision::Entity::find()
            .select_only()
            .column(plan_revision::Column::Revision)
            .column(plan_revision::Column::Kind)
            .column(plan_revision::Column::RecordedAt)
            .column(plan_revision::Column::InboxNote)
            .filter(plan_revision::Column::PlanId.eq(plan_id.to_string()))
            .filter(plan_revision::Column::Revision.gt(after))
            .order_by_asc(plan_revision::Column::Revision)
            .limit(page.fetch_limit())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        let mut revisions = rows
            .into_iter()
            .map(|(revision, kind, recorded_at, note)| {
                Ok(RevisionSummary {
                    revision: to_u64(revision),
                    kind: RevisionKind::parse(&kind)
                        .ok_or_else(|| corrupt(std::io::Error::other("unknown revision kind")))?,
                    recorded_at,
                    inbox: note.as_deref().map(from_json).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, PlansError>>()?;
        let next = page.finish(&mut revisions, |r| r.revision.to_string());
        Ok((revisions, next))
    }

    async fn update<F>(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        expected_revision: u64,
        change: F,
    ) -> Result<Plan, PlansError>
    where
        F: FnOnce(&mut Plan) -> Result<RevisionKind, PlansError> + Send,
    {
        let write = self.write().await?;
        let txn = write.txn();
        let row = plan_row(txn, participant_id, plan_id).await?;
        let mut plan = decode(&row.body)?;
        if plan.revision != expected_revision {
            return Err(PlansError::StaleRevision {
                current: plan.revision,
            });
        }
        let kind = change(&mut plan)?;
        plan.next_revision(Utc::now());
        store_revision(txn, &plan, kind, Some(expected_revision)).await?;
        write.append(plan_change(&plan, kind.as_str()));
        write.commit().await.map_err(storage)?;
        Ok(plan)
    }

    async fn push_decision(&self, decision: Decision) -> Result<DecisionReceipt, PlansError> {
        match self.try_push_decision(&decision).await {
            // Lost a race with a concurrent change of the plan or push of the same id: the
            // second attempt reads what won and applies the decision to it, or replays.
            Err(PlansError::StaleRevision { .. }) => self.try_push_decision(&decision).await,
            other => other,
        }
    }

    async fn decision_inbox(
        &self,
        organisation: OrganisationId,
        team: Option<TeamId>,
        include_resolved: bool,
        page: Page,
    ) -> Result<Paged<ParkedDecision>, PlansError> {
        let mut query = decision_inbox::Entity::find()
            .filter(decision_inbox::Column::OrganisationId.eq(organisation.to_string()));
        if let Some(team) = &team {
            // The participant's team is the one that follows up their active plan.
            query = query.filter(
                decision_inbox::Column::ParticipantId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(follow_up_index::Column::ParticipantId)
                        .from(follow_up_index::Entity)
                        .and_where(follow_up_index::Column::TeamId.eq(team.to_string()))
                        .to_owned(),
                ),
            );
        }
        if !include_resolved {
            query = query.filter(decision_inbox::Column::State.eq("parked"));
        }
        if let Some(token) = &page.after {
            let after = ItemId::parse(token).map_err(|_| {
                PlansError::Invalid(crate::domain::Violations(vec![(
                    "page.page_token".into(),
                    "not a token this server issued".into(),
                )]))
            })?;
            query = query.filter(decision_inbox::Column::InboxId.gt(after.to_string()));
        }
        let rows = query
            .order_by_asc(decision_inbox::Column::InboxId)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await
            .map_err(storage)?;
        let mut parked = rows
            .iter()
            .map(|row| from_json(&row.body))
            .collect::<Result<Vec<ParkedDecision>, PlansError>>()?;
        let next = page.finish(&mut parked, |p| p.inbox_id.to_string());
        teams_of(&self.db, &mut parked).await?;
        Ok((parked, next))
    }

    async fn link_parked_decision(
        &self,
        participant_id: ParticipantId,
        inbox_id: ItemId,
        intervention: ItemId,
        resolver: Resolver,
    ) -> Result<DecisionReceipt, PlansError> {
        let write = self.write().await?;
        let txn = write.txn();
        let mut parked = inbox_row(txn, participant_id, inbox_id).await?;
        parked.check_resolvable(&resolver)?;
        let row = active_row(txn, participant_id)
            .await?
            .ok_or(PlansError::PlanNotFound)?;
        let mut plan = decode(&row.body)?;
        let previous = plan.revision;
        plan.decisions.extend(parked.earlier.iter().cloned());
        let intervention_id = plan.apply_decision_to(intervention, &parked.decision)?;
        let now = Utc::now();
        plan.next_revision(now);
        let kind = RevisionKind::ParkedDecisionLinked;
        store_revision(txn, &plan, kind, Some(previous)).await?;
        // The decision as pushed, so a replay of the push still finds it the same.
        let recorded = decision::ActiveModel {
            organisation_id: Set(parked.decision.organisation_id.to_string()),
            external_id: Set(parked.decision.external_decision_id.to_string()),
            participant_id: Set(participant_id.to_string()),
            body: Set(to_json(&parked.decision)?),
            plan_id: Set(plan.id.to_string()),
            intervention_id: Set(intervention_id.to_string()),
            plan_revision: Set(to_i64(plan.revision)),
            recorded_at: Set(plan.updated_at),
        }
        .insert(txn)
        .await
        .map_err(storage)?;
        parked.resolve(
            InboxState::Linked {
                plan_id: plan.id,
                intervention_id,
            },
            resolver,
            now,
        );
        save_inbox(txn, &parked).await?;
        note_inbox(txn, &plan, &parked).await?;
        write.append(plan_change(&plan, kind.as_str()));
        write.append(inbox_change(&parked, "linked"));
        write.commit().await.map_err(storage)?;
        receipt(&recorded, false)
    }

    async fn dismiss_parked_decision(
        &self,
        participant_id: ParticipantId,
        inbox_id: ItemId,
        reason: Text,
        resolver: Resolver,
    ) -> Result<ParkedDecision, PlansError> {
        let write = self.write().await?;
        let txn = write.txn();
        let mut parked = inbox_row(txn, participant_id, inbox_id).await?;
        parked.check_resolvable(&resolver)?;
        let now = Utc::now();
        parked.resolve(InboxState::Dismissed { reason }, resolver, now);
        save_inbox(txn, &parked).await?;
        // The participant's plan keeps the dismissal in its history (with no plan yet, the
        // inbox entry alone keeps it).
        if let Some(row) = active_row(txn, participant_id).await? {
            let mut plan = decode(&row.body)?;
            let previous = plan.revision;
            plan.next_revision(now);
            let kind = RevisionKind::ParkedDecisionDismissed;
            store_revision(txn, &plan, kind, Some(previous)).await?;
            note_inbox(txn, &plan, &parked).await?;
            write.append(plan_change(&plan, kind.as_str()));
        }
        write.append(inbox_change(&parked, "dismissed"));
        write.commit().await.map_err(storage)?;
        Ok(parked)
    }

    async fn due_follow_ups(
        &self,
        owner: FollowUpOwner,
        until: Day,
        page: Page,
    ) -> Result<Paged<DueFollowUp>, PlansError> {
        let mut query =
            follow_up_index::Entity::find().filter(follow_up_index::Column::DueOn.lte(until.iso()));
        query = match &owner {
            FollowUpOwner::Organisation(org) => {
                query.filter(follow_up_index::Column::OrganisationId.eq(org.to_string()))
            }
            FollowUpOwner::Team(team) => {
                query.filter(follow_up_index::Column::TeamId.eq(team.to_string()))
            }
        };
        if let Some(token) = &page.after {
            // The token is the last row's (due_on, plan_id, follow_up_id).
            let mut parts = token.splitn(3, '/');
            let (Some(due), Some(plan_id), Some(follow_up_id)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(PlansError::Invalid(crate::domain::Violations(vec![(
                    "page.page_token".into(),
                    "not a token this server issued".into(),
                )])));
            };
            use follow_up_index::Column as C;
            query = query.filter(
                Condition::any().add(C::DueOn.gt(due)).add(
                    Condition::all().add(C::DueOn.eq(due)).add(
                        Condition::any().add(C::PlanId.gt(plan_id)).add(
                            Condition::all()
                                .add(C::PlanId.eq(plan_id))
                                .add(C::FollowUpId.gt(follow_up_id)),
                        ),
                    ),
                ),
            );
        }
        let rows = query
            .order_by_asc(follow_up_index::Column::DueOn)
            .order_by_asc(follow_up_index::Column::PlanId)
            .order_by_asc(follow_up_index::Column::FollowUpId)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await
            .map_err(storage)?;
        let mut due = rows
            .into_iter()
            .map(|row| {
                Ok(DueFollowUp {
                    participant_id: ParticipantId::parse(&row.participant_id).map_err(corrupt)?,
                    plan_id: PlanId::parse(&row.plan_id).map_err(corrupt)?,
                    follow_up: from_json(&row.body)?,
                })
            })
            .collect::<Result<Vec<_>, PlansError>>()?;
        let next = page.finish(&mut due, |d| {
            format!(
                "{}/{}/{}",
                d.follow_up.due_on.iso(),
                d.plan_id,
                d.follow_up.id
            )
        });
        Ok((due, next))
    }

    async fn catalogue(
        &self,
        principal: Option<Principal>,
        include_retired: bool,
    ) -> Result<Vec<CatalogueEntry>, PlansError> {
        let mut query = catalogue_entry::Entity::find();
        if let Some(principal) = principal {
            query = query.filter(catalogue_entry::Column::Principal.eq(principal.as_str()));
        }
        if !include_retired {
            query = query.filter(catalogue_entry::Column::Active.eq(true));
        }
        query
            .order_by_asc(catalogue_entry::Column::Position)
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(catalogue_from)
            .collect()
    }

    async fn unknown_codes(
        &self,
        codes: Vec<CatalogueCode>,
    ) -> Result<Vec<CatalogueCode>, PlansError> {
        if codes.is_empty() {
            return Ok(codes);
        }
        let known: Vec<String> = catalogue_entry::Entity::find()
            .select_only()
            .column(catalogue_entry::Column::Code)
            .filter(
                catalogue_entry::Column::Code.is_in(codes.iter().map(|c| c.as_str().to_owned())),
            )
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(codes
            .into_iter()
            .filter(|c| !known.iter().any(|k| k == c.as_str()))
            .collect())
    }

    async fn upsert_catalogue_entry(
        &self,
        entry: CatalogueEntry,
    ) -> Result<CatalogueEntry, PlansError> {
        let write = self.write().await?;
        let txn = write.txn();
        let existing = catalogue_entry::Entity::find_by_id(entry.code.as_str().to_owned())
            .one(txn)
            .await
            .map_err(storage)?;
        let (change_kind, position) = match &existing {
            Some(row) => ("updated", row.position),
            None => {
                let last: Option<Option<i32>> = catalogue_entry::Entity::find()
                    .select_only()
                    .expr(Func::max(Expr::col(catalogue_entry::Column::Position)))
                    .into_tuple()
                    .one(txn)
                    .await
                    .map_err(storage)?;
                ("created", last.flatten().map_or(0, |p| p + 1))
            }
        };
        let model = catalogue_entry::ActiveModel {
            code: Set(entry.code.as_str().to_owned()),
            principal: Set(entry.principal.as_str().to_owned()),
            name: Set(entry.name.as_str().to_owned()),
            active: Set(entry.active),
            position: Set(position),
        };
        if existing.is_some() {
            model.update(txn).await.map_err(storage)?;
        } else {
            model.insert(txn).await.map_err(storage)?;
        }
        write.append(NewChange {
            entity_kind: "catalogue_entry",
            entity_id: entry.code.as_str().to_owned(),
            change_kind,
            participant_id: None,
            payload: wire::catalogue_entry_to(&entry).encode_to_vec(),
        });
        write.commit().await.map_err(storage)?;
        Ok(entry)
    }
}
