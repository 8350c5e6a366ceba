//! The proxy's routing, and what the tests of both call paths share: a gateway over the gate
//! table's view whose services nobody runs, allowed calls, and the trail's one event.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::auth::{RevokedSessions, TokenVerifier};
use crate::gate::tests::gate;

/// Channels to services nobody runs: a call on them ends UNAVAILABLE.
pub(super) fn unreachable() -> Upstreams {
    let lazy = || Channel::from_static("http://127.0.0.1:9").connect_lazy();
    Upstreams {
        participants: lazy(),
        consent: lazy(),
        plans: lazy(),
        board: lazy(),
        audit: None,
        reports: None,
    }
}

/// A gateway whose services are unreachable, deciding with the gate table's view and
/// auditing to `audit`.
pub(crate) fn gateway(audit: Arc<dyn AuditTrail>) -> Arc<Gateway> {
    let gate = gate();
    let authenticator = Authenticator::new(
        TokenVerifier::new(Vec::new(), Arc::new(RevokedSessions::default())),
        gate.links().clone(),
    );
    Arc::new(Gateway::new(
        CallDescriber::samsyn().unwrap(),
        authenticator,
        gate,
        unreachable(),
        audit,
        PageTokens::new().unwrap(),
        &samsyn_kit::config::Limits::default(),
        None,
    ))
}

pub(super) fn call(gateway: &Arc<Gateway>, path: &str) -> Call {
    Call {
        gateway: Arc::clone(gateway),
        path: path.into(),
        trace: "0af7651916cd43dd8448eb211c80319c".into(),
    }
}

/// A call to `path` about `participant` that `principal` was allowed to make, as call
/// `call-1`.
pub(super) fn allowed(
    gateway: &Arc<Gateway>,
    principal: Principal,
    path: &str,
    participant: Option<&str>,
) -> layers::Passing {
    let (access, _) = gateway.describer().method_access(path).unwrap();
    let verdict = Verdict {
        decision: crate::policy::Decision {
            allowed: true,
            ..Default::default()
        },
        owner: None,
    };
    let mut admission = Admission::new(
        principal,
        access,
        participant.map(Into::into),
        verdict,
        None,
    );
    admission.call_id = "call-1".into();
    layers::Passing {
        call: call(gateway, path),
        admitted: Admitted {
            admission,
            expires_at: None,
            session: None,
            message: Bytes::new(),
            timeout: None,
        },
    }
}

/// The one event in `trail`.
pub(crate) fn only_event(trail: &crate::audit::MemoryTrail) -> crate::audit::AuditEvent {
    let mut events = trail.events();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

/// How the trail's one event says the call ended: its outcome and status.
pub(crate) fn only_ending(
    trail: &crate::audit::MemoryTrail,
) -> (crate::audit::Outcome, tonic::Code) {
    let event = only_event(trail);
    (event.outcome, event.status)
}

#[tokio::test]
async fn writes_settle_on_the_feed_of_the_service_they_went_to() {
    let upstreams = unreachable();
    for (path, feed) in [
        (
            "/samsyn.participants.v1.ParticipantsService/Enrol",
            Some(FeedName::Participants),
        ),
        (
            "/samsyn.consent.v1.ConsentService/RevokeConsent",
            Some(FeedName::Consent),
        ),
        (
            "/samsyn.board.v1.BoardService/TakeOffBoard",
            Some(FeedName::Board),
        ),
        ("/samsyn.plans.v1.PlansService/UpdatePlan", None),
    ] {
        assert_eq!(upstreams.route(path).map(|(_, f)| f), Some(feed), "{path}");
    }
    assert!(
        upstreams
            .route("/samsyn.audit.v1.AuditService/ListEvents")
            .is_none()
    );
}
