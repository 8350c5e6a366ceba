//! A durable outbox for messages to external systems.
//!
//! The gateway enqueues changes (FHIR R4 JSON) with [`Outbox::enqueue`], in one transaction;
//! a [`Deliverer`] per link sends them over HTTPS with mutual TLS, in order per ordering key
//! (participant), at most one in flight per key, retrying with capped exponential backoff.
//! Every request carries `X-Samsyn-Message-Id`, stable across retries and restarts, so the
//! far side can drop a repeat. Messages refused permanently ([`DeliveryConfig::max_permanent_failures`]
//! times) become dead letters, listed by [`Outbox::dead_letters`] and revived by
//! [`Outbox::retry_dead`]. Of several processes sharing the outbox, only one delivers at a
//! time ([`lead`]), and another takes over within a bounded time when it dies.

mod client;
mod deliver;
mod error;
mod lead;
mod link;
mod message;
mod store;

pub use client::{FailureKind, MESSAGE_ID_HEADER};
pub use deliver::{Deliverer, DelivererHandle, DeliveryConfig, DeliveryCounters, DeliveryHook};
pub use error::OutboxError;
pub use lead::{Leading, Takeover, lead};
pub use link::Link;
pub use message::{FHIR_JSON, LinkId, LinkStats, MessageState, MessageSummary, OutboundMessage};
pub use store::{Migrator, Outbox, RetrySelection, entity};
