//! The pure apply/facts logic: no network, no database, time passed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_consent_rule as rule;
use samsyn_kit::time::to_timestamp;
use samsyn_proto::board::v1::EntryState;
use samsyn_proto::common::v1 as common;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;

use super::testing::*;
use super::*;

const P1: &str = "0198c0de-0000-7000-8000-000000000001";
const P2: &str = "0198c0de-0000-7000-8000-000000000002";
const BOUND: Duration = Duration::from_secs(2);

fn plan_read(at: DateTime<Utc>) -> rule::Request {
    rule::Request {
        reader_organisation: HELSINGBORG.to_owned(),
        reader_unit: None,
        reader_staff: Some("hbg-soc-7".to_owned()),
        owner_organisation: REGION.to_owned(),
        category: rule::Category::Plan,
        purpose: rule::Purpose::Care,
        at,
        emergency: false,
    }
}

fn facts(view: &AccessView, id: &str) -> Arc<ParticipantFacts> {
    view.facts(id, Instant::now()).unwrap().unwrap()
}

#[test]
fn changes_apply_in_order_and_replays_are_ignored() {
    let view = AccessView::new(BOUND);
    use participants_pb::ParticipantStatus as S;
    view.apply(FeedName::Participants, &participant(1, P1, S::Referred, 1))
        .unwrap();
    view.apply(FeedName::Participants, &participant(2, P1, S::Enrolled, 3))
        .unwrap();
    // A replay of an earlier sequence, even with other content, changes nothing.
    view.apply(FeedName::Participants, &participant(2, P1, S::Declined, 9))
        .unwrap();
    view.apply(FeedName::Participants, &participant(1, P1, S::Referred, 1))
        .unwrap();
    assert_eq!(view.cursor(FeedName::Participants), 2);
    assert_eq!(view.cursor(FeedName::Consent), 0);
    current(&view);
    let f = facts(&view, P1);
    assert_eq!(f.status, ParticipantStatus::Enrolled);
    assert_eq!(f.home_municipality, HELSINGBORG);
    assert_eq!(f.revision, 3);
    assert_eq!(view.facts(P2, Instant::now()), Ok(None));
}

#[test]
fn a_care_team_change_replaces_the_whole_team() {
    let view = AccessView::new(BOUND);
    use participants_pb::CareRole as R;
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    view.apply(
        FeedName::Participants,
        &care_team(
            2,
            P1,
            4,
            vec![
                coordinator("hbg-soc-7", HELSINGBORG),
                member("SE2321000255-P001", REGION, R::CaseManager),
                member("SE2321000255-D01", REGION, R::Physician),
            ],
        ),
    )
    .unwrap();
    current(&view);
    let f = facts(&view, P1);
    assert_eq!(f.care_team.len(), 3);
    assert_eq!(
        f.care_team[0].coordinator(),
        Some((OrganisationKind::Municipality, CoordinatorRank::Main))
    );
    assert_eq!(f.care_team[0].unit_id.as_deref(), Some("hbg-soc"));
    assert!(f.is_assigned("SE2321000255-D01"));

    // The physician's assignment ends; an ended row in the payload grants nothing either.
    let mut ended = member("SE2321000255-D01", REGION, R::Physician);
    ended.valid_until = Some(to_timestamp(Utc::now()));
    view.apply(
        FeedName::Participants,
        &care_team(
            3,
            P1,
            5,
            vec![
                coordinator("hbg-soc-7", HELSINGBORG),
                member("SE2321000255-P001", REGION, R::CaseManager),
                ended,
            ],
        ),
    )
    .unwrap();
    let f = facts(&view, P1);
    assert!(!f.is_assigned("SE2321000255-D01"));
    assert_eq!(
        f.assignments_of("SE2321000255-P001")
            .map(|m| m.role)
            .collect::<Vec<_>>(),
        vec![AssignmentRole::CareTeamMember(CareRole::CaseManager)]
    );
    assert_eq!(f.revision, 5);

    // Discharge ends every assignment: an empty team.
    view.apply(FeedName::Participants, &care_team(4, P1, 6, vec![]))
        .unwrap();
    assert!(facts(&view, P1).care_team.is_empty());
}

#[test]
fn a_revoked_consent_replaces_the_earlier_version() {
    let view = AccessView::new(BOUND);
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    let recorded = sharing("c-1", P1, 1);
    view.apply(FeedName::Consent, &consent_change(1, &recorded))
        .unwrap();
    current(&view);
    let f = facts(&view, P1);
    assert_eq!(f.consents.len(), 1);
    // The unknown category value 99 is dropped; Plan is kept.
    let scope = f.consents[0].sharing.as_ref().unwrap();
    assert_eq!(
        scope.categories.iter().collect::<Vec<_>>(),
        vec![rule::Category::Plan]
    );
    assert!(f.decide(&plan_read(Utc::now())).is_permit());

    let revoked_at = Utc::now();
    let mut revoked = recorded.clone();
    revoked.state = consent_pb::ConsentState::Revoked as i32;
    revoked.revocation = Some(consent_pb::Ending {
        by: None,
        at: Some(to_timestamp(revoked_at)),
        reason: "Vill inte längre".to_owned(),
    });
    revoked.revision = Some(common::Revision { value: 2 });
    view.apply(FeedName::Consent, &consent_change(2, &revoked))
        .unwrap();
    let f = facts(&view, P1);
    assert_eq!(f.consents.len(), 1, "replaced, not added");
    assert_eq!(
        f.consents[0].revoked_at.map(|t| t.timestamp()),
        Some(revoked_at.timestamp())
    );
    let decision = f.decide(&plan_read(Utc::now()));
    assert_eq!(decision.reason, rule::Reason::ConsentRevoked);
    // An earlier moment does not bring it back (the rule fails closed on clocks).
    assert!(
        !f.decide(&plan_read(revoked_at - chrono::Duration::hours(1)))
            .is_permit()
    );
}

#[test]
fn restrictions_and_their_lifts_reach_the_rule() {
    let view = AccessView::new(BOUND);
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    view.apply(
        FeedName::Consent,
        &consent_change(1, &sharing("c-1", P1, 1)),
    )
    .unwrap();
    let start = Utc::now() - chrono::Duration::minutes(1);
    let restriction = consent_pb::Restriction {
        id: "r-1".to_owned(),
        participant_id: pid(P1),
        organisation_id: org(HELSINGBORG),
        categories: vec![common::DataCategory::Plan as i32],
        valid_from: Some(to_timestamp(start)),
        revision: Some(common::Revision { value: 1 }),
        ..Default::default()
    };
    let mut c = change(
        2,
        "restriction",
        P1,
        Utc::now(),
        restriction.encode_to_vec(),
    );
    c.entity_id = "r-1".to_owned();
    view.apply(FeedName::Consent, &c).unwrap();
    current(&view);
    let decision = facts(&view, P1).decide(&plan_read(Utc::now()));
    assert_eq!(decision.reason, rule::Reason::Restricted);

    let mut lifted = restriction;
    lifted.lifts.push(consent_pb::Lift {
        id: "l-1".to_owned(),
        reason: consent_pb::LiftReason::Emergency as i32,
        categories: vec![common::DataCategory::Plan as i32],
        period: Some(common::Period {
            start: Some(to_timestamp(start)),
            end: Some(to_timestamp(start + chrono::Duration::hours(2))),
        }),
        ..Default::default()
    });
    lifted.revision = Some(common::Revision { value: 2 });
    let mut c = change(3, "restriction", P1, Utc::now(), lifted.encode_to_vec());
    c.entity_id = "r-1".to_owned();
    view.apply(FeedName::Consent, &c).unwrap();
    let f = facts(&view, P1);
    assert_eq!(f.restrictions.len(), 1);
    assert_eq!(
        f.decide(&plan_read(Utc::now())).reason,
        rule::Reason::RestrictionLifted
    );
}

#[test]
fn consents_before_the_participant_is_known_are_kept_but_not_answered() {
    let view = AccessView::new(BOUND);
    view.apply(
        FeedName::Consent,
        &consent_change(1, &sharing("c-1", P1, 1)),
    )
    .unwrap();
    current(&view);
    assert_eq!(view.facts(P1, Instant::now()), Ok(None));
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Referred, 1),
    )
    .unwrap();
    assert_eq!(facts(&view, P1).consents.len(), 1);
}

#[test]
fn behind_until_every_feed_caught_up_and_again_after_the_bound() {
    let view = AccessView::new(BOUND);
    let t0 = Instant::now();
    // Never caught up.
    assert_eq!(
        view.facts(P1, t0),
        Err(ViewError::Behind {
            feed: FeedName::Participants
        })
    );
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    // A heartbeat that does not match the cursor proves nothing.
    view.apply(FeedName::Consent, &heartbeat(7)).unwrap();
    assert_eq!(
        view.facts(P1, Instant::now()),
        Err(ViewError::Behind {
            feed: FeedName::Consent
        })
    );
    view.apply(FeedName::Consent, &heartbeat(0)).unwrap();
    assert_eq!(
        view.facts(P1, Instant::now()),
        Err(ViewError::Behind {
            feed: FeedName::Board
        })
    );
    view.apply(FeedName::Board, &heartbeat(0)).unwrap();
    let t1 = Instant::now();
    assert!(view.facts(P1, t1).unwrap().is_some());

    // Nothing heard for longer than the bound on one feed: behind, whatever the other says.
    let later = t1 + BOUND + Duration::from_millis(100);
    assert!(matches!(
        view.facts(P1, later),
        Err(ViewError::Behind { .. })
    ));
    assert!(view.lag(FeedName::Consent, later).unwrap() > BOUND);

    // A heartbeat brings it back.
    view.apply_at(FeedName::Participants, &heartbeat(1), later, Utc::now())
        .unwrap();
    view.apply_at(FeedName::Consent, &heartbeat(0), later, Utc::now())
        .unwrap();
    assert_eq!(
        view.facts(P1, later),
        Err(ViewError::Behind {
            feed: FeedName::Board
        })
    );
    view.apply_at(FeedName::Board, &heartbeat(0), later, Utc::now())
        .unwrap();
    assert!(view.facts(P1, later).unwrap().is_some());
}

#[test]
fn an_old_change_from_a_backlog_does_not_make_the_feed_current() {
    let view = AccessView::new(BOUND);
    current(&view);
    let mut old = participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3);
    old.recorded_at = Some(to_timestamp(Utc::now() - chrono::Duration::minutes(5)));
    // The feed was current a moment ago; the old change does not move that back...
    view.apply(FeedName::Participants, &old).unwrap();
    assert!(view.facts(P1, Instant::now()).unwrap().is_some());

    // ...but on a fresh view it does not count as caught up.
    let fresh = AccessView::new(BOUND);
    fresh.apply(FeedName::Consent, &heartbeat(0)).unwrap();
    fresh.apply(FeedName::Board, &heartbeat(0)).unwrap();
    fresh.apply(FeedName::Participants, &old).unwrap();
    assert_eq!(
        fresh.facts(P1, Instant::now()),
        Err(ViewError::Behind {
            feed: FeedName::Participants
        })
    );
    // A live change does.
    fresh
        .apply(
            FeedName::Participants,
            &participant(2, P1, participants_pb::ParticipantStatus::Enrolled, 4),
        )
        .unwrap();
    assert!(fresh.facts(P1, Instant::now()).unwrap().is_some());
}

#[test]
fn an_unreadable_change_withholds_its_participant_until_a_readable_version() {
    let view = AccessView::new(BOUND);
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    view.apply(
        FeedName::Participants,
        &participant(2, P2, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    view.apply(
        FeedName::Consent,
        &consent_change(1, &sharing("c-1", P1, 1)),
    )
    .unwrap();
    current(&view);
    // A revocation the gateway cannot read must not leave the consent in force.
    let mut garbled = consent_change(2, &sharing("c-1", P1, 2));
    garbled.payload = vec![0xff, 0xff, 0xff];
    assert_eq!(
        view.apply(FeedName::Consent, &garbled),
        Err(ViewError::Malformed {
            feed: FeedName::Consent,
            sequence: 2
        })
    );
    assert_eq!(view.cursor(FeedName::Consent), 2);
    assert_eq!(
        view.facts(P1, Instant::now()),
        Err(ViewError::Unreadable {
            feed: FeedName::Consent
        })
    );
    assert!(view.facts(P2, Instant::now()).unwrap().is_some());
    // An unspecified kind is unreadable too.
    let mut unknown = sharing("c-1", P1, 3);
    unknown.kind = 0;
    assert!(
        view.apply(FeedName::Consent, &consent_change(3, &unknown))
            .is_err()
    );
    // The next readable version of the same consent clears it.
    view.apply(
        FeedName::Consent,
        &consent_change(4, &sharing("c-1", P1, 4)),
    )
    .unwrap();
    assert_eq!(facts(&view, P1).consents.len(), 1);
}

#[test]
fn a_board_entry_puts_its_team_in_the_facts_until_taken_off() {
    const NORDVAST: &str = "0198c0de-0000-7000-8000-00000000fac1";
    const SODER: &str = "0198c0de-0000-7000-8000-00000000fac2";
    let view = AccessView::new(BOUND);
    // The board feed may run ahead of the participants feed: kept, answered once known.
    view.apply(
        FeedName::Board,
        &board_entry(1, "e-1", NORDVAST, P1, EntryState::OnBoard),
    )
    .unwrap();
    current(&view);
    assert_eq!(view.facts(P1, Instant::now()), Ok(None));
    view.apply(
        FeedName::Participants,
        &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
    )
    .unwrap();
    assert_eq!(facts(&view, P1).fact_teams, [NORDVAST]);
    assert!(facts(&view, P1).care_team.is_empty(), "no care team needed");

    // Another team's board too; a status change on an entry changes nothing.
    view.apply(
        FeedName::Board,
        &board_entry(2, "e-2", SODER, P1, EntryState::OnBoard),
    )
    .unwrap();
    view.apply(
        FeedName::Board,
        &board_entry(3, "e-1", NORDVAST, P1, EntryState::OnBoard),
    )
    .unwrap();
    assert_eq!(facts(&view, P1).fact_teams, [NORDVAST, SODER]);

    // Taken off one board: that team leaves; the other stays.
    view.apply(
        FeedName::Board,
        &board_entry(4, "e-1", NORDVAST, P1, EntryState::TakenOff),
    )
    .unwrap();
    assert_eq!(facts(&view, P1).fact_teams, [SODER]);

    // A take-off the view cannot read must not leave the team in force.
    let mut garbled = board_entry(5, "e-2", SODER, P1, EntryState::TakenOff);
    garbled.payload = vec![0xff, 0xff, 0xff];
    assert_eq!(
        view.apply(FeedName::Board, &garbled),
        Err(ViewError::Malformed {
            feed: FeedName::Board,
            sequence: 5
        })
    );
    assert_eq!(
        view.facts(P1, Instant::now()),
        Err(ViewError::Unreadable {
            feed: FeedName::Board
        })
    );
    // An entry in no known state is unreadable too; the next readable version clears it.
    assert!(
        view.apply(
            FeedName::Board,
            &board_entry(6, "e-2", SODER, P1, EntryState::Unspecified),
        )
        .is_err()
    );
    view.apply(
        FeedName::Board,
        &board_entry(7, "e-2", SODER, P1, EntryState::TakenOff),
    )
    .unwrap();
    assert!(facts(&view, P1).fact_teams.is_empty());
    assert_eq!(view.cursor(FeedName::Board), 7);

    // Teams and meetings on the same feed move the cursor only.
    view.apply(
        FeedName::Board,
        &change(8, "team", NORDVAST, Utc::now(), vec![1, 2, 3]),
    )
    .unwrap();
    assert_eq!(view.cursor(FeedName::Board), 8);
    assert!(facts(&view, P1).fact_teams.is_empty());
}

#[test]
fn other_entity_kinds_move_the_cursor_only() {
    let view = AccessView::new(BOUND);
    let c = change(5, "referral", P1, Utc::now(), vec![1, 2, 3]);
    view.apply(FeedName::Participants, &c).unwrap();
    assert_eq!(view.cursor(FeedName::Participants), 5);
    current(&view);
    assert_eq!(view.facts(P1, Instant::now()), Ok(None));
}

#[tokio::test]
async fn waiting_ends_when_the_change_is_applied_or_at_the_timeout() {
    let view = Arc::new(AccessView::new(BOUND));
    let timeout = Duration::from_secs(5);
    let writer = {
        let view = Arc::clone(&view);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            view.apply(
                FeedName::Consent,
                &consent_change(3, &sharing("c-1", P1, 2)),
            )
            .unwrap();
            view.apply(
                FeedName::Participants,
                &participant(1, P1, participants_pb::ParticipantStatus::Enrolled, 3),
            )
            .unwrap();
        })
    };
    view.wait_for(FeedName::Consent, 3, timeout).await.unwrap();
    view.wait_for_record(P1, "c-1", 2, timeout).await.unwrap();
    view.wait_for_participant(P1, 3, timeout).await.unwrap();
    writer.await.unwrap();
    // Already applied: immediate.
    view.wait_for(FeedName::Consent, 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        view.wait_for(FeedName::Consent, 4, Duration::from_millis(30))
            .await,
        Err(ViewError::Timeout {
            feed: FeedName::Consent
        })
    );
    assert!(
        view.wait_for_record(P1, "c-1", 3, Duration::from_millis(30))
            .await
            .is_err()
    );
}
