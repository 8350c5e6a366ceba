//! The board over real gRPC and mutual TLS, on SQLite and PostgreSQL: a participant's stay on
//! the board from put-on to take-off, the morning meeting, the live watch, and refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_postgres_url, fresh_sqlite_url, new_year};
use samsyn_proto::board::v1 as pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{
    CalendarDate, OrganisationId, ParticipantId, Period, Revision, StaffRef, WatchChangesRequest,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

type Client = BoardServiceClient<Channel>;

struct Harness {
    client: Client,
    _served: ServedPart,
    _dir: tempfile::TempDir,
}

async fn start(postgres: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let database_url = if postgres {
        fresh_postgres_url()
            .await
            .expect("the test PostgreSQL server")
    } else {
        fresh_sqlite_url(dir.path())
    };
    let part = samsyn_board::part(&PartContext {
        database_url,
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
    })
    .await
    .unwrap();
    let served = ServedPart::start(part).await;
    Harness {
        client: BoardServiceClient::new(served.channel.clone()),
        _served: served,
        _dir: dir,
    }
}

fn staff(id: &str, org: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: id.into(),
        organisation_id: Some(OrganisationId { value: org.into() }),
        unit_id: String::new(),
    })
}

/// A region nurse (fictional HSA-style id).
fn nurse() -> Option<StaffRef> {
    staff("SE2321000081-S0001", "SE2321000081-E001")
}

fn participant(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId { value: id.into() })
}

fn date(year: i32, month: u32, day: u32) -> Option<CalendarDate> {
    Some(CalendarDate { year, month, day })
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn cal(d: chrono::NaiveDate) -> Option<CalendarDate> {
    Some(samsyn_kit::time::to_calendar_date(d))
}

fn days(n: i64) -> chrono::NaiveDate {
    today() + chrono::Duration::days(n)
}

async fn create_team(client: &mut Client) -> pb::Team {
    client
        .create_team(pb::CreateTeamRequest {
            request_id: "team-1".into(),
            name: "FACT-team Nordväst Skåne – Ängelholm".into(),
            owner_organisation_id: Some(OrganisationId {
                value: "SE2321000081-E001".into(),
            }),
            coordinators: vec![pb::Coordinator {
                staff: staff("kommun-samordnare-1", "1283"),
                role: pb::CoordinatorRole::Main.into(),
            }],
            criteria: vec![],
            status_levels: vec![],
        })
        .await
        .unwrap()
        .into_inner()
}

fn put_on(team: &pb::Team, who: &str, level: u32) -> pb::PutOnBoardRequest {
    pb::PutOnBoardRequest {
        request_id: format!("put-on-{who}"),
        team_id: team.team_id.clone(),
        participant_id: participant(who),
        reason: "Akut försämring efter utskrivning från slutenvården; ångest och sömnlöshet".into(),
        criteria: vec!["crisis".into(), "inpatient_discharge".into()],
        status: Some(pb::StatusAssessment {
            level,
            trend: pb::Trend::Worsening.into(),
            note: "Röd: dagliga hembesök".into(),
        }),
        next_review_on: cal(days(2)),
        actions: vec![pb::NewAction {
            description: "Hembesök med läkemedelsgenomgång".into(),
            owner: nurse(),
            due_on: cal(days(1)),
        }],
        recorded_by: nurse(),
    }
}

fn field_violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

const ANNA: &str = "0193a5f0-0000-7000-8000-000000000001";
const BO: &str = "0193a5f0-0000-7000-8000-000000000002";

async fn a_stay_on_the_board(postgres: bool) {
    let mut harness = start(postgres).await;
    let client = &mut harness.client;
    let team = create_team(client).await;
    assert_eq!(team.name, "FACT-team Nordväst Skåne – Ängelholm");
    assert_eq!(team.status_levels.len(), 3);
    assert_eq!(team.criteria[0].label, "Risk för återfall");

    // Put on the board; a retried call with the same key gets the same entry back.
    let request = put_on(&team, ANNA, 1);
    let entry = client
        .put_on_board(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = client.put_on_board(request).await.unwrap().into_inner();
    assert_eq!(again.entry_id, entry.entry_id);
    assert_eq!(
        entry.reason,
        "Akut försämring efter utskrivning från slutenvården; ångest och sömnlöshet"
    );
    assert_eq!(entry.status.as_ref().unwrap().note, "Röd: dagliga hembesök");
    assert_eq!(
        entry.actions[0].description,
        "Hembesök med läkemedelsgenomgång"
    );
    assert_eq!(entry.days_on_board, 0);
    assert_eq!(entry.state(), pb::EntryState::OnBoard);
    // A second entry for the same participant on the same board is refused.
    let mut other_key = put_on(&team, ANNA, 1);
    other_key.request_id = "another-key".into();
    let err = client.put_on_board(other_key).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // The status changes twice: yellow and improving, then green.
    let mut revision = entry.revision.unwrap().value;
    for (level, trend, note) in [
        (2, pb::Trend::Improving, "Gul: sover bättre"),
        (3, pb::Trend::Improving, "Grön: stabil i en vecka"),
    ] {
        let updated = client
            .update_entry(pb::UpdateEntryRequest {
                entry_id: entry.entry_id.clone(),
                participant_id: participant(ANNA),
                expected_revision: Some(Revision { value: revision }),
                recorded_by: nurse(),
                reason: None,
                criteria: None,
                status: Some(pb::StatusAssessment {
                    level,
                    trend: trend.into(),
                    note: note.into(),
                }),
                next_review_on: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.status.as_ref().unwrap().level, level);
        revision = updated.revision.unwrap().value;
    }
    // Another screen still holding the first revision is told the current one.
    let stale = client
        .update_entry(pb::UpdateEntryRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
            expected_revision: entry.revision,
            recorded_by: nurse(),
            reason: Some("Ny orsak".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(
        stale.get_details_error_info().unwrap().metadata["current_revision"],
        revision.to_string()
    );

    // An overdue action (due yesterday) is added; the first action is completed.
    let with_action = client
        .add_action(pb::AddActionRequest {
            request_id: "action-1".into(),
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
            action: Some(pb::NewAction {
                description: "Kontakta boendestödjare om nyckelöverlämning".into(),
                owner: staff("kommun-samordnare-1", "1283"),
                due_on: cal(days(-1)),
            }),
            recorded_by: nurse(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_action.actions.len(), 2);
    let done = client
        .complete_action(pb::CompleteActionRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
            action_id: with_action.actions[0].action_id.clone(),
            recorded_by: nurse(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(done.actions[0].done_at.is_some());
    assert!(done.actions[1].done_at.is_none());

    // A second participant, reviewed in three days, is on the board too.
    client.put_on_board(put_on(&team, BO, 2)).await.unwrap();

    // The agenda the day after tomorrow: Anna is due for review and has an overdue action;
    // both are new (no earlier meeting). Tomorrow: only the overdue action and news.
    let agenda = client
        .get_agenda(pb::GetAgendaRequest {
            team_id: team.team_id.clone(),
            on: cal(days(2)),
        })
        .await
        .unwrap()
        .into_inner();
    let anna = agenda
        .items
        .iter()
        .find(|i| i.participant_id.as_ref().unwrap().value == ANNA)
        .unwrap();
    // Two days on, Anna is no longer new: due for review, with an overdue action.
    assert_eq!(
        anna.reasons().collect::<Vec<_>>(),
        [
            pb::AgendaReason::DueForReview,
            pb::AgendaReason::OverdueActions
        ]
    );
    assert_eq!(anna.overdue_actions.len(), 1);
    assert_eq!(
        anna.overdue_actions[0].description,
        "Kontakta boendestödjare om nyckelöverlämning"
    );
    let agenda_today = client
        .get_agenda(pb::GetAgendaRequest {
            team_id: team.team_id.clone(),
            on: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agenda_today.items.len(), 2);
    assert!(
        agenda_today
            .items
            .iter()
            .all(|i| i.reasons.contains(&(pb::AgendaReason::NewEntry as i32)))
    );
    // Bo (yellow) sorts after Anna? Anna is green now: most acute first puts Bo first.
    assert_eq!(
        agenda_today.items[0].participant_id.as_ref().unwrap().value,
        BO
    );

    // The morning meeting: minutes about Anna with a decision and a new action.
    let meeting = client
        .start_meeting(pb::StartMeetingRequest {
            request_id: "meeting-1".into(),
            team_id: team.team_id.clone(),
            held_on: cal(today()),
            chair: nurse(),
            attendees: vec![
                nurse().unwrap(),
                staff("kommun-samordnare-1", "1283").unwrap(),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let discussion = client
        .record_discussion(pb::RecordDiscussionRequest {
            request_id: "discussion-1".into(),
            meeting_id: meeting.meeting_id.clone(),
            participant_id: participant(ANNA),
            notes: "Mår bättre; önskar återgå till ordinarie kontakt".into(),
            decisions: vec!["Tas av tavlan på fredag om läget håller".into()],
            actions: vec![pb::NewAction {
                description: "Boka SIP-möte med kommunen".into(),
                owner: nurse(),
                due_on: cal(days(3)),
            }],
            recorded_by: nurse(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(discussion.actions[0].meeting_id, meeting.meeting_id);
    let minutes = client
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: meeting.meeting_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(minutes.discussions.len(), 1);
    assert_eq!(
        minutes.discussions[0].decisions,
        ["Tas av tavlan på fredag om läget håller"]
    );
    assert_eq!(
        minutes.discussions[0].actions[0].description,
        "Boka SIP-möte med kommunen"
    );
    let meetings = client
        .list_meetings(pb::ListMeetingsRequest {
            team_id: team.team_id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meetings.meetings.len(), 1);

    // Take Anna off; the board keeps Bo only; taking off twice is refused.
    let current = client
        .get_entry(pb::GetEntryRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.actions.len(), 3);
    let off = client
        .take_off_board(pb::TakeOffBoardRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
            expected_revision: current.revision,
            reason: "Stabil; klarar vardagen med punktinsatser".into(),
            recorded_by: nurse(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.state(), pb::EntryState::TakenOff);
    assert_eq!(
        off.take_off_reason,
        "Stabil; klarar vardagen med punktinsatser"
    );
    let board = client
        .get_board(pb::GetBoardRequest {
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let on_board: Vec<_> = board
        .entries
        .iter()
        .map(|e| e.participant_id.as_ref().unwrap().value.as_str())
        .collect();
    assert_eq!(on_board, [BO]);
    let again = client
        .take_off_board(pb::TakeOffBoardRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: participant(ANNA),
            expected_revision: off.revision,
            reason: "igen".into(),
            recorded_by: nurse(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // The timeline: three status points in order, and the board events around them.
    let timeline = client
        .get_timeline(pb::GetTimelineRequest {
            participant_id: participant(ANNA),
            period: Some(Period {
                start: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 3600,
                    nanos: 0,
                }),
                end: None,
            }),
            team_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let levels: Vec<_> = timeline
        .points
        .iter()
        .map(|p| p.status.as_ref().unwrap().level)
        .collect();
    assert_eq!(levels, [1, 2, 3]);
    let notes: Vec<_> = timeline
        .points
        .iter()
        .map(|p| p.status.as_ref().unwrap().note.as_str())
        .collect();
    assert_eq!(
        notes,
        [
            "Röd: dagliga hembesök",
            "Gul: sover bättre",
            "Grön: stabil i en vecka"
        ]
    );
    let times: Vec<_> = timeline
        .points
        .iter()
        .map(|p| {
            let t = p.recorded_at.unwrap();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let kinds: Vec<_> = timeline.events.iter().map(|e| e.kind()).collect();
    use pb::BoardEventKind as K;
    assert_eq!(
        kinds,
        [
            K::PutOn,
            K::ActionAdded,
            K::Updated,
            K::Updated,
            K::ActionAdded,
            K::ActionCompleted,
            K::Discussed,
            K::ActionAdded,
            K::TakenOff
        ]
    );
    assert_eq!(
        timeline.events.last().unwrap().detail,
        "Stabil; klarar vardagen med punktinsatser"
    );
    assert!(timeline.before_period.is_none());

    // A period that starts just after the second point: one point in it, and the second as
    // the level the plot starts from.
    // One microsecond later: PostgreSQL keeps timestamps to the microsecond.
    let second = samsyn_kit::time::from_timestamp(&timeline.points[1].recorded_at.unwrap())
        .unwrap()
        + chrono::Duration::microseconds(1);
    let later = client
        .get_timeline(pb::GetTimelineRequest {
            participant_id: participant(ANNA),
            period: Some(Period {
                start: Some(samsyn_kit::time::to_timestamp(second)),
                end: None,
            }),
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(later.points.len(), 1);
    assert_eq!(later.before_period.unwrap().status.unwrap().level, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stay_on_the_board_sqlite() {
    a_stay_on_the_board(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stay_on_the_board_postgres() {
    a_stay_on_the_board(true).await;
}

async fn next_update(
    stream: &mut tonic::Streaming<pb::BoardUpdate>,
) -> (pb::BoardUpdate, Duration) {
    let started = Instant::now();
    let update = tokio::time::timeout(Duration::from_secs(3), stream.next())
        .await
        .expect("an update within 3 s")
        .unwrap()
        .unwrap();
    (update, started.elapsed())
}

async fn the_watch_follows_and_resumes(postgres: bool) {
    // Keep the harness whole: dropping it stops the server.
    let harness = start(postgres).await;
    let mut client = harness.client.clone();
    let team = create_team(&mut client).await;
    let other_team = client
        .create_team(pb::CreateTeamRequest {
            name: "Annat team".into(),
            owner_organisation_id: Some(OrganisationId {
                value: "SE2321000081-E002".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client.put_on_board(put_on(&team, ANNA, 1)).await.unwrap();

    let mut stream = client
        .watch_board(pb::WatchBoardRequest {
            team_id: team.team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let (snapshot, _) = next_update(&mut stream).await;
    assert_eq!(snapshot.kind(), pb::BoardUpdateKind::Snapshot);
    assert_eq!(snapshot.entries.len(), 1);

    // A change made after subscribing reaches the screen; another team's does not.
    let mut elsewhere = put_on(&other_team, BO, 1);
    elsewhere.request_id = "put-on-elsewhere".into();
    client.put_on_board(elsewhere).await.unwrap();
    let sent = Instant::now();
    let bo = client
        .put_on_board(put_on(&team, BO, 2))
        .await
        .unwrap()
        .into_inner();
    let committed = Instant::now();
    let (update, _) = next_update(&mut stream).await;
    // Delivery after the write has answered (so after its commit), and the whole round.
    let delivery = committed.elapsed();
    let round = sent.elapsed();
    assert_eq!(update.kind(), pb::BoardUpdateKind::EntryChanged);
    assert_eq!(update.entries[0].entry_id, bo.entry_id);
    assert_eq!(update.entries[0].reason, bo.reason);
    eprintln!("watch delivery after commit: {delivery:?}; write + delivery: {round:?}");
    assert!(delivery < Duration::from_millis(100), "{delivery:?}");
    let cursor = update.cursor;
    drop(stream);

    // While the screen is away, Bo's status changes and an action is added.
    let changed = client
        .update_entry(pb::UpdateEntryRequest {
            entry_id: bo.entry_id.clone(),
            participant_id: participant(BO),
            expected_revision: bo.revision,
            recorded_by: nurse(),
            status: Some(pb::StatusAssessment {
                level: 1,
                trend: pb::Trend::Worsening.into(),
                note: "Försämrad".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .add_action(pb::AddActionRequest {
            request_id: "a-1".into(),
            entry_id: bo.entry_id.clone(),
            participant_id: participant(BO),
            action: Some(pb::NewAction {
                description: "Ring närstående".into(),
                owner: nurse(),
                due_on: cal(today()),
            }),
            recorded_by: nurse(),
        })
        .await
        .unwrap();

    // Resuming from the cursor gives exactly the two missed changes, in order.
    let mut stream = client
        .watch_board(pb::WatchBoardRequest {
            team_id: team.team_id.clone(),
            after_sequence: cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let (first, _) = next_update(&mut stream).await;
    let (second, _) = next_update(&mut stream).await;
    assert!(first.cursor > cursor && second.cursor > first.cursor);
    assert_eq!(first.entries[0].revision, changed.revision);
    assert_eq!(first.entries[0].status.as_ref().unwrap().note, "Försämrad");
    assert_eq!(second.entries[0].actions[1].description, "Ring närstående");
    let nothing_more = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(nothing_more.is_err(), "no repeated or extra update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_follows_and_resumes_sqlite() {
    the_watch_follows_and_resumes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_follows_and_resumes_postgres() {
    the_watch_follows_and_resumes(true).await;
}

async fn bad_input_is_refused_and_nothing_is_stored(postgres: bool) {
    // Keep the harness whole: dropping it stops the server.
    let harness = start(postgres).await;
    let mut client = harness.client.clone();
    let team = create_team(&mut client).await;
    let feed_before = feed_len(&mut client).await;

    // Unknown team.
    let mut unknown = put_on(&team, ANNA, 1);
    unknown.team_id = "0193a5f0-0000-7000-8000-0000000000ff".into();
    let err = client.put_on_board(unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // An action without an owner, and a missing reason: every field named at once.
    let mut no_owner = put_on(&team, ANNA, 1);
    no_owner.actions[0].owner = None;
    no_owner.reason = String::new();
    let err = client.put_on_board(no_owner).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err), ["reason", "actions[0].owner"]);

    // A status level outside the team's three-step scale, and a criterion it does not list.
    let err = client
        .put_on_board(put_on(&team, ANNA, 4))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err), ["status.level"]);
    let mut unknown_criterion = put_on(&team, ANNA, 1);
    unknown_criterion.criteria = vec!["crisis".into(), "weather".into()];
    let err = client.put_on_board(unknown_criterion).await.unwrap_err();
    assert_eq!(field_violations(&err), ["criteria[1]"]);

    // A bad participant id, an impossible date, an oversized reason.
    let mut bad = put_on(&team, "19121212-1212", 1);
    bad.next_review_on = date(2027, 2, 29);
    bad.reason = "å".repeat(2001);
    let err = client.put_on_board(bad).await.unwrap_err();
    assert_eq!(
        field_violations(&err),
        ["participant_id.value", "reason", "next_review_on"]
    );
    // The message names fields, never the values sent.
    assert!(!err.message().contains("19121212"));

    // Dates and times outside the years 1 to 9999, named by field.
    let mut year_10000 = put_on(&team, ANNA, 1);
    year_10000.next_review_on = date(10_000, 1, 1);
    let err = client.put_on_board(year_10000).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err), ["next_review_on"]);
    let timeline = |start: i32, end: i32| pb::GetTimelineRequest {
        participant_id: participant(ANNA),
        period: Some(Period {
            start: Some(new_year(start)),
            end: Some(new_year(end)),
        }),
        team_id: String::new(),
    };
    for (request, field) in [
        (timeline(-1200, 2026), "period.start"),
        (timeline(2026, 10_000), "period.end"),
    ] {
        let err = client.get_timeline(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(field_violations(&err), [field]);
    }

    // A municipality cannot own the board.
    let err = client
        .create_team(pb::CreateTeamRequest {
            name: "Kommunens team".into(),
            owner_organisation_id: Some(OrganisationId {
                value: "1283".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&err), ["owner_organisation_id.value"]);

    // Taking off a participant who is not on the board: unknown entry, then a taken-off one.
    let err = client
        .take_off_board(pb::TakeOffBoardRequest {
            entry_id: "0193a5f0-0000-7000-8000-0000000000ee".into(),
            participant_id: participant(ANNA),
            expected_revision: Some(Revision { value: 1 }),
            reason: "Stabil".into(),
            recorded_by: nurse(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Nothing of the above was stored: the board is empty and the feed did not move.
    let board = client
        .get_board(pb::GetBoardRequest {
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(board.entries.is_empty());
    assert_eq!(feed_len(&mut client).await, feed_before);

    // Someone else's entry id with this participant is not found either.
    let entry = client
        .put_on_board(put_on(&team, ANNA, 1))
        .await
        .unwrap()
        .into_inner();
    let err = client
        .get_entry(pb::GetEntryRequest {
            entry_id: entry.entry_id,
            participant_id: participant(BO),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn feed_len(client: &mut Client) -> usize {
    let mut stream = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(200), stream.next()).await
    {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_stored_sqlite() {
    bad_input_is_refused_and_nothing_is_stored(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_stored_postgres() {
    bad_input_is_refused_and_nothing_is_stored(true).await;
}

async fn teams_are_configured(postgres: bool) {
    let harness = start(postgres).await;
    let mut client = harness.client.clone();
    let level = |level: u32, colour: &str, meaning: &str| pb::StatusLevel {
        level,
        colour: colour.into(),
        meaning: meaning.into(),
    };
    let request = pb::CreateTeamRequest {
        request_id: "team-lund".into(),
        name: "FACT Lund–Eslöv".into(),
        owner_organisation_id: Some(OrganisationId {
            value: "SE2321000081-E009".into(),
        }),
        coordinators: vec![
            pb::Coordinator {
                staff: staff("lund-samordnare", "1281"),
                role: pb::CoordinatorRole::Main.into(),
            },
            pb::Coordinator {
                staff: staff("eslov-samordnare", "1285"),
                role: pb::CoordinatorRole::Deputy.into(),
            },
        ],
        criteria: vec![
            pb::Criterion {
                code: "crisis".into(),
                label: "Kris – behöver täta kontakter".into(),
            },
            pb::Criterion {
                code: "housing_loss".into(),
                label: "Hotad förlust av bostad".into(),
            },
        ],
        status_levels: vec![
            level(1, "red", "Akut"),
            level(2, "orange", "Allvarlig oro"),
            level(3, "yellow", "Oro"),
            level(4, "#2e7d32", "Stabil"),
        ],
    };
    let team = client
        .create_team(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        client.create_team(request).await.unwrap().into_inner(),
        team,
        "a retried create returns the first answer"
    );
    assert_eq!(team.criteria[1].label, "Hotad förlust av bostad");
    let listed = client
        .list_teams(pb::ListTeamsRequest { page: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.teams, std::slice::from_ref(&team));

    // Someone is at level 4; a three-step scale would strand them.
    let mut on_four = put_on(&team, ANNA, 4);
    on_four.criteria = vec!["housing_loss".into()];
    client.put_on_board(on_four).await.unwrap();
    let shrink = pb::UpdateTeamRequest {
        team_id: team.team_id.clone(),
        expected_revision: team.revision,
        name: team.name.clone(),
        coordinators: team.coordinators.clone(),
        criteria: team.criteria.clone(),
        status_levels: team.status_levels[..3].to_vec(),
    };
    let err = client.update_team(shrink).await.unwrap_err();
    assert_eq!(field_violations(&err), ["status_levels"]);

    // A region employee is not a municipal coordinator.
    let mut wrong = pb::UpdateTeamRequest {
        team_id: team.team_id.clone(),
        expected_revision: team.revision,
        name: "FACT Lund–Eslöv–Höör".into(),
        coordinators: vec![pb::Coordinator {
            staff: nurse(),
            role: pb::CoordinatorRole::Main.into(),
        }],
        ..Default::default()
    };
    let err = client.update_team(wrong.clone()).await.unwrap_err();
    assert_eq!(field_violations(&err), ["coordinators[0].staff"]);

    // A rename keeps the configuration; the old revision is then stale.
    wrong.coordinators = team.coordinators.clone();
    let renamed = client
        .update_team(wrong.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "FACT Lund–Eslöv–Höör");
    assert_eq!(renamed.status_levels, team.status_levels);
    assert_eq!(renamed.revision.unwrap().value, 2);
    let err = client.update_team(wrong.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);

    // New criteria alone keep the four-step scale.
    let mut criteria = renamed.criteria.clone();
    criteria.push(pb::Criterion {
        code: "new_to_team".into(),
        label: "Ny i teamet".into(),
    });
    let recriteria = client
        .update_team(pb::UpdateTeamRequest {
            expected_revision: renamed.revision,
            criteria,
            ..wrong
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recriteria.criteria.len(), 3);
    assert_eq!(recriteria.status_levels, team.status_levels);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_configured_sqlite() {
    teams_are_configured(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_configured_postgres() {
    teams_are_configured(true).await;
}

async fn concurrent_writers(postgres: bool) {
    let harness = start(postgres).await;
    let mut client = harness.client.clone();
    let team = create_team(&mut client).await;
    // Twenty staff put twenty participants on at once: every one lands, none is lost.
    let puts = (0..20).map(|n| {
        let mut client = client.clone();
        let request = put_on(&team, &format!("0193a5f0-0000-7000-8000-{n:012}"), 2);
        async move { client.put_on_board(request).await }
    });
    let entries: Vec<_> = futures_all(puts.collect()).await;
    let codes: Vec<_> = entries
        .iter()
        .map(|r| r.as_ref().err().map(tonic::Status::code))
        .collect();
    assert!(codes.iter().all(Option::is_none), "{codes:?}");
    let entry = entries[0].as_ref().unwrap().get_ref().clone();
    // Ten screens change the same entry from the same revision: one wins, nine are told.
    let updates = (0..10).map(|n| {
        let mut client = client.clone();
        let request = pb::UpdateEntryRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: entry.participant_id.clone(),
            expected_revision: entry.revision,
            recorded_by: nurse(),
            reason: Some(format!("Skäl nummer {n}")),
            ..Default::default()
        };
        async move { client.update_entry(request).await }
    });
    let results = futures_all(updates.collect()).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let aborted = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Aborted))
        .count();
    assert_eq!((won, aborted), (1, 9));
    let board = client
        .get_board(pb::GetBoardRequest {
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.entries.len(), 20);
}

/// Runs the futures concurrently on the runtime and collects their outputs in order.
async fn futures_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_sqlite() {
    concurrent_writers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_postgres() {
    concurrent_writers(true).await;
}
