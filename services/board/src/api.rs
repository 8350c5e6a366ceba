//! The tonic adapter of `samsyn.board.v1`: decode and validate into domain types, call the
//! repository (a domain trait), map the answer and errors.

use std::pin::Pin;
use std::sync::Arc;

use chrono::NaiveDate;
use prost::Message;
use samsyn_kit::caller::{Caller, bind_organisation, bind_staff};
use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;
use samsyn_kit::time::{from_timestamp, parse_calendar_date, parse_timestamp};
use samsyn_kit::{ApiError, FieldViolations, parse_field, parse_fields};
use samsyn_proto::board::v1 as pb;
use samsyn_proto::board::v1::board_service_server::BoardService;
use samsyn_proto::common::v1::{
    CalendarDate, PageResponse, ParticipantId as PbParticipantId, StaffRef, WatchChangesRequest,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::domain::{
    self, BoardConfig, BoardError, BoardRepository, ConfigInvalid, Coordinator, CoordinatorRole,
    Criterion, CriterionCode, ENTRY_KIND, EntryUpdate, IdError, NewAction, NewDiscussion, NewEntry,
    NewMeeting, Outcome, Staff, Text, Trend,
};
use crate::follow::Followers;
use crate::wire;

/// The handlers of `BoardService`, over any board repository.
#[derive(Debug, Clone)]
pub struct BoardApi<R> {
    repo: R,
    feed: ChangeFeed,
    _followers: Option<Arc<Followers>>,
}

impl<R: BoardRepository> BoardApi<R> {
    /// Handlers over a repository and the service's change feed; `followers` keep the
    /// repository current from the other services' feeds for as long as the handlers live.
    pub fn new(repo: R, feed: ChangeFeed, followers: Option<Arc<Followers>>) -> Self {
        Self {
            repo,
            feed,
            _followers: followers,
        }
    }
}

impl From<BoardError> for ApiError {
    fn from(error: BoardError) -> Self {
        match error {
            BoardError::Invalid { field, reason } => ApiError::invalid(field, reason),
            BoardError::TeamNotFound => ApiError::NotFound("team"),
            BoardError::EntryNotFound => ApiError::NotFound("board entry"),
            BoardError::ActionNotFound => ApiError::NotFound("action"),
            BoardError::MeetingNotFound => ApiError::NotFound("meeting"),
            BoardError::AlreadyOnBoard => ApiError::AlreadyExists("board entry"),
            BoardError::NotOnBoard => {
                ApiError::FailedPrecondition("the participant is not on the board".into())
            }
            BoardError::LimitReached(what) => ApiError::FailedPrecondition(what.into()),
            BoardError::Stale { current } => ApiError::StaleRevision { current },
            BoardError::KeyReused => ApiError::KeyReused("request_id".to_owned()),
            BoardError::Unavailable => ApiError::Unavailable,
            error @ BoardError::Storage(_) => ApiError::internal(error),
        }
    }
}

fn status(error: BoardError) -> Status {
    Status::from(ApiError::from(error))
}

/// Decodes a remembered answer, or encodes a fresh one.
fn answer<T, M: Message + Default>(
    outcome: Outcome<T>,
    to_proto: impl FnOnce(&T) -> M,
) -> Result<Response<M>, Status> {
    match outcome {
        Outcome::Done(value) => Ok(Response::new(to_proto(&value))),
        Outcome::Replayed(bytes) => M::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|e| Status::from(ApiError::internal(e))),
    }
}

// ---- request parsing: each helper records a violation under the field's dotted path ----

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn text<const MIN: usize, const MAX: usize>(
    v: &mut FieldViolations,
    name: &str,
    value: &str,
) -> Option<Text<MIN, MAX>> {
    v.check(name, Text::<MIN, MAX>::parse(value))
}

fn id<T>(
    v: &mut FieldViolations,
    name: &str,
    value: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Option<T> {
    v.check(name, parse(value))
}

fn participant(
    v: &mut FieldViolations,
    name: &str,
    value: Option<&PbParticipantId>,
) -> Option<domain::ParticipantId> {
    v.id(domain::ParticipantId::from_field(name, value))
}

/// The board entry a request names: its id and its participant's.
fn entry_ref(
    v: &mut FieldViolations,
    entry_id: &str,
    participant_id: Option<&PbParticipantId>,
) -> Option<(domain::EntryId, domain::ParticipantId)> {
    let entry_id = id(v, "entry_id", entry_id, domain::EntryId::parse);
    let participant_id = participant(v, "participant_id", participant_id);
    Some((entry_id?, participant_id?))
}

fn staff(v: &mut FieldViolations, name: &str, value: Option<&StaffRef>) -> Option<Staff> {
    let Some(value) = value else {
        v.add(name, "required");
        return None;
    };
    let organisation = value
        .organisation_id
        .as_ref()
        .map(|o| o.value.as_str())
        .unwrap_or_default();
    match Staff::parse(&value.staff_id, organisation, &value.unit_id) {
        Ok(staff) => Some(staff),
        Err(e) => {
            v.add(field(name, e.field), e.reason.to_string());
            None
        }
    }
}

fn date(v: &mut FieldViolations, name: &str, value: Option<&CalendarDate>) -> Option<NaiveDate> {
    let Some(value) = value else {
        v.add(name, "required");
        return None;
    };
    v.check(name, parse_calendar_date(value))
}

fn key(v: &mut FieldViolations, name: &str, value: &str) -> Option<IdempotencyKey> {
    match IdempotencyKey::parse(name, value) {
        Ok(key) => key,
        Err(_) => {
            v.add(name, "1 to 128 printable ASCII characters");
            None
        }
    }
}

fn bounded<T>(v: &mut FieldViolations, name: &str, items: &[T], max: usize) -> bool {
    if items.len() > max {
        v.add(name, format!("at most {max} items"));
        false
    } else {
        true
    }
}

fn status_assessment(
    v: &mut FieldViolations,
    name: &str,
    value: Option<&pb::StatusAssessment>,
) -> Option<domain::Status> {
    let Some(value) = value else {
        v.add(name, "required");
        return None;
    };
    if value.level == 0 {
        v.add(field(name, "level"), "required");
    }
    let trend = match pb::Trend::try_from(value.trend) {
        Ok(pb::Trend::Worsening) => Some(Trend::Worsening),
        Ok(pb::Trend::Unchanged) => Some(Trend::Unchanged),
        Ok(pb::Trend::Improving) => Some(Trend::Improving),
        _ => {
            v.add(field(name, "trend"), "required");
            None
        }
    };
    let note = text(v, &field(name, "note"), &value.note);
    Some(domain::Status {
        level: value.level,
        trend: trend?,
        note: note?,
    })
}

fn new_action(
    v: &mut FieldViolations,
    name: &str,
    value: Option<&pb::NewAction>,
) -> Option<NewAction> {
    let Some(value) = value else {
        v.add(name, "required");
        return None;
    };
    let description = text(v, &field(name, "description"), &value.description);
    let owner = staff(v, &field(name, "owner"), value.owner.as_ref());
    let due_on = date(v, &field(name, "due_on"), value.due_on.as_ref());
    Some(NewAction {
        description: description?,
        owner: owner?,
        due_on: due_on?,
    })
}

fn new_actions(v: &mut FieldViolations, name: &str, values: &[pb::NewAction]) -> Vec<NewAction> {
    if !bounded(v, name, values, domain::MAX_LIST_ITEMS) {
        return vec![];
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(i, a)| new_action(v, &format!("{name}[{i}]"), Some(a)))
        .collect()
}

fn criteria_codes(v: &mut FieldViolations, name: &str, values: &[String]) -> Vec<CriterionCode> {
    if !bounded(v, name, values, domain::MAX_LIST_ITEMS) {
        return vec![];
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(i, c)| v.check(&format!("{name}[{i}]"), CriterionCode::parse(c)))
        .collect()
}

/// Parses a team's coordinators, criteria and status levels, each item on its own; whether
/// the lists make a configuration is checked once they are complete.
fn team_parts(
    v: &mut FieldViolations,
    coordinators: &[pb::Coordinator],
    criteria: &[pb::Criterion],
    levels: &[pb::StatusLevel],
) -> (Vec<Coordinator>, Vec<Criterion>, Vec<domain::StatusLevel>) {
    let mut parsed = Vec::new();
    if bounded(v, "coordinators", coordinators, domain::MAX_CONFIG_ITEMS) {
        for (i, c) in coordinators.iter().enumerate() {
            let name = format!("coordinators[{i}]");
            let staff = staff(v, &field(&name, "staff"), c.staff.as_ref());
            let role = match pb::CoordinatorRole::try_from(c.role) {
                Ok(pb::CoordinatorRole::Main) => Some(CoordinatorRole::Main),
                Ok(pb::CoordinatorRole::Deputy) => Some(CoordinatorRole::Deputy),
                _ => {
                    v.add(field(&name, "role"), "required");
                    None
                }
            };
            if let (Some(staff), Some(role)) = (staff, role)
                && let Some(c) = v.check(&field(&name, "staff"), Coordinator::new(staff, role))
            {
                parsed.push(c);
            }
        }
    }
    let mut parsed_criteria = Vec::new();
    if bounded(v, "criteria", criteria, domain::MAX_CONFIG_ITEMS) {
        for (i, c) in criteria.iter().enumerate() {
            let name = format!("criteria[{i}]");
            let code = v.check(&field(&name, "code"), CriterionCode::parse(&c.code));
            let label = text(v, &field(&name, "label"), &c.label);
            if let (Some(code), Some(label)) = (code, label) {
                parsed_criteria.push(Criterion { code, label });
            }
        }
    }
    let mut parsed_levels = Vec::new();
    if bounded(v, "status_levels", levels, domain::MAX_CONFIG_ITEMS) {
        for (i, l) in levels.iter().enumerate() {
            let name = format!("status_levels[{i}]");
            let colour = v.check(&field(&name, "colour"), domain::Colour::parse(&l.colour));
            let meaning = text(v, &field(&name, "meaning"), &l.meaning);
            if let (Some(colour), Some(meaning)) = (colour, meaning) {
                parsed_levels.push(domain::StatusLevel {
                    level: l.level,
                    colour,
                    meaning,
                });
            }
        }
    }
    (parsed, parsed_criteria, parsed_levels)
}

fn config_violation(v: &mut FieldViolations, invalid: ConfigInvalid) {
    match invalid {
        ConfigInvalid::Criteria(reason) => v.add("criteria", reason),
        ConfigInvalid::Levels(reason) => v.add("status_levels", reason),
    }
}

/// Recounts an on-board entry's days on the board to `today`.
fn refresh_days_on_board(entry: &mut pb::BoardEntry, today: NaiveDate) {
    if entry.state() != pb::EntryState::OnBoard {
        return;
    }
    if let Some(put_on) = entry.put_on_at.as_ref().and_then(from_timestamp) {
        let days = (today - put_on.date_naive()).num_days().max(0);
        entry.days_on_board = u32::try_from(days).unwrap_or(u32::MAX);
    }
}

/// The stream `WatchBoard` returns.
pub type BoardUpdateStream = Pin<Box<dyn Stream<Item = Result<pb::BoardUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl<R: BoardRepository> BoardService for BoardApi<R> {
    type WatchChangesStream = ChangeStream;
    type WatchBoardStream = BoardUpdateStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }

    async fn create_team(
        &self,
        request: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let (request_key, spec) = parse_fields(|v: &mut FieldViolations| {
            bind_organisation(
                caller.as_ref(),
                "owner_organisation_id",
                &mut r.owner_organisation_id,
                v,
            );
            let request_key =
                key(v, "request_id", &r.request_id).map(|k| k.bind(caller.as_ref(), &r));
            let name = text(v, "name", &r.name);
            let owner_value = r
                .owner_organisation_id
                .as_ref()
                .map(|o| o.value.as_str())
                .unwrap_or_default();
            let owner = v
                .check(
                    "owner_organisation_id.value",
                    domain::OrganisationId::parse(owner_value),
                )
                .and_then(|o| {
                    v.check("owner_organisation_id.value", domain::check_owner(&o))
                        .map(|()| o)
                });
            let (coordinators, criteria, levels) =
                team_parts(v, &r.coordinators, &r.criteria, &r.status_levels);
            // Empty lists take the default configuration.
            let config = match BoardConfig::new(criteria, levels) {
                Ok(config) => Some(config),
                Err(invalid) => {
                    config_violation(v, invalid);
                    None
                }
            };
            let spec = domain::TeamSpec {
                name: name?,
                owner: owner?,
                coordinators,
                config: config?,
            };
            Some((request_key, spec))
        })?;
        let outcome = self
            .repo
            .create_team(request_key, spec)
            .await
            .map_err(status)?;
        answer(outcome, wire::team)
    }

    async fn get_team(
        &self,
        request: Request<pb::GetTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        let r = request.into_inner();
        let team_id = parse_field("team_id", domain::TeamId::parse(&r.team_id))?;
        let team = self.repo.team(team_id).await.map_err(status)?;
        Ok(Response::new(wire::team(&team)))
    }

    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let r = request.into_inner();
        let page = Page::from_request(r.page.as_ref(), "page").map_err(Status::from)?;
        let (teams, next) = self.repo.teams(&page).await.map_err(status)?;
        Ok(Response::new(pb::ListTeamsResponse {
            teams: teams.iter().map(wire::team).collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        }))
    }

    async fn update_team(
        &self,
        request: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::Team>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (team_id, expected, name, coordinators, change) =
            parse_fields(|v: &mut FieldViolations| {
                let team_id = id(v, "team_id", &r.team_id, domain::TeamId::parse);
                let expected = r.expected_revision.map(|r| r.value);
                if expected.is_none() {
                    v.add("expected_revision", "required");
                }
                let name = text(v, "name", &r.name);
                let (coordinators, criteria, levels) =
                    team_parts(v, &r.coordinators, &r.criteria, &r.status_levels);
                // Empty lists keep the team's current criteria or scale.
                let change = domain::ConfigChange {
                    criteria: (!criteria.is_empty()).then_some(criteria),
                    levels: (!levels.is_empty()).then_some(levels),
                };
                Some((team_id?, expected?, name?, coordinators, change))
            })?;
        // Reference data is kept by the organisation that owns it.
        if let Some(caller) = &caller {
            let team = self.repo.team(team_id).await.map_err(status)?;
            if !caller.acts_for(team.spec.owner.as_str()) {
                return Err(ApiError::PermissionDenied.into());
            }
        }
        let team = self
            .repo
            .update_team(team_id, expected, name, coordinators, change)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::team(&team)))
    }

    async fn put_on_board(
        &self,
        request: Request<pb::PutOnBoardRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let (request_key, new) = parse_fields(|v: &mut FieldViolations| {
            bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
            let request_key =
                key(v, "request_id", &r.request_id).map(|k| k.bind(caller.as_ref(), &r));
            let team_id = id(v, "team_id", &r.team_id, domain::TeamId::parse);
            let participant_id = participant(v, "participant_id", r.participant_id.as_ref());
            let reason = text(v, "reason", &r.reason);
            let criteria = criteria_codes(v, "criteria", &r.criteria);
            if r.criteria.is_empty() {
                v.add("criteria", "at least one criterion");
            }
            let status_value = status_assessment(v, "status", r.status.as_ref());
            let next_review_on = match r.next_review_on.as_ref() {
                Some(d) => date(v, "next_review_on", Some(d)).map(Some),
                None => Some(None),
            };
            let actions = new_actions(v, "actions", &r.actions);
            let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
            let new = NewEntry {
                team_id: team_id?,
                participant_id: participant_id?,
                reason: reason?,
                criteria,
                status: status_value?,
                next_review_on: next_review_on?,
                actions,
                recorded_by: recorded_by?,
            };
            Some((request_key, new))
        })?;
        let outcome = self
            .repo
            .put_on_board(request_key, new)
            .await
            .map_err(status)?;
        answer(outcome, |e| wire::entry(e, wire::today()))
    }

    async fn get_board(
        &self,
        request: Request<pb::GetBoardRequest>,
    ) -> Result<Response<pb::GetBoardResponse>, Status> {
        let r = request.into_inner();
        let team_id = parse_field("team_id", domain::TeamId::parse(&r.team_id))?;
        let (entries, cursor) = self.repo.board(team_id).await.map_err(status)?;
        let today = wire::today();
        Ok(Response::new(pb::GetBoardResponse {
            team_id: team_id.to_string(),
            entries: entries.iter().map(|e| wire::entry(e, today)).collect(),
            cursor,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let r = request.into_inner();
        let (entry_id, participant_id) =
            parse_fields(|v| entry_ref(v, &r.entry_id, r.participant_id.as_ref()))?;
        let entry = self
            .repo
            .entry(entry_id, participant_id)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::entry(&entry, wire::today())))
    }

    async fn update_entry(
        &self,
        request: Request<pb::UpdateEntryRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let ((entry_id, participant_id), update) = parse_fields(|v: &mut FieldViolations| {
            bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
            let entry = entry_ref(v, &r.entry_id, r.participant_id.as_ref());
            let expected = r.expected_revision.map(|r| r.value);
            if expected.is_none() {
                v.add("expected_revision", "required");
            }
            let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
            let reason = match r.reason.as_deref() {
                Some(reason) => text(v, "reason", reason).map(Some),
                None => Some(None),
            };
            let criteria = r.criteria.as_ref().map(|c| {
                if c.codes.is_empty() {
                    v.add("criteria.codes", "at least one criterion");
                }
                criteria_codes(v, "criteria.codes", &c.codes)
            });
            let status_value = match r.status.as_ref() {
                Some(s) => status_assessment(v, "status", Some(s)).map(Some),
                None => Some(None),
            };
            let next_review_on = match r.next_review_on.as_ref() {
                Some(d) => date(v, "next_review_on", Some(d)).map(Some),
                None => Some(None),
            };
            let parsed = (|| {
                Some((
                    entry?,
                    EntryUpdate {
                        expected_revision: expected?,
                        recorded_by: recorded_by?,
                        reason: reason?,
                        criteria,
                        status: status_value?,
                        next_review_on: next_review_on?,
                    },
                ))
            })();
            if let Some((_, update)) = &parsed
                && update.is_empty()
            {
                v.add(
                    "status",
                    "nothing to change: set reason, criteria, status or next_review_on",
                );
            }
            parsed
        })?;
        let entry = self
            .repo
            .update_entry(entry_id, participant_id, update)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::entry(&entry, wire::today())))
    }

    async fn add_action(
        &self,
        request: Request<pb::AddActionRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let (request_key, (entry_id, participant_id), action, recorded_by) =
            parse_fields(|v: &mut FieldViolations| {
                bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
                let request_key =
                    key(v, "request_id", &r.request_id).map(|k| k.bind(caller.as_ref(), &r));
                let entry = entry_ref(v, &r.entry_id, r.participant_id.as_ref());
                let action = new_action(v, "action", r.action.as_ref());
                let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
                Some((request_key, entry?, action?, recorded_by?))
            })?;
        let outcome = self
            .repo
            .add_action(request_key, entry_id, participant_id, action, recorded_by)
            .await
            .map_err(status)?;
        answer(outcome, |e| wire::entry(e, wire::today()))
    }

    async fn complete_action(
        &self,
        request: Request<pb::CompleteActionRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let ((entry_id, participant_id), action_id, recorded_by) =
            parse_fields(|v: &mut FieldViolations| {
                bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
                let entry = entry_ref(v, &r.entry_id, r.participant_id.as_ref());
                let action_id = id(v, "action_id", &r.action_id, domain::ActionId::parse);
                let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
                Some((entry?, action_id?, recorded_by?))
            })?;
        let entry = self
            .repo
            .complete_action(entry_id, participant_id, action_id, recorded_by)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::entry(&entry, wire::today())))
    }

    async fn take_off_board(
        &self,
        request: Request<pb::TakeOffBoardRequest>,
    ) -> Result<Response<pb::BoardEntry>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let ((entry_id, participant_id), expected, reason, recorded_by) =
            parse_fields(|v: &mut FieldViolations| {
                bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
                let entry = entry_ref(v, &r.entry_id, r.participant_id.as_ref());
                let expected = r.expected_revision.map(|r| r.value);
                if expected.is_none() {
                    v.add("expected_revision", "required");
                }
                let reason = text(v, "reason", &r.reason);
                let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
                Some((entry?, expected?, reason?, recorded_by?))
            })?;
        let entry = self
            .repo
            .take_off(entry_id, participant_id, expected, reason, recorded_by)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::entry(&entry, wire::today())))
    }

    async fn get_timeline(
        &self,
        request: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let r = request.into_inner();
        let (participant_id, team_id, window) = parse_fields(|v: &mut FieldViolations| {
            let participant_id = participant(v, "participant_id", r.participant_id.as_ref());
            let team_id = if r.team_id.is_empty() {
                Some(None)
            } else {
                id(v, "team_id", &r.team_id, domain::TeamId::parse).map(Some)
            };
            let start = match r.period.as_ref().and_then(|p| p.start.as_ref()) {
                Some(start) => v.check("period.start", parse_timestamp(start)),
                None => {
                    v.add("period.start", "required");
                    None
                }
            };
            let end = match r.period.as_ref().and_then(|p| p.end.as_ref()) {
                Some(end) => v.check("period.end", parse_timestamp(end)).map(Some),
                None => Some(None),
            };
            let window = match (start, end) {
                (Some(start), Some(end)) => v.check("period.end", domain::Window::new(start, end)),
                _ => None,
            };
            Some((participant_id?, team_id?, window?))
        })?;
        let timeline = self
            .repo
            .timeline(participant_id, window, team_id)
            .await
            .map_err(status)?;
        Ok(Response::new(wire::timeline(participant_id, &timeline)))
    }

    async fn get_agenda(
        &self,
        request: Request<pb::GetAgendaRequest>,
    ) -> Result<Response<pb::Agenda>, Status> {
        let r = request.into_inner();
        let (team_id, on) = parse_fields(|v: &mut FieldViolations| {
            let team_id = id(v, "team_id", &r.team_id, domain::TeamId::parse);
            let on = match r.on.as_ref() {
                Some(on) => date(v, "on", Some(on)),
                None => Some(wire::today()),
            };
            Some((team_id?, on?))
        })?;
        let (items, decisions) = self.repo.agenda(team_id, on).await.map_err(status)?;
        Ok(Response::new(wire::agenda(team_id, on, &items, &decisions)))
    }

    async fn start_meeting(
        &self,
        request: Request<pb::StartMeetingRequest>,
    ) -> Result<Response<pb::MeetingSummary>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let (request_key, new) = parse_fields(|v: &mut FieldViolations| {
            bind_staff(caller.as_ref(), "chair", &mut r.chair, v);
            let request_key =
                key(v, "request_id", &r.request_id).map(|k| k.bind(caller.as_ref(), &r));
            let team_id = id(v, "team_id", &r.team_id, domain::TeamId::parse);
            let held_on = date(v, "held_on", r.held_on.as_ref());
            let chair = staff(v, "chair", r.chair.as_ref());
            let mut attendees = Vec::new();
            if bounded(v, "attendees", &r.attendees, domain::MAX_ATTENDEES) {
                for (i, a) in r.attendees.iter().enumerate() {
                    if let Some(a) = staff(v, &format!("attendees[{i}]"), Some(a)) {
                        attendees.push(a);
                    }
                }
            }
            let new = NewMeeting {
                team_id: team_id?,
                held_on: held_on?,
                chair: chair?,
                attendees,
            };
            Some((request_key, new))
        })?;
        let outcome = self
            .repo
            .start_meeting(request_key, new)
            .await
            .map_err(status)?;
        answer(outcome, wire::meeting)
    }

    async fn record_discussion(
        &self,
        request: Request<pb::RecordDiscussionRequest>,
    ) -> Result<Response<pb::Discussion>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let (request_key, new) = parse_fields(|v: &mut FieldViolations| {
            bind_staff(caller.as_ref(), "recorded_by", &mut r.recorded_by, v);
            let request_key =
                key(v, "request_id", &r.request_id).map(|k| k.bind(caller.as_ref(), &r));
            let meeting_id = id(v, "meeting_id", &r.meeting_id, domain::MeetingId::parse);
            let participant_id = participant(v, "participant_id", r.participant_id.as_ref());
            let notes = text(v, "notes", &r.notes);
            let mut decisions = Vec::new();
            if bounded(v, "decisions", &r.decisions, domain::MAX_LIST_ITEMS) {
                for (i, d) in r.decisions.iter().enumerate() {
                    if let Some(d) = text(v, &format!("decisions[{i}]"), d) {
                        decisions.push(d);
                    }
                }
            }
            let actions = new_actions(v, "actions", &r.actions);
            let recorded_by = staff(v, "recorded_by", r.recorded_by.as_ref());
            let new = NewDiscussion {
                meeting_id: meeting_id?,
                participant_id: participant_id?,
                notes: notes?,
                decisions,
                actions,
                recorded_by: recorded_by?,
            };
            Some((request_key, new))
        })?;
        let outcome = self
            .repo
            .record_discussion(request_key, new)
            .await
            .map_err(status)?;
        answer(outcome, wire::discussion)
    }

    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        let r = request.into_inner();
        let meeting_id = parse_field("meeting_id", domain::MeetingId::parse(&r.meeting_id))?;
        let (meeting, discussions) = self.repo.meeting(meeting_id).await.map_err(status)?;
        Ok(Response::new(pb::GetMeetingResponse {
            meeting: Some(wire::meeting(&meeting)),
            discussions: discussions.iter().map(wire::discussion).collect(),
        }))
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        let r = request.into_inner();
        let team_id = parse_field("team_id", domain::TeamId::parse(&r.team_id))?;
        let page = Page::from_request(r.page.as_ref(), "page").map_err(Status::from)?;
        let (meetings, next) = self.repo.meetings(team_id, &page).await.map_err(status)?;
        Ok(Response::new(pb::ListMeetingsResponse {
            meetings: meetings.iter().map(wire::meeting).collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        }))
    }

    async fn watch_board(
        &self,
        request: Request<pb::WatchBoardRequest>,
    ) -> Result<Response<Self::WatchBoardStream>, Status> {
        let r = request.into_inner();
        let team_id = parse_field("team_id", domain::TeamId::parse(&r.team_id))?;
        let (snapshot, cursor) = if r.after_sequence == 0 {
            let (entries, cursor) = self.repo.board(team_id).await.map_err(status)?;
            let today = wire::today();
            let snapshot = pb::BoardUpdate {
                cursor,
                kind: pb::BoardUpdateKind::Snapshot.into(),
                entries: entries.iter().map(|e| wire::entry(e, today)).collect(),
            };
            (Some(snapshot), cursor)
        } else {
            // Resuming: the team must still exist; changes come from the cursor on.
            self.repo.team(team_id).await.map_err(status)?;
            (None, r.after_sequence)
        };
        let team = team_id.to_string();
        let changes = self.feed.watch(cursor).filter_map(move |item| {
            let change = match item {
                Ok(change) => change,
                Err(status) => return Some(Err(status)),
            };
            if change.entity_kind != ENTRY_KIND {
                return None;
            }
            // Every board-entry change carries the whole entry in its new state.
            let mut entry = match pb::BoardEntry::decode(change.payload.as_slice()) {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::error!(sequence = change.sequence, %error, "undecodable board change");
                    return None;
                }
            };
            if entry.team_id != team {
                return None;
            }
            // The payload counted days on the board when it was written; a replay days
            // later (a resumed watch) must count to today.
            refresh_days_on_board(&mut entry, wire::today());
            Some(Ok(pb::BoardUpdate {
                cursor: change.sequence,
                kind: pb::BoardUpdateKind::EntryChanged.into(),
                entries: vec![entry],
            }))
        });
        let stream = tokio_stream::iter(snapshot.map(Ok)).chain(changes);
        Ok(Response::new(Box::pin(stream)))
    }
}
