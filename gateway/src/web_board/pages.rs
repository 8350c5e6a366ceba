//! The pages: what each shows, built from the gRPC answers, and the forms that change it.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use http::{HeaderMap, StatusCode, header};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{PageRequest, Period, Revision};

use super::calls::{self, pid};
use super::timeline::{self, Chart};
use super::{LoggedIn, PageError, WebBoard, id_segment, participant_segment};

/// Longest free text accepted from a form field (the services have their own limits too).
const MAX_TEXT: usize = 2000;
/// How far back a timeline reaches (the status before it is drawn from its start).
const TIMELINE_DAYS: i64 = 365;
/// Meetings listed on the meeting page.
const MEETINGS_SHOWN: u32 = 5;

/// A template rendered as an HTML answer; a template that fails to render is our fault.
pub(super) fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "web board page not rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// What every page's frame shows.
pub(super) struct Chrome {
    pub(super) title: String,
    pub(super) who: String,
    pub(super) csrf: String,
}

impl Chrome {
    fn of(logged_in: &LoggedIn, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            who: logged_in.login.display_name.clone(),
            csrf: logged_in.session.csrf.clone(),
        }
    }
}

/// A person of the development login.
pub(super) struct LoginPerson {
    pub(super) key: String,
    pub(super) name: String,
}

/// The login page.
#[derive(Template)]
#[template(path = "board/login.html")]
pub(super) struct LoginPage {
    pub(super) csrf: String,
    pub(super) dev: bool,
    pub(super) people: Vec<LoginPerson>,
}

/// An error page.
#[derive(Template)]
#[template(path = "board/error.html")]
pub(super) struct ErrorPage {
    pub(super) title: &'static str,
    pub(super) text: String,
}

/// The page a finished login answers with: it moves on to the board by itself, as a new
/// navigation from the board's own origin, so that the `SameSite=Strict` session cookie is
/// sent (a redirect would still count as coming from the identity provider's site).
#[derive(Template)]
#[template(path = "board/signed_in.html")]
pub(super) struct SignedInPage;

/// One open agreed action on a row.
pub(super) struct ActionView {
    id: String,
    description: String,
    owner: String,
    due: String,
    overdue: bool,
}

/// One row of the board.
pub(super) struct Row {
    entry_id: String,
    participant_id: String,
    name: String,
    level: u32,
    level_class: &'static str,
    level_meaning: String,
    trend: &'static str,
    trend_class: &'static str,
    trend_value: i32,
    days: u32,
    reason: String,
    criteria: Vec<String>,
    next_review: String,
    review_due: bool,
    actions: Vec<ActionView>,
    revision: u64,
    note: String,
}

/// A level of the team's scale.
pub(super) struct LevelView {
    level: u32,
    meaning: String,
    class: &'static str,
}

/// A member of staff an action can be given to.
pub(super) struct StaffOption {
    id: String,
    name: String,
    own: bool,
}

/// What the board and its live rows show.
struct BoardData {
    team: board_pb::Team,
    rows: Vec<Row>,
    levels: Vec<LevelView>,
    staff: Vec<StaffOption>,
    /// Enrolled participants the person may see who are not on the board.
    candidates: Vec<(String, String)>,
}

/// The board page.
#[derive(Template)]
#[template(path = "board/board.html")]
pub(super) struct BoardPage {
    chrome: Chrome,
    team_name: String,
    rows: Vec<Row>,
    levels: Vec<LevelView>,
    criteria: Vec<(String, String)>,
    staff: Vec<StaffOption>,
    candidates: Vec<(String, String)>,
    csrf: String,
    today: String,
}

/// The board's rows alone, fetched by the page when the board changes.
#[derive(Template)]
#[template(path = "board/rows.html")]
pub(super) struct RowsFragment {
    rows: Vec<Row>,
    levels: Vec<LevelView>,
    staff: Vec<StaffOption>,
    csrf: String,
    today: String,
}

fn level_class(colour: &str) -> &'static str {
    match colour {
        "red" => "level-red",
        "yellow" | "amber" | "orange" => "level-yellow",
        "green" => "level-green",
        _ => "level-other",
    }
}

/// A participant named by the end of their id, where the person may not see the name.
fn short_id(id: &str) -> String {
    let tail = id.len().saturating_sub(6);
    id.get(tail..).unwrap_or(id).to_owned()
}

fn day(on: Option<NaiveDate>) -> String {
    on.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The board as the logged-in person may see it, most acute first.
async fn board_data(board: &WebBoard, logged_in: &LoggedIn) -> Result<BoardData, PageError> {
    let caller = &logged_in.caller;
    let team = calls::team(caller, &logged_in.login.teams).await?;
    let entries = BoardServiceClient::new(caller.clone())
        .get_board(board_pb::GetBoardRequest {
            team_id: team.team_id.clone(),
        })
        .await?
        .into_inner()
        .entries;
    let people = calls::people(caller).await?;
    let names: HashMap<String, String> = people
        .iter()
        .map(|(id, (name, _))| (id.clone(), name.clone()))
        .collect();
    let staff_names = board.staff_names();
    let today = Utc::now().date_naive();
    let levels: Vec<LevelView> = team
        .status_levels
        .iter()
        .map(|l| LevelView {
            level: l.level,
            meaning: l.meaning.clone(),
            class: level_class(&l.colour),
        })
        .collect();
    let mut rows: Vec<(u32, u8, Option<NaiveDate>, i64, Row)> = entries
        .into_iter()
        .filter(|e| e.state == board_pb::EntryState::OnBoard as i32)
        .map(|entry| {
            let participant_id = entry
                .participant_id
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default();
            let status = entry.status.clone().unwrap_or_default();
            let level = levels.iter().find(|l| l.level == status.level);
            let (trend, trend_class) = calls::trend(status.trend);
            let review = calls::date(entry.next_review_on.as_ref());
            let mut actions: Vec<ActionView> = entry
                .actions
                .iter()
                .filter(|a| a.done_at.is_none())
                .map(|a| {
                    let due = calls::date(a.due_on.as_ref());
                    let owner = a
                        .owner
                        .as_ref()
                        .map(|o| {
                            staff_names
                                .get(&o.staff_id)
                                .cloned()
                                .unwrap_or_else(|| o.staff_id.clone())
                        })
                        .unwrap_or_default();
                    ActionView {
                        id: a.action_id.clone(),
                        description: a.description.clone(),
                        owner,
                        due: day(due),
                        overdue: due.is_some_and(|d| d < today),
                    }
                })
                .collect();
            actions.sort_by(|a, b| a.due.cmp(&b.due));
            let criteria = entry
                .criteria
                .iter()
                .map(|code| {
                    team.criteria
                        .iter()
                        .find(|c| &c.code == code)
                        .map_or_else(|| code.clone(), |c| c.label.clone())
                })
                .collect();
            let put_on = calls::time(entry.put_on_at.as_ref()).map_or(0, |t| t.timestamp());
            let row = Row {
                name: names
                    .get(&participant_id)
                    .cloned()
                    .unwrap_or_else(|| format!("Deltagare {}", short_id(&participant_id))),
                entry_id: entry.entry_id.clone(),
                participant_id,
                level: status.level,
                level_class: level.map_or("level-other", |l| l.class),
                level_meaning: level.map(|l| l.meaning.clone()).unwrap_or_default(),
                trend,
                trend_class,
                trend_value: status.trend,
                days: entry.days_on_board,
                reason: entry.reason.clone(),
                criteria,
                next_review: day(review),
                review_due: review.is_some_and(|d| d <= today),
                actions,
                revision: entry.revision.as_ref().map_or(0, |r| r.value),
                note: status.note.clone(),
            };
            (
                status.level,
                calls::trend_rank(status.trend),
                review,
                put_on,
                row,
            )
        })
        .collect();
    // Most acute first: the lowest level, then worsening before improving, then the
    // earliest review, then the longest on the board.
    rows.sort_by(|a, b| {
        (a.0, a.1, a.2.unwrap_or(NaiveDate::MAX), a.3).cmp(&(
            b.0,
            b.1,
            b.2.unwrap_or(NaiveDate::MAX),
            b.3,
        ))
    });
    let me = &logged_in.login.person_id;
    let mut staff: Vec<StaffOption> = staff_names
        .iter()
        .map(|(id, name)| StaffOption {
            id: id.clone(),
            name: name.clone(),
            own: id == me,
        })
        .collect();
    if !staff.iter().any(|s| s.own) {
        staff.push(StaffOption {
            id: me.clone(),
            name: logged_in.login.display_name.clone(),
            own: true,
        });
    }
    staff.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Row> = rows.into_iter().map(|r| r.4).collect();
    let mut candidates: Vec<(String, String)> = people
        .into_iter()
        .filter(|(id, (_, enrolled))| *enrolled && !rows.iter().any(|r| &r.participant_id == id))
        .map(|(id, (name, _))| (id, name))
        .collect();
    candidates.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(BoardData {
        team,
        rows,
        levels,
        staff,
        candidates,
    })
}

impl WebBoard {
    /// Staff names by id, from the demo roster (a production gateway shows staff ids).
    fn staff_names(&self) -> HashMap<String, String> {
        self.roster()
            .map(|r| {
                r.people
                    .iter()
                    .filter(|p| p.kind == "staff")
                    .map(|p| (p.id.clone(), p.short_name().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(super) async fn board(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let logged_in = board.logged_in(&headers)?;
    let data = board_data(&board, &logged_in).await?;
    let page = BoardPage {
        chrome: Chrome::of(&logged_in, "FACT-tavlan"),
        team_name: data.team.name.clone(),
        criteria: data
            .team
            .criteria
            .iter()
            .map(|c| (c.code.clone(), c.label.clone()))
            .collect(),
        rows: data.rows,
        levels: data.levels,
        staff: data.staff,
        candidates: data.candidates,
        csrf: logged_in.session.csrf.clone(),
        today: day(Some(Utc::now().date_naive())),
    };
    Ok(html(&page))
}

pub(super) async fn rows(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let logged_in = board.logged_in(&headers)?;
    let data = board_data(&board, &logged_in).await?;
    Ok(html(&RowsFragment {
        rows: data.rows,
        levels: data.levels,
        staff: data.staff,
        csrf: logged_in.session.csrf.clone(),
        today: day(Some(Utc::now().date_naive())),
    }))
}

/// Back to the page a form was posted from: the board, or the meeting.
fn back(fields: &HashMap<String, String>) -> Response {
    let to = match fields.get("back").map(String::as_str) {
        Some("meeting") => "/board/meeting",
        _ => "/board/",
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> Result<&'a str, PageError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| v.len() <= MAX_TEXT)
        .ok_or_else(|| PageError::Invalid(name.to_owned()))
}

fn participant(fields: &HashMap<String, String>) -> Result<String, PageError> {
    let id = field(fields, "participant")?;
    participant_segment(Path(id.to_owned())).map_err(|_| PageError::Invalid("participant".into()))
}

pub(super) async fn update_status(
    State(board): State<Arc<WebBoard>>,
    entry_id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let entry_id = id_segment(entry_id)?;
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    let level: u32 = field(&fields, "level")?
        .parse()
        .map_err(|_| PageError::Invalid("level".into()))?;
    let trend: i32 = field(&fields, "trend")?
        .parse()
        .map_err(|_| PageError::Invalid("trend".into()))?;
    let revision: u64 = field(&fields, "revision")?
        .parse()
        .map_err(|_| PageError::Invalid("revision".into()))?;
    let note = field(&fields, "note")?.trim().to_owned();
    BoardServiceClient::new(logged_in.caller.clone())
        .update_entry(board_pb::UpdateEntryRequest {
            entry_id,
            participant_id: pid(&participant),
            expected_revision: Some(Revision { value: revision }),
            status: Some(board_pb::StatusAssessment { level, trend, note }),
            ..Default::default()
        })
        .await?;
    Ok(back(&fields))
}

pub(super) async fn add_action(
    State(board): State<Arc<WebBoard>>,
    entry_id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let entry_id = id_segment(entry_id)?;
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    let description = field(&fields, "description")?.trim().to_owned();
    let due = NaiveDate::parse_from_str(field(&fields, "due")?, "%Y-%m-%d")
        .map_err(|_| PageError::Invalid("due".into()))?;
    let owner_id = field(&fields, "owner")?;
    let roster = board.roster();
    let owner = roster
        .as_ref()
        .and_then(|r| {
            r.people
                .iter()
                .find(|p| p.id == owner_id && p.kind == "staff")
        })
        .map(|p| calls::staff_ref(&p.id, p.organisation.as_deref(), p.unit.as_deref()))
        .unwrap_or_else(|| calls::staff_ref(owner_id, None, None));
    BoardServiceClient::new(logged_in.caller.clone())
        .add_action(board_pb::AddActionRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            entry_id,
            participant_id: pid(&participant),
            action: Some(board_pb::NewAction {
                description,
                owner: Some(owner),
                due_on: Some(calls::calendar(due)),
            }),
            recorded_by: None,
        })
        .await?;
    Ok(back(&fields))
}

pub(super) async fn complete_action(
    State(board): State<Arc<WebBoard>>,
    Path((entry_id, action_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let entry_id = id_segment(Path(entry_id))?;
    let action_id = id_segment(Path(action_id))?;
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    BoardServiceClient::new(logged_in.caller.clone())
        .complete_action(board_pb::CompleteActionRequest {
            entry_id,
            participant_id: pid(&participant),
            action_id,
            recorded_by: None,
        })
        .await?;
    Ok(back(&fields))
}

pub(super) async fn put_on_board(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    let reason = field(&fields, "reason")?.trim().to_owned();
    let criterion = field(&fields, "criterion")?.to_owned();
    let level: u32 = field(&fields, "level")?
        .parse()
        .map_err(|_| PageError::Invalid("level".into()))?;
    let trend: i32 = field(&fields, "trend")?
        .parse()
        .map_err(|_| PageError::Invalid("trend".into()))?;
    let review = match fields.get("review").map(String::as_str) {
        None | Some("") => None,
        Some(on) => Some(calls::calendar(
            NaiveDate::parse_from_str(on, "%Y-%m-%d")
                .map_err(|_| PageError::Invalid("review".into()))?,
        )),
    };
    let team = calls::team(&logged_in.caller, &logged_in.login.teams).await?;
    BoardServiceClient::new(logged_in.caller.clone())
        .put_on_board(board_pb::PutOnBoardRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            team_id: team.team_id,
            participant_id: pid(&participant),
            reason,
            criteria: vec![criterion],
            status: Some(board_pb::StatusAssessment {
                level,
                trend,
                note: String::new(),
            }),
            next_review_on: review,
            actions: Vec::new(),
            recorded_by: None,
        })
        .await?;
    Ok(back(&fields))
}

pub(super) async fn take_off_board(
    State(board): State<Arc<WebBoard>>,
    entry_id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let entry_id = id_segment(entry_id)?;
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    let revision: u64 = field(&fields, "revision")?
        .parse()
        .map_err(|_| PageError::Invalid("revision".into()))?;
    let reason = field(&fields, "reason")?.trim().to_owned();
    BoardServiceClient::new(logged_in.caller.clone())
        .take_off_board(board_pb::TakeOffBoardRequest {
            entry_id,
            participant_id: pid(&participant),
            expected_revision: Some(Revision { value: revision }),
            reason,
            recorded_by: None,
        })
        .await?;
    Ok(back(&fields))
}

/// One participant on the meeting's agenda.
pub(super) struct AgendaView {
    participant_id: String,
    entry_id: String,
    name: String,
    reasons: Vec<&'static str>,
    level: u32,
    level_class: &'static str,
    trend: &'static str,
    reason: String,
    overdue: Vec<ActionView>,
    /// Municipal decisions about the participant since the last meeting.
    decisions: Vec<String>,
    discussed: bool,
}

/// One participant's part of the minutes.
pub(super) struct MinuteView {
    name: String,
    notes: String,
    decisions: Vec<String>,
}

/// The morning meeting page.
#[derive(Template)]
#[template(path = "board/meeting.html")]
pub(super) struct MeetingPage {
    chrome: Chrome,
    today: String,
    team_name: String,
    items: Vec<AgendaView>,
    meeting_id: Option<String>,
    minutes: Vec<MinuteView>,
    earlier: Vec<String>,
    csrf: String,
}

pub(super) async fn meeting(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let logged_in = board.logged_in(&headers)?;
    let caller = &logged_in.caller;
    let team = calls::team(caller, &logged_in.login.teams).await?;
    let today = Utc::now().date_naive();
    let mut client = BoardServiceClient::new(caller.clone());
    let agenda = client
        .get_agenda(board_pb::GetAgendaRequest {
            team_id: team.team_id.clone(),
            on: Some(calls::calendar(today)),
        })
        .await?
        .into_inner();
    let meetings = client
        .list_meetings(board_pb::ListMeetingsRequest {
            team_id: team.team_id.clone(),
            page: Some(PageRequest {
                page_size: MEETINGS_SHOWN,
                page_token: String::new(),
            }),
        })
        .await?
        .into_inner()
        .meetings;
    let names = calls::names(caller).await?;
    let name_of = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("Deltagare {}", short_id(id)))
    };
    let current = meetings
        .iter()
        .find(|m| calls::date(m.held_on.as_ref()) == Some(today));
    let mut minutes = Vec::new();
    let mut discussed = Vec::new();
    if let Some(current) = current {
        let held = client
            .get_meeting(board_pb::GetMeetingRequest {
                meeting_id: current.meeting_id.clone(),
            })
            .await?
            .into_inner();
        for d in held.discussions {
            let id = d.participant_id.map(|p| p.value).unwrap_or_default();
            minutes.push(MinuteView {
                name: name_of(&id),
                notes: d.notes,
                decisions: d.decisions,
            });
            discussed.push(id);
        }
    }
    let staff_names = board.staff_names();
    let decisions: HashMap<String, Vec<String>> = agenda
        .decisions
        .iter()
        .filter_map(|d| {
            Some((
                d.participant_id.as_ref()?.value.clone(),
                d.notices.iter().map(calls::decision_notice).collect(),
            ))
        })
        .collect();
    let items = agenda
        .items
        .into_iter()
        .map(|item| {
            let id = item.participant_id.map(|p| p.value).unwrap_or_default();
            let entry = item.entry.unwrap_or_default();
            let status = entry.status.unwrap_or_default();
            let colour = team
                .status_levels
                .iter()
                .find(|l| l.level == status.level)
                .map(|l| l.colour.clone())
                .unwrap_or_default();
            AgendaView {
                decisions: decisions.get(&id).cloned().unwrap_or_default(),
                name: name_of(&id),
                discussed: discussed.contains(&id),
                participant_id: id,
                entry_id: entry.entry_id,
                reasons: item
                    .reasons
                    .iter()
                    .map(|r| calls::agenda_reason(*r))
                    .collect(),
                level: status.level,
                level_class: level_class(&colour),
                trend: calls::trend(status.trend).0,
                reason: entry.reason,
                overdue: item
                    .overdue_actions
                    .iter()
                    .map(|a| ActionView {
                        id: a.action_id.clone(),
                        description: a.description.clone(),
                        owner: a
                            .owner
                            .as_ref()
                            .map(|o| {
                                staff_names
                                    .get(&o.staff_id)
                                    .cloned()
                                    .unwrap_or_else(|| o.staff_id.clone())
                            })
                            .unwrap_or_default(),
                        due: day(calls::date(a.due_on.as_ref())),
                        overdue: true,
                    })
                    .collect(),
            }
        })
        .collect();
    let page = MeetingPage {
        chrome: Chrome::of(&logged_in, "Morgonmötet"),
        today: day(Some(today)),
        team_name: team.name,
        items,
        meeting_id: current.map(|m| m.meeting_id.clone()),
        minutes,
        earlier: meetings
            .iter()
            .filter(|m| Some(&m.meeting_id) != current.map(|c| &c.meeting_id))
            .map(|m| day(calls::date(m.held_on.as_ref())))
            .collect(),
        csrf: logged_in.session.csrf.clone(),
    };
    Ok(html(&page))
}

pub(super) async fn start_meeting(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (logged_in, _) = board.posted(&headers, &body)?;
    let team = calls::team(&logged_in.caller, &logged_in.login.teams).await?;
    BoardServiceClient::new(logged_in.caller.clone())
        .start_meeting(board_pb::StartMeetingRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            team_id: team.team_id,
            held_on: Some(calls::calendar(Utc::now().date_naive())),
            chair: None,
            attendees: Vec::new(),
        })
        .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/board/meeting")],
    )
        .into_response())
}

pub(super) async fn record_discussion(
    State(board): State<Arc<WebBoard>>,
    meeting_id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let meeting_id = id_segment(meeting_id)?;
    let (logged_in, fields) = board.posted(&headers, &body)?;
    let participant = participant(&fields)?;
    let notes = field(&fields, "notes")?.trim().to_owned();
    let decisions = field(&fields, "decision")
        .map(|d| d.trim())
        .ok()
        .filter(|d| !d.is_empty())
        .map(|d| vec![d.to_owned()])
        .unwrap_or_default();
    BoardServiceClient::new(logged_in.caller.clone())
        .record_discussion(board_pb::RecordDiscussionRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            meeting_id,
            participant_id: pid(&participant),
            notes,
            decisions,
            actions: Vec::new(),
            recorded_by: None,
        })
        .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/board/meeting")],
    )
        .into_response())
}

/// A status assessment in the timeline's table.
pub(super) struct PointView {
    at: String,
    level: u32,
    meaning: String,
    trend: &'static str,
    note: String,
}

/// An intervention in the timeline's table.
pub(super) struct InterventionView {
    area: String,
    what: String,
    organisation: String,
    status: &'static str,
    start: String,
    end: String,
}

/// The timeline page.
#[derive(Template)]
#[template(path = "board/timeline.html")]
pub(super) struct TimelinePage {
    chrome: Chrome,
    name: String,
    chart: Chart,
    width: f64,
    points: Vec<PointView>,
    stays: Vec<(String, String)>,
    interventions: Vec<InterventionView>,
    plan_shown: bool,
}

pub(super) async fn timeline(
    State(board): State<Arc<WebBoard>>,
    participant: Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let participant = participant_segment(participant)?;
    let logged_in = board.logged_in(&headers)?;
    let caller = &logged_in.caller;
    let team = calls::team(caller, &logged_in.login.teams).await?;
    let answer = BoardServiceClient::new(caller.clone())
        .get_timeline(board_pb::GetTimelineRequest {
            participant_id: pid(&participant),
            period: Some(Period {
                start: Some(prost_types::Timestamp {
                    seconds: (Utc::now() - chrono::Duration::days(TIMELINE_DAYS)).timestamp(),
                    nanos: 0,
                }),
                end: None,
            }),
            team_id: team.team_id.clone(),
        })
        .await?
        .into_inner();
    // The plan is read as its own call: a reader of the board may not read the plan.
    let plan = match calls::plan(caller, &participant).await {
        Ok(plan) => plan,
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::PermissionDenied | tonic::Code::NotFound
            ) =>
        {
            None
        }
        Err(status) => return Err(status.into()),
    };
    let names = calls::names(caller).await?;
    let now = Utc::now();
    let meaning = |level: u32| {
        team.status_levels
            .iter()
            .find(|l| l.level == level)
            .map(|l| l.meaning.clone())
            .unwrap_or_default()
    };
    let mut points: Vec<(chrono::DateTime<Utc>, board_pb::StatusAssessment)> = answer
        .before_period
        .iter()
        .chain(&answer.points)
        .filter_map(|p| Some((calls::time(p.recorded_at.as_ref())?, p.status.clone()?)))
        .collect();
    points.sort_by_key(|p| p.0);
    let mut stays: Vec<(chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)> = Vec::new();
    let mut events: Vec<&board_pb::BoardEvent> = answer.events.iter().collect();
    events.sort_by_key(|e| e.occurred_at.as_ref().map(|t| (t.seconds, t.nanos)));
    for event in events {
        let Some(at) = calls::time(event.occurred_at.as_ref()) else {
            continue;
        };
        match board_pb::BoardEventKind::try_from(event.kind).unwrap_or_default() {
            board_pb::BoardEventKind::PutOn => stays.push((at, None)),
            board_pb::BoardEventKind::TakenOff => {
                if let Some(open) = stays.iter_mut().rev().find(|s| s.1.is_none()) {
                    open.1 = Some(at);
                }
            }
            _ => {}
        }
    }
    let mut bars = Vec::new();
    let mut interventions = Vec::new();
    if let Some(plan) = &plan {
        let created = calls::time(plan.created_at.as_ref()).unwrap_or(now);
        let content = plan.content.clone().unwrap_or_default();
        for i in &content.interventions {
            let area = content
                .needs
                .iter()
                .find(|n| n.id == i.need_id)
                .map_or("Övrigt", |n| calls::life_area(n.life_area));
            let what = match &i.kind {
                Some(samsyn_proto::plans::v1::intervention::Kind::CatalogueCode(code)) => {
                    code.clone()
                }
                Some(samsyn_proto::plans::v1::intervention::Kind::FreeText(text)) => text.clone(),
                None => String::new(),
            };
            let (status_text, status_class) = calls::intervention_status(i.status);
            let start = calls::date(i.start_on.as_ref());
            let end = calls::date(i.end_on.as_ref());
            let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            bars.push(timeline::Intervention {
                area: area.to_owned(),
                label: format!("{what} ({status_text})"),
                status: status_class,
                start: start.and_then(at).unwrap_or(created),
                end: end.and_then(at),
            });
            interventions.push(InterventionView {
                area: area.to_owned(),
                what,
                organisation: i
                    .responsible_organisation_id
                    .as_ref()
                    .map(|o| o.value.clone())
                    .unwrap_or_default(),
                status: status_text,
                start: day(start),
                end: day(end),
            });
        }
    }
    let levels: Vec<(u32, String)> = team
        .status_levels
        .iter()
        .map(|l| (l.level, l.meaning.clone()))
        .collect();
    let plotted: Vec<timeline::Point> = points
        .iter()
        .map(|(at, s)| timeline::Point {
            at: *at,
            level: s.level,
            trend: calls::trend(s.trend).1,
        })
        .collect();
    let chart = timeline::chart(&plotted, &stays, &bars, &levels, now);
    let when = |at: chrono::DateTime<Utc>| at.format("%Y-%m-%d %H:%M").to_string();
    let page = TimelinePage {
        chrome: Chrome::of(&logged_in, "Tidslinje"),
        name: names
            .get(&participant)
            .cloned()
            .unwrap_or_else(|| "Deltagare".to_owned()),
        chart,
        width: timeline::WIDTH,
        points: points
            .iter()
            .map(|(at, s)| PointView {
                at: when(*at),
                level: s.level,
                meaning: meaning(s.level),
                trend: calls::trend(s.trend).0,
                note: s.note.clone(),
            })
            .collect(),
        stays: stays
            .iter()
            .map(|(from, until)| {
                (
                    when(*from),
                    until.map(when).unwrap_or_else(|| "pågår".into()),
                )
            })
            .collect(),
        interventions,
        plan_shown: plan.is_some(),
    };
    Ok(html(&page))
}
