//! The audit events of a call: refused, intended (a write) and forwarded; and recording them.

use chrono::Utc;
use samsyn_proto::MethodAccess;
use tonic::{Code, Status};
use tracing::Instrument;

use super::error::GatewayError;
use super::{Admission, Admitted, Call, Gateway, Refused};
use crate::audit::{AuditError, AuditEvent, AuditTrail, Outcome, RowAccess};
use crate::gate::Verdict;
use crate::policy::Action;

impl Call {
    pub(super) async fn audit_refusal(&self, refused: Refused) -> Result<(), Status> {
        let access = self.access().ok();
        let verdict = refused.verdict.unwrap_or_else(|| Verdict {
            decision: crate::policy::Decision::default(),
            owner: None,
        });
        let event = AuditEvent {
            at: Utc::now(),
            principal: refused.principal,
            rpc: self.path.clone(),
            action: access.map(Action::of),
            category: access.map_or(Default::default(), MethodAccess::category),
            participant_id: refused.participant_id,
            owner_organisation: verdict.owner,
            allowed: false,
            policies: verdict.decision.policies,
            disclosure: false,
            emergency: false,
            emergency_reason: refused.emergency_reason,
            rows: Vec::new(),
            outcome: Outcome::Refused,
            status: refused.status.code(),
            trace_id: Some(self.trace_id()),
            stakeholders: Vec::new(),
            call_id: None,
            export: None,
        };
        self.record(event).await
    }

    /// The event of an admitted call: its intent (a write, before forwarding) or how it ended.
    pub(super) fn admitted_event(
        &self,
        admitted: &Admitted,
        rows: Vec<RowAccess>,
        status: Code,
        outcome: Outcome,
    ) -> AuditEvent {
        admitted
            .admission
            .event(Some(self.trace_id()), rows, status, outcome)
    }

    /// A write is in the trail before it happens: if the gateway stops or the trail refuses
    /// the outcome, the intent still says who decided to change what.
    pub(super) async fn audit_intent(&self, admitted: &Admitted) -> Result<(), Status> {
        let event = self.admitted_event(admitted, Vec::new(), Code::Ok, Outcome::Intended);
        self.record(event).await
    }

    pub(super) async fn audit_forwarded(
        &self,
        admitted: Admitted,
        rows: Vec<RowAccess>,
        status: Code,
    ) -> Result<(), Status> {
        let event = self.admitted_event(&admitted, rows, status, Outcome::Forwarded);
        self.record(event).await
    }

    pub(super) async fn record(&self, event: AuditEvent) -> Result<(), Status> {
        self.gateway.record(event).await.map_err(|error| {
            GatewayError::AuditUnavailable(format!("{}: {error}", self.path)).into()
        })
    }
}

impl Admission {
    /// The trail's event about this admitted call: its intent (a write, before it is made) or
    /// how it ended, with the rows it showed. The one constructor for every door's admitted
    /// calls.
    pub(crate) fn event(
        &self,
        trace_id: Option<String>,
        rows: Vec<RowAccess>,
        status: Code,
        outcome: Outcome,
    ) -> AuditEvent {
        AuditEvent {
            at: Utc::now(),
            principal: Some(self.principal.clone()),
            rpc: self.rpc.clone(),
            action: Some(self.action),
            category: self.category,
            participant_id: self.participant_id.clone(),
            owner_organisation: self.verdict.owner.clone(),
            allowed: true,
            policies: self.verdict.decision.policies.clone(),
            disclosure: self.verdict.decision.disclosure,
            emergency: self.verdict.decision.emergency,
            emergency_reason: self.emergency_reason.clone(),
            rows,
            outcome,
            status,
            trace_id,
            stakeholders: Vec::new(),
            call_id: (self.action == Action::Write).then(|| self.call_id.clone()),
            export: None,
        }
    }

    /// The trail's event about the rows a live stream showed since its last such event: each
    /// decided as it passed (`stream-rows`), not by the decision that opened the stream.
    pub(super) fn shown_event(&self, trace_id: Option<String>, rows: Vec<RowAccess>) -> AuditEvent {
        AuditEvent {
            participant_id: None,
            owner_organisation: None,
            policies: vec!["stream-rows".to_owned()],
            disclosure: rows.iter().any(|r| r.disclosure),
            emergency: false,
            emergency_reason: None,
            call_id: None,
            ..self.event(trace_id, rows, Code::Ok, Outcome::Forwarded)
        }
    }
}

impl Gateway {
    /// Records `event` in the audit trail, findable by every organisation with a stake in it.
    pub(crate) async fn record(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        // Every organisation with a stake finds the event: the named and shown participants'
        // home organisations, whoever called.
        event.stakeholders = self.gate.stakeholders(
            event
                .participant_id
                .iter()
                .chain(event.rows.iter().map(|r| &r.participant_id))
                .map(String::as_str),
        );
        let commit = tracing::info_span!("gateway.audit.commit");
        let started = std::time::Instant::now();
        let recorded = self.audit.record(event).instrument(commit).await;
        crate::metrics::audit_commit(started.elapsed(), recorded.is_ok());
        recorded
    }
}
