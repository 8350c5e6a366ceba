//! Every resource samsyn-fhir writes passes an independent FHIR validator
//! (`tests/fhir/validate.py`, the `fhir.resources` models). Needs python3 with the packages
//! of `tests/fhir/requirements.txt`; without them this test fails, it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use prost_types::Timestamp;
use samsyn_fhir::{
    IssueSeverity, IssueType, audit_event, capability_statement, care_plan, care_team, consent,
    episode_of_care, operation_outcome, patient, search_bundle, transaction_bundle,
};
use samsyn_proto::audit::v1 as audit;
use samsyn_proto::common::v1::{
    Action, CalendarDate, DataCategory, OrganisationId, OrganisationKind, ParticipantId, Revision,
    StaffRef,
};
use samsyn_proto::consent::v1 as consents;
use samsyn_proto::participants::v1 as participants;
use samsyn_proto::plans::v1 as plans;
use serde_json::Value;

const VALIDATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fhir/validate.py");
const PARTICIPANT: &str = "3f1c9a7e-2b4d-4e8f-9a1b-2c3d4e5f6a7b";
const REGION: &str = "SE2321000230-0001";
const MUNICIPALITY: &str = "1283";

fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
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

fn staff(staff_id: &str, organisation: &str, unit: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: staff_id.into(),
        organisation_id: org(organisation),
        unit_id: unit.into(),
    })
}

fn participant() -> participants::Participant {
    participants::Participant {
        participant_id: pid(),
        personal_identity_number: "198112189876".into(),
        name: "Örjan Åkesson-Bäck".into(),
        home_municipality_code: MUNICIPALITY.into(),
        status: participants::ParticipantStatus::Discharged as i32,
        referral: Some(participants::Referral {
            referral_id: "9d8c7b6a-0000-4000-8000-000000000001".into(),
            referring_principal: OrganisationKind::Region as i32,
            referred_by: staff("SE2321000230-S001", REGION, ""),
            reason: "långvariga behov".into(),
            referred_at: at(1_700_000_000, 0),
            ..Default::default()
        }),
        outcome: Some(participants::ReviewOutcome {
            accepted: true,
            reason: String::new(),
            decided_at: at(1_700_600_000, 0),
        }),
        enrolment: Some(participants::Enrolment {
            consent_reference: "c1".into(),
            enrolled_on: day(2023, 12, 1),
            consent_revoked_at: None,
        }),
        discharge: Some(participants::Discharge {
            reason: participants::DischargeReason::ReadyForOrdinaryCare as i32,
            discharged_on: day(2025, 2, 28),
            note: String::new(),
        }),
        revision: Some(Revision { value: 12 }),
        updated_at: at(1_740_700_000, 123_456_789),
        ..Default::default()
    }
}

fn team() -> participants::CareTeam {
    use participants::{Assignment, AssignmentKind, CareRole, CoordinatorRank};
    participants::CareTeam {
        participant_id: pid(),
        assignments: vec![
            Assignment {
                assignment_id: "a1".into(),
                kind: AssignmentKind::Coordinator as i32,
                staff: staff("SE2321000230-S001", REGION, "SE2321000230-U01"),
                principal: OrganisationKind::Region as i32,
                rank: CoordinatorRank::Main as i32,
                valid_from: at(1_701_400_000, 0),
                ..Default::default()
            },
            Assignment {
                assignment_id: "a2".into(),
                kind: AssignmentKind::Coordinator as i32,
                staff: staff("K1283-S010", MUNICIPALITY, ""),
                principal: OrganisationKind::Municipality as i32,
                rank: CoordinatorRank::Deputy as i32,
                valid_from: at(1_701_400_000, 0),
                ..Default::default()
            },
            Assignment {
                assignment_id: "a3".into(),
                kind: AssignmentKind::CareTeamMember as i32,
                staff: staff("SE2321000230-S002", REGION, ""),
                role: CareRole::CaseManager as i32,
                valid_from: at(1_701_400_000, 0),
                valid_until: at(1_720_000_000, 0),
                ..Default::default()
            },
            Assignment {
                assignment_id: "a4".into(),
                kind: AssignmentKind::FixedCareContact as i32,
                staff: staff("SE2321000230-S003", REGION, "SE2321000230-U01"),
                valid_from: at(1_701_500_000, 0),
                ..Default::default()
            },
        ],
        revision: Some(Revision { value: 12 }),
    }
}

fn plan() -> plans::Plan {
    use plans::{
        FollowUp, Goal, Intervention, InterventionStatus, LifeArea, Need, OtherActorAction,
        PlanContent, PlanStatus, Responsibility, intervention,
    };
    plans::Plan {
        id: "6b5a4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d".into(),
        participant_id: pid(),
        status: PlanStatus::Active as i32,
        revision: Some(Revision { value: 4 }),
        created_at: at(1_701_500_000, 0),
        updated_at: at(1_702_500_000, 500_000_000),
        content: Some(PlanContent {
            goals: vec![
                Goal {
                    id: "g1".into(),
                    text: "Bo kvar i min lägenhet på Söder".into(),
                },
                Goal {
                    id: String::new(),
                    text: "Träffa min dotter varje vecka".into(),
                },
            ],
            strengths: "Är envis och tycker om att gå långa promenader".into(),
            overall_responsibility: Some(Responsibility {
                organisation_id: org(MUNICIPALITY),
                staff_id: "K1283-S010".into(),
            }),
            needs: vec![
                Need {
                    id: "n1".into(),
                    life_area: LifeArea::Housing as i32,
                    description: "Stöd för att behålla bostaden".into(),
                    no_intervention_reason: 0,
                },
                Need {
                    id: "n2".into(),
                    life_area: LifeArea::SubstanceUse as i32,
                    description: "Minska alkoholbruket".into(),
                    no_intervention_reason: 0,
                },
            ],
            interventions: vec![
                Intervention {
                    id: "i1".into(),
                    need_id: "n1".into(),
                    responsible_organisation_id: org(MUNICIPALITY),
                    responsible_staff_id: "K1283-S010".into(),
                    kind: Some(intervention::Kind::CatalogueCode("KOM-BOENDESTOD".into())),
                    status: InterventionStatus::Granted as i32,
                    start_on: day(2024, 1, 15),
                    end_on: day(2024, 12, 31),
                    ..Default::default()
                },
                Intervention {
                    id: "i2".into(),
                    need_id: "n2".into(),
                    responsible_organisation_id: org(REGION),
                    kind: Some(intervention::Kind::FreeText(
                        "Återfallsprevention i grupp".into(),
                    )),
                    status: InterventionStatus::Started as i32,
                    ..Default::default()
                },
            ],
            other_actions: vec![OtherActorAction {
                id: "o1".into(),
                actor: "Försäkringskassan".into(),
                description: "Utreda sjukersättning".into(),
                contact: "handläggare".into(),
                due_on: day(2024, 4, 1),
            }],
            follow_ups: vec![
                FollowUp {
                    id: "f1".into(),
                    due_on: day(2024, 3, 1),
                    organisation_id: org(MUNICIPALITY),
                    description: "Följ upp boendestödet".into(),
                    ..Default::default()
                },
                FollowUp {
                    id: "f2".into(),
                    due_on: day(2024, 2, 1),
                    organisation_id: org(REGION),
                    staff_id: "SE2321000230-S002".into(),
                    completed_on: day(2024, 2, 2),
                    ..Default::default()
                },
            ],
            approved_for_participant: true,
        }),
        ..Default::default()
    }
}

fn sharing_consent() -> consents::Consent {
    consents::Consent {
        id: "1a2b3c4d-0000-4000-8000-0000000000c1".into(),
        participant_id: pid(),
        kind: consents::ConsentKind::InformationSharing as i32,
        sharing: Some(consents::Sharing {
            from_organisation_id: org(REGION),
            to_organisation_id: org(MUNICIPALITY),
            categories: vec![DataCategory::Plan as i32, DataCategory::Board as i32],
            unit_id: "K1283-U02".into(),
            staff_id: String::new(),
        }),
        valid_from: at(1_701_000_000, 0),
        valid_until: at(1_732_000_000, 0),
        form: consents::ConsentForm::Verbal as i32,
        requested_by: Some(consents::Actor {
            kind: consents::ActorKind::Participant as i32,
            staff: None,
        }),
        recorded_by: Some(consents::Actor {
            kind: consents::ActorKind::Staff as i32,
            staff: staff("K1283-S010", MUNICIPALITY, ""),
        }),
        recorded_at: at(1_701_000_100, 0),
        on_behalf_of: Some(consents::Representative {
            kind: consents::RepresentativeKind::Guardian as i32,
            name: "Göran Ödman".into(),
        }),
        note: String::new(),
        state: consents::ConsentState::Revoked as i32,
        revocation: Some(consents::Ending {
            by: None,
            at: at(1_710_000_000, 0),
            reason: String::new(),
        }),
        voiding: None,
        revision: Some(Revision { value: 2 }),
        study_id: String::new(),
    }
}

fn research_consent() -> consents::Consent {
    consents::Consent {
        id: "1a2b3c4d-0000-4000-8000-0000000000c2".into(),
        participant_id: pid(),
        kind: consents::ConsentKind::ResearchStudy as i32,
        valid_from: at(1_701_000_000, 0),
        recorded_by: Some(consents::Actor {
            kind: consents::ActorKind::Staff as i32,
            staff: staff("SE2321000230-S001", REGION, ""),
        }),
        recorded_at: at(1_701_000_100, 0),
        state: consents::ConsentState::Recorded as i32,
        revision: Some(Revision { value: 1 }),
        ..Default::default()
    }
}

fn audit_events() -> Vec<audit::AuditEvent> {
    let staff_read = audit::AuditEvent {
        position: 1001,
        time: at(1_702_000_000, 1_000_000),
        principal: Some(audit::Principal {
            id: "SE2321000230-S002".into(),
            kind: audit::PrincipalKind::Staff as i32,
            organisation_id: org(REGION),
            unit_id: "SE2321000230-U01".into(),
            roles: vec!["nurse".into()],
            purpose: "care".into(),
            acting_through: String::new(),
        }),
        rpc: "/samsyn.plans.v1.PlansService/GetActivePlan".into(),
        action: Action::Read as i32,
        category: DataCategory::Plan as i32,
        participant_id: pid(),
        owner_organisation_id: org(MUNICIPALITY),
        decision: audit::Decision::Disclosure as i32,
        policies: vec!["consent".into()],
        outcome: audit::Outcome::Forwarded as i32,
        ..Default::default()
    };
    let system_list = audit::AuditEvent {
        position: 1002,
        time: at(1_702_000_100, 0),
        principal: Some(audit::Principal {
            id: "sip-tool".into(),
            kind: audit::PrincipalKind::System as i32,
            organisation_id: org(MUNICIPALITY),
            ..Default::default()
        }),
        rpc: "/samsyn.participants.v1.ParticipantsService/ListParticipants".into(),
        action: Action::Read as i32,
        category: DataCategory::Enrolment as i32,
        rows: vec![audit::ShownRow {
            participant_id: pid(),
            disclosure: true,
        }],
        decision: audit::Decision::Allowed as i32,
        outcome: audit::Outcome::Forwarded as i32,
        ..Default::default()
    };
    let refused = audit::AuditEvent {
        position: 1003,
        time: at(1_702_000_200, 0),
        principal: None,
        rpc: "/samsyn.plans.v1.PlansService/UpdatePlan".into(),
        action: Action::Write as i32,
        category: DataCategory::Plan as i32,
        participant_id: pid(),
        decision: audit::Decision::Denied as i32,
        outcome: audit::Outcome::Refused as i32,
        status_code: 16,
        ..Default::default()
    };
    vec![staff_read, system_list, refused]
}

/// One of each resource and bundle, by file name.
fn resources() -> Vec<(&'static str, Value)> {
    let region = OrganisationId {
        value: REGION.into(),
    };
    let mut enrolled = participant();
    enrolled.status = participants::ParticipantStatus::Enrolled as i32;
    enrolled.discharge = None;
    let audits: Vec<Value> = audit_events().iter().map(audit_event).collect();
    vec![
        ("patient-shown.json", patient(&participant(), true)),
        ("patient-hidden.json", patient(&participant(), false)),
        (
            "episode-finished.json",
            episode_of_care(&participant(), &region),
        ),
        ("episode-active.json", episode_of_care(&enrolled, &region)),
        ("care-team.json", care_team(&team())),
        ("care-plan.json", care_plan(&plan())),
        ("consent-sharing.json", consent(&sharing_consent())),
        ("consent-research.json", consent(&research_consent())),
        ("audit/staff-read.json", audits[0].clone()),
        ("audit/system-list.json", audits[1].clone()),
        ("audit/refused.json", audits[2].clone()),
        (
            "search-bundle.json",
            search_bundle(
                vec![patient(&participant(), false), care_plan(&plan())],
                2,
                "https://gateway.example/fhir/Patient?_id=3f1c9a7e-2b4d-4e8f-9a1b-2c3d4e5f6a7b&_revinclude=CarePlan:subject",
            ),
        ),
        (
            "transaction-bundle.json",
            transaction_bundle(vec![
                patient(&participant(), true),
                episode_of_care(&participant(), &region),
                care_team(&team()),
                care_plan(&plan()),
                consent(&sharing_consent()),
            ]),
        ),
        (
            "operation-outcome.json",
            operation_outcome(
                IssueSeverity::Error,
                IssueType::Forbidden,
                "no consent covers this read",
            ),
        ),
        (
            "capability-statement.json",
            capability_statement(
                "https://gateway.example/fhir",
                &[
                    ("Patient", &["_id", "identifier"]),
                    ("EpisodeOfCare", &["patient", "status"]),
                    ("CareTeam", &["patient", "status"]),
                    ("CarePlan", &["patient", "status", "date"]),
                    ("Consent", &["patient", "status", "scope"]),
                    ("AuditEvent", &["patient", "date", "action"]),
                ],
            ),
        ),
    ]
}

fn write_all(dir: &Path, files: &[(&str, Value)]) {
    for (name, value) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    }
}

fn run_validator(arg: impl AsRef<std::ffi::OsStr>) -> Output {
    let output = Command::new("python3")
        .arg(VALIDATOR)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install python3 and `pip install -r tests/fhir/requirements.txt`")
        });
    if output.status.code() == Some(2) {
        panic!(
            "the validator cannot run: {}\ninstall it with `pip install -r tests/fhir/requirements.txt`",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

fn report(output: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_resource_is_valid_fhir() {
    let dir = tempfile::tempdir().unwrap();
    let files = resources();
    write_all(dir.path(), &files);

    let output = run_validator(dir.path());
    let report = report(&output);
    assert!(
        output.status.success(),
        "the validator rejected a resource:\n{report}"
    );
    let valid_lines = report.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(valid_lines, files.len(), "one line per file:\n{report}");

    let plan_file = std::fs::read_to_string(dir.path().join("care-plan.json")).unwrap();
    assert!(
        plan_file.contains("Bo kvar i min lägenhet på Söder"),
        "Swedish text as written"
    );
}

#[test]
fn the_validator_rejects_invalid_resources() {
    let self_test = run_validator("--self-test");
    assert!(
        self_test.status.success(),
        "self-test failed:\n{}",
        report(&self_test)
    );

    let dir = tempfile::tempdir().unwrap();
    let region = OrganisationId {
        value: REGION.into(),
    };
    let mut episode = episode_of_care(&participant(), &region);
    episode["status"] = Value::from("discharged");
    write_all(dir.path(), &[("bad-episode.json", episode)]);
    let output = run_validator(dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", report(&output));
    assert!(
        report(&output).contains("'discharged' is not a valid code"),
        "{}",
        report(&output)
    );
}
