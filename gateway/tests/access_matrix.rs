//! The access matrix: every kind of caller × a read of every category and the lists, through
//! the real gateway in front of the real services. Each expectation is written out below;
//! rows withheld from a list leave no trace in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Utc;
use samsyn_gateway::audit::Outcome;
use samsyn_gateway::auth::Principal;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::DataCategory;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use support::*;
use tonic::Code;
use tonic::transport::Channel;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const REGION_OUTSIDER: &str = "SE2321000255-cm02";
const PHYSICIAN: &str = "SE2321000255-dr09";
const WITH_CONSENT: &str = "hbg-coord-1";
const WITHOUT_CONSENT: &str = "hbg-coord-2";
const OTHER_CATEGORY: &str = "hbg-coord-3";
const EXPIRED: &str = "hbg-coord-4";
const RESTRICTED: &str = "hbg-coord-5";
const RESTRICTED_UNIT: &str = "hbg-ifo-2";
const STRANGER: &str = "SE0180-sos-1";

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The service's answer.
    Ok,
    /// Allowed and forwarded; the service answers as it will (a write with no plan to change).
    Forwarded,
    /// `PERMISSION_DENIED`, the same for every refusal.
    Denied,
    /// A list: the participant's row is in it.
    Shown,
    /// A list: the call is answered, the participant's row is not in it.
    Hidden,
}

use Expect::{Denied, Forwarded, Hidden, Ok, Shown};

/// The calls of the matrix, in the order of the table's columns.
const CALLS: [&str; 9] = [
    "GetParticipant",   // enrolment, joint
    "GetCareTeam",      // care team, joint
    "ListConsents",     // consent, joint
    "ListPlans",        // plan, joint
    "GetEntry",         // board, the region's
    "GetBoard",         // list of board rows
    "ListParticipants", // list of participants
    "RevokeConsent",    // a write
    "PushDecision",     // a municipal system's write
];

/// Who calls, about which of the seeded participants.
#[derive(Debug, Clone, Copy)]
enum Caller {
    CaseManagerOnTeam,
    RegionStaffNotOnTeam,
    MunicipalWithConsent,
    MunicipalWithoutConsent,
    MunicipalConsentForPlanOnly,
    MunicipalExpiredConsent,
    MunicipalUnderRestriction,
    PhysicianWithEmergencyReason,
    PhysicianWithoutReason,
    MunicipalSystem,
    JournalSystem,
    TheParticipant,
    AnotherParticipant,
    Stranger,
}

/// The matrix. Joint data (enrolment, care team, consents, the plan) is open to the care team
/// of both organisations; board data is the region's, open to municipal staff on the care team
/// only by an active consent that covers the board and no restriction; decisions are the home
/// municipality's, written by its staff on the care team or its case system.
#[rustfmt::skip]
const MATRIX: [(Caller, [Expect; 9]); 14] = [
    //                                     GetPart  CareTeam Consents Plans   GetEntry GetBoard ListPart Revoke  PushDec
    (Caller::CaseManagerOnTeam,            [Ok,     Ok,      Ok,      Ok,     Ok,      Shown,   Shown,   Forwarded, Denied]),
    (Caller::RegionStaffNotOnTeam,         [Denied, Denied,  Denied,  Denied, Denied,  Hidden,  Hidden,  Denied, Denied]),
    (Caller::MunicipalWithConsent,         [Ok,     Ok,      Ok,      Ok,     Ok,      Shown,   Shown,   Forwarded, Forwarded]),
    (Caller::MunicipalWithoutConsent,      [Ok,     Ok,      Ok,      Ok,     Denied,  Hidden,  Shown,   Forwarded, Forwarded]),
    (Caller::MunicipalConsentForPlanOnly,  [Ok,     Ok,      Ok,      Ok,     Denied,  Hidden,  Shown,   Forwarded, Forwarded]),
    (Caller::MunicipalExpiredConsent,      [Ok,     Ok,      Ok,      Ok,     Denied,  Hidden,  Shown,   Forwarded, Forwarded]),
    (Caller::MunicipalUnderRestriction,    [Ok,     Ok,      Ok,      Ok,     Denied,  Hidden,  Shown,   Forwarded, Forwarded]),
    (Caller::PhysicianWithEmergencyReason, [Ok,     Ok,      Ok,      Ok,     Ok,      Hidden,  Hidden,  Denied, Denied]),
    (Caller::PhysicianWithoutReason,       [Denied, Denied,  Denied,  Denied, Denied,  Hidden,  Hidden,  Denied, Denied]),
    (Caller::MunicipalSystem,              [Denied, Denied,  Denied,  Denied, Denied,  Denied,  Denied,  Denied, Forwarded]),
    (Caller::JournalSystem,                [Denied, Denied,  Ok,      Ok,     Denied,  Denied,  Denied,  Denied, Denied]),
    (Caller::TheParticipant,               [Denied, Denied,  Ok,      Ok,     Denied,  Denied,  Denied,  Forwarded, Denied]),
    (Caller::AnotherParticipant,           [Denied, Denied,  Denied,  Denied, Denied,  Denied,  Denied,  Denied, Denied]),
    (Caller::Stranger,                     [Denied, Denied,  Denied,  Denied, Denied,  Hidden,  Hidden,  Denied, Denied]),
];

/// The seeded programme.
struct World {
    team_id: String,
    /// Per participant: id, board entry id, a consent id to revoke.
    main: Subject,
    no_consent: Subject,
    plan_only: Subject,
    expired: Subject,
}

#[derive(Clone)]
struct Subject {
    id: String,
    entry_id: String,
    consent: consent_pb::Consent,
}

async fn seed(stack: &Stack) -> World {
    let team_id = board_team(stack).await;
    let subject =
        async |pin: &str, name: &str, municipal: &[&str], categories: &[DataCategory], until| {
            let id = enrolled(
                stack,
                pin,
                name,
                Team {
                    region: &[CASE_MANAGER],
                    municipal,
                },
            )
            .await;
            let consent = share_with_helsingborg(stack, &id, categories, until).await;
            let entry_id = put_on_board(stack, &team_id, &id).await;
            Subject {
                id,
                entry_id,
                consent,
            }
        };
    let main = subject(
        &pin("19790321", "482"),
        "Örjan Åkesson",
        &[WITH_CONSENT, RESTRICTED],
        &[DataCategory::Board],
        None,
    )
    .await;
    let no_consent = subject(
        &pin("19850704", "316"),
        "Märta Ödmark",
        &[WITHOUT_CONSENT],
        &[DataCategory::Plan],
        None,
    )
    .await;
    let plan_only = subject(
        &pin("19920115", "245"),
        "Åsa Ängström",
        &[OTHER_CATEGORY],
        &[DataCategory::Plan, DataCategory::CareTeam],
        None,
    )
    .await;
    let expired = subject(
        &pin("19680930", "171"),
        "Göran Öhlund",
        &[EXPIRED],
        &[DataCategory::Board],
        Some(Utc::now() + chrono::Duration::seconds(2)),
    )
    .await;
    // "No consent" for the second participant: their only sharing consent is revoked.
    ConsentServiceClient::new(stack.consent.channel.clone())
        .revoke_consent(consent_pb::RevokeConsentRequest {
            participant_id: pid(&no_consent.id),
            consent_id: no_consent.consent.id.clone(),
            revision: no_consent.consent.revision,
            revoked_by: actor(CASE_MANAGER, REGION),
            reason: "Återkallat muntligt".into(),
        })
        .await
        .unwrap();
    // A restriction (spärr): one unit of Helsingborg may not see the region's board entries.
    ConsentServiceClient::new(stack.consent.channel.clone())
        .create_restriction(consent_pb::CreateRestrictionRequest {
            participant_id: pid(&main.id),
            organisation_id: org(HELSINGBORG),
            unit_id: RESTRICTED_UNIT.into(),
            owner_organisation_id: org(REGION),
            categories: vec![DataCategory::Board as i32],
            requested_by: Some(consent_pb::Actor {
                kind: consent_pb::ActorKind::Participant as i32,
                staff: None,
            }),
            recorded_by: actor(CASE_MANAGER, REGION),
            note: "Vill inte att enheten ser tavlan".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Let the expiring consent run out.
    let wait = chrono::Duration::seconds(3).to_std().unwrap();
    tokio::time::sleep(wait).await;
    stack.settle().await;
    World {
        team_id,
        main,
        no_consent,
        plan_only,
        expired,
    }
}

impl Caller {
    /// The caller's principal (none for systems: they bring a certificate), and whose data
    /// they ask about.
    fn who(self, world: &World) -> (Option<Principal>, &Subject) {
        let municipal = |id: &str| {
            let mut principal = staff(id, HELSINGBORG, &["coordinator"]);
            principal.unit = Some("hbg-ifo-1".into());
            principal
        };
        match self {
            Caller::CaseManagerOnTeam => (
                Some(staff(CASE_MANAGER, REGION, &["case_manager"])),
                &world.main,
            ),
            Caller::RegionStaffNotOnTeam => (
                Some(staff(REGION_OUTSIDER, REGION, &["case_manager"])),
                &world.main,
            ),
            Caller::MunicipalWithConsent => (Some(municipal(WITH_CONSENT)), &world.main),
            Caller::MunicipalWithoutConsent => {
                (Some(municipal(WITHOUT_CONSENT)), &world.no_consent)
            }
            Caller::MunicipalConsentForPlanOnly => {
                (Some(municipal(OTHER_CATEGORY)), &world.plan_only)
            }
            Caller::MunicipalExpiredConsent => (Some(municipal(EXPIRED)), &world.expired),
            Caller::MunicipalUnderRestriction => {
                let mut principal = municipal(RESTRICTED);
                principal.unit = Some(RESTRICTED_UNIT.into());
                (Some(principal), &world.main)
            }
            Caller::PhysicianWithEmergencyReason | Caller::PhysicianWithoutReason => {
                (Some(staff(PHYSICIAN, REGION, &["physician"])), &world.main)
            }
            Caller::MunicipalSystem | Caller::JournalSystem => (None, &world.main),
            Caller::TheParticipant => (Some(person(&world.main.id)), &world.main),
            Caller::AnotherParticipant => (Some(person(&world.no_consent.id)), &world.main),
            Caller::Stranger => (
                Some(staff(STRANGER, "0180", &["case_manager"])),
                &world.main,
            ),
        }
    }

    fn channel(self, stack: &Stack, world: &World) -> (Channel, Credentials) {
        let (principal, _) = self.who(world);
        match self {
            Caller::MunicipalSystem => {
                (stack.system_channel(MUNICIPAL_SYSTEM), Credentials::none())
            }
            Caller::JournalSystem => (stack.system_channel(JOURNAL), Credentials::none()),
            Caller::PhysicianWithEmergencyReason => (
                stack.channel(),
                Credentials::bearer(&stack.token(&principal.unwrap()))
                    .emergency("Akut suicidrisk; jourläkare behöver läkemedelslistan"),
            ),
            _ => (
                stack.channel(),
                Credentials::bearer(&stack.token(&principal.unwrap())),
            ),
        }
    }
}

/// Makes one call of the matrix; what came of it.
async fn call(stack: &Stack, world: &World, caller: Caller, rpc: &str) -> Expect {
    let (channel, credentials) = caller.channel(stack, world);
    let (_, subject) = caller.who(world);
    let participants =
        || ParticipantsServiceClient::with_interceptor(channel.clone(), credentials.clone());
    let consent = || ConsentServiceClient::with_interceptor(channel.clone(), credentials.clone());
    let plans = || PlansServiceClient::with_interceptor(channel.clone(), credentials.clone());
    let board = || BoardServiceClient::with_interceptor(channel.clone(), credentials.clone());
    let id = subject.id.clone();
    let answered = |result: Result<(), tonic::Status>| match result {
        Result::Ok(()) => Ok,
        Err(status) if status.code() == Code::PermissionDenied => Denied,
        Err(status) => panic!("{caller:?} {rpc}: unexpected {status:?}"),
    };
    let forwarded = |result: Result<(), tonic::Status>| match result {
        Err(status) if status.code() == Code::PermissionDenied => Denied,
        Err(status) if status.code() == Code::Unauthenticated => {
            panic!("{caller:?} {rpc}: {status:?}")
        }
        _ => Forwarded,
    };
    let listed = |result: Result<Vec<String>, tonic::Status>| match result {
        Result::Ok(rows) if rows.contains(&id) => Shown,
        Result::Ok(_) => Hidden,
        Err(status) if status.code() == Code::PermissionDenied => Denied,
        Err(status) => panic!("{caller:?} {rpc}: unexpected {status:?}"),
    };
    match rpc {
        "GetParticipant" => answered(
            participants()
                .get_participant(participants_pb::GetParticipantRequest {
                    participant_id: pid(&id),
                })
                .await
                .map(|r| assert_eq!(r.into_inner().participant_id, pid(&id))),
        ),
        "GetCareTeam" => answered(
            participants()
                .get_care_team(participants_pb::GetCareTeamRequest {
                    participant_id: pid(&id),
                    include_history: false,
                })
                .await
                .map(drop),
        ),
        "ListConsents" => answered(
            consent()
                .list_consents(consent_pb::ListConsentsRequest {
                    participant_id: pid(&id),
                    page: None,
                })
                .await
                .map(|r| assert!(!r.into_inner().consents.is_empty())),
        ),
        "ListPlans" => answered(
            plans()
                .list_plans(plans_pb::ListPlansRequest {
                    participant_id: pid(&id),
                })
                .await
                .map(drop),
        ),
        "GetEntry" => answered(
            board()
                .get_entry(board_pb::GetEntryRequest {
                    entry_id: subject.entry_id.clone(),
                    participant_id: pid(&id),
                })
                .await
                .map(|r| assert_eq!(r.into_inner().reason, BOARD_REASON)),
        ),
        "GetBoard" => listed(
            board()
                .get_board(board_pb::GetBoardRequest {
                    team_id: world.team_id.clone(),
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .entries
                        .into_iter()
                        .map(|e| e.participant_id.unwrap().value)
                        .collect()
                }),
        ),
        "ListParticipants" => listed(
            participants()
                .list_participants(participants_pb::ListParticipantsRequest::default())
                .await
                .map(|r| {
                    r.into_inner()
                        .participants
                        .into_iter()
                        .map(|p| p.participant_id.unwrap().value)
                        .collect()
                }),
        ),
        // An unknown consent id: the gateway decides on the participant; the service then
        // answers NOT_FOUND, so nothing is changed by the matrix.
        "RevokeConsent" => forwarded(
            consent()
                .revoke_consent(consent_pb::RevokeConsentRequest {
                    participant_id: pid(&id),
                    consent_id: "00000000-0000-7000-8000-000000000000".into(),
                    revision: subject.consent.revision,
                    revoked_by: actor(CASE_MANAGER, REGION),
                    reason: "Matrisprov".into(),
                })
                .await
                .map(drop),
        ),
        "PushDecision" => forwarded(
            plans()
                .push_decision(plans_pb::PushDecisionRequest {
                    decision: Some(plans_pb::Decision {
                        participant_id: pid(&id),
                        ..Default::default()
                    }),
                })
                .await
                .map(drop),
        ),
        other => panic!("no call {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_gets_exactly_what_the_matrix_says() {
    let stack = Stack::start().await;
    let world = seed(&stack).await;
    let before = stack.trail.events().len();
    let mut calls = 0;
    let mut mismatches = Vec::new();
    for (caller, expected) in MATRIX {
        for (rpc, expected) in CALLS.iter().zip(expected) {
            let got = call(&stack, &world, caller, rpc).await;
            calls += 1;
            if got != expected {
                mismatches.push(format!(
                    "{caller:?} × {rpc}: expected {expected:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // One audit event per call, refusals included, and before each forwarded write its
    // intent, closed by that outcome; the durable trail holds the same, chained.
    let events = &stack.trail.events()[before..];
    let (intents, outcomes): (Vec<_>, Vec<_>) =
        events.iter().partition(|e| e.outcome == Outcome::Intended);
    assert_eq!(outcomes.len(), calls);
    for intent in &intents {
        assert!(
            outcomes.iter().any(|e| e.call_id == intent.call_id),
            "an intent without its outcome: {}",
            intent.rpc
        );
    }
    let durable = stack
        .store
        .query(&samsyn_gateway::audit::store::Filter::default(), 0, 100_000)
        .await
        .unwrap();
    assert_eq!(durable.len(), stack.trail.events().len());
    let denied = durable
        .iter()
        .filter(|e| e.record.decision == "denied")
        .count();
    assert_eq!(
        denied,
        stack.trail.events().iter().filter(|e| !e.allowed).count()
    );
    assert_eq!(stack.store.verify().await.unwrap().first_broken, None);
    // The municipal coordinator's board read is a disclosure; the physician's an emergency.
    let disclosed = events
        .iter()
        .find(|e| {
            e.rpc.ends_with("/GetEntry")
                && e.principal.as_ref().is_some_and(|p| p.id == WITH_CONSENT)
        })
        .unwrap();
    assert!(disclosed.allowed && disclosed.disclosure && !disclosed.emergency);
    assert_eq!(disclosed.owner_organisation.as_deref(), Some(REGION));
    let emergency = events
        .iter()
        .find(|e| e.rpc.ends_with("/GetEntry") && e.emergency_reason.is_some())
        .unwrap();
    assert!(emergency.allowed && emergency.emergency);
    assert_eq!(
        emergency.emergency_reason.as_deref(),
        Some("Akut suicidrisk; jourläkare behöver läkemedelslistan")
    );
    // The restriction, not a missing consent, refused the restricted unit.
    let restricted = events
        .iter()
        .find(|e| {
            e.rpc.ends_with("/GetEntry") && e.principal.as_ref().is_some_and(|p| p.id == RESTRICTED)
        })
        .unwrap();
    assert_eq!(restricted.policies, ["consent-rule-forbids"]);
    assert_eq!(restricted.outcome, Outcome::Refused);
    // A shown board row of a municipal reader is recorded as disclosed.
    let board_read = events
        .iter()
        .find(|e| {
            e.rpc.ends_with("/GetBoard")
                && e.principal.as_ref().is_some_and(|p| p.id == WITH_CONSENT)
        })
        .unwrap();
    assert!(
        board_read
            .rows
            .iter()
            .any(|r| r.participant_id == world.main.id && r.disclosure)
    );
    assert!(
        board_read
            .rows
            .iter()
            .all(|r| r.participant_id == world.main.id)
    );
}
