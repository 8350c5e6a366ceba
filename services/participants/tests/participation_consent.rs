//! Enrolment needs the participant's own participation consent, as the consent service's
//! feed tells it; revoking that consent flags the participation (or ends it, per the
//! programme). On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use samsyn_kit::testing::{fresh_postgres_url, fresh_sqlite_url};
use samsyn_participants::ParticipantsSettings;
use samsyn_participants::domain::OnConsentRevoked;
use samsyn_proto::common::v1::OrganisationKind;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1::*;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Refers and accepts a person; returns their id and revision.
async fn accepted(client: &mut Client, pin: &str, name: &str) -> (String, u64) {
    let p = client
        .create_referral(referral(pin, name, ""))
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;
    let mut revision = p.revision.unwrap().value;
    for (principal, reviewer, org) in [
        (OrganisationKind::Region, "SE2321000255-D01", REGION),
        (OrganisationKind::Municipality, "hbg-soc-7", HELSINGBORG),
    ] {
        revision = client
            .record_review(RecordReviewRequest {
                participant_id: pid(&id),
                revision: rev(revision),
                principal: principal as i32,
                reviewed_by: staff(reviewer, org),
                assessment: Assessment::Accept as i32,
                reason: "Uppfyller kriterierna".to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .revision
            .unwrap()
            .value;
    }
    (id, revision)
}

fn enrol(id: &str, revision: u64, consent: &str) -> EnrolRequest {
    EnrolRequest {
        participant_id: pid(id),
        revision: rev(revision),
        consent_reference: consent.to_owned(),
        enrolled_on: today(),
    }
}

fn refused_field(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn get(client: &mut Client, id: &str) -> Participant {
    client
        .get_participant(GetParticipantRequest {
            participant_id: pid(id),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until `id` satisfies `done` (the consent feed is followed asynchronously).
async fn until(client: &mut Client, id: &str, done: impl Fn(&Participant) -> bool) -> Participant {
    let start = Instant::now();
    loop {
        let p = get(client, id).await;
        if done(&p) {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the participation never changed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn consent_checked_and_followed(url: String) {
    let dir = tempfile::tempdir().unwrap();
    let (served, mut client) = serve(&url, dir.path()).await;
    let (id, revision) = accepted(&mut client, &pin("19850412", "234"), "Åsa Öberg").await;
    let (other, _) = accepted(&mut client, &pin("19790101", "345"), "Örjan Ek").await;

    // Unknown, someone else's, not a participation consent, revoked: the same refusal naming
    // the field, and nothing stored.
    let others = served.participation_consent(&other).await;
    let research = served
        .consent_of(&id, consent_pb::ConsentKind::ResearchStudy)
        .await;
    let revoked = served.participation_consent(&id).await;
    served.revoke(&revoked).await;
    let mut answers = Vec::new();
    for consent in [
        uuid::Uuid::now_v7().to_string(),
        others.id.clone(),
        research.id.clone(),
        revoked.id.clone(),
    ] {
        let status = client
            .enrol(enrol(&id, revision, &consent))
            .await
            .unwrap_err();
        assert_eq!(refused_field(&status), ["consent_reference"]);
        answers.push(status.message().to_owned());
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "every refusal reads the same: {answers:?}"
    );
    let p = get(&mut client, &id).await;
    assert_eq!(p.status, ParticipantStatus::Accepted as i32);
    assert_eq!(p.revision.unwrap().value, revision);

    // The participant's own active participation consent, recorded a moment before.
    let consent = served.participation_consent(&id).await;
    let p = client
        .enrol(enrol(&id, revision, &consent.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, ParticipantStatus::Enrolled as i32);
    let enrolment = p.enrolment.unwrap();
    assert_eq!(enrolment.consent_reference, consent.id);
    assert!(enrolment.consent_revoked_at.is_none());

    // Revoking it flags the participation for follow-up; it goes on (the default). (Wait for
    // the revision too: a read of the participant is two queries, not one snapshot.)
    served.revoke(&consent).await;
    let p = until(&mut client, &id, |p| {
        p.revision.as_ref().is_some_and(|r| r.value == revision + 2)
            && p.enrolment
                .as_ref()
                .is_some_and(|e| e.consent_revoked_at.is_some())
    })
    .await;
    assert_eq!(p.status, ParticipantStatus::Enrolled as i32);
    assert_eq!(p.revision.unwrap().value, revision + 2);

    // The flag is on the participants feed.
    let mut feed = client
        .watch_changes(samsyn_proto::common::v1::WatchChangesRequest {
            after_sequence: 0,
            heartbeat_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Ok(Ok(Some(change))) =
        tokio::time::timeout(Duration::from_millis(500), feed.message()).await
    {
        if change.entity_id == id {
            kinds.push(change.change_kind);
        }
    }
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("participation_consent_revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_checks_consent_and_revocation_flags_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    consent_checked_and_followed(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_checks_consent_and_revocation_flags_on_postgres() {
    consent_checked_and_followed(fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_programme_may_end_participation_when_consent_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ParticipantsSettings {
        on_participation_consent_revoked: OnConsentRevoked::Discharge,
        ..ParticipantsSettings::default()
    };
    let (served, mut client) =
        serve_with(&fresh_sqlite_url(dir.path()), dir.path(), settings).await;
    let (id, revision) = accepted(&mut client, &pin("19850412", "234"), "Åsa Öberg").await;
    let consent = served.participation_consent(&id).await;
    client
        .enrol(enrol(&id, revision, &consent.id))
        .await
        .unwrap();
    served.revoke(&consent).await;
    let p = until(&mut client, &id, |p| {
        p.status == ParticipantStatus::Discharged as i32
    })
    .await;
    assert_eq!(
        p.discharge.unwrap().reason,
        DischargeReason::DeclinedFurtherParticipation as i32
    );
    assert!(p.enrolment.unwrap().consent_revoked_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_consent_feed_enrolment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let context = samsyn_kit::serve::PartContext {
        database_url: fresh_sqlite_url(dir.path()),
        data_dir: dir.path().to_path_buf(),
        limits: samsyn_kit::config::Limits::default(),
    };
    let part = samsyn_participants::part(&context, None).await.unwrap();
    let served = samsyn_kit::testing::ServedPart::start(part).await;
    let mut client = Client::new(served.channel.clone());
    let (id, revision) = accepted(&mut client, &pin("19850412", "234"), "Åsa Öberg").await;
    let status = client
        .enrol(enrol(&id, revision, &uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        get(&mut client, &id).await.status,
        ParticipantStatus::Accepted as i32
    );
}
