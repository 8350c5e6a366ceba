//! The consent service over real gRPC and mutual TLS, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use prost::Message;
use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_postgres_url, fresh_sqlite_url, new_year};
use samsyn_kit::time::to_timestamp;
use samsyn_proto::common::v1::{
    DataCategory, OrganisationId, ParticipantId, Period, Revision, StaffRef, WatchChangesRequest,
};
use samsyn_proto::consent::v1 as pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const REGION: &str = "SE2321000016-F00D";
const MUNICIPALITY: &str = "1283";
const PARTICIPANT: &str = "0198c0de-0000-7000-8000-00000000c0de";

type Client = ConsentServiceClient<Channel>;

async fn serve(url: String) -> (ServedPart, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let context = PartContext {
        database_url: url,
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
    };
    let part = samsyn_consent::part(&context).await.unwrap();
    (ServedPart::start(part).await, dir)
}

fn org(value: &str) -> Option<OrganisationId> {
    Some(OrganisationId {
        value: value.into(),
    })
}

fn participant() -> Option<ParticipantId> {
    Some(ParticipantId {
        value: PARTICIPANT.into(),
    })
}

fn staff(id: &str, organisation: &str) -> Option<pb::Actor> {
    Some(pb::Actor {
        kind: pb::ActorKind::Staff as i32,
        staff: Some(StaffRef {
            staff_id: id.into(),
            organisation_id: org(organisation),
            unit_id: String::new(),
        }),
    })
}

fn the_participant() -> Option<pb::Actor> {
    Some(pb::Actor {
        kind: pb::ActorKind::Participant as i32,
        staff: None,
    })
}

/// Verbal consent to share the region's plan with the municipality, from now on.
fn sharing_consent() -> pb::RecordConsentRequest {
    pb::RecordConsentRequest {
        participant_id: participant(),
        kind: pb::ConsentKind::InformationSharing as i32,
        sharing: Some(pb::Sharing {
            from_organisation_id: org(REGION),
            to_organisation_id: org(MUNICIPALITY),
            categories: vec![DataCategory::Plan as i32],
            unit_id: String::new(),
            staff_id: String::new(),
        }),
        valid_from: Some(to_timestamp(Utc::now() - chrono::Duration::minutes(1))),
        valid_until: None,
        form: pb::ConsentForm::Verbal as i32,
        requested_by: the_participant(),
        recorded_by: staff("SE2321000016-staff-0042", REGION),
        on_behalf_of: Some(pb::Representative {
            kind: pb::RepresentativeKind::Guardian as i32,
            name: "Åsa Öberg-Lindqvist".into(),
        }),
        note: "Samtycket lämnades muntligt på mötet; gäller även särskilt boende i Höör.".into(),
        idempotency_key: String::new(),
        study_id: String::new(),
    }
}

/// Written consent to take part in `study`.
fn research_consent(study: &str) -> pb::RecordConsentRequest {
    pb::RecordConsentRequest {
        kind: pb::ConsentKind::ResearchStudy as i32,
        sharing: None,
        on_behalf_of: None,
        form: pb::ConsentForm::Written as i32,
        study_id: study.into(),
        ..sharing_consent()
    }
}

fn restriction() -> pb::CreateRestrictionRequest {
    pb::CreateRestrictionRequest {
        participant_id: participant(),
        organisation_id: org(MUNICIPALITY),
        unit_id: String::new(),
        owner_organisation_id: None,
        categories: vec![DataCategory::Plan as i32, DataCategory::Board as i32],
        valid_from: None,
        valid_until: None,
        requested_by: the_participant(),
        recorded_by: staff("SE2321000016-staff-0042", REGION),
        on_behalf_of: None,
        note: String::new(),
        idempotency_key: String::new(),
    }
}

fn lift(revision: u64, days: i64) -> pb::LiftRestrictionRequest {
    let start = Utc::now() - chrono::Duration::minutes(1);
    pb::LiftRestrictionRequest {
        participant_id: participant(),
        restriction_id: String::new(),
        revision: Some(Revision { value: revision }),
        reason: pb::LiftReason::Emergency as i32,
        unit_id: String::new(),
        staff_id: String::new(),
        categories: vec![DataCategory::Plan as i32],
        period: Some(Period {
            start: Some(to_timestamp(start)),
            end: Some(to_timestamp(start + chrono::Duration::days(days))),
        }),
        lifted_by: staff("SE2321000016-staff-0042", REGION),
        note: "Nödsituation på akuten".into(),
        idempotency_key: String::new(),
    }
}

async fn decide(client: &mut Client) -> pb::Decision {
    decide_at(client, None).await
}

async fn decide_at(client: &mut Client, at: Option<chrono::DateTime<Utc>>) -> pb::Decision {
    client
        .decide(pb::DecideRequest {
            participant_id: participant(),
            reader: Some(StaffRef {
                staff_id: "SE1283-staff-0007".into(),
                organisation_id: org(MUNICIPALITY),
                unit_id: "1283-boendestod".into(),
            }),
            owner_organisation_id: org(REGION),
            category: DataCategory::Plan as i32,
            purpose: pb::Purpose::Care as i32,
            at: at.map(to_timestamp),
            emergency: false,
        })
        .await
        .unwrap()
        .into_inner()
}

fn reason(decision: &pb::Decision) -> (pb::Effect, pb::DecisionReason) {
    (decision.effect(), decision.reason())
}

/// Record → permit → revoke → deny, the revocation on the feed, then a restriction over a
/// new consent and its temporary lift.
async fn record_decide_revoke(url: String) {
    let (served, _dir) = serve(url).await;
    let mut client = Client::new(served.channel.clone());
    let mut feed = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let mut request = sharing_consent();
    request.idempotency_key = "consent-2026-0001".into();
    let consent = client
        .record_consent(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(consent.state(), pb::ConsentState::Recorded);
    assert_eq!(
        consent.note,
        sharing_consent().note,
        "Swedish text round-trips"
    );
    assert_eq!(
        consent.on_behalf_of.as_ref().unwrap().name,
        "Åsa Öberg-Lindqvist"
    );
    let retried = client.record_consent(request).await.unwrap().into_inner();
    assert_eq!(retried, consent, "a retry gets the first consent back");

    let permit = decide(&mut client).await;
    assert_eq!(
        reason(&permit),
        (pb::Effect::Permit, pb::DecisionReason::Consent)
    );
    assert_eq!(permit.consent_ids, [consent.id.as_str()]);

    let revoke = pb::RevokeConsentRequest {
        participant_id: participant(),
        consent_id: consent.id.clone(),
        revision: consent.revision,
        revoked_by: the_participant(),
        reason: String::new(),
    };
    let revoked = client
        .revoke_consent(revoke.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.state(), pb::ConsentState::Revoked);
    assert_eq!(revoked.revision.unwrap().value, 2);
    let stale = client.revoke_consent(revoke).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let deny = decide(&mut client).await;
    assert_eq!(
        reason(&deny),
        (pb::Effect::Deny, pb::DecisionReason::ConsentRevoked)
    );
    assert_eq!(deny.consent_ids, [consent.id.as_str()]);

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let change = tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .expect("the feed delivers")
            .unwrap()
            .unwrap();
        seen.push(change);
    }
    assert_eq!(seen[0].change_kind, "recorded");
    assert_eq!(
        (
            seen[1].entity_kind.as_str(),
            seen[1].change_kind.as_str(),
            seen[1].entity_id.as_str()
        ),
        ("consent", "revoked", consent.id.as_str())
    );
    assert_eq!(seen[1].participant_id.as_ref().unwrap().value, PARTICIPANT);
    let payload = pb::Consent::decode(seen[1].payload.as_slice()).unwrap();
    assert_eq!(payload.state(), pb::ConsentState::Revoked);

    // A new consent, then a restriction over it, then an emergency lift.
    let second = client
        .record_consent(sharing_consent())
        .await
        .unwrap()
        .into_inner();
    let restriction = client
        .create_restriction(restriction())
        .await
        .unwrap()
        .into_inner();
    let blocked = decide(&mut client).await;
    assert_eq!(
        reason(&blocked),
        (pb::Effect::Deny, pb::DecisionReason::Restricted)
    );
    assert_eq!(blocked.restriction_id, restriction.id);
    let mut request = lift(1, 2);
    request.restriction_id = restriction.id.clone();
    request.idempotency_key = "lift-2026-0001".into();
    let lifted = client
        .lift_restriction(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lifted.lifts.len(), 1);
    let retried = client.lift_restriction(request).await.unwrap().into_inner();
    assert_eq!(retried, lifted, "a retried lift lifts once");
    let permit = decide(&mut client).await;
    assert_eq!(
        reason(&permit),
        (pb::Effect::Permit, pb::DecisionReason::RestrictionLifted)
    );
    assert_eq!(permit.consent_ids, [second.id.as_str()]);
    assert_eq!(permit.lift_id, lifted.lifts[0].id);

    // Every version, in order.
    let history = client
        .list_history(pb::ListHistoryRequest {
            participant_id: participant(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = history
        .versions
        .iter()
        .map(|v| v.change_kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["recorded", "revoked", "recorded", "created", "lifted"]
    );
    let listed = client
        .list_consents(pb::ListConsentsRequest {
            participant_id: participant(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed.consents.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [second.id.as_str(), consent.id.as_str()],
        "newest first"
    );
}

fn bad_request_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Bad input is refused with the field named, and nothing is stored.
async fn bad_input(url: String) {
    let (served, _dir) = serve(url).await;
    let mut client = Client::new(served.channel.clone());
    let restriction = client
        .create_restriction(restriction())
        .await
        .unwrap()
        .into_inner();

    let mut ends_first = sharing_consent();
    ends_first.valid_until = Some(to_timestamp(Utc::now() - chrono::Duration::days(2)));
    let mut unknown_category = sharing_consent();
    unknown_category.sharing.as_mut().unwrap().categories = vec![DataCategory::Plan as i32, 99];
    let mut admin_category = sharing_consent();
    admin_category.sharing.as_mut().unwrap().categories = vec![DataCategory::Admin as i32];
    let mut empty_scope = sharing_consent();
    empty_scope.sharing.as_mut().unwrap().categories = vec![];
    let mut bad_participant = sharing_consent();
    bad_participant.participant_id = Some(ParticipantId {
        value: "19121212-1212".into(),
    });
    let mut same_org = sharing_consent();
    same_org.sharing.as_mut().unwrap().to_organisation_id = org(REGION);
    let mut long_note = sharing_consent();
    long_note.note = "ö".repeat(2001);
    let mut unnamed_representative = sharing_consent();
    unnamed_representative.requested_by = Some(pb::Actor {
        kind: pb::ActorKind::Representative as i32,
        staff: None,
    });
    unnamed_representative.on_behalf_of = None;
    let cases = [
        (ends_first, "valid_until"),
        (unknown_category, "sharing.categories[1]"),
        (admin_category, "sharing.categories[0]"),
        (empty_scope, "sharing.categories"),
        (bad_participant, "participant_id.value"),
        (same_org, "sharing.to_organisation_id"),
        (long_note, "note"),
        (unnamed_representative, "on_behalf_of"),
    ];
    for (request, field) in cases {
        let status = client.record_consent(request).await.unwrap_err();
        assert_eq!(bad_request_fields(&status), [field]);
    }

    let mut too_long = lift(1, 8);
    too_long.restriction_id = restriction.id.clone();
    let status = client.lift_restriction(too_long).await.unwrap_err();
    assert_eq!(bad_request_fields(&status), ["period.end"]);

    let mut bad_decide = pb::DecideRequest {
        participant_id: Some(ParticipantId {
            value: "not-a-uuid".into(),
        }),
        ..Default::default()
    };
    bad_decide.category = DataCategory::ChangeFeed as i32;
    let status = client.decide(bad_decide).await.unwrap_err();
    assert_eq!(
        bad_request_fields(&status),
        [
            "participant_id.value",
            "reader",
            "owner_organisation_id",
            "category",
            "purpose"
        ]
    );

    // Nothing of the above was stored: only the restriction's creation is in the history,
    // and it is still at its first revision.
    let history = client
        .list_history(pb::ListHistoryRequest {
            participant_id: participant(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.versions.len(), 1);
    let listed = client
        .list_restrictions(pb::ListRestrictionsRequest {
            participant_id: participant(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.restrictions[0].revision.unwrap().value, 1);
    assert!(listed.restrictions[0].lifts.is_empty());
}

/// Times outside protobuf's 0001–9999 are refused naming the field, and nothing is stored:
/// a consent valid until year 10000 would otherwise permit forever.
async fn times_outside_protobufs_range(url: String) {
    let (served, _dir) = serve(url).await;
    let mut client = Client::new(served.channel.clone());

    let mut until_10000 = sharing_consent();
    until_10000.valid_until = Some(new_year(10_000));
    let mut from_minus_1200 = sharing_consent();
    from_minus_1200.valid_from = Some(new_year(-1200));
    let mut nanos_over = sharing_consent();
    nanos_over.valid_from = Some(prost_types::Timestamp {
        seconds: Utc::now().timestamp(),
        nanos: 1_000_000_000,
    });
    for (request, field) in [
        (until_10000, "valid_until"),
        (from_minus_1200, "valid_from"),
        (nanos_over, "valid_from"),
    ] {
        let status = client.record_consent(request).await.unwrap_err();
        assert_eq!(bad_request_fields(&status), [field]);
    }

    let mut restriction_until_10000 = restriction();
    restriction_until_10000.valid_until = Some(new_year(10_000));
    let status = client
        .create_restriction(restriction_until_10000)
        .await
        .unwrap_err();
    assert_eq!(bad_request_fields(&status), ["valid_until"]);

    let restriction = client
        .create_restriction(restriction())
        .await
        .unwrap()
        .into_inner();
    let mut lift_from_minus_1200 = lift(1, 1);
    lift_from_minus_1200.restriction_id = restriction.id.clone();
    lift_from_minus_1200.period.as_mut().unwrap().start = Some(new_year(-1200));
    let status = client
        .lift_restriction(lift_from_minus_1200)
        .await
        .unwrap_err();
    assert_eq!(bad_request_fields(&status), ["period.start"]);

    let mut decide_in_10000 = pb::DecideRequest {
        participant_id: participant(),
        reader: Some(StaffRef {
            staff_id: "SE1283-staff-0007".into(),
            organisation_id: org(MUNICIPALITY),
            unit_id: "1283-boendestod".into(),
        }),
        owner_organisation_id: org(REGION),
        category: DataCategory::Plan as i32,
        purpose: pb::Purpose::Care as i32,
        at: Some(new_year(10_000)),
        emergency: false,
    };
    let status = client.decide(decide_in_10000.clone()).await.unwrap_err();
    assert_eq!(bad_request_fields(&status), ["at"]);

    // No consent was stored, so none permits; the restriction was not lifted.
    let consents = client
        .list_consents(pb::ListConsentsRequest {
            participant_id: participant(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(consents.consents.is_empty(), "{consents:?}");
    decide_in_10000.at = None;
    let decision = client.decide(decide_in_10000).await.unwrap().into_inner();
    assert_eq!(decision.effect(), pb::Effect::Deny);
    let listed = client
        .list_restrictions(pb::ListRestrictionsRequest {
            participant_id: participant(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.restrictions.len(), 1);
    assert!(listed.restrictions[0].lifts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_outside_protobufs_range_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    times_outside_protobufs_range(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_outside_protobufs_range_on_postgres() {
    times_outside_protobufs_range(fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_decide_revoke_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    record_decide_revoke(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_decide_revoke_on_postgres() {
    record_decide_revoke(fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    bad_input(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_postgres() {
    bad_input(fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voided_and_expired_consents_stop_counting_and_unknown_records_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (served, _dir) = serve(fresh_sqlite_url(dir.path())).await;
    let mut client = Client::new(served.channel.clone());
    let consent = client
        .record_consent(sharing_consent())
        .await
        .unwrap()
        .into_inner();
    let void = pb::VoidConsentRequest {
        participant_id: participant(),
        consent_id: consent.id.clone(),
        revision: consent.revision,
        voided_by: staff("SE2321000016-staff-0042", REGION),
        reason: "Registrerat på fel deltagare".into(),
    };
    let by_participant = pb::VoidConsentRequest {
        voided_by: the_participant(),
        reason: String::new(),
        ..void.clone()
    };
    let status = client.void_consent(by_participant).await.unwrap_err();
    assert_eq!(bad_request_fields(&status), ["voided_by.kind", "reason"]);

    let voided = client.void_consent(void).await.unwrap().into_inner();
    assert_eq!(voided.state(), pb::ConsentState::Voided);
    assert_eq!(
        voided.voiding.unwrap().reason,
        "Registrerat på fel deltagare"
    );
    let deny = decide(&mut client).await;
    assert_eq!(
        reason(&deny),
        (pb::Effect::Deny, pb::DecisionReason::ConsentVoided)
    );

    let revoke = pb::RevokeConsentRequest {
        participant_id: participant(),
        consent_id: consent.id.clone(),
        revision: voided.revision,
        revoked_by: the_participant(),
        reason: String::new(),
    };
    let status = client.revoke_consent(revoke.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Another participant's id, or an id never issued: not found, nothing said about either.
    let other_participant = pb::RevokeConsentRequest {
        participant_id: Some(ParticipantId {
            value: "0198c0de-0000-7000-8000-0000000000ff".into(),
        }),
        ..revoke.clone()
    };
    let unknown = pb::RevokeConsentRequest {
        consent_id: "0198c0de-0000-7000-8000-0000000000aa".into(),
        ..revoke
    };
    for request in [other_participant, unknown] {
        let status = client.revoke_consent(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "consent not found");
    }

    // A consent for one day stops counting after it, with no job having run.
    let mut one_day = sharing_consent();
    let until = Utc::now() + chrono::Duration::days(1);
    one_day.valid_until = Some(to_timestamp(until));
    let one_day = client.record_consent(one_day).await.unwrap().into_inner();
    let today = decide(&mut client).await;
    assert_eq!(
        reason(&today),
        (pb::Effect::Permit, pb::DecisionReason::Consent)
    );
    let later = decide_at(&mut client, Some(until + chrono::Duration::hours(1))).await;
    assert_eq!(
        reason(&later),
        (pb::Effect::Deny, pb::DecisionReason::ConsentExpired)
    );
    assert_eq!(later.consent_ids, [one_day.id.as_str()]);
}

/// Racing revocations of one consent on SQLite: one wins, the others are told their
/// revision is stale; none gets an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_revocations_on_sqlite_are_aborted_not_internal_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (served, _dir) = serve(fresh_sqlite_url(dir.path())).await;
    let mut client = Client::new(served.channel.clone());
    let consent = client
        .record_consent(sharing_consent())
        .await
        .unwrap()
        .into_inner();
    let revoke = pb::RevokeConsentRequest {
        participant_id: participant(),
        consent_id: consent.id.clone(),
        revision: consent.revision,
        revoked_by: the_participant(),
        reason: String::new(),
    };
    let mut racers = Vec::new();
    for _ in 0..6 {
        let mut client = client.clone();
        let revoke = revoke.clone();
        racers.push(tokio::spawn(
            async move { client.revoke_consent(revoke).await },
        ));
    }
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(won, 1);
}

/// A research consent names its study, which comes back on reads and on the feed; a study is
/// required for research, refused for the other kinds, and size- and alphabet-limited.
async fn research_consents_name_their_study(url: String) {
    let (served, _dir) = serve(url).await;
    let mut client = ConsentServiceClient::new(served.channel.clone());
    let recorded = client
        .record_consent(research_consent("fact-rct-2025"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.study_id, "fact-rct-2025");
    let listed = client
        .list_consents(pb::ListConsentsRequest {
            participant_id: participant(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.consents[0].study_id, "fact-rct-2025");
    let mut feed = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            heartbeat_seconds: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let change = feed.next().await.unwrap().unwrap();
    assert_eq!(
        pb::Consent::decode(change.payload.as_slice())
            .unwrap()
            .study_id,
        "fact-rct-2025"
    );

    let mut sharing_with_study = sharing_consent();
    sharing_with_study.study_id = "fact-rct-2025".into();
    for (request, why) in [
        (research_consent(""), "required for a research study"),
        (research_consent(&"s".repeat(65)), "must be 1 to 64"),
        (research_consent("fact rct"), "must be 1 to 64"),
        (sharing_with_study, "only for a research study"),
    ] {
        let status = client.record_consent(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_details_bad_request().unwrap();
        assert_eq!(details.field_violations[0].field, "study_id");
        assert!(
            details.field_violations[0].description.contains(why),
            "{:?}",
            details.field_violations
        );
    }
    let listed = client
        .list_consents(pb::ListConsentsRequest {
            participant_id: participant(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.consents.len(), 1, "nothing refused is stored");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_consents_name_their_study_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    research_consents_name_their_study(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_consents_name_their_study_on_postgres() {
    research_consents_name_their_study(fresh_postgres_url().await.unwrap()).await;
}

/// A research consent stored before consents named their study is read after the migration
/// as naming none, on both databases.
async fn a_research_consent_from_before_studies_names_none(url: String) {
    use sea_orm::ConnectionTrait;
    let (served, _dir) = serve(url.clone()).await;
    let mut client = ConsentServiceClient::new(served.channel.clone());
    let recorded = client
        .record_consent(research_consent("fact-rct-2025"))
        .await
        .unwrap()
        .into_inner();
    served.stop().await;
    // Back to the stored form of before, with the migration not yet run.
    let db = sea_orm::Database::connect(&url).await.unwrap();
    for table in ["record", "record_version"] {
        db.execute_unprepared(&format!(
            r#"UPDATE {table} SET body = REPLACE(body, '"kind":{{"ResearchStudy":"fact-rct-2025"}}', '"kind":"ResearchStudy"')"#
        ))
        .await
        .unwrap();
    }
    db.execute_unprepared(
        "DELETE FROM seaql_migrations WHERE version = 'm20261205_000101_name_research_studies'",
    )
    .await
    .unwrap();
    db.close().await.unwrap();

    let (served, _dir) = serve(url).await;
    let mut client = ConsentServiceClient::new(served.channel.clone());
    let listed = client
        .list_consents(pb::ListConsentsRequest {
            participant_id: participant(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.consents.len(), 1);
    assert_eq!(listed.consents[0].id, recorded.id);
    assert_eq!(
        listed.consents[0].kind,
        pb::ConsentKind::ResearchStudy as i32
    );
    assert_eq!(listed.consents[0].study_id, "");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_research_consent_from_before_studies_names_none_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_research_consent_from_before_studies_names_none(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_research_consent_from_before_studies_names_none_on_postgres() {
    a_research_consent_from_before_studies_names_none(fresh_postgres_url().await.unwrap()).await;
}
