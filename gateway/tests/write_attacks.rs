//! Writes through the gateway, tried as an attacker with a valid low-privileged token would:
//! a replayed idempotency key, a referral as an oracle, a re-referral takeover, the
//! receiving organisation authorising itself, forged actors, acts outside one's own
//! organisation's remit and requests about nobody. Each test first does what the attack
//! did and checks that it now gets nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{DataCategory, OrganisationKind};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

const CASE_MANAGER: &str = "SE2321000255-cm01";
/// A region case manager on another participant's care team only.
const OTHER_CASE_MANAGER: &str = "SE2321000255-cm07";
const PSYCHIATRIST: &str = "SE2321000255-dr01";
const HBG_COORDINATOR: &str = "hbg-coord-1";
const HOG_COORDINATOR: &str = "hog-coord-1";
const NEEDS_ASSESSOR: &str = "SE2321000255-na09";

fn participants(stack: &Stack, token: &str) -> ParticipantsServiceClient<Authed> {
    ParticipantsServiceClient::with_interceptor(stack.channel(), Credentials::bearer(token))
}

fn consent(stack: &Stack, token: &str) -> ConsentServiceClient<Authed> {
    ConsentServiceClient::with_interceptor(stack.channel(), Credentials::bearer(token))
}

fn board(stack: &Stack, token: &str) -> BoardServiceClient<Authed> {
    BoardServiceClient::with_interceptor(stack.channel(), Credentials::bearer(token))
}

type Authed =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>;

/// The fields an `INVALID_ARGUMENT` names.
fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn referral(
    pin: &str,
    name: &str,
    home: &str,
    by: &str,
    org: &str,
) -> participants_pb::CreateReferralRequest {
    participants_pb::CreateReferralRequest {
        idempotency_key: String::new(),
        personal_identity_number: pin.to_owned(),
        name: name.to_owned(),
        home_municipality_code: home.to_owned(),
        referring_principal: if org == REGION {
            OrganisationKind::Region
        } else {
            OrganisationKind::Municipality
        } as i32,
        referred_by: staff_ref(by, org),
        reason: "Långvarigt behov av stöd från båda huvudmännen".to_owned(),
        criteria: Some(participants_pb::AdmissionCriteria {
            long_term_needs_from_both_principals: true,
            diagnosis_criteria_met: true,
        }),
    }
}

/// A participant whose referral was declined: a former one, straight in the services.
async fn declined(stack: &Stack, pin: &str, name: &str) -> String {
    let mut client = ParticipantsServiceClient::new(stack.participants.channel.clone());
    let p = client
        .create_referral(referral(pin, name, HELSINGBORG, CASE_MANAGER, REGION))
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;
    client
        .record_review(participants_pb::RecordReviewRequest {
            participant_id: pid(&id),
            revision: p.revision,
            principal: OrganisationKind::Municipality as i32,
            reviewed_by: staff_ref("hbg-soc-review", HELSINGBORG),
            assessment: participants_pb::Assessment::Decline as i32,
            reason: "Behovet möts av ordinarie insatser".to_owned(),
        })
        .await
        .unwrap();
    id
}

async fn participant(stack: &Stack, id: &str) -> participants_pb::Participant {
    ParticipantsServiceClient::new(stack.participants.channel.clone())
        .get_participant(participants_pb::GetParticipantRequest {
            participant_id: pid(id),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Two enrolled participants, the first on `CASE_MANAGER`'s care team and the second on
/// `OTHER_CASE_MANAGER`'s, both with Helsingborg's coordinator; the gateway has seen them.
async fn two_participants(stack: &Stack) -> (String, String) {
    let team = |region| Team {
        region,
        municipal: &[HBG_COORDINATOR],
    };
    let first = enrolled(
        stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        team(&[CASE_MANAGER]),
    )
    .await;
    let second = enrolled(
        stack,
        &pin("19850704", "316"),
        "Märta Ödmark",
        team(&[OTHER_CASE_MANAGER]),
    )
    .await;
    stack.settle().await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_returns_nothing_of_another_callers_record() {
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let (victim, own) = two_participants(&stack).await;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let attacker = stack.token(&staff(OTHER_CASE_MANAGER, REGION, &["case_manager"]));

    // The victim's records, made with guessable keys.
    let mut first = consent_request(
        &victim,
        consent_pb::ConsentKind::InformationSharing,
        region_to_helsingborg(&[DataCategory::Board]),
        None,
    );
    first.recorded_by = None;
    first.idempotency_key = "consent-1".into();
    let victims_consent = consent(&stack, &case_manager)
        .record_consent(first.clone())
        .await
        .unwrap()
        .into_inner();
    let mut referral_request = referral(
        &pin("19920115", "245"),
        "Åsa Ängström",
        HELSINGBORG,
        CASE_MANAGER,
        REGION,
    );
    referral_request.idempotency_key = "referral-1".into();
    participants(&stack, &case_manager)
        .create_referral(referral_request)
        .await
        .unwrap();
    let put = |participant: &str, by: &str| board_pb::PutOnBoardRequest {
        request_id: "board-1".into(),
        team_id: team_id.clone(),
        participant_id: pid(participant),
        reason: BOARD_REASON.into(),
        criteria: vec!["crisis".into()],
        status: Some(board_pb::StatusAssessment {
            level: 1,
            trend: board_pb::Trend::Worsening.into(),
            note: "Röd".into(),
        }),
        next_review_on: Some(today()),
        actions: vec![],
        recorded_by: staff_ref(by, REGION),
    };
    let victims_entry = board(&stack, &case_manager)
        .put_on_board(put(&victim, CASE_MANAGER))
        .await
        .unwrap()
        .into_inner();

    // The attacker replays each key for a participant they may write for.
    let mut replay = consent_request(&own, consent_pb::ConsentKind::Participation, None, None);
    replay.recorded_by = None;
    replay.idempotency_key = "consent-1".into();
    let got = consent(&stack, &attacker)
        .record_consent(replay)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.participant_id, pid(&own));
    assert_ne!(got.id, victims_consent.id);

    let mut referral_replay = referral(
        &pin("19680930", "171"),
        "Göran Öhlund",
        HELSINGBORG,
        OTHER_CASE_MANAGER,
        REGION,
    );
    referral_replay.idempotency_key = "referral-1".into();
    let got = participants(&stack, &attacker)
        .create_referral(referral_replay)
        .await
        .unwrap()
        .into_inner();
    assert!(got.personal_identity_number.is_empty() && got.name.is_empty());
    assert_eq!(
        got.referral.unwrap().referred_by,
        staff_ref(OTHER_CASE_MANAGER, REGION),
        "the attacker's own referral, not the first caller's"
    );

    let got = board(&stack, &attacker)
        .put_on_board(put(&own, OTHER_CASE_MANAGER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.participant_id, pid(&own));
    assert_ne!(got.entry_id, victims_entry.entry_id);

    let plan = |participant: &str| samsyn_proto::plans::v1::CreatePlanRequest {
        participant_id: pid(participant),
        content: Some(samsyn_proto::plans::v1::PlanContent {
            goals: vec![samsyn_proto::plans::v1::Goal {
                id: String::new(),
                text: "Att må bättre och ha ett eget boende".into(),
            }],
            ..Default::default()
        }),
        supersede_active: false,
        request_id: "plan-1".into(),
    };
    let plans = |token: &str| {
        samsyn_proto::plans::v1::plans_service_client::PlansServiceClient::with_interceptor(
            stack.channel(),
            Credentials::bearer(token),
        )
    };
    let victims_plan = plans(&case_manager)
        .create_plan(plan(&victim))
        .await
        .unwrap()
        .into_inner();
    let got = plans(&attacker)
        .create_plan(plan(&own))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.participant_id, pid(&own));
    assert_ne!(got.id, victims_plan.id);

    // The first caller's own retry with other content is refused, naming the key.
    let mut changed = first.clone();
    changed.sharing = region_to_helsingborg(&[DataCategory::Plan]);
    let refused = consent(&stack, &case_manager)
        .record_consent(changed)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    assert!(refused.message().contains("idempotency_key"), "{refused:?}");
    // ... and an exact retry still gets the first answer.
    let again = consent(&stack, &case_manager)
        .record_consent(first)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, victims_consent.id);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_answers_alike_for_a_stranger_a_former_and_an_active_participant() {
    let stack = Stack::start().await;
    let active_pin = pin("19790321", "482");
    let former_pin = pin("19850704", "316");
    let active = enrolled(
        &stack,
        &active_pin,
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let former = declined(&stack, &former_pin, "Märta Ödmark").await;
    stack.settle().await;
    let active_before = participant(&stack, &active).await;
    let former_before = participant(&stack, &former).await;
    let assessor = stack.token(&staff(NEEDS_ASSESSOR, REGION, &["needs_assessor"]));

    let mut answers = Vec::new();
    for person in [pin("19920115", "245"), former_pin, active_pin] {
        let mut answer = participants(&stack, &assessor)
            .create_referral(referral(
                &person,
                "Okänd Person",
                HELSINGBORG,
                NEEDS_ASSESSOR,
                REGION,
            ))
            .await
            .expect("every referral is received alike")
            .into_inner();
        assert_eq!(
            answer.participant_id, None,
            "no participant id in a receipt"
        );
        assert_eq!(answer.revision, None, "no revision in a receipt");
        let referral = answer.referral.as_mut().unwrap();
        assert!(!referral.referral_id.is_empty());
        referral.referral_id.clear();
        referral.referred_at = None;
        answers.push(answer);
    }
    assert_eq!(
        answers[0], answers[1],
        "a former participant answers like a stranger"
    );
    assert_eq!(
        answers[0], answers[2],
        "an active participant answers like a stranger"
    );

    // The active participation is untouched; the former participant keeps who they are.
    assert_eq!(participant(&stack, &active).await, active_before);
    let former_after = participant(&stack, &former).await;
    assert_eq!(former_after.name, former_before.name);
    assert_eq!(former_after.home_municipality_code, HELSINGBORG);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_referral_takes_nothing_over() {
    let stack = Stack::start().await;
    let former = declined(&stack, &pin("19850704", "316"), "Märta Ödmark").await;
    stack.settle().await;
    let coordinator = staff(HOG_COORDINATOR, HOGANAS, &["coordinator"]);
    let token = stack.token(&coordinator);
    participants(&stack, &token)
        .create_referral(referral(
            &pin("19850704", "316"),
            "Någon Annan",
            HOGANAS,
            HOG_COORDINATOR,
            HOGANAS,
        ))
        .await
        .unwrap();
    stack.settle().await;
    let after = participant(&stack, &former).await;
    assert_eq!(after.name, "Märta Ödmark");
    assert_eq!(after.home_municipality_code, HELSINGBORG);
    for result in [
        participants(&stack, &token)
            .get_participant(participants_pb::GetParticipantRequest {
                participant_id: pid(&former),
            })
            .await
            .map(drop),
        participants(&stack, &token)
            .get_care_team(participants_pb::GetCareTeamRequest {
                participant_id: pid(&former),
                include_history: true,
            })
            .await
            .map(drop),
    ] {
        assert_eq!(result.unwrap_err().code(), Code::PermissionDenied);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiving_organisation_cannot_authorise_itself() {
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let restriction = ConsentServiceClient::new(stack.consent.channel.clone())
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
            note: "Vill inte att kommunen ser journalanteckningar".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    stack.settle().await;
    let helsingborg = stack.token(&staff(HBG_COORDINATOR, HELSINGBORG, &["coordinator"]));
    let before = stack.trail.events().len();

    let mut own_consent = consent_request(
        &id,
        consent_pb::ConsentKind::InformationSharing,
        region_to_helsingborg(&[DataCategory::Board]),
        None,
    );
    own_consent.recorded_by = None;
    let refused = consent(&stack, &helsingborg)
        .record_consent(own_consent)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let lift = consent_pb::LiftRestrictionRequest {
        participant_id: pid(&id),
        restriction_id: restriction.id.clone(),
        revision: restriction.revision,
        reason: consent_pb::LiftReason::Consent as i32,
        categories: vec![DataCategory::Plan as i32],
        period: Some(samsyn_proto::common::v1::Period {
            start: Some(samsyn_kit::time::to_timestamp(chrono::Utc::now())),
            end: Some(samsyn_kit::time::to_timestamp(
                chrono::Utc::now() + chrono::Duration::days(1),
            )),
        }),
        ..Default::default()
    };
    let refused = consent(&stack, &helsingborg)
        .lift_restriction(lift.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = consent(&stack, &helsingborg)
        .revoke_restriction(consent_pb::RevokeRestrictionRequest {
            participant_id: pid(&id),
            restriction_id: restriction.id.clone(),
            revision: restriction.revision,
            revoked_by: None,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Nothing was stored: no new consent, the restriction as it was.
    let mut direct = ConsentServiceClient::new(stack.consent.channel.clone());
    let consents = direct
        .list_consents(consent_pb::ListConsentsRequest {
            participant_id: pid(&id),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .consents;
    assert!(
        consents
            .iter()
            .all(|c| c.kind != consent_pb::ConsentKind::InformationSharing as i32),
        "Helsingborg recorded a disclosure to itself"
    );
    let restrictions = direct
        .list_restrictions(consent_pb::ListRestrictionsRequest {
            participant_id: pid(&id),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .restrictions;
    assert_eq!(restrictions, std::slice::from_ref(&restriction));

    // The refusals are in the trail under the participant, for their log and the owner.
    let events = &stack.trail.events()[before..];
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| {
        e.participant_id.as_deref() == Some(id.as_str()) && e.status == Code::PermissionDenied
    }));

    // The owner of the data the restriction protects may lift it, as themself.
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let lifted = consent(&stack, &case_manager)
        .lift_restriction(lift)
        .await
        .unwrap()
        .into_inner();
    let by = lifted.lifts[0].lifted_by.clone().unwrap();
    assert_eq!(by, actor(CASE_MANAGER, REGION).unwrap());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_actor_is_the_caller() {
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let sharing = share_with_helsingborg(&stack, &id, &[DataCategory::Plan], None).await;
    stack.settle().await;
    let the_participant = stack.token(&person(&id));
    let revoke = |revoked_by| consent_pb::RevokeConsentRequest {
        participant_id: pid(&id),
        consent_id: sharing.id.clone(),
        revision: sharing.revision,
        revoked_by,
        reason: "Ångrar mig".into(),
    };
    let forged = consent(&stack, &the_participant)
        .revoke_consent(revoke(actor(PSYCHIATRIST, REGION)))
        .await
        .unwrap_err();
    assert_eq!(fields(&forged), ["revoked_by.kind"]);
    let revoked = consent(&stack, &the_participant)
        .revoke_consent(revoke(None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        revoked.revocation.unwrap().by.unwrap().kind,
        consent_pb::ActorKind::Participant as i32,
        "history names the participant, who acted"
    );

    // A Helsingborg coordinator records as herself, never as the region's case manager.
    let helsingborg = stack.token(&staff(HBG_COORDINATOR, HELSINGBORG, &["coordinator"]));
    let mut request = consent_request(&id, consent_pb::ConsentKind::ResearchStudy, None, None);
    request.recorded_by = actor(CASE_MANAGER, REGION);
    let forged = consent(&stack, &helsingborg)
        .record_consent(request.clone())
        .await
        .unwrap_err();
    assert_eq!(fields(&forged), ["recorded_by.staff.staff_id"]);
    request.recorded_by = None;
    let recorded = consent(&stack, &helsingborg)
        .record_consent(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.recorded_by, actor(HBG_COORDINATOR, HELSINGBORG));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acts_stay_within_ones_own_organisation() {
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    stack.settle().await;
    let revision = participant(&stack, &id).await.revision;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));

    // A region employee is never the municipality's coordinator, nor its referrer.
    let refused = participants(&stack, &case_manager)
        .assign_coordinator(participants_pb::AssignCoordinatorRequest {
            participant_id: pid(&id),
            revision,
            principal: OrganisationKind::Municipality as i32,
            rank: participants_pb::CoordinatorRank::Deputy as i32,
            staff: staff_ref("SE2321000255-cm05", REGION),
        })
        .await
        .unwrap_err();
    assert!(
        fields(&refused).contains(&"principal".to_owned()),
        "{refused:?}"
    );
    let mut as_municipality = referral(
        &pin("19920115", "245"),
        "Åsa Ängström",
        HELSINGBORG,
        CASE_MANAGER,
        REGION,
    );
    as_municipality.referring_principal = OrganisationKind::Municipality as i32;
    let refused = participants(&stack, &case_manager)
        .create_referral(as_municipality)
        .await
        .unwrap_err();
    assert_eq!(fields(&refused), ["referring_principal"]);

    // Helsingborg's team leader cannot rename the region's FACT team.
    let team = BoardServiceClient::new(stack.board.channel.clone())
        .get_team(board_pb::GetTeamRequest {
            team_id: team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let leader = stack.token(&staff("hbg-tl-1", HELSINGBORG, &["team_leader"]));
    let refused = board(&stack, &leader)
        .update_team(board_pb::UpdateTeamRequest {
            team_id: team_id.clone(),
            expected_revision: team.revision,
            name: "Helsingborgs team".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let unchanged = BoardServiceClient::new(stack.board.channel.clone())
        .get_team(board_pb::GetTeamRequest { team_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.name, team.name);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_about_nobody_is_refused_before_any_decision() {
    let stack = Stack::start().await;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    for participant_id in [None, pid(""), pid("not-a-participant")] {
        let refused = participants(&stack, &case_manager)
            .get_participant(participants_pb::GetParticipantRequest { participant_id })
            .await
            .unwrap_err();
        assert_eq!(fields(&refused), ["participant_id"]);
    }
    let events = stack.trail.events();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| !e.allowed && e.policies.is_empty()));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_spelling_of_a_participant_id_reaches_nobody() {
    let stack = Stack::start().await;
    let (anna, other) = two_participants(&stack).await;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let physician = Credentials::bearer(&stack.token(&staff(PSYCHIATRIST, REGION, &["physician"])))
        .emergency("Akut suicidrisk; jourläkare behöver läkemedelslistan");
    let read = |id: &str| participants_pb::GetParticipantRequest {
        participant_id: pid(id),
    };
    // The one spelling is read as ever.
    let shown = participants(&stack, &case_manager)
        .get_participant(read(&anna))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.participant_id.unwrap().value, anna);
    let before = stack.trail.events().len();
    for id in [&anna, &other] {
        let spellings = [
            id.to_uppercase(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.replace('-', ""),
        ];
        for spelling in &spellings {
            // Neither the care team's own case manager nor an emergency reaches anyone
            // under another spelling: the call is refused before any lookup.
            let refused = participants(&stack, &case_manager)
                .get_participant(read(spelling))
                .await
                .unwrap_err();
            assert_eq!(fields(&refused), ["participant_id"], "{spelling}");
            let refused =
                ParticipantsServiceClient::with_interceptor(stack.channel(), physician.clone())
                    .get_participant(read(spelling))
                    .await
                    .unwrap_err();
            assert_eq!(fields(&refused), ["participant_id"], "{spelling}");
        }
        assert_eq!(
            stack.gateway.gate().emergency_declared_at(PSYCHIATRIST, id),
            None,
            "no emergency is remembered under any spelling"
        );
    }
    let refusals = &stack.trail.events()[before..];
    assert_eq!(refusals.len(), 16, "every refusal is audited");
    assert!(refusals.iter().all(|e| !e.allowed && e.policies.is_empty()));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_decision_is_the_pushing_municipalitys_own() {
    use samsyn_proto::plans::v1 as plans_pb;
    use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let need = uuid::Uuid::new_v4().to_string();
    let housing = uuid::Uuid::new_v4().to_string();
    let treatment = uuid::Uuid::new_v4().to_string();
    let intervention = |id: &str, organisation: &str, code: &str| plans_pb::Intervention {
        id: id.into(),
        need_id: need.clone(),
        responsible_organisation_id: org(organisation),
        kind: Some(plans_pb::intervention::Kind::CatalogueCode(code.into())),
        status: plans_pb::InterventionStatus::Applied as i32,
        ..Default::default()
    };
    let mut direct = PlansServiceClient::new(stack.plans.channel.clone());
    let plan = direct
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(&id),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Ett eget boende och mindre ångest".into(),
                }],
                needs: vec![plans_pb::Need {
                    id: need.clone(),
                    life_area: plans_pb::LifeArea::Housing as i32,
                    description: "Stöd i hemmet".into(),
                    no_intervention_reason: 0,
                }],
                interventions: vec![
                    intervention(&housing, HELSINGBORG, "municipality.housing_support"),
                    intervention(&treatment, REGION, "region.psychological_treatment"),
                ],
                ..Default::default()
            }),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    stack.settle().await;
    let decision = |intervention: &str| plans_pb::Decision {
        external_decision_id: format!("HBG-{intervention}"),
        participant_id: pid(&id),
        subject: Some(plans_pb::decision::Subject::InterventionId(
            intervention.into(),
        )),
        outcome: plans_pb::DecisionOutcome::Granted as i32,
        valid_from: Some(today()),
        decided_by: staff_ref("hbg-bh-7", HELSINGBORG),
        decided_at: Some(samsyn_kit::time::to_timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    let mut system = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));

    // Helsingborg's case system cannot speak as Höganäs, nor for a Höganäs officer.
    let mut forged = decision(&housing);
    forged.organisation_id = org(HOGANAS);
    forged.decided_by = staff_ref("hog-bh-1", HOGANAS);
    let refused = system
        .push_decision(plans_pb::PushDecisionRequest {
            decision: Some(forged),
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(&refused),
        [
            "decision.organisation_id",
            "decision.decided_by.organisation_id"
        ]
    );
    // Nor decide the region's intervention.
    let refused = system
        .push_decision(plans_pb::PushDecisionRequest {
            decision: Some(decision(&treatment)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unchanged = direct
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.revision, plan.revision);

    // Its own intervention, with the organisation left out: recorded as Helsingborg's.
    system
        .push_decision(plans_pb::PushDecisionRequest {
            decision: Some(decision(&housing)),
        })
        .await
        .unwrap();
    let decided = direct
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id,
        })
        .await
        .unwrap()
        .into_inner();
    let recorded = decided.decisions.last().unwrap();
    assert_eq!(recorded.organisation_id, org(HELSINGBORG));
    assert_eq!(recorded.decided_by, staff_ref("hbg-bh-7", HELSINGBORG));
    stack.stop().await;
}
