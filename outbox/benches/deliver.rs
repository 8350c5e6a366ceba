//! Throughput of one link's sender to a local HTTPS test double (mutual TLS, SQLite file).
//!
//! Release: `cargo bench -p samsyn-outbox --bench deliver`; debug build:
//! `cargo bench -p samsyn-outbox --bench deliver --profile dev`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Double, Fixture, open_outbox};
use samsyn_outbox::{Deliverer, DeliveryConfig, DeliveryHook};
use tokio::sync::mpsc;

const PARTICIPANTS: u32 = 50;
const PER_PARTICIPANT: u32 = 40;
const BATCH: u32 = 100;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let total = PARTICIPANTS * PER_PARTICIPANT;
    let fx = Fixture::new();
    let double = Double::new();
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_outbox(&fx.db_path()).await;

    let messages: Vec<_> = (0..PER_PARTICIPANT)
        .flat_map(|n| (0..PARTICIPANTS).map(move |p| (p, n)))
        .map(|(p, n)| fx.message(&format!("p{p}"), n))
        .collect();
    let started = Instant::now();
    for batch in messages.chunks(BATCH as usize) {
        outbox.enqueue(batch.to_vec()).await.unwrap();
    }
    let enqueue = started.elapsed();

    for max_in_flight in [1, 8, 32] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hook: Arc<dyn DeliveryHook> = Arc::new(tx);
        let config = DeliveryConfig {
            max_in_flight,
            ..DeliveryConfig::default()
        };
        // Fresh messages for each run: the earlier ones are delivered.
        if max_in_flight != 1 {
            let again: Vec<_> = (0..PER_PARTICIPANT)
                .flat_map(|n| (0..PARTICIPANTS).map(move |p| (p, n)))
                .map(|(p, n)| fx.message(&format!("p{p}"), n))
                .collect();
            for batch in again.chunks(BATCH as usize) {
                outbox.enqueue(batch.to_vec()).await.unwrap();
            }
        }
        let started = Instant::now();
        let sender = Deliverer::spawn(&outbox, fx.link(far.addr), config, Some(hook)).unwrap();
        for _ in 0..total {
            tokio::time::timeout(Duration::from_secs(120), rx.recv())
                .await
                .unwrap()
                .unwrap();
        }
        let elapsed = started.elapsed();
        sender.stop().await;
        println!(
            "deliver: {total} messages, {PARTICIPANTS} participants, max_in_flight {max_in_flight}: \
             {:.0} msgs/s ({elapsed:.2?})",
            f64::from(total) / elapsed.as_secs_f64()
        );
    }
    println!(
        "enqueue: {total} messages in batches of {BATCH}: {:.0} msgs/s ({enqueue:.2?})",
        f64::from(total) / enqueue.as_secs_f64()
    );
    assert_eq!(double.duplicates(), 0);
    assert_eq!(double.arrivals().len() as u32, total * 3);
    far.shutdown().await;
}
