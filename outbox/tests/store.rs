//! The queue itself, without sending: idempotent and atomic enqueue, counts, migrations.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, open_outbox, open_url, postgres_url};
use samsyn_outbox::Outbox;
use samsyn_outbox::{MessageState, OutboxError};

#[tokio::test]
async fn enqueueing_a_known_id_again_does_nothing() {
    let fx = Fixture::new();
    idempotent_case(&fx, open_outbox(&fx.db_path()).await).await;
}

#[tokio::test]
async fn enqueueing_a_known_id_again_does_nothing_on_postgres() {
    let fx = Fixture::new();
    idempotent_case(&fx, open_url(&postgres_url().await).await).await;
}

async fn idempotent_case(fx: &Fixture, outbox: Outbox) {
    let first = fx.message("p1", 0);
    let mut changed = first.clone();
    changed.body = r#"{"n":99}"#.to_owned();
    assert_eq!(
        outbox
            .enqueue(vec![first.clone(), first.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        outbox
            .enqueue(vec![changed, fx.message("p1", 1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 2);
    let summary = outbox.summary(first.id).await.unwrap().unwrap();
    assert_eq!(summary.state, MessageState::Pending);
    assert_eq!(summary.attempts, 0);
    let stored = {
        use sea_orm::EntityTrait;
        samsyn_outbox::entity::message::Entity::find_by_id(first.id)
            .one(outbox.connection())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(stored.body, first.body, "the first enqueue wins");
}

#[tokio::test]
async fn a_batch_with_an_invalid_message_stores_nothing() {
    let fx = Fixture::new();
    let outbox = open_outbox(&fx.db_path()).await;
    let mut bad = fx.message("p1", 1);
    bad.path = "no-leading-slash".to_owned();
    let result = outbox.enqueue(vec![fx.message("p1", 0), bad]).await;
    assert!(matches!(result, Err(OutboxError::Invalid("message path"))));
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 0);
}

#[tokio::test]
async fn sequences_follow_enqueue_order_across_batches_and_reopen() {
    let fx = Fixture::new();
    let (a, b, c) = (
        fx.message("p1", 0),
        fx.message("p2", 0),
        fx.message("p1", 1),
    );
    {
        let outbox = open_outbox(&fx.db_path()).await;
        outbox.enqueue(vec![a.clone(), b.clone()]).await.unwrap();
    }
    // Reopening runs the migrations again: they must be a no-op.
    let outbox = open_outbox(&fx.db_path()).await;
    outbox.enqueue(vec![c.clone()]).await.unwrap();
    let mut sequences = Vec::new();
    for m in [&a, &b, &c] {
        sequences.push(outbox.summary(m.id).await.unwrap().unwrap().sequence);
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    let stats = outbox.stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].link, fx.link_id);
    assert_eq!(
        (stats[0].pending, stats[0].delivered, stats[0].dead),
        (3, 0, 0)
    );
    assert!(stats[0].oldest_pending_at.is_some());
}

/// Writers enqueueing at once each keep their own order, and no sequence is handed out twice.
async fn concurrent_case(fx: &Fixture, outbox: Outbox) {
    let mut writers = Vec::new();
    for w in 0..4 {
        let outbox = outbox.clone();
        let batches: Vec<_> = (0..10)
            .map(|n| {
                vec![
                    fx.message(&format!("w{w}"), 2 * n),
                    fx.message(&format!("w{w}"), 2 * n + 1),
                ]
            })
            .collect();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for batch in batches {
                ids.extend(batch.iter().map(|m| m.id));
                outbox.enqueue(batch).await.unwrap();
            }
            ids
        }));
    }
    let mut all = std::collections::HashSet::new();
    for writer in writers {
        let ids = writer.await.unwrap();
        let mut sequences = Vec::new();
        for id in ids {
            sequences.push(outbox.summary(id).await.unwrap().unwrap().sequence);
        }
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
        all.extend(sequences);
    }
    assert_eq!(all.len(), 80);
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_keep_order_on_sqlite() {
    let fx = Fixture::new();
    concurrent_case(&fx, open_outbox(&fx.db_path()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_keep_order_on_postgres() {
    let fx = Fixture::new();
    concurrent_case(&fx, open_url(&postgres_url().await).await).await;
}

#[tokio::test]
async fn a_consumer_cursor_moves_with_its_messages_and_survives_a_reopen() {
    let fx = Fixture::new();
    cursor_case(&fx, open_outbox(&fx.db_path()).await, Some(&fx)).await;
}

#[tokio::test]
async fn a_consumer_cursor_moves_with_its_messages_on_postgres() {
    let fx = Fixture::new();
    cursor_case(&fx, open_url(&postgres_url().await).await, None).await;
}

async fn cursor_case(fx: &Fixture, outbox: Outbox, reopen: Option<&Fixture>) {
    assert_eq!(outbox.cursor("plans").await.unwrap(), 0);
    outbox
        .enqueue_from(vec![fx.message("p1", 0)], "plans", 7)
        .await
        .unwrap();
    // A change that sends nothing still moves the cursor.
    outbox.enqueue_from(Vec::new(), "plans", 9).await.unwrap();
    assert_eq!(outbox.cursor("plans").await.unwrap(), 9);
    assert_eq!(outbox.cursor("participants").await.unwrap(), 0);
    // A batch that fails moves neither.
    let mut bad = fx.message("p1", 1);
    bad.path = "no-leading-slash".to_owned();
    assert!(matches!(
        outbox.enqueue_from(vec![bad], "plans", 12).await,
        Err(OutboxError::Invalid(_))
    ));
    assert_eq!(outbox.cursor("plans").await.unwrap(), 9);
    assert_eq!(outbox.pending_count(&fx.link_id).await.unwrap(), 1);
    if let Some(fx) = reopen {
        drop(outbox);
        let again = open_outbox(&fx.db_path()).await;
        assert_eq!(again.cursor("plans").await.unwrap(), 9);
    }
}
