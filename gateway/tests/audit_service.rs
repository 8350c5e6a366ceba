//! The audit follow-up API over a real audit store, called through its in-process channel
//! with the principal metadata the gateway forwards: an auditor sees only their
//! organisation's scope, filters and paging are exact, emergencies are followed up once,
//! the chain verifies, a participant reads their own access log without staff ids, and bad
//! input names its field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prost::Message;
use samsyn_gateway::audit::service::in_process;
use samsyn_gateway::audit::store::{AuditStore, Record};
use samsyn_gateway::audit::{AuditEvent, Outcome};
use samsyn_gateway::auth::{Principal, PrincipalKind};
use samsyn_gateway::policy::Action;
use samsyn_gateway::proxy::{PRINCIPAL_ID, PRINCIPAL_KIND, PRINCIPAL_ORGANISATION};
use samsyn_kit::testing::fresh_sqlite_url;
use samsyn_kit::time::to_timestamp;
use samsyn_proto::audit::v1 as pb;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::common::v1::{
    self as common, DataCategory, OrganisationId, PageRequest, ParticipantId, Period,
};
use sea_orm::ConnectionTrait;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// A region (psychiatry), a municipality (social services) and an organisation outside.
const REGION: &str = "SE2321000255";
const MUNICIPALITY: &str = "1283";
const OUTSIDE: &str = "0180";
const PSYCHIATRIST: &str = "SE2321000255-ps07";
const SOCIAL_WORKER: &str = "1283-sw03";
const STRANGER: &str = "0180-cm99";
const REGION_AUDITOR: &str = "SE2321000255-au01";
const P1: &str = "0198c0de-0000-7000-8000-000000000001";
const P2: &str = "0198c0de-0000-7000-8000-000000000002";
const REASON: &str = "Patienten är medvetslös på akutmottagningen, åtgärd krävs nu – Örjan";

/// Who made a synthetic call.
fn staff(id: &str, organisation: &str, unit: &str) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Staff,
        organisation: Some(organisation.into()),
        unit: Some(unit.into()),
        roles: vec!["physician".into()],
        teams: vec![],
        purpose: Some("care".into()),
        acting_through: None,
    }
}

fn participant(id: &str) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Participant,
        organisation: None,
        unit: None,
        roles: vec![],
        teams: vec![],
        purpose: None,
        acting_through: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Allowed,
    Disclosure,
    Emergency,
    Denied,
}

/// A synthetic read of a participant's plan at `at`.
fn event(
    at: DateTime<Utc>,
    principal: Principal,
    participant_id: &str,
    owner: Option<&str>,
    kind: Kind,
) -> AuditEvent {
    AuditEvent {
        at,
        principal: Some(principal),
        rpc: "/samsyn.plans.v1.PlansService/GetPlan".into(),
        action: Some(Action::Read),
        category: DataCategory::Plan,
        participant_id: Some(participant_id.into()),
        owner_organisation: owner.map(str::to_owned),
        allowed: kind != Kind::Denied,
        policies: vec!["care-team-read".into()],
        disclosure: kind == Kind::Disclosure,
        emergency: kind == Kind::Emergency,
        emergency_reason: (kind == Kind::Emergency).then(|| REASON.to_owned()),
        rows: vec![],
        outcome: if kind == Kind::Denied {
            Outcome::Refused
        } else {
            Outcome::Forwarded
        },
        status: if kind == Kind::Denied {
            Code::PermissionDenied
        } else {
            Code::Ok
        },
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        stakeholders: Vec::new(),
        call_id: None,
        export: None,
    }
}

/// A whole second a day ago: times round-trip exactly.
fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - 86_400, 0).unwrap()
}

struct Fixture {
    store: Arc<AuditStore>,
    client: AuditServiceClient<Channel>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = AuditStore::open(
        &fresh_sqlite_url(dir.path()),
        &dir.path().join("audit-signing-key"),
    )
    .await
    .unwrap();
    let store = Arc::new(store);
    let client = AuditServiceClient::new(in_process(Arc::clone(&store)));
    Fixture {
        store,
        client,
        _dir: dir,
    }
}

impl Fixture {
    async fn append(&self, event: AuditEvent) -> u64 {
        self.store.append(Record::of(&event)).await.unwrap()
    }
}

fn as_staff<T>(message: T, id: &str, organisation: &str) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(PRINCIPAL_ID, id.parse().unwrap());
    metadata.insert(PRINCIPAL_KIND, "staff".parse().unwrap());
    metadata.insert(PRINCIPAL_ORGANISATION, organisation.parse().unwrap());
    request
}

fn as_auditor<T>(message: T, organisation: &str) -> Request<T> {
    as_staff(message, &format!("{organisation}-au01"), organisation)
}

fn as_participant<T>(message: T, id: &str) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(PRINCIPAL_ID, id.parse().unwrap());
    metadata.insert(PRINCIPAL_KIND, "participant".parse().unwrap());
    request
}

fn pid(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId { value: id.into() })
}

fn org(id: &str) -> Option<OrganisationId> {
    Some(OrganisationId { value: id.into() })
}

fn page(size: u32, token: &str) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: size,
        page_token: token.into(),
    })
}

fn positions(events: &[pb::AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

/// Seven calls about two participants by three organisations, one minute apart:
/// 1 region reads region data about P1; 2 municipality reads region data about P1 by
/// consent; 3 outside reads its own data about P2; 4 region emergency access to P2 (data
/// kept together); 5 outside refused region data about P1; 6 municipality reads its own data
/// about P2; 7 P1 reads their own plan.
async fn seven(f: &Fixture, base: DateTime<Utc>) {
    let at = |n: i64| base + Duration::minutes(n);
    let calls = [
        event(
            at(1),
            staff(PSYCHIATRIST, REGION, "psykiatri-nordvast"),
            P1,
            Some(REGION),
            Kind::Allowed,
        ),
        event(
            at(2),
            staff(SOCIAL_WORKER, MUNICIPALITY, "socialtjanst-ost"),
            P1,
            Some(REGION),
            Kind::Disclosure,
        ),
        event(
            at(3),
            staff(STRANGER, OUTSIDE, "sodermalm"),
            P2,
            Some(OUTSIDE),
            Kind::Allowed,
        ),
        event(
            at(4),
            staff(PSYCHIATRIST, REGION, "psykiatri-nordvast"),
            P2,
            None,
            Kind::Emergency,
        ),
        event(
            at(5),
            staff(STRANGER, OUTSIDE, "sodermalm"),
            P1,
            Some(REGION),
            Kind::Denied,
        ),
        event(
            at(6),
            staff(SOCIAL_WORKER, MUNICIPALITY, "socialtjanst-ost"),
            P2,
            Some(MUNICIPALITY),
            Kind::Allowed,
        ),
        event(at(7), participant(P1), P1, None, Kind::Allowed),
    ];
    for (n, call) in calls.into_iter().enumerate() {
        assert_eq!(f.append(call).await, n as u64 + 1);
    }
}

async fn list(f: &Fixture, auditor_org: &str, request: pb::ListEventsRequest) -> Vec<u64> {
    let response = f
        .client
        .clone()
        .list_events(as_auditor(request, auditor_org))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.page.unwrap().next_page_token, "");
    positions(&response.events)
}

#[tokio::test]
async fn an_auditor_sees_their_organisations_calls_and_data_only() {
    let f = fixture().await;
    // One base for seeding and for the period filter below: two calls could straddle a
    // second.
    let base = base();
    seven(&f, base).await;
    let all = pb::ListEventsRequest::default();
    assert_eq!(list(&f, REGION, all.clone()).await, [1, 2, 4, 5]);
    assert_eq!(list(&f, MUNICIPALITY, all.clone()).await, [2, 6]);
    assert_eq!(list(&f, OUTSIDE, all.clone()).await, [3, 5]);
    assert!(list(&f, "SE0000000000", all).await.is_empty());

    // Filters narrow within the scope, never widen it.
    let region = |request| list(&f, REGION, request);
    let about_p1 = pb::ListEventsRequest {
        participant_id: pid(P1),
        ..Default::default()
    };
    assert_eq!(region(about_p1).await, [1, 2, 5]);
    let by_municipality = pb::ListEventsRequest {
        organisation_id: org(MUNICIPALITY),
        ..Default::default()
    };
    assert_eq!(region(by_municipality).await, [2]);
    let municipality_data = pb::ListEventsRequest {
        owner_organisation_id: org(MUNICIPALITY),
        ..Default::default()
    };
    assert!(region(municipality_data).await.is_empty());
    let owned = pb::ListEventsRequest {
        owner_organisation_id: org(REGION),
        ..Default::default()
    };
    assert_eq!(region(owned).await, [1, 2, 5]);
    let denied = pb::ListEventsRequest {
        decision: pb::Decision::Denied.into(),
        ..Default::default()
    };
    assert_eq!(region(denied).await, [5]);
    let by_psychiatrist = pb::ListEventsRequest {
        principal_id: PSYCHIATRIST.into(),
        ..Default::default()
    };
    assert_eq!(region(by_psychiatrist).await, [1, 4]);
    let minutes_2_to_4 = pb::ListEventsRequest {
        period: Some(Period {
            start: Some(to_timestamp(base + Duration::minutes(2))),
            end: Some(to_timestamp(base + Duration::minutes(5))),
        }),
        ..Default::default()
    };
    assert_eq!(region(minutes_2_to_4).await, [2, 4]);
}

#[tokio::test]
async fn an_event_comes_back_whole_with_its_swedish_reason() {
    let f = fixture().await;
    let base = base();
    seven(&f, base).await;
    let response = f
        .client
        .clone()
        .list_events(as_auditor(
            pb::ListEventsRequest {
                decision: pb::Decision::Emergency.into(),
                ..Default::default()
            },
            REGION,
        ))
        .await
        .unwrap()
        .into_inner();
    let [emergency] = response.events.as_slice() else {
        panic!("one emergency expected: {:?}", response.events);
    };
    assert_eq!(emergency.emergency_reason, REASON);
    assert_eq!(emergency.position, 4);
    assert_eq!(
        emergency.time,
        Some(to_timestamp(base + Duration::minutes(4)))
    );
    let principal = emergency.principal.as_ref().unwrap();
    assert_eq!(principal.id, PSYCHIATRIST);
    assert_eq!(principal.kind(), pb::PrincipalKind::Staff);
    assert_eq!(principal.organisation_id, org(REGION));
    assert_eq!(principal.unit_id, "psykiatri-nordvast");
    assert_eq!(principal.roles, ["physician"]);
    assert_eq!(principal.purpose, "care");
    assert_eq!(emergency.rpc, "/samsyn.plans.v1.PlansService/GetPlan");
    assert_eq!(emergency.action(), common::Action::Read);
    assert_eq!(emergency.category(), DataCategory::Plan);
    assert_eq!(emergency.participant_id, pid(P2));
    assert_eq!(emergency.owner_organisation_id, None);
    assert_eq!(emergency.decision(), pb::Decision::Emergency);
    assert_eq!(emergency.policies, ["care-team-read"]);
    assert_eq!(emergency.outcome(), pb::Outcome::Forwarded);
    assert_eq!(emergency.status_code, 0);
    assert_eq!(emergency.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(emergency.reviewed_by, "");
    assert_eq!(emergency.reviewed_at, None);
}

#[tokio::test]
async fn paging_covers_every_row_of_the_scope_exactly_once() {
    let f = fixture().await;
    let base = base();
    let mut expected = Vec::new();
    for n in 0..23i64 {
        let at = base + Duration::seconds(n);
        let own = f
            .append(event(
                at,
                staff(PSYCHIATRIST, REGION, "u"),
                P1,
                Some(REGION),
                Kind::Allowed,
            ))
            .await;
        expected.push(own);
        // Noise outside the scope between every row.
        f.append(event(
            at,
            staff(STRANGER, OUTSIDE, "u"),
            P2,
            Some(OUTSIDE),
            Kind::Allowed,
        ))
        .await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let response = f
            .client
            .clone()
            .list_events(as_auditor(
                pb::ListEventsRequest {
                    page: page(5, &token),
                    ..Default::default()
                },
                REGION,
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(response.events.len() <= 5);
        seen.extend(positions(&response.events));
        token = response.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected);

    // The default page holds them all.
    let all = f
        .client
        .clone()
        .list_events(as_auditor(pb::ListEventsRequest::default(), REGION))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(positions(&all.events), expected);
}

#[tokio::test]
async fn emergencies_are_listed_then_reviewed_once() {
    let f = fixture().await;
    let base = base();
    seven(&f, base).await;
    let second = f
        .append(event(
            base,
            staff(PSYCHIATRIST, REGION, "u"),
            P1,
            Some(REGION),
            Kind::Emergency,
        ))
        .await;
    let outside = f
        .append(event(
            base,
            staff(STRANGER, OUTSIDE, "u"),
            P2,
            Some(OUTSIDE),
            Kind::Emergency,
        ))
        .await;
    let mut client = f.client.clone();
    let unreviewed = |client: &mut AuditServiceClient<Channel>| {
        let mut client = client.clone();
        async move {
            let response = client
                .list_unreviewed_emergencies(as_auditor(
                    pb::ListUnreviewedEmergenciesRequest::default(),
                    REGION,
                ))
                .await
                .unwrap()
                .into_inner();
            positions(&response.events)
        }
    };
    assert_eq!(unreviewed(&mut client).await, [4, second]);
    let mark = |position: u64| {
        let mut client = f.client.clone();
        async move {
            client
                .mark_emergency_reviewed(as_staff(
                    pb::MarkEmergencyReviewedRequest { position },
                    REGION_AUDITOR,
                    REGION,
                ))
                .await
        }
    };
    assert!(mark(4).await.unwrap().into_inner().newly_marked);
    assert_eq!(mark(4).await.unwrap_err().code(), Code::FailedPrecondition);
    // Another organisation's emergency, an event that is no emergency, no event at all.
    for position in [outside, 1, 999] {
        assert_eq!(
            mark(position).await.unwrap_err().code(),
            Code::NotFound,
            "{position}"
        );
    }
    assert_eq!(unreviewed(&mut client).await, [second]);

    let reviewed = client
        .list_events(as_auditor(
            pb::ListEventsRequest {
                participant_id: pid(P2),
                decision: pb::Decision::Emergency.into(),
                ..Default::default()
            },
            REGION,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(positions(&reviewed.events), [4]);
    assert_eq!(reviewed.events[0].reviewed_by, REGION_AUDITOR);
    let reviewed_at = reviewed.events[0].reviewed_at.unwrap();
    assert!((reviewed_at.seconds - Utc::now().timestamp()).abs() < 60);
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_the_first_altered_event() {
    let f = fixture().await;
    seven(&f, base()).await;
    let verify = || {
        let mut client = f.client.clone();
        async move {
            client
                .verify_audit(as_auditor(pb::VerifyAuditRequest::default(), REGION))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let intact = verify().await;
    assert_eq!(
        intact,
        pb::VerifyAuditResponse {
            events_checked: 7,
            checkpoints_checked: 1,
            first_broken_position: 0,
            problem: String::new(),
            intents_without_outcome: Vec::new(),
        }
    );
    f.store
        .database()
        .execute_unprepared(
            "UPDATE audit_event SET body = replace(body, 'care-team-read', 'care-team-rexd') \
             WHERE position = 3",
        )
        .await
        .unwrap();
    let broken = verify().await;
    assert_eq!(broken.first_broken_position, 3);
    assert_eq!(broken.problem, "event altered");
}

#[tokio::test]
async fn a_participant_sees_who_accessed_their_data_by_organisation_never_by_staff_id() {
    let f = fixture().await;
    let base = base();
    seven(&f, base).await;
    let emergency = f
        .append(event(
            base + Duration::minutes(8),
            staff(PSYCHIATRIST, REGION, "psykiatri-akut"),
            P1,
            Some(REGION),
            Kind::Emergency,
        ))
        .await;
    assert_eq!(emergency, 8);
    let mut client = f.client.clone();
    let response = client
        .get_my_access_log(as_participant(
            pb::GetMyAccessLogRequest {
                participant_id: pid(P1),
                page: None,
            },
            P1,
        ))
        .await
        .unwrap()
        .into_inner();
    // Accesses and attempts by others, the refusal (5) too; not P1's own call (7).
    let seen: Vec<_> = response
        .entries
        .iter()
        .map(|e| {
            (
                e.time.unwrap().seconds - base.timestamp(),
                e.organisation_id.clone().unwrap().value,
                e.unit_id.as_str(),
                e.decision(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                60,
                REGION.to_owned(),
                "psykiatri-nordvast",
                pb::Decision::Allowed
            ),
            (
                120,
                MUNICIPALITY.to_owned(),
                "socialtjanst-ost",
                pb::Decision::Disclosure
            ),
            (300, OUTSIDE.to_owned(), "sodermalm", pb::Decision::Denied),
            (
                480,
                REGION.to_owned(),
                "psykiatri-akut",
                pb::Decision::Emergency
            ),
        ]
    );
    for entry in &response.entries {
        assert_eq!(entry.category(), DataCategory::Plan);
        assert_eq!(entry.action(), common::Action::Read);
        assert_eq!(entry.rpc, "/samsyn.plans.v1.PlansService/GetPlan");
    }
    assert_eq!(response.page.as_ref().unwrap().next_page_token, "");
    let bytes = response.encode_to_vec();
    for staff_id in [PSYCHIATRIST, SOCIAL_WORKER, STRANGER] {
        assert!(
            !bytes
                .windows(staff_id.len())
                .any(|w| w == staff_id.as_bytes()),
            "{staff_id} leaked into the access log"
        );
    }

    // One entry a page: the same entries, each once.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let response = client
            .get_my_access_log(as_participant(
                pb::GetMyAccessLogRequest {
                    participant_id: pid(P1),
                    page: page(1, &token),
                },
                P1,
            ))
            .await
            .unwrap()
            .into_inner();
        paged.extend(response.entries);
        token = response.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(paged.len() < 10, "paging does not end");
    }
    assert_eq!(paged, response.entries);
}

#[tokio::test]
async fn only_the_participant_reads_their_access_log_and_only_auditors_the_trail() {
    let f = fixture().await;
    seven(&f, base()).await;
    let mut client = f.client.clone();
    let log_of_p1 = || pb::GetMyAccessLogRequest {
        participant_id: pid(P1),
        page: None,
    };
    let refused = [
        client
            .get_my_access_log(as_participant(log_of_p1(), P2))
            .await
            .unwrap_err(),
        client
            .get_my_access_log(as_staff(log_of_p1(), PSYCHIATRIST, REGION))
            .await
            .unwrap_err(),
        client
            .list_events(as_participant(pb::ListEventsRequest::default(), P1))
            .await
            .unwrap_err(),
        client
            .verify_audit(as_participant(pb::VerifyAuditRequest::default(), P1))
            .await
            .unwrap_err(),
    ];
    for status in refused {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    let anonymous = client
        .list_events(Request::new(pb::ListEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn recent_events_are_not_purged() {
    let f = fixture().await;
    seven(&f, base()).await;
    let mut client = f.client.clone();
    let purge = |cutoff: Option<DateTime<Utc>>| {
        as_auditor(
            pb::PurgeEventsRequest {
                cutoff: cutoff.map(to_timestamp),
            },
            REGION,
        )
    };
    let recent = client
        .purge_events(purge(Some(Utc::now() - Duration::days(30))))
        .await
        .unwrap_err();
    assert_eq!(recent.code(), Code::FailedPrecondition);
    assert_eq!(
        field_violations(&client.purge_events(purge(None)).await.unwrap_err()),
        ["cutoff"]
    );
    // Past retention: allowed, and nothing here is that old.
    let old = client
        .purge_events(purge(Some(Utc::now() - Duration::days(600))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.events_removed, 0);
    let all = client
        .list_events(as_auditor(pb::ListEventsRequest::default(), REGION))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(positions(&all.events), [1, 2, 4, 5]);
}

/// `google.rpc.Status`, `google.rpc.BadRequest` and its violation, decoded by hand.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, Message)]
struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    field_violations: Vec<FieldViolation>,
}

#[derive(Clone, PartialEq, Message)]
struct FieldViolation {
    #[prost(string, tag = "1")]
    field: String,
    #[prost(string, tag = "2")]
    description: String,
}

/// The fields an INVALID_ARGUMENT names in its BadRequest details.
fn field_violations(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = RpcStatus::decode(status.details()).unwrap();
    let bad_request = details
        .details
        .iter()
        .find(|any| any.type_url.ends_with("google.rpc.BadRequest"))
        .expect("BadRequest details");
    BadRequest::decode(bad_request.value.as_slice())
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let f = fixture().await;
    seven(&f, base()).await;
    let mut client = f.client.clone();
    let base = base();
    let cases = [
        (
            pb::ListEventsRequest {
                page: page(501, ""),
                ..Default::default()
            },
            "page.page_size",
        ),
        (
            pb::ListEventsRequest {
                page: page(5, "not-a-position"),
                ..Default::default()
            },
            "page.page_token",
        ),
        (
            pb::ListEventsRequest {
                participant_id: pid("19121212-1212"),
                ..Default::default()
            },
            "participant_id.value",
        ),
        (
            pb::ListEventsRequest {
                organisation_id: org(""),
                ..Default::default()
            },
            "organisation_id.value",
        ),
        (
            pb::ListEventsRequest {
                principal_id: "x".repeat(65),
                ..Default::default()
            },
            "principal_id",
        ),
        (
            pb::ListEventsRequest {
                decision: 99,
                ..Default::default()
            },
            "decision",
        ),
        (
            pb::ListEventsRequest {
                period: Some(Period {
                    start: Some(to_timestamp(base)),
                    end: Some(to_timestamp(base - Duration::hours(1))),
                }),
                ..Default::default()
            },
            "period.end",
        ),
    ];
    for (request, field) in cases {
        let status = client
            .list_events(as_auditor(request, REGION))
            .await
            .unwrap_err();
        assert_eq!(field_violations(&status), [field]);
        assert_eq!(status.message(), format!("invalid {field}"));
    }
    let status = client
        .list_unreviewed_emergencies(as_auditor(
            pb::ListUnreviewedEmergenciesRequest {
                page: page(1000, ""),
            },
            REGION,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&status), ["page.page_size"]);
    let status = client
        .get_my_access_log(as_participant(
            pb::GetMyAccessLogRequest {
                participant_id: pid(P1),
                page: page(0, "-1"),
            },
            P1,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&status), ["page.page_token"]);
    let status = client
        .get_my_access_log(as_participant(pb::GetMyAccessLogRequest::default(), P1))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&status), ["participant_id"]);
    let status = client
        .mark_emergency_reviewed(as_auditor(
            pb::MarkEmergencyReviewedRequest { position: 0 },
            REGION,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&status), ["position"]);
}
