//! Board read latency and live fan-out over real gRPC and mutual TLS, on SQLite and
//! PostgreSQL.
//!
//! A team of 220 participants, each with a past stay on the board (status history, actions,
//! taken off), 40 of them on the board now; the seed-004 pilot's 10 on the board is measured
//! too. Prints GetBoard and GetAgenda latency, and the time for one change to reach 50
//! WatchBoard subscribers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_postgres_url, fresh_sqlite_url};
use samsyn_proto::board::v1 as pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{CalendarDate, OrganisationId, ParticipantId, StaffRef};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

type Client = BoardServiceClient<Channel>;

const PARTICIPANTS: usize = 220;
const READS: usize = 200;
const WATCHERS: usize = 50;

fn staff() -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: "SE2321000081-S0001".into(),
        organisation_id: Some(OrganisationId {
            value: "SE2321000081-E001".into(),
        }),
        unit_id: String::new(),
    })
}

fn date(offset: i64) -> Option<CalendarDate> {
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(offset);
    Some(samsyn_kit::time::to_calendar_date(d))
}

fn participant(n: usize) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: format!("0193a5f0-0000-7000-8000-{n:012}"),
    })
}

async fn put_on(client: &mut Client, team_id: &str, n: usize, stay: usize) -> pb::BoardEntry {
    client
        .put_on_board(pb::PutOnBoardRequest {
            request_id: format!("p{n}-s{stay}-{team_id}"),
            team_id: team_id.to_owned(),
            participant_id: participant(n),
            reason: "Kris efter utskrivning från slutenvården".into(),
            criteria: vec!["crisis".into()],
            status: Some(pb::StatusAssessment {
                level: 1 + (n % 3) as u32,
                trend: pb::Trend::Worsening.into(),
                note: "Täta kontakter".into(),
            }),
            next_review_on: date((n % 5) as i64 - 2),
            actions: vec![
                pb::NewAction {
                    description: "Hembesök".into(),
                    owner: staff(),
                    due_on: date((n % 4) as i64 - 2),
                },
                pb::NewAction {
                    description: "Kontakta socialsekreterare".into(),
                    owner: staff(),
                    due_on: date(3),
                },
            ],
            recorded_by: staff(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A team with `PARTICIPANTS` past stays and `on_board` current ones.
async fn seed(client: &mut Client, on_board: usize) -> String {
    let team = client
        .create_team(pb::CreateTeamRequest {
            name: format!("FACT-team Malmö {on_board}"),
            owner_organisation_id: Some(OrganisationId {
                value: "SE2321000081-E001".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for n in 0..PARTICIPANTS {
        // A past stay: put on, one status change, taken off.
        let entry = put_on(client, &team.team_id, n, 0).await;
        let entry = client
            .update_entry(pb::UpdateEntryRequest {
                entry_id: entry.entry_id.clone(),
                participant_id: participant(n),
                expected_revision: entry.revision,
                recorded_by: staff(),
                status: Some(pb::StatusAssessment {
                    level: 3,
                    trend: pb::Trend::Improving.into(),
                    note: String::new(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        client
            .take_off_board(pb::TakeOffBoardRequest {
                entry_id: entry.entry_id,
                participant_id: participant(n),
                expected_revision: entry.revision,
                reason: "Stabil".into(),
                recorded_by: staff(),
            })
            .await
            .unwrap();
        if n < on_board {
            put_on(client, &team.team_id, n, 1).await;
        }
    }
    team.team_id
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "{name:<44} p50 {:>7.2} ms   p95 {:>7.2} ms   max {:>7.2} ms   (n={})",
        pct(50).as_secs_f64() * 1e3,
        pct(95).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}

async fn reads(client: &mut Client, team_id: &str, on_board: usize) {
    let mut board = Vec::with_capacity(READS);
    let mut agenda = Vec::with_capacity(READS);
    for _ in 0..READS {
        let started = Instant::now();
        let response = client
            .get_board(pb::GetBoardRequest {
                team_id: team_id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        board.push(started.elapsed());
        assert_eq!(response.entries.len(), on_board);
        let started = Instant::now();
        client
            .get_agenda(pb::GetAgendaRequest {
                team_id: team_id.to_owned(),
                on: None,
            })
            .await
            .unwrap();
        agenda.push(started.elapsed());
    }
    report(
        &format!("GetBoard  ({PARTICIPANTS} participants, {on_board} on)"),
        board,
    );
    report(
        &format!("GetAgenda ({PARTICIPANTS} participants, {on_board} on)"),
        agenda,
    );
}

async fn fan_out(served: &ServedPart, team_id: &str) {
    let mut streams = Vec::with_capacity(WATCHERS);
    for _ in 0..WATCHERS {
        // Watchers share one HTTP/2 connection here; each has its own stream and feed task.
        let channel = served.channel.clone();
        let mut stream = BoardServiceClient::new(channel)
            .watch_board(pb::WatchBoardRequest {
                team_id: team_id.to_owned(),
                after_sequence: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let snapshot = stream.next().await.unwrap().unwrap();
        assert_eq!(snapshot.kind(), pb::BoardUpdateKind::Snapshot);
        streams.push(stream);
    }
    let mut client = BoardServiceClient::new(served.channel.clone());
    let mut all = Vec::new();
    let mut first = Vec::new();
    for round in 0..10 {
        let board = client
            .get_board(pb::GetBoardRequest {
                team_id: team_id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        let entry = &board.entries[round % board.entries.len()];
        let started = Instant::now();
        let waits: Vec<_> = streams
            .iter_mut()
            .map(|s| async move {
                let update = s.next().await.unwrap().unwrap();
                (update, started.elapsed())
            })
            .collect();
        let write = client.update_entry(pb::UpdateEntryRequest {
            entry_id: entry.entry_id.clone(),
            participant_id: entry.participant_id.clone(),
            expected_revision: entry.revision,
            recorded_by: staff(),
            status: Some(pb::StatusAssessment {
                level: 1,
                trend: pb::Trend::Worsening.into(),
                note: format!("runda {round}"),
            }),
            ..Default::default()
        });
        let (written, received) = tokio::join!(write, futures_join_all(waits));
        written.unwrap();
        let latest = received.iter().map(|(_, d)| *d).max().unwrap();
        let earliest = received.iter().map(|(_, d)| *d).min().unwrap();
        assert!(
            received
                .iter()
                .all(|(u, _)| u.kind() == pb::BoardUpdateKind::EntryChanged)
        );
        all.push(latest);
        first.push(earliest);
    }
    report(&format!("write → first of {WATCHERS} watchers"), first);
    report(&format!("write → all {WATCHERS} watchers"), all);
}

/// Awaits every future concurrently (a tiny join_all without another dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::with_capacity(futures.len());
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    for f in pinned.iter_mut() {
        set.push(f.as_mut().await);
    }
    set
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for postgres in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let database_url = if postgres {
                fresh_postgres_url().await.expect("the PostgreSQL server")
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
            let mut client = BoardServiceClient::new(served.channel.clone());
            let backend = if postgres { "PostgreSQL" } else { "SQLite" };
            println!("board bench: {backend}, real gRPC over mutual TLS, one client");
            let started = Instant::now();
            let pilot = seed(&mut client, 10).await;
            let team = seed(&mut client, 40).await;
            println!(
                "seeded 2 teams × {PARTICIPANTS} participants in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            reads(&mut client, &pilot, 10).await;
            reads(&mut client, &team, 40).await;
            fan_out(&served, &team).await;
            served.stop().await;
        }
    });
}
