//! The gateway over real gRPC and TLS in front of the real services: who gets in, what they
//! see of a list, paging, emergency access, revocation in force at once, a service down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use samsyn_gateway::audit::Outcome;
use samsyn_proto::common::v1::{DataCategory, PageRequest};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::Code;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const OTHER_CASE_MANAGER: &str = "SE2321000255-cm02";
const COORDINATOR: &str = "hbg-soc-7";

fn participants_as(
    stack: &Stack,
    credentials: Credentials,
) -> ParticipantsServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>,
> {
    ParticipantsServiceClient::with_interceptor(stack.channel(), credentials)
}

fn get(id: &str) -> participants_pb::GetParticipantRequest {
    participants_pb::GetParticipantRequest {
        participant_id: pid(id),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_on_the_care_team_get_in_others_are_refused_alike() {
    let stack = Stack::start().await;
    let ours = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[COORDINATOR],
        },
    )
    .await;
    let theirs = enrolled(
        &stack,
        &pin("19850704", "316"),
        "Märta Ödmark",
        Team {
            region: &[OTHER_CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));

    // No credentials, and a forged token: unauthenticated, whatever the participant.
    let anonymous = participants_as(&stack, Credentials::none())
        .get_participant(get(&ours))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let forged = format!("{}x", &case_manager[..case_manager.len() - 1]);
    let forged = participants_as(&stack, Credentials::bearer(&forged))
        .get_participant(get(&ours))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);

    // On the care team: the whole record, Swedish name intact.
    let mut client = participants_as(&stack, Credentials::bearer(&case_manager));
    let participant = client
        .get_participant(get(&ours))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(participant.name, "Örjan Åkesson");

    // Someone else's participant and one who does not exist: the same refusal.
    let not_mine = client.get_participant(get(&theirs)).await.unwrap_err();
    let nobody = client
        .get_participant(get("0198c0de-0000-7000-8000-00000000dead"))
        .await
        .unwrap_err();
    assert_eq!(not_mine.code(), Code::PermissionDenied);
    assert_eq!(nobody.code(), Code::PermissionDenied);
    assert_eq!(not_mine.message(), nobody.message());
    assert_eq!(not_mine.details(), nobody.details());

    // The list shows only what the caller may see, one page at a time, and its page tokens
    // say nothing about the rows withheld.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_participants(participants_pb::ListParticipantsRequest {
                page: Some(PageRequest {
                    page_size: 1,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(
            page.participants
                .iter()
                .map(|p| p.participant_id.clone().unwrap().value),
        );
        token = page.page.unwrap_or_default().next_page_token;
        assert!(!token.contains(&theirs) && !token.contains(&ours));
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, std::slice::from_ref(&ours));

    // No visible row follows the one the caller sees, so no page token hints at the rows
    // withheld (a token being the caller's own is tested in quiet_leaks.rs).
    let first = client
        .list_participants(participants_pb::ListParticipantsRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.participants.len(), 1);
    assert_eq!(first.page.unwrap().next_page_token, "");
    // A made-up token is refused, not taken as the first page.
    let other = stack.token(&staff(OTHER_CASE_MANAGER, REGION, &["case_manager"]));
    let stolen = participants_as(&stack, Credentials::bearer(&other))
        .list_participants(participants_pb::ListParticipantsRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::InvalidArgument);

    // Every call above is in the trail exactly once, refusals included.
    let events = stack.trail.events();
    let refused = events
        .iter()
        .filter(|e| e.outcome == Outcome::Refused)
        .count();
    assert_eq!(refused, 5, "{events:#?}");
    let nobody_event = events
        .iter()
        .find(|e| e.participant_id.as_deref() == Some("0198c0de-0000-7000-8000-00000000dead"))
        .unwrap();
    assert!(!nobody_event.allowed);
    assert_eq!(nobody_event.status, Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_the_gateway_is_in_force_for_the_next_call() {
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[COORDINATOR],
        },
    )
    .await;
    let sharing = share_with_helsingborg(&stack, &id, &[DataCategory::Board], None).await;
    stack.settle().await;

    // The participant ends their own consent through the gateway...
    let participant = stack.token(&person(&id));
    let mut own =
        ConsentServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&participant));
    let listed = own
        .list_consents(consent_pb::ListConsentsRequest {
            participant_id: pid(&id),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.consents.len(), 2);
    own.revoke_consent(consent_pb::RevokeConsentRequest {
        participant_id: pid(&id),
        consent_id: sharing.id.clone(),
        revision: sharing.revision,
        revoked_by: Some(consent_pb::Actor {
            kind: consent_pb::ActorKind::Participant as i32,
            staff: None,
        }),
        reason: "Vill inte längre att kommunen ser tavlan".to_owned(),
    })
    .await
    .unwrap();
    // ...and the gateway's view has it before the revoke returned.
    let facts = stack
        .gateway
        .gate()
        .view()
        .facts(&id, std::time::Instant::now())
        .unwrap()
        .unwrap();
    let revoked = facts
        .consents
        .iter()
        .find(|c| c.id == sharing.id)
        .expect("the consent");
    assert!(
        revoked.revoked_at.is_some(),
        "revocation applied: {revoked:?}"
    );

    // A participant cannot read someone else's consents.
    let stranger = stack.token(&person("0198c0de-0000-7000-8000-0000000000aa"));
    let refused =
        ConsentServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&stranger))
            .list_consents(consent_pb::ListConsentsRequest {
                participant_id: pid(&id),
                page: None,
            })
            .await
            .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_fails_only_its_own_calls() {
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let mut stack = stack;
    stack.stop_plans().await;
    let down = samsyn_proto::plans::v1::plans_service_client::PlansServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(&token),
    )
    .list_plans(samsyn_proto::plans::v1::ListPlansRequest {
        participant_id: pid(&id),
    })
    .await
    .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable);
    let up = participants_as(&stack, Credentials::bearer(&token))
        .get_participant(get(&id))
        .await
        .unwrap();
    assert_eq!(up.into_inner().name, "Örjan Åkesson");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_consent_cuts_the_row_from_a_live_board_stream() {
    use samsyn_proto::board::v1 as board_pb;
    use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let shared = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[COORDINATOR],
        },
    )
    .await;
    let region_only = enrolled(
        &stack,
        &pin("19850704", "316"),
        "Märta Ödmark",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    let consent = share_with_helsingborg(&stack, &shared, &[DataCategory::Board], None).await;
    let entry_id = put_on_board(&stack, &team_id, &shared).await;
    put_on_board(&stack, &team_id, &region_only).await;
    stack.settle().await;

    let mut coordinator = staff(COORDINATOR, HELSINGBORG, &["coordinator"]);
    coordinator.unit = Some("hbg-ifo-1".into());
    let mut board = BoardServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(&stack.token(&coordinator)),
    );
    let mut stream = board
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let next = async |stream: &mut tonic::Streaming<board_pb::BoardUpdate>| {
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
            .await
            .expect("an update within 5 s")
            .unwrap()
            .unwrap()
    };
    let shown = |update: &board_pb::BoardUpdate| -> Vec<String> {
        update
            .entries
            .iter()
            .map(|e| e.participant_id.clone().unwrap().value)
            .collect()
    };
    // The coordinator sees only the participant who consented to sharing the board.
    let first = next(&mut stream).await;
    assert_eq!(first.kind(), board_pb::BoardUpdateKind::Snapshot);
    assert_eq!(shown(&first), std::slice::from_ref(&shared));

    // The participant withdraws the consent through the gateway.
    ConsentServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(&stack.token(&person(&shared))),
    )
    .revoke_consent(consent_pb::RevokeConsentRequest {
        participant_id: pid(&shared),
        consent_id: consent.id.clone(),
        revision: consent.revision,
        revoked_by: Some(consent_pb::Actor {
            kind: consent_pb::ActorKind::Participant as i32,
            staff: None,
        }),
        reason: "Återkallar delningen av tavlan".to_owned(),
    })
    .await
    .unwrap();
    // The very next read is refused...
    let refused = board
        .get_entry(board_pb::GetEntryRequest {
            entry_id,
            participant_id: pid(&shared),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // ...and the live stream replaces the board with one that lacks the row.
    let after = next(&mut stream).await;
    assert_eq!(after.kind(), board_pb::BoardUpdateKind::Snapshot);
    assert!(shown(&after).is_empty(), "{after:?}");
    assert_eq!(after.cursor, first.cursor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_the_fact_team_see_its_board_without_a_care_team_assignment() {
    use samsyn_proto::board::v1 as board_pb;
    use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
    const FACT_NURSE: &str = "SE2321000255-fact1";
    const OTHER_TEAMS_NURSE: &str = "SE2321000255-fact9";
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let other_team_id = BoardServiceClient::new(stack.board.channel.clone())
        .create_team(board_pb::CreateTeamRequest {
            request_id: "team-soder".into(),
            name: "FACT-team Söder – Landskrona".into(),
            owner_organisation_id: org(REGION),
            coordinators: vec![],
            criteria: vec![],
            status_levels: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .team_id;
    // Neither nurse is on the participant's care team; each works in one FACT team.
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let in_team = |staff_id: &str, team: &str| {
        let mut nurse = staff(staff_id, REGION, &["nurse"]);
        nurse.teams = vec![team.to_owned()];
        BoardServiceClient::with_interceptor(
            stack.channel(),
            Credentials::bearer(&stack.token(&nurse)),
        )
    };
    let mut member = in_team(FACT_NURSE, &team_id);
    let mut outsider = in_team(OTHER_TEAMS_NURSE, &other_team_id);
    let shown = |entries: &[board_pb::BoardEntry]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e.participant_id.clone().unwrap().value)
            .collect()
    };

    // The member's live board is empty until the participant is put on it; then the row
    // appears (the view takes the entry up from the board feed).
    let mut stream = member
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let next = async |stream: &mut tonic::Streaming<board_pb::BoardUpdate>| {
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
            .await
            .expect("an update within 5 s")
            .unwrap()
            .unwrap()
    };
    assert!(next(&mut stream).await.entries.is_empty());
    let entry_id = put_on_board(&stack, &team_id, &id).await;
    assert_eq!(shown(&next(&mut stream).await.entries), [id.as_str()]);
    stack.settle().await;

    // The member reads the entry and sees the row on the board.
    let get = || board_pb::GetEntryRequest {
        entry_id: entry_id.clone(),
        participant_id: pid(&id),
    };
    let entry = member.get_entry(get()).await.unwrap().into_inner();
    assert_eq!(entry.reason, BOARD_REASON);
    let board = |team_id: &str| board_pb::GetBoardRequest {
        team_id: team_id.to_owned(),
    };
    let rows = member
        .get_board(board(&team_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown(&rows.entries), [id.as_str()]);

    // A nurse of another FACT team does not: refused, and the row withheld.
    let refused = outsider.get_entry(get()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let rows = outsider
        .get_board(board(&team_id))
        .await
        .unwrap()
        .into_inner();
    assert!(rows.entries.is_empty(), "{rows:?}");

    // The member takes the participant off the board through the gateway: the write settles,
    // so the very next read is decided without the team.
    member
        .take_off_board(board_pb::TakeOffBoardRequest {
            entry_id: entry_id.clone(),
            participant_id: pid(&id),
            expected_revision: entry.revision,
            reason: "Stabil, tillbaka i ordinarie uppföljning".into(),
            recorded_by: staff_ref(FACT_NURSE, REGION),
        })
        .await
        .unwrap();
    let refused = member.get_entry(get()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // The care team's case manager still reads it.
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    BoardServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&case_manager))
        .get_entry(get())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_and_the_participant_follow_up_through_the_gateway() {
    use samsyn_proto::audit::v1 as audit_pb;
    use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    participants_as(&stack, Credentials::bearer(&case_manager))
        .get_participant(get(&id))
        .await
        .unwrap();
    let stranger = stack.token(&staff("SE0180-sos-1", "0180", &["case_manager"]));
    participants_as(&stack, Credentials::bearer(&stranger))
        .get_participant(get(&id))
        .await
        .unwrap_err();

    // The region's auditor sees both calls about the participant: the read and the refusal.
    let auditor = stack.token(&staff("SE2321000255-rev1", REGION, &["auditor"]));
    let mut audit =
        AuditServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&auditor));
    let events = audit
        .list_events(audit_pb::ListEventsRequest {
            participant_id: pid(&id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let decisions: Vec<_> = events.iter().map(|e| e.decision()).collect();
    assert!(
        decisions.contains(&audit_pb::Decision::Allowed),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.principal.as_ref().is_some_and(|p| p.id == CASE_MANAGER))
    );
    let verified = audit
        .verify_audit(audit_pb::VerifyAuditRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.first_broken_position, 0, "{verified:?}");
    assert!(verified.events_checked >= 3);

    // Staff without the auditor role may not read the trail.
    let refused =
        AuditServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&case_manager))
            .list_events(audit_pb::ListEventsRequest {
                participant_id: pid(&id),
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The participant sees which organisation read their data, never who.
    let own = stack.token(&person(&id));
    let mut mine = AuditServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&own));
    let log = mine
        .get_my_access_log(audit_pb::GetMyAccessLogRequest {
            participant_id: pid(&id),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(log.entries.iter().any(|e| {
        e.organisation_id
            .as_ref()
            .is_some_and(|o| o.value == REGION)
    }));
    let bytes = prost::Message::encode_to_vec(&log);
    assert!(!String::from_utf8_lossy(&bytes).contains(CASE_MANAGER));
    // ...and only their own.
    let other = stack.token(&person("0198c0de-0000-7000-8000-0000000000aa"));
    let refused =
        AuditServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&other))
            .get_my_access_log(audit_pb::GetMyAccessLogRequest {
                participant_id: pid(&id),
                page: None,
            })
            .await
            .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}
