//! Unit tests of the mappings on synthetic records.

use prost_types::Timestamp;
use samsyn_proto::audit::v1 as audit;
use samsyn_proto::common::v1::{
    Action, CalendarDate, DataCategory, OrganisationId, OrganisationKind, ParticipantId, Revision,
    StaffRef,
};
use samsyn_proto::consent::v1 as consent_v1;
use samsyn_proto::participants::v1::{
    Assignment, AssignmentKind, CareRole, CareTeam, CoordinatorRank, Discharge, Enrolment,
    Participant, ParticipantStatus, Referral, ReviewOutcome,
};
use samsyn_proto::plans::v1::{
    FollowUp, Goal, Intervention, InterventionStatus, LifeArea, Need, Plan, PlanContent,
    PlanStatus, Responsibility, intervention,
};
use serde_json::{Value, json};

use super::*;

const PARTICIPANT: &str = "0b6c3f2e-8d1a-4c55-9e3f-1a2b3c4d5e6f";
const PIN: &str = "198112189876";
const NAME: &str = "Åsa Öberg-Ärlig";

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn day(year: i32, month: u32, day: u32) -> Option<CalendarDate> {
    Some(CalendarDate { year, month, day })
}

fn org(id: &str) -> Option<OrganisationId> {
    Some(OrganisationId { value: id.into() })
}

fn pid() -> Option<ParticipantId> {
    Some(ParticipantId {
        value: PARTICIPANT.into(),
    })
}

fn participant(status: ParticipantStatus) -> Participant {
    Participant {
        participant_id: pid(),
        personal_identity_number: PIN.into(),
        name: NAME.into(),
        home_municipality_code: "1283".into(),
        status: status as i32,
        referral: Some(Referral {
            referral_id: "7e1d0c44-0000-4000-8000-000000000001".into(),
            referring_principal: OrganisationKind::Municipality as i32,
            reason: "behöver stöd från båda huvudmännen".into(),
            referred_at: at(1_700_000_000),
            ..Default::default()
        }),
        outcome: Some(ReviewOutcome {
            accepted: true,
            reason: String::new(),
            decided_at: at(1_700_600_000),
        }),
        enrolment: Some(Enrolment {
            consent_reference: "c0".into(),
            enrolled_on: day(2023, 12, 1),
            consent_revoked_at: None,
        }),
        discharge: (status == ParticipantStatus::Discharged).then(|| Discharge {
            reason: 2,
            discharged_on: day(2024, 6, 30),
            note: "flyttar".into(),
        }),
        revision: Some(Revision { value: 7 }),
        updated_at: Some(Timestamp {
            seconds: 1_719_700_000,
            nanos: 250_000_000,
        }),
        ..Default::default()
    }
}

fn serialised(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

#[test]
fn the_identity_number_and_name_appear_only_when_allowed() {
    let shown = patient(&participant(ParticipantStatus::Enrolled), true);
    assert_eq!(shown["id"], PARTICIPANT);
    assert_eq!(
        shown["identifier"][1],
        json!({ "system": system::PERSONNUMMER, "value": PIN })
    );
    assert_eq!(shown["name"][0]["text"], NAME);
    assert!(shown["meta"].get("security").is_none());

    let hidden = patient(&participant(ParticipantStatus::Enrolled), false);
    let text = serialised(&hidden);
    assert!(!text.contains(PIN), "{text}");
    assert!(!text.contains(system::PERSONNUMMER), "{text}");
    assert!(!text.contains("Åsa"), "{text}");
    assert!(hidden.get("name").is_none());
    assert_eq!(
        hidden["identifier"],
        json!([{ "system": system::PARTICIPANT_ID, "value": PARTICIPANT }])
    );
    assert_eq!(hidden["meta"]["security"][0]["code"], "REDACTED");
    assert_eq!(hidden["meta"]["lastUpdated"], "2024-06-29T22:26:40.250Z");
}

#[test]
fn a_samordningsnummer_gets_its_own_system() {
    let mut p = participant(ParticipantStatus::Enrolled);
    p.personal_identity_number = "197010632391".into();
    assert_eq!(
        patient(&p, true)["identifier"][1]["system"],
        system::SAMORDNINGSNUMMER
    );
}

#[test]
fn swedish_text_round_trips_exactly() {
    let value = patient(&participant(ParticipantStatus::Enrolled), true);
    let text = serialised(&value);
    assert!(text.contains(NAME), "not escaped, as written: {text}");
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["name"][0]["text"].as_str(), Some(NAME));
}

#[test]
fn participant_status_maps_to_episode_status() {
    let table = [
        (ParticipantStatus::Referred, "planned"),
        (ParticipantStatus::Accepted, "waitlist"),
        (ParticipantStatus::Declined, "cancelled"),
        (ParticipantStatus::Enrolled, "active"),
        (ParticipantStatus::Discharged, "finished"),
        (ParticipantStatus::Unspecified, "planned"),
    ];
    let region = OrganisationId {
        value: "SE2321000230-0001".into(),
    };
    for (status, expected) in table {
        let episode = episode_of_care(&participant(status), &region);
        assert_eq!(episode["status"], expected, "{status:?}");
    }
}

#[test]
fn an_episode_runs_from_enrolment_to_discharge_with_its_history() {
    let region = OrganisationId {
        value: "SE2321000230-0001".into(),
    };
    let episode = episode_of_care(&participant(ParticipantStatus::Discharged), &region);
    assert_eq!(episode["id"], "7e1d0c44-0000-4000-8000-000000000001");
    assert_eq!(
        episode["period"],
        json!({ "start": "2023-12-01", "end": "2024-06-30" })
    );
    assert_eq!(
        episode["patient"]["reference"],
        format!("Patient/{PARTICIPANT}")
    );
    assert_eq!(
        episode["managingOrganization"]["identifier"],
        json!({ "system": system::HSA_ID, "value": "SE2321000230-0001" })
    );
    let history: Vec<&str> = episode["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["planned", "waitlist", "active", "finished"]);
    assert_eq!(
        episode["statusHistory"][2]["period"],
        json!({ "start": "2023-12-01", "end": "2024-06-30" })
    );
    assert_eq!(episode["type"][0]["coding"][0]["code"], "fact");
    let text = serialised(&episode);
    assert!(
        !text.contains("flyttar") && !text.contains("båda huvudmännen"),
        "{text}"
    );
}

#[test]
fn ids_are_stable_and_valid() {
    assert_eq!(fhir_id(PARTICIPANT), PARTICIPANT);
    let odd = fhir_id("plan/with spaces and å");
    assert_eq!(odd, fhir_id("plan/with spaces and å"));
    assert_ne!(odd, fhir_id("plan/with spaces and ä"));
    assert_eq!(odd.len(), 33);
    assert!(odd.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(fhir_id(&"a".repeat(65)), "a".repeat(65));

    let p = participant(ParticipantStatus::Enrolled);
    assert_eq!(patient(&p, true), patient(&p.clone(), true));
    assert_eq!(care_plan(&plan()), care_plan(&plan()));
    let team = care_team(&team());
    assert_eq!(team["id"], format!("careteam-{PARTICIPANT}"));
}

fn staff(staff_id: &str, organisation: &str, unit: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: staff_id.into(),
        organisation_id: org(organisation),
        unit_id: unit.into(),
    })
}

fn team() -> CareTeam {
    CareTeam {
        participant_id: pid(),
        assignments: vec![
            Assignment {
                assignment_id: "a1".into(),
                kind: AssignmentKind::Coordinator as i32,
                staff: staff("SE2321000230-S001", "SE2321000230-0001", "SE2321000230-U01"),
                principal: OrganisationKind::Region as i32,
                rank: CoordinatorRank::Main as i32,
                valid_from: at(1_701_400_000),
                ..Default::default()
            },
            Assignment {
                assignment_id: "a2".into(),
                kind: AssignmentKind::CareTeamMember as i32,
                staff: staff("K1283-S042", "1283", ""),
                role: CareRole::HousingSupportWorker as i32,
                valid_from: at(1_701_500_000),
                valid_until: at(1_702_000_000),
                ..Default::default()
            },
        ],
        revision: Some(Revision { value: 9 }),
    }
}

#[test]
fn care_team_lists_roles_with_staff_and_organisation() {
    let value = care_team(&team());
    assert_eq!(value["status"], "active");
    let main = &value["participant"][0];
    assert_eq!(main["role"][0]["coding"][0]["code"], "main-coordinator");
    assert_eq!(main["role"][0]["text"], "Main coordinator, region");
    assert_eq!(main["member"]["identifier"]["value"], "SE2321000230-S001");
    assert_eq!(
        main["onBehalfOf"]["identifier"]["value"],
        "SE2321000230-U01"
    );
    let member = &value["participant"][1];
    assert_eq!(
        member["role"][0]["coding"][0]["code"],
        "housing-support-worker"
    );
    assert_eq!(
        member["onBehalfOf"]["identifier"],
        json!({ "system": system::MUNICIPALITY_CODE, "value": "1283" })
    );
    assert_eq!(member["period"]["end"], "2023-12-08T01:46:40Z");
    assert_eq!(value["meta"]["lastUpdated"], "2023-12-08T01:46:40Z");

    let mut ended = team();
    ended.assignments.truncate(0);
    ended.assignments.push(team().assignments[1].clone());
    assert_eq!(care_team(&ended)["status"], "inactive");
}

fn plan() -> Plan {
    Plan {
        id: "5a0e2b8c-1111-4222-8333-444455556666".into(),
        participant_id: pid(),
        status: PlanStatus::Active as i32,
        revision: Some(Revision { value: 3 }),
        created_at: at(1_701_500_000),
        updated_at: at(1_702_500_000),
        content: Some(PlanContent {
            goals: vec![Goal {
                id: "g1".into(),
                text: "Få en egen lägenhet i Höganäs".into(),
            }],
            strengths: "Tycker om att måla".into(),
            overall_responsibility: Some(Responsibility {
                organisation_id: org("1283"),
                staff_id: String::new(),
            }),
            needs: vec![Need {
                id: "n1".into(),
                life_area: LifeArea::Housing as i32,
                description: "Behöver boende".into(),
                no_intervention_reason: 0,
            }],
            interventions: vec![
                Intervention {
                    id: "i1".into(),
                    need_id: "n1".into(),
                    responsible_organisation_id: org("1283"),
                    responsible_staff_id: "K1283-S042".into(),
                    kind: Some(intervention::Kind::CatalogueCode("BOSTOD".into())),
                    status: InterventionStatus::Applied as i32,
                    start_on: day(2024, 1, 15),
                    ..Default::default()
                },
                Intervention {
                    id: "i2".into(),
                    need_id: "unknown-need".into(),
                    responsible_organisation_id: org("SE2321000230-0001"),
                    kind: Some(intervention::Kind::FreeText("Läkemedelsgenomgång".into())),
                    status: InterventionStatus::Started as i32,
                    ..Default::default()
                },
            ],
            follow_ups: vec![FollowUp {
                id: "f1".into(),
                due_on: day(2024, 3, 1),
                organisation_id: org("1283"),
                description: "Följ upp boendet".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn plan_status_and_intervention_status_map() {
    let mut closed = plan();
    closed.status = PlanStatus::Closed as i32;
    assert_eq!(care_plan(&plan())["status"], "active");
    assert_eq!(care_plan(&closed)["status"], "completed");
    let table = [
        (InterventionStatus::Proposed, "not-started"),
        (InterventionStatus::Applied, "not-started"),
        (InterventionStatus::Granted, "scheduled"),
        (InterventionStatus::Denied, "cancelled"),
        (InterventionStatus::Started, "in-progress"),
        (InterventionStatus::Paused, "on-hold"),
        (InterventionStatus::Ended, "completed"),
        (InterventionStatus::Unspecified, "unknown"),
    ];
    for (status, expected) in table {
        let mut p = plan();
        if let Some(content) = p.content.as_mut() {
            content.interventions[0].status = status as i32;
        }
        assert_eq!(
            care_plan(&p)["activity"][0]["detail"]["status"],
            expected,
            "{status:?}"
        );
    }
}

#[test]
fn care_plan_carries_goals_needs_interventions_and_follow_ups() {
    let value = care_plan(&plan());
    assert_eq!(value["intent"], "plan");
    assert_eq!(
        value["subject"]["reference"],
        format!("Patient/{PARTICIPANT}")
    );
    assert_eq!(value["contained"][0]["resourceType"], "Goal");
    assert_eq!(
        value["contained"][0]["description"]["text"],
        "Få en egen lägenhet i Höganäs"
    );
    assert_eq!(value["goal"], json!([{ "reference": "#goal-g1" }]));
    assert_eq!(value["contained"][1]["resourceType"], "Condition");
    assert_eq!(
        value["contained"][1]["category"][0]["coding"][0]["code"],
        "housing"
    );
    assert_eq!(value["addresses"], json!([{ "reference": "#need-n1" }]));

    let applied = &value["activity"][0]["detail"];
    assert_eq!(applied["kind"], "ServiceRequest");
    assert_eq!(applied["code"]["coding"][0]["code"], "BOSTOD");
    assert_eq!(
        applied["reasonReference"],
        json!([{ "reference": "#need-n1" }])
    );
    assert_eq!(
        applied["statusReason"]["text"],
        "applied for, awaiting decision"
    );
    assert_eq!(applied["performer"][0]["identifier"]["value"], "1283");
    assert_eq!(applied["performer"][1]["type"], "Practitioner");
    assert_eq!(applied["scheduledPeriod"], json!({ "start": "2024-01-15" }));

    let free = &value["activity"][1]["detail"];
    assert_eq!(free["description"], "Läkemedelsgenomgång");
    assert!(
        free.get("reasonReference").is_none(),
        "a need not in the plan is not referenced"
    );

    let follow_up = &value["activity"][2]["detail"];
    assert_eq!(follow_up["status"], "scheduled");
    assert_eq!(follow_up["scheduledTiming"]["event"], json!(["2024-03-01"]));
    assert_eq!(value["author"]["identifier"]["value"], "1283");
    assert_eq!(value["contributor"].as_array().unwrap().len(), 2);
    assert_eq!(value["note"][0]["text"], "Tycker om att måla");
    assert_eq!(
        value["meta"],
        json!({ "versionId": "3", "lastUpdated": "2023-12-13T20:40:00Z" })
    );
}

fn sharing_consent(state: consent_v1::ConsentState) -> consent_v1::Consent {
    consent_v1::Consent {
        id: "c2d3e4f5-0000-4000-8000-00000000000a".into(),
        participant_id: pid(),
        kind: consent_v1::ConsentKind::InformationSharing as i32,
        sharing: Some(consent_v1::Sharing {
            from_organisation_id: org("SE2321000230-0001"),
            to_organisation_id: org("1283"),
            categories: vec![DataCategory::Plan as i32, DataCategory::CareTeam as i32],
            unit_id: String::new(),
            staff_id: String::new(),
        }),
        valid_from: at(1_701_000_000),
        valid_until: at(1_732_000_000),
        form: consent_v1::ConsentForm::Written as i32,
        recorded_by: Some(consent_v1::Actor {
            kind: consent_v1::ActorKind::Staff as i32,
            staff: staff("K1283-S042", "1283", ""),
        }),
        recorded_at: at(1_701_000_100),
        note: "samtycket gavs muntligt först".into(),
        state: state as i32,
        revision: Some(Revision { value: 1 }),
        ..Default::default()
    }
}

#[test]
fn consent_maps_state_scope_actors_and_categories() {
    use consent_v1::ConsentState;
    let table = [
        (ConsentState::Recorded, "active"),
        (ConsentState::Revoked, "inactive"),
        (ConsentState::Voided, "entered-in-error"),
        (ConsentState::Unspecified, "draft"),
    ];
    for (state, expected) in table {
        assert_eq!(
            consent(&sharing_consent(state))["status"],
            expected,
            "{state:?}"
        );
    }
    let value = consent(&sharing_consent(ConsentState::Recorded));
    assert_eq!(value["scope"]["coding"][0]["code"], "patient-privacy");
    assert_eq!(
        value["patient"]["reference"],
        format!("Patient/{PARTICIPANT}")
    );
    assert_eq!(value["organization"][0]["identifier"]["value"], "1283");
    let provision = &value["provision"];
    assert_eq!(provision["type"], "permit");
    assert_eq!(provision["period"]["end"], "2024-11-19T07:06:40Z");
    assert_eq!(provision["actor"][0]["role"]["coding"][0]["code"], "CST");
    assert_eq!(
        provision["actor"][0]["reference"]["identifier"]["value"],
        "SE2321000230-0001"
    );
    assert_eq!(provision["actor"][1]["role"]["coding"][0]["code"], "IRCP");
    assert_eq!(
        provision["actor"][1]["reference"]["identifier"]["value"],
        "1283"
    );
    let categories: Vec<&str> = provision["code"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["plan", "care-team"]);
    assert!(
        !serialised(&value).contains("muntligt"),
        "the note stays out"
    );

    let mut limited = sharing_consent(ConsentState::Recorded);
    if let Some(sharing) = limited.sharing.as_mut() {
        sharing.staff_id = "K1283-S077".into();
    }
    let reader = &consent(&limited)["provision"]["actor"][1]["reference"];
    assert_eq!(reader["type"], "Practitioner");
    assert_eq!(reader["identifier"]["value"], "K1283-S077");
}

fn audit_event_fixture(kind: audit::PrincipalKind) -> audit::AuditEvent {
    audit::AuditEvent {
        position: 42,
        time: at(1_702_000_000),
        principal: Some(audit::Principal {
            id: "SE2321000230-S001".into(),
            kind: kind as i32,
            organisation_id: org("SE2321000230-0001"),
            unit_id: "SE2321000230-U01".into(),
            roles: vec!["physician".into()],
            purpose: "care".into(),
            acting_through: String::new(),
        }),
        rpc: "/samsyn.plans.v1.PlansService/GetActivePlan".into(),
        action: Action::Read as i32,
        category: DataCategory::Plan as i32,
        participant_id: pid(),
        owner_organisation_id: org("1283"),
        decision: audit::Decision::Emergency as i32,
        emergency_reason: "medvetslös på akuten".into(),
        outcome: audit::Outcome::Forwarded as i32,
        status_code: 0,
        ..Default::default()
    }
}

#[test]
fn audit_event_names_the_unit_never_the_staff_member() {
    let value = audit_event(&audit_event_fixture(audit::PrincipalKind::Staff));
    assert_eq!(value["id"], "audit-42");
    assert_eq!(value["action"], "R");
    assert_eq!(value["outcome"], "0");
    assert_eq!(value["type"]["code"], "rest");
    assert_eq!(value["subtype"][0]["code"], "read");
    assert_eq!(
        value["subtype"][1]["code"],
        "/samsyn.plans.v1.PlansService/GetActivePlan"
    );
    assert_eq!(value["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
    assert_eq!(
        value["agent"][0]["who"]["identifier"]["value"],
        "SE2321000230-U01"
    );
    assert_eq!(value["agent"][0]["requestor"], true);
    assert_eq!(value["agent"][1]["who"]["identifier"]["value"], "1283");
    assert_eq!(
        value["entity"][0]["what"]["reference"],
        format!("Patient/{PARTICIPANT}")
    );
    assert_eq!(value["entity"][0]["detail"][0]["valueString"], "plan");
    let text = serialised(&value);
    assert!(!text.contains("SE2321000230-S001"), "{text}");
    assert!(!text.contains("medvetslös"), "{text}");

    let system_call = audit_event(&audit_event_fixture(audit::PrincipalKind::System));
    assert_eq!(system_call["agent"][0]["who"]["type"], "Device");
    assert_eq!(
        system_call["agent"][0]["who"]["identifier"]["system"],
        system::SYSTEM_LINK
    );
}

#[test]
fn audit_outcome_and_action_follow_the_call() {
    let mut event = audit_event_fixture(audit::PrincipalKind::Staff);
    event.action = Action::Write as i32;
    event.status_code = 14;
    let value = audit_event(&event);
    assert_eq!(value["action"], "E");
    assert_eq!(value["outcome"], "8");
    event.outcome = audit::Outcome::Refused as i32;
    event.status_code = 7;
    assert_eq!(audit_event(&event)["outcome"], "4");
    event.principal = None;
    assert!(audit_event(&event)["agent"][0].get("who").is_none());
}

#[test]
fn search_bundle_gives_full_urls_under_the_base() {
    let resources = vec![patient(&participant(ParticipantStatus::Enrolled), false)];
    let bundle = search_bundle(
        resources,
        12,
        "https://gw.example/fhir/Patient?_id=x&_count=1",
    );
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 12);
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        format!("https://gw.example/fhir/Patient/{PARTICIPANT}")
    );
    assert_eq!(
        bundle["link"][0]["url"],
        "https://gw.example/fhir/Patient?_id=x&_count=1"
    );
    let empty = search_bundle(Vec::new(), 0, "https://gw.example/fhir/CarePlan");
    assert!(empty.get("entry").is_none());
    assert_eq!(empty["total"], 0);
}

#[test]
fn transaction_bundle_puts_by_stable_id() {
    let bundle = transaction_bundle(vec![care_plan(&plan()), json!({ "resourceType": "Basic" })]);
    assert_eq!(bundle["type"], "transaction");
    assert_eq!(
        bundle["entry"][0]["request"],
        json!({ "method": "PUT", "url": "CarePlan/5a0e2b8c-1111-4222-8333-444455556666" })
    );
    assert_eq!(
        bundle["entry"][1]["request"],
        json!({ "method": "POST", "url": "Basic" })
    );
    assert_eq!(
        bundle,
        transaction_bundle(vec![care_plan(&plan()), json!({ "resourceType": "Basic" })])
    );
}

#[test]
fn operation_outcome_and_capability_statement() {
    let outcome = operation_outcome(IssueSeverity::Error, IssueType::NotFound, "");
    assert_eq!(
        outcome,
        json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "error", "code": "not-found" }] })
    );
    let capability = capability_statement(
        "https://gw.example/fhir",
        &[
            ("Patient", &["_id", "identifier"]),
            ("CarePlan", &["patient", "status", "date"]),
        ],
    );
    assert_eq!(capability["fhirVersion"], "4.0.1");
    assert_eq!(
        capability["implementation"]["url"],
        "https://gw.example/fhir"
    );
    let care_plan_params = &capability["rest"][0]["resource"][1]["searchParam"];
    assert_eq!(
        care_plan_params,
        &json!([
            { "name": "patient", "type": "reference" },
            { "name": "status", "type": "token" },
            { "name": "date", "type": "date" },
        ])
    );
}

#[test]
fn times_fhir_cannot_express_are_left_out() {
    let mut p = participant(ParticipantStatus::Enrolled);
    p.updated_at = Some(Timestamp {
        seconds: -70_000_000_000,
        nanos: 0,
    });
    p.enrolment = Some(Enrolment {
        consent_reference: String::new(),
        enrolled_on: day(2023, 2, 30),
        consent_revoked_at: None,
    });
    let region = OrganisationId {
        value: "SE2321000230-0001".into(),
    };
    let episode = episode_of_care(&p, &region);
    assert!(episode.get("meta").unwrap().get("lastUpdated").is_none());
    assert!(episode.get("period").is_none());

    p.updated_at = Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 1_500_000_000,
    });
    assert!(patient(&p, false)["meta"].get("lastUpdated").is_none());
}
