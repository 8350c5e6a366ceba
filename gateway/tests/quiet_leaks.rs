//! What leaks through structure, time or silence (issue 18): trace ids in the trail without
//! an exporter, a stalled service's deadline, bytes that do not decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use samsyn_kit::tls;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use support::*;
use tonic::Code;

const CASE_MANAGER: &str = "SE2321000255-cm01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_carries_a_trace_id_without_an_exporter() {
    let stack = Stack::start().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let catalogue = |traceparent: Option<&'static str>| {
        let mut request = tonic::Request::new(plans_pb::ListCatalogueRequest::default());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(traceparent) = traceparent {
            request
                .metadata_mut()
                .insert("traceparent", traceparent.parse().unwrap());
        }
        request
    };
    let mut plans = PlansServiceClient::new(stack.channel());
    plans
        .list_catalogue(catalogue(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )))
        .await
        .unwrap();
    plans.list_catalogue(catalogue(None)).await.unwrap();
    // A refusal too: no token at all.
    let refused = plans
        .list_catalogue(plans_pb::ListCatalogueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let events = stack.trail.events();
    let ids: Vec<&str> = events[events.len() - 3..]
        .iter()
        .map(|e| e.trace_id.as_deref().expect("every event has a trace id"))
        .collect();
    assert_eq!(
        ids[0], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    for made_up in &ids[1..] {
        assert_eq!(made_up.len(), 32);
        assert!(made_up.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(ids[1], ids[2], "each call its own trace");
    stack.stop().await;
}

/// A plans service that never answers.
#[derive(Debug, Clone)]
struct Stall;

impl tonic::server::NamedService for Stall {
    const NAME: &'static str = "samsyn.plans.v1.PlansService";
}

impl tower::Service<http::Request<tonic::body::Body>> for Stall {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Pending<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::pending()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_service_ends_the_call_with_deadline_exceeded() {
    let stack = Stack::start().await;
    // A plans service that takes calls and never answers them.
    let certs = stack.certs();
    let pki = tls::DevPki::at(&certs);
    pki.ensure(&["stalled-plans"]).unwrap();
    let stalled = samsyn_kit::serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let stalled_addr = stalled.local_addr().unwrap();
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(Stall);
    let part = samsyn_kit::serve::Part {
        name: "stalled-plans",
        routes,
        services: Vec::new(),
        feeds: Vec::new(),
        readiness: Default::default(),
        http1: false,
    };
    let server = tls::server_config(
        &pki.identity("stalled-plans").unwrap(),
        pki.trust_anchors().unwrap(),
        tls::ClientAuth::Required,
    )
    .unwrap();
    let patient = samsyn_kit::config::Limits {
        default_deadline_ms: 120_000,
        ..Default::default()
    };
    tokio::spawn(async move {
        samsyn_kit::serve::serve(part, stalled, server, &patient, std::future::pending()).await
    });
    let client = tls::client_config(
        pki.trust_anchors().unwrap(),
        Some(&pki.identity("gateway").unwrap()),
    )
    .unwrap();
    let upstreams = samsyn_gateway::proxy::Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: tls::channel(stalled_addr, "localhost", client).unwrap(),
        board: stack.board.channel.clone(),
        audit: None,
        reports: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let served = serve_gateway(&certs, dir.path(), Default::default(), upstreams).await;
    let channel = {
        let client = tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
        tls::channel(served.addr, "localhost", client).unwrap()
    };
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let started = std::time::Instant::now();
    // No deadline from the caller: the gateway's default (10 s) applies.
    let status = PlansServiceClient::with_interceptor(channel, Credentials::bearer(&token))
        .list_catalogue(plans_pb::ListCatalogueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let event = served.trail.events().pop().unwrap();
    assert_eq!(event.status, Code::DeadlineExceeded);
    stack.stop().await;
}

fn audit(
    stack: &Stack,
    principal: &samsyn_gateway::auth::Principal,
) -> samsyn_proto::audit::v1::audit_service_client::AuditServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>,
> {
    samsyn_proto::audit::v1::audit_service_client::AuditServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(&stack.token(principal)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_probe_is_listed_for_the_security_auditor() {
    use samsyn_proto::audit::v1 as audit_pb;
    let stack = Stack::start().await;
    let probe = PlansServiceClient::new(stack.channel())
        .list_catalogue(plans_pb::ListCatalogueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(probe.code(), Code::Unauthenticated);
    let probes = |events: &[audit_pb::AuditEvent]| {
        events
            .iter()
            .filter(|e| {
                e.rpc.ends_with("/ListCatalogue") && e.status_code == Code::Unauthenticated as i32
            })
            .count()
    };
    let security = staff(
        "SE2321000255-sec1",
        REGION,
        &["auditor", "security_auditor"],
    );
    let events = audit(&stack, &security)
        .list_events(audit_pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(probes(&events), 1, "the security auditor lists the probe");
    let auditor = staff("SE2321000255-au01", REGION, &["auditor"]);
    let events = audit(&stack, &auditor)
        .list_events(audit_pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        probes(&events),
        0,
        "an organisation's auditor sees its own scope only"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergencies_are_for_the_programmes_staff_and_listed_for_every_stakeholder() {
    use samsyn_proto::audit::v1 as audit_pb;
    use samsyn_proto::participants::v1 as participants_pb;
    use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    stack.settle().await;
    let read = |principal: samsyn_gateway::auth::Principal| {
        let token = stack.token(&principal);
        let id = id.clone();
        let channel = stack.channel();
        async move {
            ParticipantsServiceClient::with_interceptor(
                channel,
                Credentials::bearer(&token).emergency("Medvetslös vid hembesök"),
            )
            .get_participant(participants_pb::GetParticipantRequest {
                participant_id: pid(&id),
            })
            .await
        }
    };
    // A nurse of an organisation outside the programme: no emergency access.
    let outsider = read(staff("SE9999-nurse-1", "9999", &["nurse"])).await;
    assert_eq!(outsider.unwrap_err().code(), Code::PermissionDenied);
    // Helsingborg's nurse, on no care team: an emergency on joint data, owned by no one.
    read(staff("hbg-nurse-1", HELSINGBORG, &["nurse"]))
        .await
        .unwrap();
    // The region's auditor lists it for follow-up, though neither caller nor owner is theirs.
    let auditor = staff("SE2321000255-au01", REGION, &["auditor"]);
    let unreviewed = audit(&stack, &auditor)
        .list_unreviewed_emergencies(audit_pb::ListUnreviewedEmergenciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(unreviewed.len(), 1);
    assert_eq!(unreviewed[0].participant_id, pid(&id));
    // ... and so does the region's auditor see the refused outsider, about their participant.
    let refused = audit(&stack, &auditor)
        .list_events(audit_pb::ListEventsRequest {
            participant_id: pid(&id),
            decision: audit_pb::Decision::Denied as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(refused.len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_participants_log_shows_the_board_read_that_showed_them() {
    use samsyn_proto::audit::v1 as audit_pb;
    use samsyn_proto::board::v1 as board_pb;
    use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
    use samsyn_proto::common::v1::DataCategory;
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    share_with_helsingborg(&stack, &id, &[DataCategory::Board], None).await;
    put_on_board(&stack, &team_id, &id).await;
    stack.settle().await;
    let coordinator = stack.token(&staff("hbg-coord-1", HELSINGBORG, &["coordinator"]));
    let board =
        BoardServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&coordinator))
            .get_board(board_pb::GetBoardRequest { team_id })
            .await
            .unwrap()
            .into_inner();
    assert_eq!(board.entries.len(), 1);
    let log = audit(&stack, &person(&id))
        .get_my_access_log(audit_pb::GetMyAccessLogRequest {
            participant_id: pid(&id),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let board_read = log
        .iter()
        .find(|e| e.rpc.ends_with("/GetBoard"))
        .expect("the board read that showed the participant is in their log");
    assert_eq!(board_read.organisation_id, org(HELSINGBORG));
    assert_eq!(board_read.decision(), audit_pb::Decision::Disclosure);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_board_ends_with_its_token_and_audits_what_it_showed() {
    use samsyn_proto::board::v1 as board_pb;
    use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    put_on_board(&stack, &team_id, &id).await;
    stack.settle().await;
    let principal = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let token = samsyn_gateway::auth::DevIssuer::at(stack.certs())
        .issue(&principal, std::time::Duration::from_secs(5))
        .unwrap();
    let before = stack.trail.events().len();
    let mut stream =
        BoardServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
            .watch_board(board_pb::WatchBoardRequest {
                team_id: team_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
    let opened = std::time::Instant::now();
    let snapshot = stream.message().await.unwrap().unwrap();
    assert_eq!(snapshot.entries.len(), 1);
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated);
    // The token's `exp` has second precision: it ends 4 to 5 s after opening, within a
    // second of the expiry.
    let lived = opened.elapsed();
    assert!(lived < std::time::Duration::from_secs(7), "lived {lived:?}");
    // What it showed is in the trail, findable under the participant.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = &stack.trail.events()[before..];
    let shown = events
        .iter()
        .find(|e| e.rpc.ends_with("/WatchBoard") && !e.rows.is_empty())
        .expect("the rows the stream showed are audited");
    assert_eq!(shown.rows[0].participant_id, id);
    stack.stop().await;
}

/// An audit trail that commits a write's intent and refuses its outcome, as a trail that
/// fails between the two would.
#[derive(Debug)]
struct RefusesOutcomes(std::sync::Arc<samsyn_gateway::audit::MemoryTrail>);

impl samsyn_gateway::audit::AuditTrail for RefusesOutcomes {
    fn record(
        &self,
        event: samsyn_gateway::audit::AuditEvent,
    ) -> samsyn_gateway::audit::RecordFuture<'_> {
        let refuse =
            event.call_id.is_some() && event.outcome == samsyn_gateway::audit::Outcome::Forwarded;
        Box::pin(async move {
            if refuse {
                return Err(samsyn_gateway::audit::AuditError("outcome refused".into()));
            }
            self.0.record(event).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_service_applied_has_its_intent_in_the_trail_whatever_follows() {
    use samsyn_gateway::audit::{MemoryTrail, Outcome};
    use samsyn_proto::common::v1::DataCategory;
    use samsyn_proto::consent::v1 as consent_pb;
    use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    stack.settle().await;
    let memory = std::sync::Arc::new(MemoryTrail::default());
    let upstreams = samsyn_gateway::proxy::Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: stack.plans.channel.clone(),
        board: stack.board.channel.clone(),
        audit: None,
        reports: None,
    };
    let (gateway, addr, _stop) = serve_with_trail(
        &stack.certs(),
        Default::default(),
        upstreams,
        std::sync::Arc::new(RefusesOutcomes(std::sync::Arc::clone(&memory))),
    )
    .await;
    // Its access view catches up with the feeds before it decides anything.
    for _ in 0..200 {
        if gateway
            .gate()
            .view()
            .ensure_current(std::time::Instant::now())
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pki = tls::DevPki::at(stack.certs());
    let channel = tls::channel(
        addr,
        "localhost",
        tls::client_config(pki.trust_anchors().unwrap(), None).unwrap(),
    )
    .unwrap();
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let mut request = consent_request(
        &id,
        consent_pb::ConsentKind::InformationSharing,
        region_to_helsingborg(&[DataCategory::Plan]),
        None,
    );
    request.recorded_by = None;
    let answer = ConsentServiceClient::with_interceptor(channel, Credentials::bearer(&token))
        .record_consent(request)
        .await
        .unwrap_err();
    assert_eq!(
        answer.code(),
        Code::Unavailable,
        "the outcome could not be audited"
    );
    // The service applied it ...
    let consents = ConsentServiceClient::new(stack.consent.channel.clone())
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
            .any(|c| c.kind == consent_pb::ConsentKind::InformationSharing as i32)
    );
    // ... and the trail says who decided to: the intent, with the call it belongs to.
    let intents: Vec<_> = memory
        .events()
        .into_iter()
        .filter(|e| e.outcome == Outcome::Intended)
        .collect();
    assert_eq!(intents.len(), 1);
    assert!(intents[0].rpc.ends_with("/RecordConsent"));
    assert_eq!(intents[0].participant_id.as_deref(), Some(id.as_str()));
    assert_eq!(intents[0].principal.as_ref().unwrap().id, CASE_MANAGER);
    assert!(intents[0].call_id.is_some());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_lists_the_intents_without_an_outcome() {
    use samsyn_gateway::audit::store::AuditStore;
    use samsyn_gateway::audit::{AuditEvent, AuditTrail, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let store = AuditStore::open(
        &samsyn_kit::testing::fresh_sqlite_url(dir.path()),
        &dir.path().join("key"),
    )
    .await
    .unwrap();
    let event = |call: &str, outcome: Outcome| AuditEvent {
        at: chrono::Utc::now(),
        principal: Some(staff(CASE_MANAGER, REGION, &["case_manager"])),
        rpc: "/samsyn.consent.v1.ConsentService/RecordConsent".into(),
        action: Some(samsyn_gateway::policy::Action::Write),
        category: samsyn_proto::common::v1::DataCategory::Consent,
        participant_id: Some("0198c0de-0000-7000-8000-000000000001".into()),
        owner_organisation: None,
        allowed: true,
        policies: vec!["care-team-write".into()],
        disclosure: false,
        emergency: false,
        emergency_reason: None,
        rows: Vec::new(),
        outcome,
        status: Code::Ok,
        trace_id: None,
        stakeholders: Vec::new(),
        call_id: Some(call.into()),
        export: None,
    };
    store.record(event("a", Outcome::Intended)).await.unwrap();
    store.record(event("b", Outcome::Intended)).await.unwrap();
    store.record(event("a", Outcome::Forwarded)).await.unwrap();
    assert_eq!(store.intents_without_outcome().await.unwrap(), [2]);
    assert_eq!(store.verify().await.unwrap().first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_reveal_nothing_of_the_rows_withheld() {
    use samsyn_proto::common::v1::PageRequest;
    use samsyn_proto::participants::v1 as participants_pb;
    use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
    let stack = Stack::start().await;
    // Twelve participants; the case manager is on the care team of three of them.
    let mut own = Vec::new();
    for n in 0..12u32 {
        let case_manager = if n % 4 == 1 {
            CASE_MANAGER
        } else {
            "SE2321000255-cm08"
        };
        let id = enrolled(
            &stack,
            &pin(
                &format!("1970{:02}15", n % 12 + 1),
                &format!("{:03}", 100 + n * 7),
            ),
            "Märta Ödmark",
            Team {
                region: &[case_manager],
                municipal: &[],
            },
        )
        .await;
        if case_manager == CASE_MANAGER {
            own.push(id);
        }
    }
    stack.settle().await;
    let list = |token: String, size: u32, page_token: String| {
        let channel = stack.channel();
        async move {
            ParticipantsServiceClient::with_interceptor(channel, Credentials::bearer(&token))
                .list_participants(participants_pb::ListParticipantsRequest {
                    page: Some(PageRequest {
                        page_size: size,
                        page_token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let token_of = |r: &participants_pb::ListParticipantsResponse| {
        r.page
            .as_ref()
            .map(|p| p.next_page_token.clone())
            .unwrap_or_default()
    };

    // A needs assessor on no care team: one empty page, no token, for any page size.
    let assessor = stack.token(&staff("SE2321000255-na09", REGION, &["needs_assessor"]));
    for size in [1, 5, 50] {
        let page = list(assessor.clone(), size, String::new()).await;
        assert!(page.participants.is_empty());
        assert_eq!(
            token_of(&page),
            "",
            "a token would tell that hidden rows follow"
        );
    }

    // The case manager sees exactly their three, over full pages of two.
    let mine = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let first = list(mine.clone(), 2, String::new()).await;
    assert_eq!(first.participants.len(), 2);
    assert_ne!(token_of(&first), "");
    let second = list(mine.clone(), 2, token_of(&first)).await;
    assert_eq!(second.participants.len(), 1);
    assert_eq!(
        token_of(&second),
        "",
        "no token when no visible row follows"
    );
    let mut seen: Vec<String> = first
        .participants
        .iter()
        .chain(&second.participants)
        .map(|p| p.participant_id.clone().unwrap().value)
        .collect();
    seen.sort();
    own.sort();
    assert_eq!(seen, own);
    // Pages of one: three full pages, the last without a token.
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(mine.clone(), 1, token).await;
        assert_eq!(page.participants.len(), 1);
        pages += 1;
        token = token_of(&page);
        if token.is_empty() {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);

    // Another caller's token opens nothing.
    let refused = ParticipantsServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(&assessor),
    )
    .list_participants(participants_pb::ListParticipantsRequest {
        page: Some(PageRequest {
            page_size: 1,
            page_token: token_of(&first),
        }),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    stack.stop().await;
}
