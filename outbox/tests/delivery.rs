//! Delivery to an HTTPS test double with mutual TLS: order, outages, restarts, trust,
//! dead letters.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Double, Fixture, eventually, fast_config, open_outbox, open_url, postgres_url};
use samsyn_outbox::{Deliverer, DeliveryHook, MessageState, MessageSummary, RetrySelection};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

fn hook() -> (
    Arc<dyn DeliveryHook>,
    mpsc::UnboundedReceiver<MessageSummary>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(tx), rx)
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<MessageSummary>,
    n: usize,
) -> Vec<MessageSummary> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(summary)) => got.push(summary),
            _ => panic!("only {} of {n} deliveries reported", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_in_order_both_flowing_each_exactly_once() {
    let fx = Fixture::new();
    in_order_case(&fx, &fx.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_in_order_on_postgres() {
    let fx = Fixture::new();
    in_order_case(&fx, &postgres_url().await).await;
}

async fn in_order_case(fx: &Fixture, url: &str) {
    let double = Double::new();
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_url(url).await;
    // Interleaved batches: p1 and p2 alternate within and across transactions.
    for batch in 0..4 {
        let messages = (0..5)
            .flat_map(|i| {
                [
                    fx.message("p1", batch * 5 + i),
                    fx.message("p2", batch * 5 + i),
                ]
            })
            .collect();
        assert_eq!(outbox.enqueue(messages).await.unwrap(), 10);
    }
    let (hook, mut delivered) = hook();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), Some(hook)).unwrap();

    let reported = collect(&mut delivered, 40).await;

    let expected: Vec<u64> = (0..20).collect();
    assert_eq!(double.order_of("p1"), expected);
    assert_eq!(double.order_of("p2"), expected);
    assert_eq!(double.duplicates(), 0);
    let arrivals = double.arrivals();
    let first_p2 = arrivals.iter().position(|a| a.participant == "p2").unwrap();
    let last_p1 = arrivals
        .iter()
        .rposition(|a| a.participant == "p1")
        .unwrap();
    assert!(first_p2 < last_p1, "p2 waited for all of p1");
    let ids: HashSet<_> = reported.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 40);
    assert!(reported.iter().all(|s| s.state == MessageState::Delivered));
    assert_eq!(outbox.delivered_count(&fx.link_id).await.unwrap(), 40);
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 0);
    assert_eq!(sender.counters().delivered, 40);
    sender.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_while_the_far_side_is_down() {
    let fx = Fixture::new();
    // Reserve an address, then leave it unserved: connections are refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let outbox = open_outbox(&fx.db_path()).await;
    let messages = (0..10)
        .flat_map(|n| [fx.message("p1", n), fx.message("p2", n)])
        .collect();
    outbox.enqueue(messages).await.unwrap();
    let (hook, mut delivered) = hook();
    let sender = Deliverer::spawn(&outbox, fx.link(addr), fast_config(), Some(hook)).unwrap();
    eventually(WAIT, "refused attempts", || async {
        sender.counters().transient_failures >= 6
    })
    .await;
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 20);
    assert_eq!(outbox.delivered_count(&fx.link_id).await.unwrap(), 0);

    let double = Double::new();
    let far = double.serve(
        TcpListener::bind(addr).await.unwrap(),
        fx.server_config(&fx.server),
    );
    collect(&mut delivered, 20).await;

    let expected: Vec<u64> = (0..10).collect();
    assert_eq!(double.order_of("p1"), expected);
    assert_eq!(double.order_of("p2"), expected);
    assert_eq!(double.duplicates(), 0);
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 0);
    sender.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_way_loses_nothing_and_resends_nothing_acknowledged() {
    let fx = Fixture::new();
    let double = Double::new();
    double.seen.lock().unwrap().delay = Duration::from_millis(5);
    let far = double.start(fx.server_config(&fx.server)).await;
    let participants = ["p1", "p2", "p3"];
    let total = 90;
    {
        let outbox = open_outbox(&fx.db_path()).await;
        let messages = (0..30)
            .flat_map(|n| participants.map(|p| fx.message(p, n)))
            .collect();
        outbox.enqueue(messages).await.unwrap();
        let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), None).unwrap();
        eventually(WAIT, "a third delivered", || async {
            outbox.delivered_count(&fx.link_id).await.unwrap() >= 30
        })
        .await;
        // Like SIGKILL: sends in flight are dropped, nothing more is recorded.
        sender.abort();
        outbox.connection().clone().close().await.unwrap();
    }
    double.next_generation();

    let outbox = open_outbox(&fx.db_path()).await;
    let acknowledged: HashSet<_> = {
        use samsyn_outbox::entity::message;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        message::Entity::find()
            .filter(message::Column::State.eq("delivered"))
            .all(outbox.connection())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.message_id)
            .collect()
    };
    let before = acknowledged.len();
    assert!(
        before >= 30 && before < total,
        "restart not mid-way: {before}"
    );
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), None).unwrap();
    eventually(WAIT, "all delivered after the restart", || async {
        outbox.delivered_count(&fx.link_id).await.unwrap() == total as u64
    })
    .await;

    let arrivals = double.arrivals();
    assert_eq!(
        arrivals.len(),
        total,
        "each message arrives (first time) once"
    );
    let expected: Vec<u64> = (0..30).collect();
    for p in participants {
        assert_eq!(double.order_of(p), expected, "order of {p}");
    }
    assert!(
        arrivals
            .iter()
            .filter(|a| a.generation == 1)
            .all(|a| !acknowledged.contains(&a.id)),
        "a message committed as delivered was sent again"
    );
    // Only the sends in flight at the crash may repeat.
    assert!(double.duplicates() <= fast_config().max_in_flight as u64);
    assert_eq!(sender.counters().delivered as usize, total - before);
    sender.stop().await;
    far.shutdown().await;
}

async fn refused_as_untrusted(expired: bool) {
    let fx = Fixture::new();
    let double = Double::new();
    let identity = if expired {
        &fx.expired_server
    } else {
        &fx.rogue_server
    };
    let far = double.start(fx.server_config(identity)).await;
    let outbox = open_outbox(&fx.db_path()).await;
    let messages = vec![fx.message("p1", 0), fx.message("p2", 0)];
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    outbox.enqueue(messages).await.unwrap();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), None).unwrap();
    eventually(WAIT, "untrusted refusals", || async {
        sender.counters().untrusted_peer >= 6
    })
    .await;
    let counters = sender.counters();
    sender.stop().await;

    assert!(
        double.arrivals().is_empty(),
        "a request reached an untrusted server"
    );
    assert_eq!(double.seen.lock().unwrap().bad_requests, 0);
    assert_eq!(counters.delivered, 0);
    assert_eq!(
        counters.dead_lettered, 0,
        "untrusted is retried, never dead"
    );
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 2);
    for id in ids {
        let summary = outbox.summary(id).await.unwrap().unwrap();
        assert_eq!(summary.state, MessageState::Pending);
        assert_eq!(summary.last_error.as_deref(), Some("untrusted_peer"));
        assert_eq!(summary.last_status, None);
    }
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_never_sent_to() {
    refused_as_untrusted(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_is_never_sent_to() {
    refused_as_untrusted(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_refusals_make_a_dead_letter_that_retry_revives() {
    let fx = Fixture::new();
    dead_letter_case(&fx, &fx.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_postgres() {
    let fx = Fixture::new();
    dead_letter_case(&fx, &postgres_url().await).await;
}

async fn dead_letter_case(fx: &Fixture, url: &str) {
    let double = Double::new();
    double.answer("p1", Some(422));
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_url(url).await;
    let refused = fx.message("p1", 0);
    let refused_id = refused.id;
    outbox
        .enqueue(vec![
            refused,
            fx.message("p1", 1),
            fx.message("p2", 0),
            fx.message("p2", 1),
        ])
        .await
        .unwrap();
    let (hook, mut delivered) = hook();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), Some(hook)).unwrap();
    eventually(WAIT, "a dead letter", || async {
        !outbox.dead_letters(&fx.link_id).await.unwrap().is_empty()
    })
    .await;
    collect(&mut delivered, 2).await;

    let dead = outbox.dead_letters(&fx.link_id).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, refused_id);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_status, Some(422));
    assert_eq!(dead[0].last_error.as_deref(), Some("permanent_status"));
    assert_eq!(
        double.refused("p1"),
        3,
        "tried exactly max_permanent_failures times"
    );
    assert_eq!(double.order_of("p2"), [0, 1]);
    // The dead head holds back p1's later message.
    assert!(double.order_of("p1").is_empty());
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 1);
    assert_eq!(sender.counters().dead_lettered, 1);

    double.answer("p1", None);
    let revived = outbox
        .retry_dead(&fx.link_id, RetrySelection::Ids(vec![refused_id]))
        .await
        .unwrap();
    assert_eq!(revived, 1);
    collect(&mut delivered, 2).await;
    assert_eq!(double.order_of("p1"), [0, 1]);
    assert!(outbox.dead_letters(&fx.link_id).await.unwrap().is_empty());
    assert_eq!(outbox.delivered_count(&fx.link_id).await.unwrap(), 4);
    assert_eq!(
        outbox
            .retry_dead(&fx.link_id, RetrySelection::All)
            .await
            .unwrap(),
        0
    );
    sender.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_answered_after_a_retry_does_not_kill_the_message() {
    let fx = Fixture::new();
    refusal_across_retry_case(&fx, &fx.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_answered_after_a_retry_on_postgres() {
    let fx = Fixture::new();
    refusal_across_retry_case(&fx, &postgres_url().await).await;
}

/// The far side is fixed and an operator queues the link again while a refusal from before
/// the fix is still on its way back: that stale refusal must not make the message dead.
async fn refusal_across_retry_case(fx: &Fixture, url: &str) {
    let double = Double::new();
    double.answer("p1", Some(422));
    double.seen.lock().unwrap().refusal_delay = Duration::from_millis(400);
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_url(url).await;
    outbox.enqueue(vec![fx.message("p1", 0)]).await.unwrap();
    let (hook, mut delivered) = hook();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), Some(hook)).unwrap();
    // The last refusal fast_config allows is decided, not yet answered.
    eventually(WAIT, "the third refusal", || async {
        double.refused("p1") == 3
    })
    .await;
    double.answer("p1", None);
    outbox
        .retry_dead(&fx.link_id, RetrySelection::All)
        .await
        .unwrap();

    collect(&mut delivered, 1).await;
    assert_eq!(double.order_of("p1"), [0]);
    assert!(outbox.dead_letters(&fx.link_id).await.unwrap().is_empty());
    assert_eq!(sender.counters().dead_lettered, 0);
    sender.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_participant_does_not_hold_back_another() {
    let fx = Fixture::new();
    let double = Double::new();
    double.answer("p1", Some(503));
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_outbox(&fx.db_path()).await;
    let messages = (0..3)
        .map(|n| fx.message("p1", n))
        .chain((0..5).map(|n| fx.message("p2", n)))
        .collect();
    outbox.enqueue(messages).await.unwrap();
    let (hook, mut delivered) = hook();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), Some(hook)).unwrap();

    let first = collect(&mut delivered, 5).await;
    assert!(first.iter().all(|s| s.ordering_key == "p2"));
    assert_eq!(double.order_of("p2"), [0, 1, 2, 3, 4]);
    eventually(WAIT, "p1 retried", || async { double.refused("p1") >= 3 }).await;
    assert!(double.order_of("p1").is_empty());
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 3);
    assert!(
        outbox.dead_letters(&fx.link_id).await.unwrap().is_empty(),
        "503 is transient"
    );

    double.answer("p1", None);
    collect(&mut delivered, 3).await;
    assert_eq!(double.order_of("p1"), [0, 1, 2]);
    sender.stop().await;
    far.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_records_the_sends_in_flight() {
    let fx = Fixture::new();
    let double = Double::new();
    double.seen.lock().unwrap().delay = Duration::from_millis(300);
    let far = double.start(fx.server_config(&fx.server)).await;
    let outbox = open_outbox(&fx.db_path()).await;
    outbox
        .enqueue(vec![
            fx.message("p1", 0),
            fx.message("p2", 0),
            fx.message("p1", 1),
        ])
        .await
        .unwrap();
    let sender = Deliverer::spawn(&outbox, fx.link(far.addr), fast_config(), None).unwrap();
    eventually(WAIT, "two requests received", || async {
        double.seen.lock().unwrap().received >= 2
    })
    .await;

    sender.stop().await;

    // Both answers were waited for and recorded; p1's second message was not started.
    assert_eq!(double.arrivals().len(), 2);
    assert_eq!(outbox.delivered_count(&fx.link_id).await.unwrap(), 2);
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 1);
    assert_eq!(double.seen.lock().unwrap().received, 2);
    far.shutdown().await;
}
