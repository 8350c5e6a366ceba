//! The gRPC calls the web board's pages are built from, each made through the gateway's own
//! proxy as the logged-in person, and what the pages show of their answers.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{CalendarDate, PageRequest, ParticipantId, StaffRef};
use samsyn_proto::participants::v1::ListParticipantsRequest;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;

use crate::fhir_view::caller::AsCaller;

/// Participants asked for per page when naming the board's rows.
const NAMES_PAGE: u32 = 100;
/// Most pages of participants read to name the rows.
const NAMES_PAGES: usize = 10;

/// A participant id for a request.
pub fn pid(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: id.to_owned(),
    })
}

/// A timestamp as a time.
pub fn time(at: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or_default())
}

/// A calendar date as a date.
pub fn date(on: Option<&CalendarDate>) -> Option<NaiveDate> {
    let on = on?;
    NaiveDate::from_ymd_opt(on.year, on.month, on.day)
}

/// A date for a request.
pub fn calendar(on: NaiveDate) -> CalendarDate {
    use chrono::Datelike;
    CalendarDate {
        year: on.year(),
        month: on.month(),
        day: on.day(),
    }
}

/// The team whose board the person sees: the first their token names, or else the first
/// the team list shows.
pub async fn team(caller: &AsCaller, teams: &[String]) -> Result<board_pb::Team, tonic::Status> {
    let mut board = BoardServiceClient::new(caller.clone());
    let team_id = match teams.first() {
        Some(team) => team.clone(),
        None => board
            .list_teams(board_pb::ListTeamsRequest {
                page: Some(PageRequest {
                    page_size: 10,
                    page_token: String::new(),
                }),
            })
            .await?
            .into_inner()
            .teams
            .into_iter()
            .next()
            .map(|t| t.team_id)
            .ok_or_else(|| tonic::Status::not_found("no team"))?,
    };
    board
        .get_team(board_pb::GetTeamRequest { team_id })
        .await
        .map(tonic::Response::into_inner)
}

/// The participants the person may see, by id: name, and whether enrolled (the gateway
/// narrows the list).
pub async fn people(caller: &AsCaller) -> Result<HashMap<String, (String, bool)>, tonic::Status> {
    let mut client = ParticipantsServiceClient::new(caller.clone());
    let mut people = HashMap::new();
    let mut token = String::new();
    for _ in 0..NAMES_PAGES {
        let page = client
            .list_participants(ListParticipantsRequest {
                page: Some(PageRequest {
                    page_size: NAMES_PAGE,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        for p in page.participants {
            if let Some(id) = p.participant_id {
                let enrolled =
                    p.status == samsyn_proto::participants::v1::ParticipantStatus::Enrolled as i32;
                people.insert(id.value, (p.name, enrolled));
            }
        }
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            break;
        }
    }
    Ok(people)
}

/// The names of the participants the person may see, by id.
pub async fn names(caller: &AsCaller) -> Result<HashMap<String, String>, tonic::Status> {
    Ok(people(caller)
        .await?
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .collect())
}

/// The participant's current plan (or the latest), if the person may read one.
pub async fn plan(
    caller: &AsCaller,
    participant: &str,
) -> Result<Option<plans_pb::Plan>, tonic::Status> {
    let mut plans = PlansServiceClient::new(caller.clone());
    let listed = plans
        .list_plans(plans_pb::ListPlansRequest {
            participant_id: pid(participant),
        })
        .await?
        .into_inner()
        .plans;
    let chosen = listed
        .iter()
        .find(|p| p.status == plans_pb::PlanStatus::Active as i32)
        .or_else(|| {
            listed
                .iter()
                .max_by_key(|p| p.created_at.as_ref().map(|t| t.seconds))
        });
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(participant),
            plan_id: chosen.id.clone(),
        })
        .await
        .map(|r| Some(r.into_inner()))
}

/// A staff reference for `id` of `organisation`.
pub fn staff_ref(id: &str, organisation: Option<&str>, unit: Option<&str>) -> StaffRef {
    StaffRef {
        staff_id: id.to_owned(),
        organisation_id: organisation.map(|value| samsyn_proto::common::v1::OrganisationId {
            value: value.to_owned(),
        }),
        unit_id: unit.unwrap_or_default().to_owned(),
    }
}

/// Swedish text for a trend, and its CSS name.
pub fn trend(trend: i32) -> (&'static str, &'static str) {
    match board_pb::Trend::try_from(trend).unwrap_or_default() {
        board_pb::Trend::Worsening => ("Försämras", "worse"),
        board_pb::Trend::Unchanged => ("Oförändrad", "same"),
        board_pb::Trend::Improving => ("Förbättras", "better"),
        board_pb::Trend::Unspecified => ("Okänd", ""),
    }
}

/// How acute a trend is, for ordering: worsening first.
pub fn trend_rank(trend: i32) -> u8 {
    match board_pb::Trend::try_from(trend).unwrap_or_default() {
        board_pb::Trend::Worsening => 0,
        board_pb::Trend::Unchanged => 1,
        board_pb::Trend::Unspecified => 2,
        board_pb::Trend::Improving => 3,
    }
}

/// Swedish text for a life area.
pub fn life_area(area: i32) -> &'static str {
    use plans_pb::LifeArea as A;
    match A::try_from(area).unwrap_or_default() {
        A::Housing => "Boende",
        A::Occupation => "Sysselsättning/arbete",
        A::Health => "Hälsa",
        A::SubstanceUse => "Missbruk/beroende",
        A::Finances => "Ekonomi",
        A::SocialNetwork => "Socialt nätverk",
        A::DailyLiving => "Vardag/boendestöd",
        A::Other | A::Unspecified => "Övrigt",
    }
}

/// Swedish text for an intervention's status, and its CSS name.
pub fn intervention_status(status: i32) -> (&'static str, &'static str) {
    use plans_pb::InterventionStatus as S;
    match S::try_from(status).unwrap_or_default() {
        S::Proposed => ("Föreslagen", "proposed"),
        S::Applied => ("Ansökt", "applied"),
        S::Granted => ("Beviljad", "granted"),
        S::Denied => ("Avslagen", "denied"),
        S::Started => ("Pågår", "started"),
        S::Paused => ("Vilande", "paused"),
        S::Ended => ("Avslutad", "ended"),
        S::Unspecified => ("Okänd", "proposed"),
    }
}

/// Swedish text for why a participant is on the agenda.
pub fn agenda_reason(reason: i32) -> &'static str {
    use board_pb::AgendaReason as R;
    match R::try_from(reason).unwrap_or_default() {
        R::NewEntry => "Ny på tavlan",
        R::DueForReview => "Dags för uppföljning",
        R::OverdueActions => "Försenade åtgärder",
        R::ParticipationConsentRevoked => "Samtycke till deltagande återkallat – följ upp",
        R::Unspecified => "Övrigt",
    }
}

/// Swedish text for a municipal decision notice on the agenda.
pub fn decision_notice(notice: &board_pb::DecisionNotice) -> String {
    use board_pb::DecisionNoticeKind as K;
    use samsyn_proto::plans::v1::DecisionOutcome as O;
    let kind = match K::try_from(notice.kind).unwrap_or_default() {
        K::Recorded => "Beslut infört i planen",
        K::Changed => "Beslut ändrat",
        K::Parked => "Beslut väntar på koppling",
        K::Linked => "Beslut kopplat till insats",
        K::Dismissed => "Beslut avfört",
        K::Unspecified => "Beslut",
    };
    let outcome = match O::try_from(notice.outcome).unwrap_or_default() {
        O::Granted => "beviljat",
        O::Denied => "avslag",
        O::PartlyGranted => "delvis beviljat",
        O::Unspecified => "",
    };
    let what = if notice.catalogue_code.is_empty() {
        String::new()
    } else {
        format!(" ({})", notice.catalogue_code)
    };
    let organisation = notice
        .organisation_id
        .as_ref()
        .map(|o| format!(", kommun {}", o.value))
        .unwrap_or_default();
    if outcome.is_empty() {
        format!("{kind}{what}{organisation}")
    } else {
        format!("{kind}: {outcome}{what}{organisation}")
    }
}
