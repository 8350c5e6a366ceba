//! Patient, EpisodeOfCare and CareTeam from the participants service's records.

use samsyn_proto::common::v1::{OrganisationId, OrganisationKind};
use samsyn_proto::participants::v1::{
    Assignment, AssignmentKind, CareRole, CareTeam, CoordinatorRank, Participant, ParticipantStatus,
};
use serde_json::{Value, json};

use crate::json::{
    Obj, array, concept, date, fhir_id, identifier, instant, latest, meta, meta_obj,
    organisation_reference, patient_reference, period, practitioner_reference, unit_reference,
};
use crate::system;

/// The participant as a FHIR Patient whose id is the internal participant id.
///
/// The personal identity number and the name are personal data: both appear only when
/// `show_personal_identity_number` is true. Otherwise the Patient carries only the internal id
/// (as an identifier too) and the security label REDACTED, so a reader can tell identity was
/// withheld rather than missing. The home municipality is never included.
pub fn patient(participant: &Participant, show_personal_identity_number: bool) -> Value {
    let participant_id = participant
        .participant_id
        .as_ref()
        .map(|id| id.value.as_str())
        .unwrap_or_default();
    let mut identifiers = vec![identifier(system::PARTICIPANT_ID, participant_id)];
    let (name, security) = if show_personal_identity_number {
        let pin = participant.personal_identity_number.as_str();
        identifiers.push(identifier(identity_number_system(pin), pin));
        (
            array([Obj::new().with("text", participant.name.as_str()).build()]),
            Value::Null,
        )
    } else {
        (
            Value::Null,
            json!([{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "REDACTED",
                "display": "redacted",
            }]),
        )
    };
    let meta = meta_obj(
        instant(participant.updated_at.as_ref()),
        revision(participant),
    )
    .with("security", security)
    .build();
    Obj::resource("Patient")
        .with("id", fhir_id(participant_id))
        .with("meta", meta)
        .with("identifier", array(identifiers))
        .with("name", name)
        .build()
}

/// Personnummer or samordningsnummer: a samordningsnummer's day of birth is 61 to 91.
fn identity_number_system(pin: &str) -> &'static str {
    let day = pin
        .get(6..8)
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap_or(0);
    if pin.len() == 12 && (61..=91).contains(&day) {
        system::SAMORDNINGSNUMMER
    } else {
        system::PERSONNUMMER
    }
}

fn revision(participant: &Participant) -> Option<u64> {
    participant.revision.as_ref().map(|r| r.value)
}

/// The EpisodeOfCare status of a participant status.
///
/// Referred (under review) is `planned`: eligibility is being assessed. Accepted is
/// `waitlist`: waiting for consent and enrolment. Declined is `cancelled`, enrolled `active`,
/// discharged (a move out of the area included) `finished`. An unspecified status is
/// `planned`, the reading that claims no care is going on.
pub(crate) fn episode_status(status: ParticipantStatus) -> &'static str {
    match status {
        ParticipantStatus::Unspecified | ParticipantStatus::Referred => "planned",
        ParticipantStatus::Accepted => "waitlist",
        ParticipantStatus::Declined => "cancelled",
        ParticipantStatus::Enrolled => "active",
        ParticipantStatus::Discharged => "finished",
    }
}

/// The participation (FACT team enrolment) as an EpisodeOfCare.
///
/// `managing_organisation` is the region that runs the FACT team; the participant record
/// does not name it, so the caller passes it from configuration. The id is the referral id
/// (one episode per referral). `period` runs from enrolment to discharge; `statusHistory`
/// lists every step whose time is known, each lasting until the next. The discharge reason
/// and note are not mapped (R4 EpisodeOfCare has no element for them).
pub fn episode_of_care(participant: &Participant, managing_organisation: &OrganisationId) -> Value {
    let participant_id = participant
        .participant_id
        .as_ref()
        .map(|id| id.value.as_str())
        .unwrap_or_default();
    let referral_id = participant
        .referral
        .as_ref()
        .map(|r| r.referral_id.as_str())
        .filter(|id| !id.is_empty());
    let id = match referral_id {
        Some(referral_id) => fhir_id(referral_id),
        None => fhir_id(&format!("episode-{participant_id}")),
    };
    let enrolled_on = participant
        .enrolment
        .as_ref()
        .and_then(|e| date(e.enrolled_on.as_ref()));
    let discharged_on = participant
        .discharge
        .as_ref()
        .and_then(|d| date(d.discharged_on.as_ref()));

    let mut steps: Vec<(&str, String)> = Vec::new();
    if let Some(at) = participant
        .referral
        .as_ref()
        .and_then(|r| instant(r.referred_at.as_ref()))
    {
        steps.push(("planned", at));
    }
    if let Some(outcome) = &participant.outcome
        && let Some(at) = instant(outcome.decided_at.as_ref())
    {
        steps.push((
            if outcome.accepted {
                "waitlist"
            } else {
                "cancelled"
            },
            at,
        ));
    }
    if let Some(on) = &enrolled_on {
        steps.push(("active", on.clone()));
    }
    if let Some(on) = &discharged_on {
        steps.push(("finished", on.clone()));
    }
    let history = steps.iter().enumerate().map(|(i, (status, start))| {
        let end = steps.get(i + 1).map(|(_, next)| next.clone());
        json!({ "status": status, "period": period(Some(start.clone()), end) })
    });

    Obj::resource("EpisodeOfCare")
        .with("id", id)
        .with(
            "meta",
            meta(
                instant(participant.updated_at.as_ref()),
                revision(participant),
            ),
        )
        .with(
            "identifier",
            array([identifier(
                system::REFERRAL_ID,
                referral_id.unwrap_or_default(),
            )]),
        )
        .with("status", episode_status(participant.status()))
        .with("statusHistory", array(history))
        .with(
            "type",
            array([concept(
                system::EPISODE_TYPE,
                "fact",
                "FACT team participation",
                "FACT",
            )]),
        )
        .with(
            "patient",
            patient_reference(participant.participant_id.as_ref()),
        )
        .with(
            "managingOrganization",
            organisation_reference(Some(managing_organisation)),
        )
        .with("period", period(enrolled_on, discharged_on))
        .build()
}

/// The participant's care team: coordinators, members and the fixed care contact.
///
/// Each assignment is a participant with its role, the member of staff as a logical
/// Practitioner reference (HSA id), their organisation as `onBehalfOf` (the unit when one is
/// named) and the assignment's period. The team is `active` while any assignment is current,
/// else `inactive`. The id is `careteam-` and the participant id.
pub fn care_team(team: &CareTeam) -> Value {
    let participant_id = team
        .participant_id
        .as_ref()
        .map(|id| id.value.as_str())
        .unwrap_or_default();
    let current = team.assignments.iter().any(|a| a.valid_until.is_none());
    let last_change = latest(
        team.assignments
            .iter()
            .flat_map(|a| [a.valid_from.as_ref(), a.valid_until.as_ref()]),
    );
    Obj::resource("CareTeam")
        .with("id", fhir_id(&format!("careteam-{participant_id}")))
        .with(
            "meta",
            meta(last_change, team.revision.as_ref().map(|r| r.value)),
        )
        .with("status", if current { "active" } else { "inactive" })
        .with("name", "FACT")
        .with("subject", patient_reference(team.participant_id.as_ref()))
        .with(
            "participant",
            array(team.assignments.iter().map(care_team_participant)),
        )
        .build()
}

fn care_team_participant(assignment: &Assignment) -> Value {
    let staff = assignment.staff.as_ref();
    let on_behalf_of = staff.map_or(Value::Null, |s| match unit_reference(&s.unit_id) {
        Value::Null => organisation_reference(s.organisation_id.as_ref()),
        unit => unit,
    });
    Obj::new()
        .with("role", array([assignment_role(assignment)]))
        .with(
            "member",
            practitioner_reference(staff.map(|s| s.staff_id.as_str()).unwrap_or_default()),
        )
        .with("onBehalfOf", on_behalf_of)
        .with(
            "period",
            period(
                instant(assignment.valid_from.as_ref()),
                instant(assignment.valid_until.as_ref()),
            ),
        )
        .build()
}

/// The role code of an assignment, and a text saying which principal a coordinator serves.
pub(crate) fn assignment_role(assignment: &Assignment) -> Value {
    let (code, display) = match assignment.kind() {
        AssignmentKind::Coordinator => match assignment.rank() {
            CoordinatorRank::Main => ("main-coordinator", "Main coordinator"),
            CoordinatorRank::Deputy => ("deputy-coordinator", "Deputy coordinator"),
            CoordinatorRank::Unspecified => ("coordinator", "Coordinator"),
        },
        AssignmentKind::FixedCareContact => ("fixed-care-contact", "Fixed care contact"),
        AssignmentKind::CareTeamMember | AssignmentKind::Unspecified => {
            care_role_code(assignment.role())
        }
    };
    let text = match (assignment.kind(), assignment.principal()) {
        (AssignmentKind::Coordinator, OrganisationKind::Region) => format!("{display}, region"),
        (AssignmentKind::Coordinator, OrganisationKind::Municipality) => {
            format!("{display}, municipality")
        }
        _ => display.to_owned(),
    };
    concept(system::CARE_TEAM_ROLE, code, display, &text)
}

fn care_role_code(role: CareRole) -> (&'static str, &'static str) {
    match role {
        CareRole::CaseManager => ("case-manager", "Case manager"),
        CareRole::Physician => ("physician", "Physician"),
        CareRole::Nurse => ("nurse", "Nurse"),
        CareRole::Psychologist => ("psychologist", "Psychologist"),
        CareRole::SocialWorker => ("social-worker", "Social worker"),
        CareRole::NeedsAssessor => ("needs-assessor", "Needs assessor"),
        CareRole::HousingSupportWorker => ("housing-support-worker", "Housing-support worker"),
        CareRole::PeerSupportSpecialist => ("peer-support-specialist", "Peer support specialist"),
        CareRole::IpsSpecialist => ("ips-specialist", "IPS specialist"),
        CareRole::TeamLeader => ("team-leader", "Team leader"),
        CareRole::Other | CareRole::Unspecified => ("team-member", "Team member"),
    }
}
