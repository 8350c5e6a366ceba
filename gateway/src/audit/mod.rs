//! The audit hook: every decision, allowed or denied, is handed to the audit trail before the
//! response leaves the gateway. A trail that cannot take an event fails the call closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use samsyn_proto::common::v1::DataCategory;

use crate::auth::Principal;
use crate::policy::Action;

pub mod service;
pub mod sessions;
pub mod store;

/// What the gateway did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Refused before forwarding (no credentials, a denial, a malformed request, the view
    /// behind).
    Refused,
    /// Forwarded to the owning service; the status says how it ended.
    Forwarded,
    /// A write decided and about to be forwarded; its outcome follows as a `Forwarded`
    /// event with the same call id.
    Intended,
}

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When the decision was made.
    pub at: DateTime<Utc>,
    /// Who called; `None` when the caller could not be authenticated.
    pub principal: Option<Principal>,
    /// The gRPC path.
    pub rpc: String,
    /// Read or write; `None` for a method without an access annotation.
    pub action: Option<Action>,
    /// The category of data.
    pub category: DataCategory,
    /// The participant the call names (internal id).
    pub participant_id: Option<String>,
    /// The organisation that owns the data, when one does.
    pub owner_organisation: Option<String>,
    /// Whether the call was allowed.
    pub allowed: bool,
    /// The policies that decided (or a reason code for refusals made before the policies).
    pub policies: Vec<String>,
    /// A read across organisations by consent.
    pub disclosure: bool,
    /// Allowed only by emergency access; awaits follow-up.
    pub emergency: bool,
    /// The emergency reason given with the call.
    pub emergency_reason: Option<String>,
    /// Participants whose rows a list or stream showed, and which of them were disclosed to
    /// another organisation.
    pub rows: Vec<RowAccess>,
    /// Refused or forwarded.
    pub outcome: Outcome,
    /// The gRPC status code returned to the caller.
    pub status: tonic::Code,
    /// The W3C trace id, for finding the call among traces.
    pub trace_id: Option<String>,
    /// Organisations with a stake beyond caller and owner (the participants' home
    /// organisations), under which auditors find the event.
    pub stakeholders: Vec<String>,
    /// Ties a write's intent to its outcome; `None` for calls that write nothing.
    pub call_id: Option<String>,
    /// What a bulk export let leave, as the service that made it reported.
    pub export: Option<ExportAudit>,
}

/// A research export as its audit event records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportAudit {
    /// The study it was made for.
    pub study_id: String,
    /// The rows it held.
    pub row_count: u64,
}

impl ExportAudit {
    /// The export a service's response metadata reports, if it reports one; a malformed
    /// report is taken as none rather than failing a call already served.
    pub fn of(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        use samsyn_kit::export::{ROW_COUNT_HEADER, STUDY_HEADER};
        let study_id = metadata.get(STUDY_HEADER)?.to_str().ok()?;
        let row_count = metadata
            .get(ROW_COUNT_HEADER)?
            .to_str()
            .ok()?
            .parse()
            .ok()?;
        (!study_id.is_empty() && study_id.len() <= 64).then(|| Self {
            study_id: study_id.to_owned(),
            row_count,
        })
    }
}

/// One row of a list or stream that was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowAccess {
    /// The row's participant.
    pub participant_id: String,
    /// Shown across organisations by consent.
    pub disclosure: bool,
}

/// The trail could not take an event; the call fails closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub struct AuditError(pub String);

/// A boxed future returned by [`AuditTrail::record`].
pub type RecordFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>>;

/// First emergency declarations: `((staff id, participant id), first time)`.
pub type EmergenciesFuture<'a> = Pin<
    Box<
        dyn Future<
                Output = Result<Vec<((String, String), chrono::DateTime<chrono::Utc>)>, AuditError>,
            > + Send
            + 'a,
    >,
>;

/// Where audit events go. `record` resolves once the event is as durable as the trail makes
/// it; the gateway answers only after that.
pub trait AuditTrail: Send + Sync + std::fmt::Debug {
    /// Takes one event.
    fn record(&self, event: AuditEvent) -> RecordFuture<'_>;

    /// The first emergency access per (staff id, participant id) recorded since `since`, by
    /// any gateway writing this trail's store: so an emergency's time limit counts from its
    /// first declaration whichever replica saw it. Empty for a trail that keeps no store.
    fn emergencies_since(&self, since: chrono::DateTime<chrono::Utc>) -> EmergenciesFuture<'_> {
        let _ = since;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The revoked sessions this trail's store keeps, when it keeps them.
    fn revoked_sessions(&self) -> Option<std::sync::Arc<crate::auth::RevokedSessions>> {
        None
    }
}

/// A trail in memory: for tests, and for `samsyn up` until the durable trail lands.
#[derive(Debug, Default)]
pub struct MemoryTrail {
    events: Mutex<Vec<AuditEvent>>,
    capacity: usize,
}

impl MemoryTrail {
    /// A trail keeping at most the newest `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AuditEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<T: AuditTrail + ?Sized> AuditTrail for std::sync::Arc<T> {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        (**self).record(event)
    }

    fn revoked_sessions(&self) -> Option<std::sync::Arc<crate::auth::RevokedSessions>> {
        (**self).revoked_sessions()
    }

    fn emergencies_since(&self, since: chrono::DateTime<chrono::Utc>) -> EmergenciesFuture<'_> {
        (**self).emergencies_since(since)
    }
}

/// Hands every event to two trails (tests keep events in memory beside the durable store).
#[derive(Debug)]
pub struct TeeTrail<A, B>(pub A, pub B);

impl<A: AuditTrail, B: AuditTrail> AuditTrail for TeeTrail<A, B> {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        let first = self.0.record(event.clone());
        let second = self.1.record(event);
        Box::pin(async move {
            first.await?;
            second.await
        })
    }

    fn revoked_sessions(&self) -> Option<std::sync::Arc<crate::auth::RevokedSessions>> {
        self.0
            .revoked_sessions()
            .or_else(|| self.1.revoked_sessions())
    }
}

impl AuditTrail for MemoryTrail {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        let mut events = self.lock();
        if self.capacity > 0 && events.len() >= self.capacity {
            let excess = events.len() + 1 - self.capacity;
            events.drain(..excess);
        }
        events.push(event);
        Box::pin(std::future::ready(Ok(())))
    }
}
