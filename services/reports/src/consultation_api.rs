//! The consultation group's tonic adapter: validate and screen, store, and show a participant
//! link only to the organisation that made it.

use std::collections::HashMap;

use samsyn_kit::caller::Caller;
use samsyn_kit::time::{from_calendar_date, to_calendar_date, to_timestamp};
use samsyn_kit::{ApiError, FieldViolations};
use samsyn_proto::common::v1::ParticipantId;
use samsyn_proto::plans::v1::LifeArea;
use samsyn_proto::reports::v1 as pb;
use tonic::{Request, Response, Status};

use crate::domain::consultation::{self, AgendaItem, CaseFact, MeetingFact};
use crate::domain::repository::{ReadModel, ReadModelError};

/// The consultation service.
#[derive(Debug, Clone)]
pub struct ConsultationApi<R> {
    store: R,
}

impl<R: ReadModel> ConsultationApi<R> {
    /// The service over a read model (the store, in production).
    pub fn new(store: R) -> Self {
        Self { store }
    }
}

/// Most needs on one case.
const MAX_NEEDS: usize = 8;
/// Most cases on one meeting's agenda.
const MAX_AGENDA: usize = 50;

fn age_band(value: i32) -> Result<&'static str, &'static str> {
    use pb::AgeBand as A;
    Ok(match A::try_from(value) {
        Ok(A::AgeBand1824) => "18-24",
        Ok(A::AgeBand2534) => "25-34",
        Ok(A::AgeBand3544) => "35-44",
        Ok(A::AgeBand4554) => "45-54",
        Ok(A::AgeBand5564) => "55-64",
        Ok(A::AgeBand65Plus) => "65+",
        Ok(A::Unspecified) | Err(_) => return Err("must name an age band"),
    })
}

fn age_band_to_proto(code: &str) -> pb::AgeBand {
    use pb::AgeBand as A;
    match code {
        "18-24" => A::AgeBand1824,
        "25-34" => A::AgeBand2534,
        "35-44" => A::AgeBand3544,
        "45-54" => A::AgeBand4554,
        "55-64" => A::AgeBand5564,
        "65+" => A::AgeBand65Plus,
        _ => A::Unspecified,
    }
}

fn need(value: i32) -> Result<&'static str, &'static str> {
    Ok(match LifeArea::try_from(value) {
        Ok(LifeArea::Housing) => "housing",
        Ok(LifeArea::Occupation) => "occupation",
        Ok(LifeArea::Health) => "health",
        Ok(LifeArea::SubstanceUse) => "substance_use",
        Ok(LifeArea::Finances) => "finances",
        Ok(LifeArea::SocialNetwork) => "social_network",
        Ok(LifeArea::DailyLiving) => "daily_living",
        Ok(LifeArea::Other) => "other",
        Ok(LifeArea::Unspecified) | Err(_) => return Err("unknown life area"),
    })
}

fn need_to_proto(code: &str) -> i32 {
    (match code {
        "housing" => LifeArea::Housing,
        "occupation" => LifeArea::Occupation,
        "health" => LifeArea::Health,
        "substance_use" => LifeArea::SubstanceUse,
        "finances" => LifeArea::Finances,
        "social_network" => LifeArea::SocialNetwork,
        "daily_living" => LifeArea::DailyLiving,
        _ => LifeArea::Other,
    }) as i32
}

fn municipality(code: &str) -> Result<String, &'static str> {
    if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_owned())
    } else {
        Err("must be four digits")
    }
}

fn text(value: &str) -> Result<String, &'static str> {
    if value.trim().is_empty() {
        return Err("required");
    }
    consultation::screen(value)?;
    Ok(value.to_owned())
}

/// The caller's organisation and id; a call without a caller acts for no organisation.
fn who(caller: Option<&Caller>) -> (String, String) {
    caller.map_or_else(Default::default, |c| {
        (c.organisation.clone().unwrap_or_default(), c.id.clone())
    })
}

/// A case as answered; the link only when `show_link` (the submitting organisation asking
/// about that participant, a read the gateway decided).
fn case_to_proto(
    id: &str,
    case: &CaseFact,
    show_link: bool,
    advice: Vec<pb::Advice>,
) -> pb::ConsultationCase {
    pb::ConsultationCase {
        id: id.to_owned(),
        organisation_id: case.organisation.clone(),
        age_band: age_band_to_proto(&case.age_band) as i32,
        municipality_code: case.municipality.clone(),
        needs: case.needs.iter().map(|n| need_to_proto(n)).collect(),
        question: case.question.clone(),
        participant_id: case
            .participant_id
            .clone()
            .filter(|_| show_link)
            .map(|value| ParticipantId { value }),
        submitted_at: Some(to_timestamp(case.submitted_at)),
        advice,
    }
}

fn unavailable(error: ReadModelError) -> Status {
    tracing::error!(%error, "cannot use the consultation store");
    Status::from(ApiError::Unavailable)
}

#[tonic::async_trait]
impl<R: ReadModel> pb::consultation_service_server::ConsultationService for ConsultationApi<R> {
    async fn submit_case(
        &self,
        request: Request<pb::SubmitCaseRequest>,
    ) -> Result<Response<pb::ConsultationCase>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let band = v.check("age_band", age_band(req.age_band));
        let home = v.check("municipality_code", municipality(&req.municipality_code));
        if req.needs.len() > MAX_NEEDS {
            v.add("needs", "at most 8");
        }
        let needs: Vec<String> = req
            .needs
            .iter()
            .enumerate()
            .filter_map(|(i, n)| v.check(&format!("needs[{i}]"), need(*n)))
            .map(str::to_owned)
            .collect();
        let question = v.check("question", text(&req.question));
        let participant_id = req
            .participant_id
            .map(|p| p.value)
            .filter(|p| !p.is_empty());
        v.finish()?;
        let (Some(band), Some(home), Some(question)) = (band, home, question) else {
            return Err(Status::invalid_argument("invalid request"));
        };
        let (organisation, submitted_by) = who(caller.as_ref());
        let case = CaseFact {
            organisation,
            submitted_by,
            age_band: band.to_owned(),
            municipality: home,
            needs,
            question,
            participant_id,
            submitted_at: chrono::Utc::now(),
        };
        let id = uuid_v7();
        self.store
            .save_case(&id, &case)
            .await
            .map_err(unavailable)?;
        tracing::info!(case_id = %id, "consultation case submitted");
        let linked = case.participant_id.is_some();
        Ok(Response::new(case_to_proto(&id, &case, linked, Vec::new())))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let (organisation, _) = who(caller.as_ref());
        let about = request
            .into_inner()
            .participant_id
            .map(|p| p.value)
            .filter(|p| !p.is_empty());
        let cases = self.store.cases().await.map_err(unavailable)?;
        let meetings = self.store.meetings().await.map_err(unavailable)?;
        let mut advice: HashMap<&str, Vec<pb::Advice>> = HashMap::new();
        for (meeting_id, meeting) in &meetings {
            for item in &meeting.agenda {
                advice
                    .entry(item.case_id.as_str())
                    .or_default()
                    .push(pb::Advice {
                        meeting_id: meeting_id.clone(),
                        given_on: Some(to_calendar_date(meeting.held_on)),
                        text: item.advice.clone(),
                    });
            }
        }
        Ok(Response::new(pb::ListCasesResponse {
            cases: cases
                .iter()
                .filter(|(_, case)| match &about {
                    None => true,
                    Some(p) => {
                        case.participant_id.as_ref() == Some(p) && case.organisation == organisation
                    }
                })
                .map(|(id, case)| {
                    let given = advice.remove(id.as_str()).unwrap_or_default();
                    case_to_proto(id, case, about.is_some(), given)
                })
                .collect(),
        }))
    }

    async fn record_meeting(
        &self,
        request: Request<pb::RecordMeetingRequest>,
    ) -> Result<Response<pb::ConsultationMeeting>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let held_on = req.held_on.as_ref().and_then(from_calendar_date);
        if held_on.is_none() {
            v.add("held_on", "must be a date");
        }
        if req.agenda.is_empty() || req.agenda.len() > MAX_AGENDA {
            v.add("agenda", "1 to 50 cases");
        }
        let known = self.store.cases().await.map_err(unavailable)?;
        let mut agenda = Vec::new();
        for (i, item) in req.agenda.iter().enumerate() {
            if !known.iter().any(|(id, _)| *id == item.case_id) {
                v.add(format!("agenda[{i}].case_id"), "no such case");
            }
            if let Some(advice) = v.check(&format!("agenda[{i}].advice"), text(&item.advice)) {
                agenda.push(AgendaItem {
                    case_id: item.case_id.clone(),
                    advice,
                });
            }
        }
        v.finish()?;
        let Some(held_on) = held_on else {
            return Err(Status::invalid_argument("invalid request"));
        };
        let meeting = MeetingFact { held_on, agenda };
        let id = uuid_v7();
        self.store
            .save_meeting(&id, &meeting)
            .await
            .map_err(unavailable)?;
        Ok(Response::new(pb::ConsultationMeeting {
            id,
            held_on: Some(to_calendar_date(held_on)),
            agenda: meeting
                .agenda
                .iter()
                .map(|a| pb::AgendaItem {
                    case_id: a.case_id.clone(),
                    advice: a.advice.clone(),
                })
                .collect(),
            next_meeting_on: held_on
                .checked_add_days(chrono::Days::new(consultation::MEETING_INTERVAL_DAYS))
                .map(to_calendar_date),
        }))
    }
}

/// A new time-ordered id.
fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}
