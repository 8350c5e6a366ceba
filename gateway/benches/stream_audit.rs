//! What auditing live streams costs (issue 18): 50 screens watch the board through the
//! gateway while entries change; each change reaches every watcher, and what the streams
//! show is audited in batches, not one commit per message. Prints the delivery time of a
//! change to all 50 watchers (p50/p99) and the audit events the streams wrote per change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::Revision;
use support::*;

const WATCHERS: usize = 50;
const CHANGES: usize = 40;
const CASE_MANAGER: &str = "SE2321000255-cm01";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    println!(
        "cores: {}, {WATCHERS} watchers, {CHANGES} changes",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let stack = Stack::start().await;
    let team_id = board_team(&stack).await;
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
    let entry_id = put_on_board(&stack, &team_id, &id).await;
    stack.settle().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));

    let (delivered, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    for _ in 0..WATCHERS {
        let mut stream =
            BoardServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token))
                .watch_board(board_pb::WatchBoardRequest {
                    team_id: team_id.clone(),
                    after_sequence: 0,
                })
                .await
                .unwrap()
                .into_inner();
        stream.message().await.unwrap().unwrap();
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Ok(Some(_)) = stream.message().await {
                let _ = delivered.send(Instant::now());
            }
        });
    }
    let events_before = stack.trail.events().len();
    let mut board = BoardServiceClient::new(stack.board.channel.clone());
    let mut revision = board
        .get_entry(board_pb::GetEntryRequest {
            entry_id: entry_id.clone(),
            participant_id: pid(&id),
        })
        .await
        .unwrap()
        .into_inner()
        .revision
        .map_or(1, |r| r.value);
    let mut times = Vec::new();
    let started = Instant::now();
    for n in 0..CHANGES {
        let sent = Instant::now();
        revision = board
            .update_entry(board_pb::UpdateEntryRequest {
                entry_id: entry_id.clone(),
                participant_id: pid(&id),
                expected_revision: Some(Revision { value: revision }),
                recorded_by: staff_ref(CASE_MANAGER, REGION),
                status: Some(board_pb::StatusAssessment {
                    level: 1 + (n % 3) as u32,
                    trend: board_pb::Trend::Unchanged.into(),
                    note: "Oförändrat".into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .revision
            .map_or(revision + 1, |r| r.value);
        // Every watcher gets this change.
        for _ in 0..WATCHERS {
            let at = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("a watcher got the change")
                .unwrap();
            times.push(at.saturating_duration_since(sent));
        }
    }
    let elapsed = started.elapsed();
    // Let one batch of stream audit events land.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let stream_events = stack.trail.events()[events_before..]
        .iter()
        .filter(|e| e.rpc.ends_with("/WatchBoard"))
        .count();
    times.sort();
    println!(
        "change to all {WATCHERS} watchers: p50 {:.2} ms  p99 {:.2} ms  ({:.1} changes/s)",
        percentile(&times, 50.0).as_secs_f64() * 1e3,
        percentile(&times, 99.0).as_secs_f64() * 1e3,
        CHANGES as f64 / elapsed.as_secs_f64()
    );
    println!(
        "stream audit events: {stream_events} for {} messages shown ({:.3} commits per message)",
        CHANGES * WATCHERS,
        stream_events as f64 / (CHANGES * WATCHERS) as f64
    );
    stack.stop().await;
}
