//! The sender of one link: a tokio task that delivers the link's messages.
//!
//! **Order.** The task keeps, per ordering key, only the key's head: its lowest undelivered
//! message. A head is sent when due; at most one message per key is in flight, and the next
//! one becomes the head only once the previous is recorded delivered. A failing head
//! therefore holds back later messages of its own key and no other. A dead head keeps
//! holding them back until [`crate::Outbox::retry_dead`] revives it: delivering a later
//! change of the same participant past a refused one could leave the far side wrong.
//!
//! **Durability.** The database is the truth; the task's map of heads is a cache rebuilt
//! from it at start, after a dead-letter retry and after any storage error. A message is
//! marked delivered only after its 2xx; a crash in between makes it go again, and the far
//! side dedups on `X-Samsyn-Message-Id`.
//!
//! **Wake-ups.** A watch channel from [`crate::Outbox::enqueue`] (new messages), the end of
//! a send, the earliest backoff deadline, and a poll interval (for enqueues by another
//! process on a shared PostgreSQL database).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;
use uuid::Uuid;

use crate::OutboxError;
use crate::client::{Client, FailureKind, Outgoing, Sent};
use crate::link::Link;
use crate::message::{LinkId, MessageState, MessageSummary};
use crate::store::{Changes, HeadRow, Outbox, Recorded, entity::message, summary};

/// How a link's sender behaves.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The wait after a message's first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts of one message.
    pub max_backoff: Duration,
    /// Permanent failures (4xx other than 408/429) after which a message is dead.
    pub max_permanent_failures: u32,
    /// Most messages in flight at once (each of a different ordering key).
    pub max_in_flight: usize,
    /// Limit for TCP connect and TLS handshake.
    pub connect_timeout: Duration,
    /// Limit for one whole request, answer included.
    pub request_timeout: Duration,
    /// How often to look for messages enqueued by another process.
    pub poll_interval: Duration,
    /// How long a graceful stop waits for sends in flight.
    pub stop_timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_permanent_failures: 5,
            max_in_flight: 32,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(10),
        }
    }
}

impl DeliveryConfig {
    /// The wait before attempt `attempts + 1`, after `attempts` failures.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// Told about every delivered message once its delivery is committed, e.g. to write an
/// audit disclosure event. The sender waits for the returned future before going on.
pub trait DeliveryHook: Send + Sync + 'static {
    /// Called once per message marked delivered (again after a crash between the far
    /// side's 2xx and our commit).
    fn on_delivered(&self, message: MessageSummary) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl DeliveryHook for mpsc::Sender<MessageSummary> {
    fn on_delivered(&self, message: MessageSummary) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let sender = self.clone();
        Box::pin(async move {
            // A closed receiver means nobody listens any more; delivery goes on.
            let _ = sender.send(message).await;
        })
    }
}

impl DeliveryHook for mpsc::UnboundedSender<MessageSummary> {
    fn on_delivered(&self, message: MessageSummary) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let _ = self.send(message);
        Box::pin(std::future::ready(()))
    }
}

/// What a sender has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounters {
    /// Messages marked delivered.
    pub delivered: u64,
    /// Attempts that failed for a reason worth retrying (connection, 408/429/5xx, TLS).
    pub transient_failures: u64,
    /// Attempts refused with another 4xx.
    pub permanent_failures: u64,
    /// Attempts refused because the server's certificate was not trusted.
    pub untrusted_peer: u64,
    /// Messages moved to the dead letters.
    pub dead_lettered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    transient_failures: AtomicU64,
    permanent_failures: AtomicU64,
    untrusted_peer: AtomicU64,
    dead_lettered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DeliveryCounters {
        DeliveryCounters {
            delivered: self.delivered.load(Ordering::Relaxed),
            transient_failures: self.transient_failures.load(Ordering::Relaxed),
            permanent_failures: self.permanent_failures.load(Ordering::Relaxed),
            untrusted_peer: self.untrusted_peer.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Starts senders.
#[derive(Debug)]
pub struct Deliverer;

impl Deliverer {
    /// Starts the sender of `link` on the current tokio runtime. Run one per link and
    /// store: two senders of one link would each keep their own order.
    pub fn spawn(
        outbox: &Outbox,
        link: Link,
        config: DeliveryConfig,
        hook: Option<Arc<dyn DeliveryHook>>,
    ) -> Result<DelivererHandle, OutboxError> {
        if config.max_in_flight == 0 || config.max_permanent_failures == 0 {
            return Err(OutboxError::Invalid(
                "delivery config (limits must be above 0)",
            ));
        }
        let client = Client::new(
            link.reloading_client_config()?,
            link.target()?,
            config.connect_timeout,
            config.request_timeout,
        );
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let changes = outbox.subscribe();
        let seen = *changes.borrow();
        let worker = Worker {
            outbox: outbox.clone(),
            link: link.id.clone(),
            client: Arc::new(client),
            config,
            hook,
            counters: counters.clone(),
            keys: HashMap::new(),
            in_flight: HashMap::new(),
            high_water: 0,
            sends: JoinSet::new(),
            changes,
            seen,
            needs_reload: true,
            revivals: 0,
            last_poll: Instant::now(),
        };
        let task = tokio::spawn(worker.run(stop_rx));
        Ok(DelivererHandle {
            link: link.id,
            stop,
            task,
            counters,
        })
    }
}

/// A running sender. Dropping it stops the sender gracefully in the background.
#[derive(Debug)]
pub struct DelivererHandle {
    link: LinkId,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl DelivererHandle {
    /// The link it sends on.
    pub fn link(&self) -> &LinkId {
        &self.link
    }

    /// What it has done so far.
    pub fn counters(&self) -> DeliveryCounters {
        self.counters.snapshot()
    }

    /// Stops taking new messages, waits (up to the stop timeout) for sends in flight and
    /// records them, then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, link = %self.link, "outbox sender ended abnormally");
        }
    }

    /// Ends the sender at once, like a crash: sends in flight are dropped unrecorded and go
    /// again later.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// What the sender knows about one ordering key.
#[derive(Debug)]
enum KeyState {
    /// The head, waiting until its next attempt is due.
    Waiting(HeadRow),
    /// The head is being sent.
    InFlight,
    /// The head is dead.
    Blocked,
}

/// A finished send.
struct Finished {
    row: message::Model,
    sent: Sent,
}

struct Worker {
    outbox: Outbox,
    link: LinkId,
    client: Arc<Client>,
    config: DeliveryConfig,
    hook: Option<Arc<dyn DeliveryHook>>,
    counters: Arc<Counters>,
    keys: HashMap<String, KeyState>,
    /// The ordering key of every running send, by task.
    in_flight: HashMap<tokio::task::Id, String>,
    /// Every message of the link up to this sequence is known to `keys`.
    high_water: i64,
    sends: JoinSet<Finished>,
    changes: watch::Receiver<Changes>,
    seen: Changes,
    needs_reload: bool,
    /// The revivals count last seen (see [`Outbox::retry_dead`]).
    revivals: u64,
    last_poll: Instant,
}

impl Worker {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut pause = self.config.initial_backoff;
        loop {
            if *stop.borrow() {
                break;
            }
            let healthy = self.step_storage().await;
            let wake = if healthy {
                pause = self.config.initial_backoff;
                self.next_wake()
            } else {
                // The database is down or refused: wait, then rebuild from it.
                self.needs_reload = true;
                pause = (pause * 2).min(self.config.max_backoff);
                Instant::now() + pause
            };
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(joined) = self.sends.join_next_with_id(), if !self.sends.is_empty() => {
                    let mut done = vec![joined];
                    while let Some(more) = self.sends.try_join_next_with_id() {
                        done.push(more);
                    }
                    self.finish(done).await;
                }
                changed = self.changes.changed() => {
                    if changed.is_ok() {
                        let now = *self.changes.borrow_and_update();
                        if now.reloads != self.seen.reloads {
                            self.needs_reload = true;
                        } else if let Err(error) = self.pick_up_new().await {
                            self.storage_failed(&error);
                        }
                        self.seen = now;
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if self.last_poll.elapsed() >= self.config.poll_interval
                        && let Err(error) = self.pick_up_new().await
                    {
                        self.storage_failed(&error);
                    }
                }
            }
        }
        self.drain().await;
    }

    /// Rebuilds from the database if needed and starts the sends that are due.
    async fn step_storage(&mut self) -> bool {
        if self.needs_reload {
            if let Err(error) = self.reload().await {
                self.storage_failed(&error);
                return false;
            }
            self.needs_reload = false;
        }
        if let Err(error) = self.launch_due().await {
            self.storage_failed(&error);
            return false;
        }
        true
    }

    fn storage_failed(&mut self, error: &OutboxError) {
        tracing::warn!(%error, link = %self.link, "outbox storage failed; will rebuild from it");
        self.needs_reload = true;
    }

    /// When to look again if nothing else happens.
    fn next_wake(&self) -> Instant {
        let poll = self.last_poll + self.config.poll_interval;
        if self.sends.len() >= self.config.max_in_flight {
            return poll;
        }
        let now_utc = Utc::now();
        let now = Instant::now();
        self.keys
            .values()
            .filter_map(|state| match state {
                KeyState::Waiting(head) => Some(head.next_attempt_at),
                _ => None,
            })
            .min()
            .map(|due| {
                let wait = (due - now_utc).to_std().unwrap_or(Duration::ZERO);
                // Never spin: a head due now that could not start waits for the next event.
                now + wait.max(Duration::from_millis(1))
            })
            .map_or(poll, |due| due.min(poll))
    }

    /// Reads every head from the database; keys in flight stay in flight.
    async fn reload(&mut self) -> Result<(), OutboxError> {
        let max = self.outbox.max_sequence(&self.link).await?;
        let heads = self.outbox.heads(&self.link, 0, max, None, true).await?;
        self.keys
            .retain(|_, state| matches!(state, KeyState::InFlight));
        for head in heads {
            if self.keys.contains_key(&head.ordering_key) {
                continue;
            }
            self.insert_head(head);
        }
        self.high_water = max;
        self.last_poll = Instant::now();
        Ok(())
    }

    fn insert_head(&mut self, head: HeadRow) {
        let state = if MessageState::parse(&head.state) == Some(MessageState::Dead) {
            KeyState::Blocked
        } else {
            KeyState::Waiting(head.clone())
        };
        self.keys.insert(head.ordering_key, state);
    }

    /// Adds the heads of keys that had nothing waiting, from messages enqueued since the
    /// high-water mark.
    async fn pick_up_new(&mut self) -> Result<(), OutboxError> {
        self.last_poll = Instant::now();
        let revivals = self.outbox.revivals(&self.link).await?;
        if revivals != self.revivals {
            // Dead letters were queued again (perhaps by another process): their keys are
            // blocked here until the heads are read again.
            self.revivals = revivals;
            self.needs_reload = true;
        }
        let max = self.outbox.max_sequence(&self.link).await?;
        if max <= self.high_water {
            return Ok(());
        }
        let heads = self
            .outbox
            .heads(&self.link, self.high_water, max, None, false)
            .await?;
        for head in heads {
            // A known key already has an older head; its new messages follow it.
            if !self.keys.contains_key(&head.ordering_key) {
                self.insert_head(head);
            }
        }
        self.high_water = max;
        Ok(())
    }

    /// Starts sending every due head, oldest first, up to the in-flight limit.
    async fn launch_due(&mut self) -> Result<(), OutboxError> {
        let capacity = self.config.max_in_flight.saturating_sub(self.sends.len());
        if capacity == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let mut due: Vec<(i64, Uuid)> = self
            .keys
            .values()
            .filter_map(|state| match state {
                KeyState::Waiting(head) if head.next_attempt_at <= now => {
                    Some((head.sequence, head.message_id))
                }
                _ => None,
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        due.sort_unstable();
        due.truncate(capacity);
        let ids: Vec<Uuid> = due.iter().map(|(_, id)| *id).collect();
        let rows = self.outbox.load(&ids).await?;
        if rows.len() < ids.len() {
            // Some head changed state under us (another process?): read them again.
            self.needs_reload = true;
        }
        for mut row in rows {
            let Some(KeyState::Waiting(head)) = self.keys.get(&row.ordering_key) else {
                continue;
            };
            if head.message_id != row.message_id {
                continue;
            }
            self.keys
                .insert(row.ordering_key.clone(), KeyState::InFlight);
            let key = row.ordering_key.clone();
            let client = self.client.clone();
            let handle = self.sends.spawn(async move {
                let body = Bytes::from(std::mem::take(&mut row.body));
                let sent = client
                    .send(Outgoing {
                        id: row.message_id,
                        method: &row.method,
                        path: &row.path,
                        content_type: &row.content_type,
                        body,
                    })
                    .await;
                Finished { row, sent }
            });
            self.in_flight.insert(handle.id(), key);
        }
        Ok(())
    }

    /// Records finished sends in one transaction, then moves each key on.
    async fn finish(&mut self, done: Vec<Result<(tokio::task::Id, Finished), JoinError>>) {
        let now = Utc::now();
        let mut finished = Vec::with_capacity(done.len());
        for joined in done {
            match joined {
                Ok((id, result)) => {
                    self.in_flight.remove(&id);
                    finished.push(result);
                }
                Err(error) => {
                    // A send task panicked: its message stays pending and goes again.
                    tracing::error!(%error, link = %self.link, "outbox send task failed");
                    if let Some(key) = self.in_flight.remove(&error.id()) {
                        self.keys.remove(&key);
                    }
                    self.needs_reload = true;
                }
            }
        }
        let recorded: Vec<Recorded> = finished.iter().map(|f| self.outcome(f, now)).collect();
        let stale = match self.outbox.record(&recorded).await {
            Ok(stale) => stale,
            Err(error) => {
                for f in &finished {
                    self.keys.remove(&f.row.ordering_key);
                }
                self.storage_failed(&error);
                return;
            }
        };
        let mut delivered = Vec::new();
        for (f, outcome) in finished.into_iter().zip(recorded) {
            let key = f.row.ordering_key.clone();
            if stale.contains(&f.row.message_id) {
                // Changed behind this send (an operator's retry): the database says what now.
                self.count_failure(&f);
                self.keys.remove(&key);
                self.needs_reload = true;
                continue;
            }
            match outcome {
                Recorded::Delivered { .. } => {
                    bump(&self.counters.delivered);
                    delivered.push(f.row);
                }
                Recorded::Failed {
                    attempts,
                    permanent_failures,
                    next_attempt_at,
                    dead,
                    ..
                } => {
                    self.count_failure(&f);
                    if dead {
                        bump(&self.counters.dead_lettered);
                        tracing::warn!(
                            link = %self.link,
                            message_id = %f.row.message_id,
                            status = ?f.sent_status(),
                            "outbox message dead after repeated refusals"
                        );
                        self.keys.insert(key, KeyState::Blocked);
                    } else {
                        self.keys.insert(
                            key.clone(),
                            KeyState::Waiting(HeadRow {
                                message_id: f.row.message_id,
                                ordering_key: key,
                                sequence: f.row.sequence,
                                state: MessageState::Pending.as_str().to_owned(),
                                attempts,
                                permanent_failures,
                                next_attempt_at,
                            }),
                        );
                    }
                }
            }
        }
        if delivered.is_empty() {
            return;
        }
        let keys: Vec<String> = delivered.iter().map(|r| r.ordering_key.clone()).collect();
        for key in &keys {
            self.keys.remove(key);
        }
        match self
            .outbox
            .heads(&self.link, 0, i64::MAX, Some(&keys), true)
            .await
        {
            Ok(heads) => {
                for head in heads {
                    if !self.keys.contains_key(&head.ordering_key) {
                        self.insert_head(head);
                    }
                }
            }
            Err(error) => self.storage_failed(&error),
        }
        delivered.sort_by_key(|r| r.sequence);
        if let Some(hook) = &self.hook {
            for mut row in delivered {
                row.state = MessageState::Delivered.as_str().to_owned();
                row.attempts += 1;
                row.delivered_at = Some(now);
                if let Some(summary) = summary(&row) {
                    hook.on_delivered(summary).await;
                }
            }
        }
    }

    fn outcome(&self, f: &Finished, now: DateTime<Utc>) -> Recorded {
        match f.sent {
            Sent::Delivered(status) => Recorded::Delivered {
                id: f.row.message_id,
                status: status.as_u16(),
            },
            Sent::Failed(kind, status) => {
                let attempts = f.row.attempts.saturating_add(1);
                let permanent_failures = f.row.permanent_failures + i32::from(kind.is_permanent());
                let dead = u32::try_from(permanent_failures).unwrap_or(0)
                    >= self.config.max_permanent_failures;
                let wait = self
                    .config
                    .backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
                let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                Recorded::Failed {
                    id: f.row.message_id,
                    attempts,
                    sent_with_permanent_failures: f.row.permanent_failures,
                    permanent_failures,
                    next_attempt_at: now + wait,
                    status: status.map(|s| s.as_u16()),
                    error: kind.as_str(),
                    dead,
                }
            }
        }
    }

    fn count_failure(&self, f: &Finished) {
        let Sent::Failed(kind, _) = f.sent else {
            return;
        };
        match kind {
            FailureKind::PermanentStatus => bump(&self.counters.permanent_failures),
            FailureKind::UntrustedPeer => {
                bump(&self.counters.untrusted_peer);
                // Every message to a misconfigured peer fails alike: warn at the 1st, 2nd,
                // 4th, 8th ... so the log says it without drowning in it.
                let refusals = self.counters.untrusted_peer.load(Ordering::Relaxed);
                if refusals.is_power_of_two() {
                    tracing::warn!(
                        link = %self.link,
                        refusals,
                        "outbox peer certificate not trusted"
                    );
                }
            }
            _ => bump(&self.counters.transient_failures),
        }
        tracing::debug!(
            link = %self.link,
            message_id = %f.row.message_id,
            kind = kind.as_str(),
            status = ?f.sent_status(),
            "outbox send failed"
        );
    }

    /// After a stop: waits for sends in flight and records them, up to the stop timeout.
    async fn drain(&mut self) {
        let deadline = Instant::now() + self.config.stop_timeout;
        while !self.sends.is_empty() {
            match tokio::time::timeout_at(deadline, self.sends.join_next_with_id()).await {
                Ok(Some(joined)) => self.finish(vec![joined]).await,
                Ok(None) => break,
                Err(_) => {
                    self.sends.abort_all();
                    break;
                }
            }
        }
    }
}

impl Finished {
    fn sent_status(&self) -> Option<u16> {
        match self.sent {
            Sent::Delivered(status) => Some(status.as_u16()),
            Sent::Failed(_, status) => status.map(|s: StatusCode| s.as_u16()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = DeliveryConfig::default();
        let waits: Vec<u128> = (1..=10).map(|n| config.backoff(n).as_millis()).collect();
        assert_eq!(
            waits,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(30));
    }
}
