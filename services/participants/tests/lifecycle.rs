//! The life of a participant over real gRPC and mutual TLS, on SQLite and PostgreSQL:
//! referral → joint review → enrolment → coordinators and care team → move → discharge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use chrono::Datelike;
use samsyn_kit::testing::{fresh_postgres_url, fresh_sqlite_url};
use samsyn_proto::common::v1::{OrganisationKind, PageRequest, WatchChangesRequest};
use samsyn_proto::participants::v1::*;
use support::*;
use tokio_stream::StreamExt;

async fn review(
    client: &mut Client,
    id: &str,
    revision: u64,
    principal: OrganisationKind,
    reviewer: &str,
    org: &str,
) -> Participant {
    client
        .record_review(RecordReviewRequest {
            participant_id: pid(id),
            revision: rev(revision),
            principal: principal as i32,
            reviewed_by: staff(reviewer, org),
            assessment: Assessment::Accept as i32,
            reason: "Uppfyller kriterierna; överens vid gemensam genomgång".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Refers, reviews and enrols a person; returns the participant.
async fn enrolled(served: &Served, client: &mut Client, pin: &str, name: &str) -> Participant {
    let p = client
        .create_referral(referral(pin, name, ""))
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;
    let p = review(
        client,
        &id,
        1,
        OrganisationKind::Region,
        "SE2321000255-D01",
        REGION,
    )
    .await;
    let p = review(
        client,
        &id,
        p.revision.unwrap().value,
        OrganisationKind::Municipality,
        "hbg-soc-7",
        HELSINGBORG,
    )
    .await;
    client
        .enrol(EnrolRequest {
            participant_id: pid(&id),
            revision: p.revision,
            consent_reference: served.participation_consent(&id).await.id,
            enrolled_on: today(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn current(team: &CareTeam) -> Vec<(&str, i32, i32, i32)> {
    team.assignments
        .iter()
        .filter(|a| a.valid_until.is_none())
        .map(|a| {
            (
                a.staff.as_ref().unwrap().staff_id.as_str(),
                a.kind,
                a.principal,
                a.rank,
            )
        })
        .collect()
}

async fn life_cycle(url: String) {
    let dir = tempfile::tempdir().unwrap();
    let (served, mut client) = serve(&url, dir.path()).await;
    let pin_asa = pin("19850412", "234");
    let name = "Åsa Öberg-Ängström";

    // Referral, retried with the same idempotency key: one participant, the same answer.
    let request = referral(&pin_asa, name, "remiss-2026-0001");
    let first = client
        .create_referral(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = client.create_referral(request).await.unwrap().into_inner();
    assert_eq!(first, retry);
    assert_eq!(first.status, ParticipantStatus::Referred as i32);
    assert_eq!(first.name, name);
    assert_eq!(first.personal_identity_number, pin_asa);
    assert_eq!(
        first.referral.as_ref().unwrap().reason,
        "Behov av samordnat stöd från båda huvudmännen över lång tid"
    );
    let id = first.participant_id.clone().unwrap().value;

    // Joint review: the municipality decides (the default rule); the region's review alone
    // decides nothing.
    let p = review(
        &mut client,
        &id,
        1,
        OrganisationKind::Region,
        "SE2321000255-D01",
        REGION,
    )
    .await;
    assert_eq!(p.status, ParticipantStatus::Referred as i32);
    assert!(p.outcome.is_none());
    let p = review(
        &mut client,
        &id,
        2,
        OrganisationKind::Municipality,
        "hbg-soc-7",
        HELSINGBORG,
    )
    .await;
    assert_eq!(p.status, ParticipantStatus::Accepted as i32);
    assert!(p.outcome.as_ref().unwrap().accepted);
    assert_eq!(p.reviews.len(), 2);
    assert_eq!(
        p.reviews[1].reason,
        "Uppfyller kriterierna; överens vid gemensam genomgång"
    );

    // Enrolment needs a consent reference shaped like a UUID.
    let consent = served.participation_consent(&id).await.id;
    let bad = client
        .enrol(EnrolRequest {
            participant_id: pid(&id),
            revision: rev(3),
            consent_reference: "samtycke muntligt".to_owned(),
            enrolled_on: today(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let p = client
        .enrol(EnrolRequest {
            participant_id: pid(&id),
            revision: rev(3),
            consent_reference: consent.clone(),
            enrolled_on: today(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, ParticipantStatus::Enrolled as i32);
    assert_eq!(p.enrolment.as_ref().unwrap().consent_reference, consent);

    // Coordinators per principal, a care-team member and the fixed care contact.
    let mut revision = p.revision.unwrap().value;
    let coordinators = [
        (
            OrganisationKind::Region,
            CoordinatorRank::Main,
            "SE2321000255-K01",
            REGION,
        ),
        (
            OrganisationKind::Region,
            CoordinatorRank::Deputy,
            "SE2321000255-K02",
            REGION,
        ),
        (
            OrganisationKind::Municipality,
            CoordinatorRank::Main,
            "hbg-sam-1",
            HELSINGBORG,
        ),
        (
            OrganisationKind::Municipality,
            CoordinatorRank::Deputy,
            "hbg-sam-2",
            HELSINGBORG,
        ),
    ];
    for (principal, rank, who, org) in coordinators {
        let team = client
            .assign_coordinator(AssignCoordinatorRequest {
                participant_id: pid(&id),
                revision: rev(revision),
                principal: principal as i32,
                rank: rank as i32,
                staff: staff(who, org),
            })
            .await
            .unwrap()
            .into_inner();
        revision = team.revision.unwrap().value;
    }
    let team = client
        .add_care_team_member(AddCareTeamMemberRequest {
            participant_id: pid(&id),
            revision: rev(revision),
            staff: staff("hbg-bst-3", HELSINGBORG),
            role: CareRole::HousingSupportWorker as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let team = client
        .set_fixed_care_contact(SetFixedCareContactRequest {
            participant_id: pid(&id),
            revision: team.revision,
            staff: staff("SE2321000255-K01", REGION),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current(&team).len(), 6);

    // A coordinator change: the new main coordinator replaces the old, whose assignment stays
    // in the history with an end.
    let team = client
        .assign_coordinator(AssignCoordinatorRequest {
            participant_id: pid(&id),
            revision: team.revision,
            principal: OrganisationKind::Region as i32,
            rank: CoordinatorRank::Main as i32,
            staff: staff("SE2321000255-K09", REGION),
        })
        .await
        .unwrap()
        .into_inner();
    let now = current(&team);
    assert!(now.contains(&(
        "SE2321000255-K09",
        AssignmentKind::Coordinator as i32,
        OrganisationKind::Region as i32,
        CoordinatorRank::Main as i32
    )));
    assert!(
        !now.iter().any(|(who, kind, ..)| *who == "SE2321000255-K01"
            && *kind == AssignmentKind::Coordinator as i32)
    );
    let history = client
        .get_care_team(GetCareTeamRequest {
            participant_id: pid(&id),
            include_history: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.assignments.len(), 7);
    assert_eq!(
        history
            .assignments
            .iter()
            .filter(|a| a.valid_until.is_some())
            .count(),
        1
    );

    // Lists: by staff (current assignments only), by organisation, by status.
    let list = |staff_id: &str| ListParticipantsRequest {
        staff_id: staff_id.to_owned(),
        ..Default::default()
    };
    let by_new = client
        .list_participants(list("SE2321000255-K09"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_new.participants.len(), 1);
    assert_eq!(by_new.participants[0].name, name);
    let by_old = client
        .list_participants(list("hbg-sam-99"))
        .await
        .unwrap()
        .into_inner();
    assert!(by_old.participants.is_empty());

    // A move inside the programme area keeps the participation.
    let p = client
        .record_move(RecordMoveRequest {
            participant_id: pid(&id),
            revision: team.revision,
            home_municipality_code: "1284".to_owned(),
            moved_on: today(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, ParticipantStatus::Enrolled as i32);
    assert_eq!(p.home_municipality_code, "1284");

    // A second participant moves to Malmö, outside the area: participation ends, and so do
    // their assignments.
    let other = enrolled(&served, &mut client, &pin("19900101", "456"), "Bo Ek").await;
    let other_id = other.participant_id.clone().unwrap().value;
    let team = client
        .add_care_team_member(AddCareTeamMemberRequest {
            participant_id: pid(&other_id),
            revision: other.revision,
            staff: staff("hbg-bst-3", HELSINGBORG),
            role: CareRole::HousingSupportWorker as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let moved = client
        .record_move(RecordMoveRequest {
            participant_id: pid(&other_id),
            revision: team.revision,
            home_municipality_code: "1280".to_owned(),
            moved_on: today(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.status, ParticipantStatus::Discharged as i32);
    assert_eq!(
        moved.discharge.as_ref().unwrap().reason,
        DischargeReason::Moved as i32
    );
    let team = client
        .get_care_team(GetCareTeamRequest {
            participant_id: pid(&other_id),
            include_history: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(team.assignments.is_empty());

    // Discharge: ready for ordinary care. The participant stays readable.
    let p = client
        .discharge(DischargeRequest {
            participant_id: pid(&id),
            revision: p.revision,
            reason: DischargeReason::ReadyForOrdinaryCare as i32,
            discharged_on: today(),
            note: "Klarar vardagen med enstaka stöd; övergår till ordinarie vård".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, ParticipantStatus::Discharged as i32);
    let read = client
        .get_participant(GetParticipantRequest {
            participant_id: pid(&id),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, p);
    assert_eq!(
        read.discharge.unwrap().note,
        "Klarar vardagen med enstaka stöd; övergår till ordinarie vård"
    );

    // Yearly counts: both enrolments count for Helsingborg (home at enrolment), target 30.
    let year = chrono::Utc::now().year();
    let counts = client
        .count_new_participants(CountNewParticipantsRequest {
            from_year: year,
            to_year: year,
        })
        .await
        .unwrap()
        .into_inner();
    let helsingborg = counts
        .counts
        .iter()
        .find(|c| c.home_municipality_code == HELSINGBORG)
        .unwrap();
    assert_eq!((helsingborg.count, helsingborg.target), (2, 30));
    assert_eq!(counts.counts.len(), 10);

    // Status lists and paging.
    let discharged = client
        .list_participants(ListParticipantsRequest {
            status: ParticipantStatus::Discharged as i32,
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(discharged.participants.len(), 1);
    let next = discharged.page.unwrap().next_page_token;
    assert!(!next.is_empty());
    let rest = client
        .list_participants(ListParticipantsRequest {
            status: ParticipantStatus::Discharged as i32,
            page: Some(PageRequest {
                page_size: 1,
                page_token: next,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.participants.len(), 1);
    assert!(rest.page.unwrap().next_page_token.is_empty());

    // A person discharged may be referred again: same participant id, a new referral.
    let again = client
        .create_referral(referral(&pin_asa[2..], name, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.participant_id.unwrap().value, id);
    assert_eq!(again.status, ParticipantStatus::Referred as i32);
    assert_ne!(
        again.referral.unwrap().referral_id,
        first.referral.unwrap().referral_id
    );

    // The feed holds every change in order, care-team and status changes included, and no
    // identity number.
    let mut feed = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Ok(Some(change)) = tokio::time::timeout(Duration::from_secs(2), feed.next()).await {
        let change = change.unwrap();
        assert!(
            !change
                .payload
                .windows(10)
                .any(|w| w == &pin_asa.as_bytes()[2..])
        );
        if change.participant_id.unwrap().value == id {
            kinds.push(format!("{}/{}", change.entity_kind, change.change_kind));
        }
        if kinds.len() == 15 {
            break;
        }
    }
    assert_eq!(
        kinds,
        [
            "participant/referred",
            "participant/reviewed",
            "participant/accepted",
            "participant/enrolled",
            "care_team/coordinator_assigned",
            "care_team/coordinator_assigned",
            "care_team/coordinator_assigned",
            "care_team/coordinator_assigned",
            "care_team/member_added",
            "care_team/fixed_care_contact_set",
            "care_team/coordinator_assigned",
            "participant/moved",
            "care_team/ended",
            "participant/discharged",
            "participant/referred",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    life_cycle(fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_on_postgres() {
    life_cycle(fresh_postgres_url().await.unwrap()).await;
}

/// Under "both must agree" one decline decides; a declined person may be referred again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_must_agree_declines_on_one_decline() {
    use samsyn_participants::{ParticipantsSettings, ReviewRule};
    let dir = tempfile::tempdir().unwrap();
    let context = samsyn_kit::serve::PartContext {
        database_url: fresh_sqlite_url(dir.path()),
        data_dir: dir.path().to_path_buf(),
        limits: samsyn_kit::config::Limits::default(),
    };
    let settings = ParticipantsSettings {
        review_rule: ReviewRule::BothMustAgree,
        ..ParticipantsSettings::default()
    };
    let part = samsyn_participants::part_with_settings(&context, settings, None)
        .await
        .unwrap();
    let served = samsyn_kit::testing::ServedPart::start(part).await;
    let mut client = Client::new(served.channel.clone());
    let person = pin("19790315", "555");
    let p = client
        .create_referral(referral(&person, "Göran Ström", ""))
        .await
        .unwrap()
        .into_inner();
    let id = p.participant_id.unwrap().value;
    let p = review(
        &mut client,
        &id,
        1,
        OrganisationKind::Municipality,
        "hbg-soc-7",
        HELSINGBORG,
    )
    .await;
    assert_eq!(p.status, ParticipantStatus::Referred as i32);
    let p = client
        .record_review(RecordReviewRequest {
            participant_id: pid(&id),
            revision: p.revision,
            principal: OrganisationKind::Region as i32,
            reviewed_by: staff("SE2321000255-D01", REGION),
            assessment: Assessment::Decline as i32,
            reason: "Behoven täcks av ordinarie psykiatri".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, ParticipantStatus::Declined as i32);
    assert_eq!(
        p.outcome.unwrap().reason,
        "Behoven täcks av ordinarie psykiatri"
    );
    let again = client
        .create_referral(referral(&person, "Göran Ström", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.participant_id.unwrap().value, id);
    assert_eq!(again.status, ParticipantStatus::Referred as i32);
    assert!(again.reviews.is_empty());
}
