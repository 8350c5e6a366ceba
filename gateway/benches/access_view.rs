//! Access-view read cost: `facts()` for 2 000 participants, idle and with a writer applying
//! consent changes as fast as it can. Prints numbers: `cargo bench -p samsyn-gateway --bench access_view`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use samsyn_gateway::access_view::testing::*;
use samsyn_gateway::access_view::{AccessView, FeedName};
use samsyn_proto::participants::v1 as participants_pb;

fn main() {
    use participants_pb::CareRole as R;
    let view = Arc::new(AccessView::new(Duration::from_secs(60)));
    let ids: Vec<String> = (0..2000)
        .map(|n| format!("0198c0de-0000-7000-8000-{n:012}"))
        .collect();
    let mut sequence = 0;
    for id in &ids {
        sequence += 1;
        view.apply(
            FeedName::Participants,
            &participant(
                sequence,
                id,
                participants_pb::ParticipantStatus::Enrolled,
                3,
            ),
        )
        .unwrap();
        sequence += 1;
        let team = vec![
            coordinator("hbg-soc-7", HELSINGBORG),
            member("SE2321000255-P001", REGION, R::CaseManager),
        ];
        view.apply(FeedName::Participants, &care_team(sequence, id, 4, team))
            .unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let n = n as u64;
        view.apply(
            FeedName::Consent,
            &consent_change(n + 1, &sharing(&format!("c-{n}"), id, 1)),
        )
        .unwrap();
    }
    current(&view);

    let measure = |label: &str| {
        let mut samples = Vec::with_capacity(200_000);
        for i in 0..200_000 {
            let id = &ids[i % ids.len()];
            let start = Instant::now();
            let f = view.facts(id, start).unwrap().unwrap();
            std::hint::black_box(f);
            samples.push(start.elapsed());
        }
        samples.sort();
        let total: Duration = samples.iter().sum();
        println!(
            "{label}: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            total / samples.len() as u32,
            samples[samples.len() / 2],
            samples[samples.len() * 99 / 100],
            samples[samples.len() - 1]
        );
    };
    measure("facts(), idle");

    // A writer applying consent versions as fast as it can meanwhile.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let view = Arc::clone(&view);
        let stop = Arc::clone(&stop);
        let ids = ids.clone();
        std::thread::spawn(move || {
            let mut sequence = view.cursor(FeedName::Consent);
            let mut applied = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sequence += 1;
                let id = &ids[(sequence as usize) % ids.len()];
                view.apply(
                    FeedName::Consent,
                    &consent_change(sequence, &sharing("c-x", id, 2)),
                )
                .unwrap();
                applied += 1;
            }
            applied
        })
    };
    let start = Instant::now();
    measure("facts(), writer busy");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let applied = writer.join().unwrap();
    println!(
        "writer: {applied} changes applied in {:?} ({:.0}/s)",
        start.elapsed(),
        applied as f64 / start.elapsed().as_secs_f64()
    );
}
