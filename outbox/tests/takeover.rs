//! One pusher at a time: two processes' outboxes on one PostgreSQL schema, each trying to
//! push; only the lock holder delivers, and when it dies the other takes over within the
//! bound, in order per participant.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Double, Fixture, eventually, fast_config, open_url, postgres_url};
use samsyn_outbox::{Deliverer, DelivererHandle, Leading, Link, Outbox, Takeover, lead};

const WAIT: Duration = Duration::from_secs(30);
const MESSAGES_PER_PARTICIPANT: u32 = 40;

/// A sender that a crash ends mid-send (dropped without a stop), and a stop drains.
struct Sender(Option<DelivererHandle>);

impl Drop for Sender {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// One process's pusher: delivers `link` from `outbox` while it holds the lock, counting
/// the messages it recorded delivered.
fn pusher(outbox: &Outbox, link: Link, takeover: Takeover) -> (Leading, Arc<AtomicU64>) {
    let delivered = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&delivered);
    let sending = outbox.clone();
    let leading = lead(outbox, takeover, move |mut stop| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let handle =
            Deliverer::spawn(&sending, link.clone(), fast_config(), Some(Arc::new(tx))).unwrap();
        let counted = Arc::clone(&counted);
        async move {
            let mut sender = Sender(Some(handle));
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => {}
                () = async {
                    while rx.recv().await.is_some() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                } => {}
            }
            if let Some(handle) = sender.0.take() {
                handle.stop().await;
            }
        }
    });
    (leading, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lock_holder_delivers_and_another_takes_over_when_it_dies() {
    let fx = Fixture::new();
    let double = Double::new();
    // Slow answers, so the holder dies with the queue half delivered.
    double.seen.lock().unwrap().delay = Duration::from_millis(100);
    let far = double.start(fx.server_config(&fx.server)).await;
    let url = postgres_url().await;
    // Two processes: each its own connections to the one schema.
    let first = open_url(&url).await;
    let second = open_url(&url).await;
    for n in 0..MESSAGES_PER_PARTICIPANT {
        first
            .enqueue(vec![fx.message("p1", n), fx.message("p2", n)])
            .await
            .unwrap();
    }
    let total = u64::from(MESSAGES_PER_PARTICIPANT) * 2;
    let takeover = Takeover::within(Duration::from_secs(3)).unwrap();

    let (holder, by_first) = pusher(&first, fx.link(far.addr), takeover);
    eventually(WAIT, "the first pusher to lead", || async {
        holder.is_leading()
    })
    .await;
    let (standby, by_second) = pusher(&second, fx.link(far.addr), takeover);
    eventually(WAIT, "the first deliveries", || async {
        by_first.load(Ordering::SeqCst) >= 10
    })
    .await;
    // The standby has had more than one try at the lock by now.
    tokio::time::sleep(takeover.bound() / 2).await;
    assert!(!standby.is_leading(), "two pushers at once");
    assert_eq!(by_second.load(Ordering::SeqCst), 0, "the standby delivered");

    // The holder dies: its sends in flight are dropped unrecorded, its session closes.
    holder.abort();
    let died = Instant::now();
    let before = by_first.load(Ordering::SeqCst);
    eventually(WAIT, "the standby to take over", || async {
        standby.is_leading()
    })
    .await;
    let took_over = died.elapsed();
    assert!(
        took_over <= takeover.bound(),
        "took over after {took_over:?}, bound {:?}",
        takeover.bound()
    );
    eventually(WAIT, "every message delivered", || async {
        second.pending_count(&fx.link_id).await.unwrap() == 0
    })
    .await;
    // The standby delivered the rest. (Its counters cannot say more: the dead holder's
    // notices still queued when it was aborted are lost with it, so the trail of record is
    // the outbox's own delivered count, checked below.)
    assert!(by_second.load(Ordering::SeqCst) > 0);
    assert!(before < total, "the holder died with work left");

    // Each participant's changes arrived once each, in order, across the handover.
    let expected: Vec<u64> = (0..u64::from(MESSAGES_PER_PARTICIPANT)).collect();
    assert_eq!(double.order_of("p1"), expected);
    assert_eq!(double.order_of("p2"), expected);
    // Repeats are only the sends in flight when the holder died (at most one per
    // participant), dropped by their message id.
    assert!(double.duplicates() <= 2, "{} repeats", double.duplicates());
    assert_eq!(second.delivered_count(&fx.link_id).await.unwrap(), total);

    standby.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pusher_hands_over_and_on_sqlite_the_only_process_leads() {
    let fx = Fixture::new();
    let double = Double::new();
    let far = double.start(fx.server_config(&fx.server)).await;
    let takeover = Takeover::default();

    // SQLite: one process, the only writer; it leads at once.
    let sqlite = open_url(&fx.sqlite_url()).await;
    sqlite.enqueue(vec![fx.message("p1", 0)]).await.unwrap();
    let (alone, delivered) = pusher(&sqlite, fx.link(far.addr), takeover);
    eventually(WAIT, "the SQLite pusher to deliver", || async {
        delivered.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(alone.is_leading());
    alone.stop().await;

    // PostgreSQL: a graceful stop gives the lock up for the other at its next try.
    let url = postgres_url().await;
    let first = open_url(&url).await;
    let second = open_url(&url).await;
    let (holder, _) = pusher(&first, fx.link(far.addr), takeover);
    eventually(WAIT, "the first pusher to lead", || async {
        holder.is_leading()
    })
    .await;
    let (standby, by_second) = pusher(&second, fx.link(far.addr), takeover);
    holder.stop().await;
    let stopped = Instant::now();
    second.enqueue(vec![fx.message("p2", 0)]).await.unwrap();
    eventually(WAIT, "the standby to deliver", || async {
        by_second.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(stopped.elapsed() <= takeover.bound());
    assert_eq!(double.order_of("p2"), [0]);
    standby.stop().await;
    far.shutdown().await;
}
