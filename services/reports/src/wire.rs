//! From the feeds' changes to the read model's updates: decodes each service's payload and
//! keeps only what reports count (no names, identity numbers or free text).

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_kit::time::{from_calendar_date, from_timestamp};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::Change;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::plans::v1 as plans_pb;

use crate::domain::{
    ConsentFact, EvaluationFact, ExitReason, Feed, InterventionFact, NeedFact, ParticipantEvent,
    ParticipantState, PlanFact, Principal, Stage, StayFact, Update,
};

/// A change the read model cannot take in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The payload does not decode as the entity's message.
    #[error("payload does not decode")]
    Decode,
    /// A field reports need is missing or wrong.
    #[error("field {0} missing or wrong")]
    Field(&'static str),
}

/// The update a change makes; `Ok(None)` for changes reports do not count.
pub fn update(feed: Feed, change: &Change) -> Result<Option<Update>, Unreadable> {
    let at = change
        .recorded_at
        .as_ref()
        .and_then(from_timestamp)
        .ok_or(Unreadable::Field("recorded_at"))?;
    let payload = change.payload.as_slice();
    Ok(Some(match (feed, change.entity_kind.as_str()) {
        (Feed::Participants, "participant") => participant(payload, &change.change_kind, at)?,
        (Feed::Participants, "care_team") => care_team(payload)?,
        (Feed::Plans, "plan") => plan(payload)?,
        (Feed::Board, "board_entry") => stay(payload, at)?,
        (Feed::Consent, "consent") => match research_consent(payload)? {
            Some(update) => update,
            None => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

fn participant(payload: &[u8], change_kind: &str, at: DateTime<Utc>) -> Result<Update, Unreadable> {
    use participants_pb::{DischargeReason as R, ParticipantStatus as S};
    let p = participants_pb::ParticipantSummary::decode(payload).map_err(|_| Unreadable::Decode)?;
    let id = p
        .participant_id
        .map(|id| id.value)
        .filter(|id| !id.is_empty())
        .ok_or(Unreadable::Field("participant_id"))?;
    let stage = match S::try_from(p.status) {
        Ok(S::Referred) => Stage::Referred,
        Ok(S::Accepted) => Stage::Accepted,
        Ok(S::Declined) => Stage::Declined,
        Ok(S::Enrolled) => Stage::Enrolled,
        Ok(S::Discharged) => Stage::Discharged,
        Ok(S::Unspecified) | Err(_) => return Err(Unreadable::Field("status")),
    };
    let exit = match R::try_from(p.discharge_reason) {
        Ok(R::ReadyForOrdinaryCare) => Some(ExitReason::OrdinaryCare),
        Ok(R::Moved) => Some(ExitReason::Moved),
        Ok(R::DeclinedFurtherParticipation) => Some(ExitReason::DeclinedFurther),
        Ok(R::Deceased) => Some(ExitReason::Deceased),
        Ok(R::Other) => Some(ExitReason::Other),
        Ok(R::Unspecified) | Err(_) => None,
    };
    let event = match change_kind {
        "referred" => ParticipantEvent::Referred,
        "reviewed" => ParticipantEvent::Reviewed,
        "accepted" => ParticipantEvent::Accepted,
        "declined" => ParticipantEvent::Declined,
        _ => ParticipantEvent::Other,
    };
    Ok(Update::Participant {
        id,
        state: ParticipantState {
            home_municipality: p.home_municipality_code,
            stage,
            enrolled_on: p.enrolled_on.as_ref().and_then(from_calendar_date),
            discharged_on: p.discharged_on.as_ref().and_then(from_calendar_date),
            exit,
        },
        event,
        at,
    })
}

fn care_team(payload: &[u8]) -> Result<Update, Unreadable> {
    use participants_pb::{AssignmentKind, CareRole};
    let team = participants_pb::CareTeam::decode(payload).map_err(|_| Unreadable::Decode)?;
    let id = team
        .participant_id
        .map(|id| id.value)
        .filter(|id| !id.is_empty())
        .ok_or(Unreadable::Field("participant_id"))?;
    let mut staff: Vec<String> = team
        .assignments
        .into_iter()
        .filter(|a| {
            a.valid_until.is_none()
                && a.kind == AssignmentKind::CareTeamMember as i32
                && a.role == CareRole::CaseManager as i32
        })
        .filter_map(|a| a.staff.map(|s| s.staff_id))
        .filter(|s| !s.is_empty())
        .collect();
    staff.sort();
    staff.dedup();
    Ok(Update::CaseManagers { id, staff })
}

/// A municipality's organisation id is its four-digit code; anything else is the region's.
fn principal_of(organisation: &str) -> Principal {
    if organisation.len() == 4 && organisation.bytes().all(|b| b.is_ascii_digit()) {
        Principal::Municipality
    } else {
        Principal::Region
    }
}

fn life_area(value: i32) -> &'static str {
    use plans_pb::LifeArea as L;
    match L::try_from(value) {
        Ok(L::Housing) => "housing",
        Ok(L::Occupation) => "occupation",
        Ok(L::Health) => "health",
        Ok(L::SubstanceUse) => "substance_use",
        Ok(L::Finances) => "finances",
        Ok(L::SocialNetwork) => "social_network",
        Ok(L::DailyLiving) => "daily_living",
        Ok(L::Other | L::Unspecified) | Err(_) => "other",
    }
}

fn no_intervention_reason(value: i32) -> Option<&'static str> {
    use plans_pb::NoInterventionReason as R;
    match R::try_from(value) {
        Ok(R::ParticipantDeclines) => Some("participant_declines"),
        Ok(R::MotivationWork) => Some("motivation_work"),
        Ok(R::NoneSuitable) => Some("none_suitable"),
        Ok(R::Denied) => Some("denied"),
        Ok(R::MetOtherwise) => Some("met_otherwise"),
        Ok(R::Other) => Some("other"),
        Ok(R::Unspecified) | Err(_) => None,
    }
}

fn plan(payload: &[u8]) -> Result<Update, Unreadable> {
    use plans_pb::InterventionStatus as I;
    let plan = plans_pb::Plan::decode(payload).map_err(|_| Unreadable::Decode)?;
    if plan.id.is_empty() {
        return Err(Unreadable::Field("id"));
    }
    let participant_id = plan
        .participant_id
        .map(|id| id.value)
        .filter(|id| !id.is_empty())
        .ok_or(Unreadable::Field("participant_id"))?;
    let content = plan.content.unwrap_or_default();
    let needs = content
        .needs
        .iter()
        .map(|need| NeedFact {
            life_area: life_area(need.life_area).to_owned(),
            no_intervention_reason: no_intervention_reason(need.no_intervention_reason)
                .map(str::to_owned),
            interventions: content
                .interventions
                .iter()
                .filter(|i| i.need_id == need.id)
                .map(|i| {
                    let start = i.start_on.as_ref().and_then(from_calendar_date);
                    let decided = i
                        .decision
                        .as_ref()
                        .and_then(|d| d.valid_from.as_ref())
                        .and_then(from_calendar_date);
                    InterventionFact {
                        principal: principal_of(
                            i.responsible_organisation_id
                                .as_ref()
                                .map_or("", |o| o.value.as_str()),
                        ),
                        current: !matches!(I::try_from(i.status), Ok(I::Denied | I::Ended)),
                        days_decision_to_start: start
                            .zip(decided)
                            .map(|(start, decided)| (start - decided).num_days()),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(Update::Plan {
        id: plan.id,
        fact: PlanFact {
            participant_id,
            active: plan.status == plans_pb::PlanStatus::Active as i32,
            created_at: plan.created_at.as_ref().and_then(from_timestamp),
            needs,
            meetings: plan
                .meetings
                .iter()
                .filter_map(|m| m.held_on.as_ref().and_then(from_calendar_date))
                .collect(),
            evaluations: plan
                .evaluations
                .iter()
                .filter_map(|e| e.recorded_at.as_ref().and_then(from_timestamp))
                .collect(),
            sip_kollen: plan.evaluations.iter().filter_map(evaluation).collect(),
        },
    })
}

fn evaluation(e: &plans_pb::Evaluation) -> Option<EvaluationFact> {
    use plans_pb::{EvaluationAnswer as A, EvaluationQuestion as Q};
    let answers = e
        .items
        .iter()
        .filter_map(|item| {
            let question = match Q::try_from(item.question).ok()? {
                Q::TookPart => "took_part",
                Q::GoalsAreMine => "goals_are_mine",
                Q::KnowsWhoDoesWhat => "knows_who_does_what",
                Q::KnowsFollowUp => "knows_follow_up",
                Q::PlanHelps => "plan_helps",
                Q::Unspecified => return None,
            };
            let answer = match A::try_from(item.answer).ok()? {
                A::Yes => "yes",
                A::Partly => "partly",
                A::No => "no",
                A::Unspecified => return None,
            };
            Some((question.to_owned(), answer.to_owned()))
        })
        .collect();
    Some(EvaluationFact {
        recorded_at: e.recorded_at.as_ref().and_then(from_timestamp)?,
        answers,
    })
}

fn stay(payload: &[u8], at: DateTime<Utc>) -> Result<Update, Unreadable> {
    let e = board_pb::BoardEntry::decode(payload).map_err(|_| Unreadable::Decode)?;
    if e.entry_id.is_empty() {
        return Err(Unreadable::Field("entry_id"));
    }
    let participant_id = e
        .participant_id
        .map(|id| id.value)
        .filter(|id| !id.is_empty())
        .ok_or(Unreadable::Field("participant_id"))?;
    Ok(Update::Stay {
        id: e.entry_id,
        fact: StayFact {
            participant_id,
            team_id: e.team_id,
            on_at: e
                .put_on_at
                .as_ref()
                .and_then(from_timestamp)
                .ok_or(Unreadable::Field("put_on_at"))?,
            off_at: e.taken_off_at.as_ref().and_then(from_timestamp),
            levels: e
                .status
                .map(|s| s.level)
                .filter(|level| *level > 0)
                .map(|level| vec![(at, level)])
                .unwrap_or_default(),
        },
    })
}

fn research_consent(payload: &[u8]) -> Result<Option<Update>, Unreadable> {
    use consent_pb::{ConsentKind, ConsentState};
    let c = consent_pb::Consent::decode(payload).map_err(|_| Unreadable::Decode)?;
    if c.kind != ConsentKind::ResearchStudy as i32 {
        return Ok(None);
    }
    if c.id.is_empty() {
        return Err(Unreadable::Field("id"));
    }
    let participant_id = c
        .participant_id
        .map(|id| id.value)
        .filter(|id| !id.is_empty())
        .ok_or(Unreadable::Field("participant_id"))?;
    let ended = c.revocation.is_some()
        || c.voiding.is_some()
        || c.state == ConsentState::Revoked as i32
        || c.state == ConsentState::Voided as i32;
    Ok(Some(Update::ResearchConsent {
        id: c.id,
        fact: ConsentFact {
            participant_id,
            study_id: Some(c.study_id).filter(|s| !s.is_empty()),
            valid_from: c
                .valid_from
                .as_ref()
                .and_then(from_timestamp)
                .ok_or(Unreadable::Field("valid_from"))?,
            valid_until: c.valid_until.as_ref().and_then(from_timestamp),
            ended,
        },
    }))
}
