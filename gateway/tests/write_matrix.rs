//! The write-side access matrix: every kind of caller × every write RPC, through the real
//! gateway in front of the real services. Each expectation is written out below. A cell is
//! `Denied` when the caller gets `PERMISSION_DENIED` (from the gateway's policies or from the
//! service's rule of who is entitled to the act), `Passed` when the door lets the call
//! through to what the service then answers (most requests here are incomplete on purpose,
//! so that the service answers `INVALID_ARGUMENT`, `NOT_FOUND` or `ABORTED` and nothing
//! changes). Every call, refused or not, is one audit event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use prost::Message;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::{DataCategory, Revision};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::plans::v1 as plans_pb;
use support::*;
use tonic::Code;
use tonic::transport::Channel;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const REGION_OFF_TEAM: &str = "SE2321000255-cm02";
const NEEDS_ASSESSOR: &str = "SE2321000255-na09";
const REGION_TEAM_LEADER: &str = "SE2321000255-tl01";
const WITH_CONSENT: &str = "hbg-coord-1";
const WITHOUT_CONSENT: &str = "hbg-coord-2";
const HBG_TEAM_LEADER: &str = "hbg-tl-1";
const HOG_COORDINATOR: &str = "hog-coord-1";
const STRANGER: &str = "SE0180-sos-1";
/// A record id no service holds: an allowed call then changes nothing.
const UNKNOWN: &str = "00000000-0000-7000-8000-000000000000";

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `PERMISSION_DENIED`.
    Denied,
    /// Through the door: the service answers as it will.
    Passed,
}

use Expect::{Denied as D, Passed as P};

/// The write RPCs, in the order of the table's columns.
const RPCS: [&str; 32] = [
    "participants.v1.ParticipantsService/CreateReferral",
    "participants.v1.ParticipantsService/RecordReview",
    "participants.v1.ParticipantsService/Enrol",
    "participants.v1.ParticipantsService/RecordMove",
    "participants.v1.ParticipantsService/Discharge",
    "participants.v1.ParticipantsService/AssignCoordinator",
    "participants.v1.ParticipantsService/AddCareTeamMember",
    "participants.v1.ParticipantsService/EndAssignment",
    "participants.v1.ParticipantsService/SetFixedCareContact",
    "consent.v1.ConsentService/RecordConsent",
    "consent.v1.ConsentService/RevokeConsent",
    "consent.v1.ConsentService/VoidConsent",
    "consent.v1.ConsentService/CreateRestriction",
    "consent.v1.ConsentService/RevokeRestriction",
    "consent.v1.ConsentService/LiftRestriction",
    "plans.v1.PlansService/CreatePlan",
    "plans.v1.PlansService/UpdatePlan",
    "plans.v1.PlansService/RecordMeeting",
    "plans.v1.PlansService/RecordEvaluation",
    "plans.v1.PlansService/PushDecision",
    "plans.v1.PlansService/UpsertCatalogueEntry",
    "board.v1.BoardService/CreateTeam",
    "board.v1.BoardService/UpdateTeam",
    "board.v1.BoardService/PutOnBoard",
    "board.v1.BoardService/UpdateEntry",
    "board.v1.BoardService/AddAction",
    "board.v1.BoardService/CompleteAction",
    "board.v1.BoardService/TakeOffBoard",
    "board.v1.BoardService/StartMeeting",
    "board.v1.BoardService/RecordDiscussion",
    "audit.v1.AuditService/MarkEmergencyReviewed",
    "audit.v1.AuditService/PurgeEvents",
];

/// Who calls, about which seeded participant.
#[derive(Debug, Clone, Copy)]
enum Caller {
    CaseManagerOnTeam,
    RegionStaffOffTeam,
    MunicipalWithConsent,
    MunicipalWithoutConsent,
    OtherMunicipality,
    NeedsAssessorOnNoTeam,
    RegionTeamLeader,
    MunicipalTeamLeader,
    TheParticipant,
    AnotherParticipant,
    MunicipalSystem,
    JournalSystem,
    OutsideTheProgramme,
}

/// The matrix. Joint data (enrolment, care team, consents, the plan) is written by the care
/// team of either organisation; the board is the region's; decisions are the home
/// municipality's. A sharing consent is recorded by the disclosing organisation, a
/// restriction lifted or revoked by the organisation whose data it protects (or the
/// participant). Records that name no participant yet are created by the programme's staff;
/// reference data by its owner's team leaders. The participant revokes their own consents
/// and restrictions. Systems call only what their link allows.
#[rustfmt::skip]
const MATRIX: [(Caller, [Expect; 32]); 13] = [
    //                          Refer Revw Enrl Move Dsch Coord Membr EndA Fixed | RecC RevC Void CrR RevR Lift | CrPl UpPl Meet Eval Push Catal | CrT UpT Put UpE AddA CmpA Off Start Disc | Mark Purge
    (Caller::CaseManagerOnTeam,      [P, P, P, P, P, P, P, P, P,  P, P, P, P, P, P,  P, P, P, P, D, D,  D, D, P, P, P, P, P, P, P,  D, D]),
    (Caller::RegionStaffOffTeam,     [P, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::MunicipalWithConsent,   [P, P, P, P, P, P, P, P, P,  D, P, P, P, D, D,  P, P, P, P, P, D,  D, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::MunicipalWithoutConsent,[P, P, P, P, P, P, P, P, P,  D, P, P, P, D, D,  P, P, P, P, P, D,  D, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::OtherMunicipality,      [P, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::NeedsAssessorOnNoTeam,  [P, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::RegionTeamLeader,       [P, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, P,  P, P, D, D, D, D, D, P, D,  D, D]),
    (Caller::MunicipalTeamLeader,    [P, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  P, D, D, D, D, D, D, P, D,  D, D]),
    (Caller::TheParticipant,         [D, D, D, D, D, D, D, D, D,  D, P, D, D, P, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, D, D,  D, D]),
    (Caller::AnotherParticipant,     [D, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, D, D,  D, D]),
    (Caller::MunicipalSystem,        [D, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, P, D,  D, D, D, D, D, D, D, D, D,  D, D]),
    (Caller::JournalSystem,          [D, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, D, D,  D, D]),
    (Caller::OutsideTheProgramme,    [D, D, D, D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D,  D, D, D, D, D, D, D, D, D,  D, D]),
];

/// The seeded programme.
struct World {
    team_id: String,
    team_revision: Option<Revision>,
    main: Subject,
    no_consent: Subject,
}

/// One participant with the records the matrix names.
struct Subject {
    id: String,
    entry_id: String,
    restriction_id: String,
}

async fn seed(stack: &Stack) -> World {
    let team_id = board_team(stack).await;
    let subject = async |pin: &str, name: &str, municipal: &str, share: bool| {
        let id = enrolled(
            stack,
            pin,
            name,
            Team {
                region: &[CASE_MANAGER],
                municipal: &[municipal],
            },
        )
        .await;
        if share {
            share_with_helsingborg(stack, &id, &[DataCategory::Board], None).await;
        }
        let entry_id = put_on_board(stack, &team_id, &id).await;
        // A restriction against Helsingborg protecting the region's data.
        let restriction_id = consent_pb::consent_service_client::ConsentServiceClient::new(
            stack.consent.channel.clone(),
        )
        .create_restriction(consent_pb::CreateRestrictionRequest {
            participant_id: pid(&id),
            organisation_id: org(HELSINGBORG),
            owner_organisation_id: org(REGION),
            categories: vec![DataCategory::Plan as i32],
            requested_by: Some(consent_pb::Actor {
                kind: consent_pb::ActorKind::Participant as i32,
                staff: None,
            }),
            recorded_by: actor(CASE_MANAGER, REGION),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
        Subject {
            id,
            entry_id,
            restriction_id,
        }
    };
    let main = subject(&pin("19790321", "482"), "Örjan Åkesson", WITH_CONSENT, true).await;
    let no_consent = subject(
        &pin("19850704", "316"),
        "Märta Ödmark",
        WITHOUT_CONSENT,
        false,
    )
    .await;
    let team_revision =
        board_pb::board_service_client::BoardServiceClient::new(stack.board.channel.clone())
            .get_team(board_pb::GetTeamRequest {
                team_id: team_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
    stack.settle().await;
    World {
        team_id,
        team_revision,
        main,
        no_consent,
    }
}

impl Caller {
    /// The caller's token principal (none for systems), and whose data they write.
    fn who(self, world: &World) -> (Option<samsyn_gateway::auth::Principal>, &Subject) {
        let main = &world.main;
        match self {
            Caller::CaseManagerOnTeam => {
                (Some(staff(CASE_MANAGER, REGION, &["case_manager"])), main)
            }
            Caller::RegionStaffOffTeam => (
                Some(staff(REGION_OFF_TEAM, REGION, &["case_manager"])),
                main,
            ),
            Caller::MunicipalWithConsent => (
                Some(staff(WITH_CONSENT, HELSINGBORG, &["coordinator"])),
                main,
            ),
            Caller::MunicipalWithoutConsent => (
                Some(staff(WITHOUT_CONSENT, HELSINGBORG, &["coordinator"])),
                &world.no_consent,
            ),
            Caller::OtherMunicipality => (
                Some(staff(HOG_COORDINATOR, HOGANAS, &["coordinator"])),
                main,
            ),
            Caller::NeedsAssessorOnNoTeam => (
                Some(staff(NEEDS_ASSESSOR, REGION, &["needs_assessor"])),
                main,
            ),
            Caller::RegionTeamLeader => (
                Some(staff(REGION_TEAM_LEADER, REGION, &["team_leader"])),
                main,
            ),
            Caller::MunicipalTeamLeader => (
                Some(staff(HBG_TEAM_LEADER, HELSINGBORG, &["team_leader"])),
                main,
            ),
            Caller::TheParticipant => (Some(person(&main.id)), main),
            Caller::AnotherParticipant => (Some(person(&world.no_consent.id)), main),
            Caller::MunicipalSystem | Caller::JournalSystem => (None, main),
            Caller::OutsideTheProgramme => (Some(staff(STRANGER, "0180", &["case_manager"])), main),
        }
    }

    fn channel(self, stack: &Stack, world: &World) -> (Channel, Credentials) {
        match self {
            Caller::MunicipalSystem => {
                (stack.system_channel(MUNICIPAL_SYSTEM), Credentials::none())
            }
            Caller::JournalSystem => (stack.system_channel(JOURNAL), Credentials::none()),
            _ => {
                let (principal, _) = self.who(world);
                (
                    stack.channel(),
                    Credentials::bearer(&stack.token(&principal.unwrap())),
                )
            }
        }
    }
}

/// The request of one matrix call: incomplete where that is enough for the door, complete
/// where the door reads it (the organisations of a consent, the restriction lifted).
fn request(rpc: &str, world: &World, subject: &Subject) -> Vec<u8> {
    let id = pid(&subject.id);
    let stale = Some(Revision { value: 9_999 });
    match rpc.rsplit('/').next().unwrap() {
        "CreateReferral" => participants_pb::CreateReferralRequest::default().encode_to_vec(),
        "RecordReview" => participants_pb::RecordReviewRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "Enrol" => participants_pb::EnrolRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "RecordMove" => participants_pb::RecordMoveRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "Discharge" => participants_pb::DischargeRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "AssignCoordinator" => participants_pb::AssignCoordinatorRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "AddCareTeamMember" => participants_pb::AddCareTeamMemberRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "EndAssignment" => participants_pb::EndAssignmentRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "SetFixedCareContact" => participants_pb::SetFixedCareContactRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        // The region's board data disclosed to Helsingborg; `kind` left out, so the service
        // refuses what the door lets through and nothing is recorded.
        "RecordConsent" => consent_pb::RecordConsentRequest {
            participant_id: id,
            sharing: region_to_helsingborg(&[DataCategory::Board]),
            ..Default::default()
        }
        .encode_to_vec(),
        "RevokeConsent" => consent_pb::RevokeConsentRequest {
            participant_id: id,
            consent_id: UNKNOWN.into(),
            revision: stale,
            ..Default::default()
        }
        .encode_to_vec(),
        "VoidConsent" => consent_pb::VoidConsentRequest {
            participant_id: id,
            consent_id: UNKNOWN.into(),
            revision: stale,
            reason: "Registrerat av misstag".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "CreateRestriction" => consent_pb::CreateRestrictionRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        // The restriction against Helsingborg, at a stale revision: nothing changes.
        "RevokeRestriction" => consent_pb::RevokeRestrictionRequest {
            participant_id: id,
            restriction_id: subject.restriction_id.clone(),
            revision: stale,
            ..Default::default()
        }
        .encode_to_vec(),
        "LiftRestriction" => consent_pb::LiftRestrictionRequest {
            participant_id: id,
            restriction_id: subject.restriction_id.clone(),
            revision: stale,
            ..Default::default()
        }
        .encode_to_vec(),
        "CreatePlan" => plans_pb::CreatePlanRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "UpdatePlan" => plans_pb::UpdatePlanRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "RecordMeeting" => plans_pb::RecordMeetingRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "RecordEvaluation" => plans_pb::RecordEvaluationRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "PushDecision" => plans_pb::PushDecisionRequest {
            decision: Some(plans_pb::Decision {
                participant_id: id,
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        // A change to the region's catalogue, complete so the service's owner rule decides;
        // where allowed it keeps an entry that already exists as it is.
        "UpsertCatalogueEntry" => plans_pb::UpsertCatalogueEntryRequest {
            entry: Some(plans_pb::CatalogueEntry {
                code: "region.health_dialogue".into(),
                principal: plans_pb::Principal::Region as i32,
                name: "Hälsosamtal".into(),
                active: true,
            }),
        }
        .encode_to_vec(),
        "CreateTeam" => board_pb::CreateTeamRequest::default().encode_to_vec(),
        // The region's team, renamed at a stale revision: the owner rule decides first.
        "UpdateTeam" => board_pb::UpdateTeamRequest {
            team_id: world.team_id.clone(),
            expected_revision: world.team_revision.map(|r| Revision {
                value: r.value + 100,
            }),
            name: "Ett annat namn".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "PutOnBoard" => board_pb::PutOnBoardRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "UpdateEntry" => board_pb::UpdateEntryRequest {
            participant_id: id,
            entry_id: subject.entry_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "AddAction" => board_pb::AddActionRequest {
            participant_id: id,
            entry_id: subject.entry_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "CompleteAction" => board_pb::CompleteActionRequest {
            participant_id: id,
            entry_id: subject.entry_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "TakeOffBoard" => board_pb::TakeOffBoardRequest {
            participant_id: id,
            entry_id: subject.entry_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        "StartMeeting" => board_pb::StartMeetingRequest::default().encode_to_vec(),
        "RecordDiscussion" => board_pb::RecordDiscussionRequest {
            participant_id: id,
            ..Default::default()
        }
        .encode_to_vec(),
        "MarkEmergencyReviewed" | "PurgeEvents" => Vec::new(),
        other => panic!("no request for {other}"),
    }
}

/// Makes one call; what came of it.
async fn call(stack: &Stack, world: &World, caller: Caller, rpc: &str) -> Expect {
    let (channel, credentials) = caller.channel(stack, world);
    let (_, subject) = caller.who(world);
    let path: http::uri::PathAndQuery = format!("/samsyn.{rpc}").parse().unwrap();
    let mut request = tonic::Request::new(request(rpc, world, subject));
    let mut credentials = credentials;
    let request = {
        use tonic::service::Interceptor;
        let bare = credentials
            .call(tonic::Request::new(()))
            .unwrap()
            .into_parts();
        *request.metadata_mut() = bare.0;
        request
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let result = grpc.unary::<_, (), _>(request, path, RawBytes).await;
    match result {
        Err(status) if status.code() == Code::PermissionDenied => Expect::Denied,
        Err(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::Unavailable | Code::Internal | Code::Unimplemented
            ) =>
        {
            panic!("{caller:?} {rpc}: {status:?}")
        }
        _ => Expect::Passed,
    }
}

/// Sends encoded request bytes as they are; the answer is not read.
#[derive(Debug, Clone, Copy)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        let remaining = bytes::Buf::remaining(src);
        bytes::Buf::advance(src, remaining);
        Ok(Some(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_writes_exactly_what_the_matrix_says() {
    let stack = Stack::start().await;
    let world = seed(&stack).await;
    let before = stack.trail.events().len();
    let mut calls = 0;
    let mut mismatches = Vec::new();
    for (caller, expected) in MATRIX {
        for (rpc, expected) in RPCS.iter().zip(expected) {
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

    // One audit event per call (and the intent of each write the door let through, closed
    // by that outcome); every refusal is in it, under the participant it names.
    let events = &stack.trail.events()[before..];
    let intents = events
        .iter()
        .filter(|e| e.outcome == samsyn_gateway::audit::Outcome::Intended)
        .count();
    // Through the door: the passed cells, and the refusals a service made itself.
    let forwarded = events
        .iter()
        .filter(|e| e.outcome == samsyn_gateway::audit::Outcome::Forwarded)
        .count();
    let passed = MATRIX
        .iter()
        .flat_map(|(_, row)| row.iter())
        .filter(|e| **e == Expect::Passed)
        .count();
    assert!(forwarded >= passed);
    assert_eq!(intents, forwarded);
    assert_eq!(events.len(), calls + intents);
    assert_eq!(
        stack.store.intents_without_outcome().await.unwrap(),
        Vec::<u64>::new()
    );
    let refusals = events
        .iter()
        .filter(|e| e.status == Code::PermissionDenied)
        .count();
    let expected_refusals = MATRIX
        .iter()
        .flat_map(|(_, row)| row.iter())
        .filter(|e| **e == Expect::Denied)
        .count();
    assert_eq!(refusals, expected_refusals);
    let named = |id: &str| {
        events
            .iter()
            .filter(|e| {
                e.participant_id.as_deref() == Some(id) && e.status == Code::PermissionDenied
            })
            .count()
    };
    assert!(named(&world.main.id) > 0 && named(&world.no_consent.id) > 0);
    // Nothing the matrix sent changed a record: the restriction is as seeded.
    let restrictions = consent_pb::consent_service_client::ConsentServiceClient::new(
        stack.consent.channel.clone(),
    )
    .list_restrictions(consent_pb::ListRestrictionsRequest {
        participant_id: pid(&world.main.id),
        page: None,
    })
    .await
    .unwrap()
    .into_inner()
    .restrictions;
    assert!(
        restrictions
            .iter()
            .all(|r| r.lifts.is_empty() && r.revocation.is_none())
    );
    stack.stop().await;
}
