//! Admission for calls the gateway makes itself, against the gate table's view.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tonic::Code;

use super::*;
use crate::audit::{MemoryTrail, Outcome};
use crate::gate::tests::{SHARED, case_manager, case_system};
use crate::proxy::tests::gateway;

const GET_PLAN: &str = "/samsyn.plans.v1.PlansService/GetPlan";

#[tokio::test]
async fn a_read_the_gateway_makes_itself_is_decided_and_audited_as_the_principals_own() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let admission = gateway.admit_as(&case_manager(), GET_PLAN, SHARED).unwrap();
    let own = gateway
        .gate
        .decide_call(
            &case_manager(),
            gateway.describer.method_access(GET_PLAN).unwrap().0,
            Some(SHARED),
            false,
        )
        .unwrap();
    assert_eq!(admission.verdict, own);
    let event = admission.event(None, Vec::new(), Code::Ok, Outcome::Forwarded);
    gateway.record(event).await.unwrap();
    let events = trail.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.rpc, GET_PLAN);
    assert_eq!(event.action, Some(Action::Read));
    assert_eq!(event.participant_id.as_deref(), Some(SHARED));
    assert!(event.allowed);
    assert_eq!(event.outcome, Outcome::Forwarded);
    assert!(event.call_id.is_none(), "a read has no intent to tie to");
    assert!(!event.stakeholders.is_empty(), "findable by the region");
}

#[tokio::test]
async fn a_read_the_principal_may_not_make_is_not_admitted_nor_audited() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    assert!(matches!(
        gateway.admit_as(&case_system(), GET_PLAN, SHARED),
        Err(GatewayError::NotPermitted)
    ));
    assert!(matches!(
        gateway.admit_as(
            &case_manager(),
            "/samsyn.plans.v1.PlansService/Nothing",
            SHARED
        ),
        Err(GatewayError::UnknownMethod)
    ));
    assert!(trail.events().is_empty(), "nobody asked: nothing to audit");
}
