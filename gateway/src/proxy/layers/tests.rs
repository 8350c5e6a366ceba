//! Each layer on its own, with a stub standing for the rest of the path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prost::Message;

use super::*;
use crate::audit::{AuditError, AuditEvent, AuditTrail, MemoryTrail, RecordFuture};
use crate::gate::tests::{SHARED, UNSHARED, case_manager};
use crate::proxy::Gateway;
use crate::proxy::tests::{allowed, call, gateway, only_ending, only_event};

const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
const UPDATE_PLAN: &str = "/samsyn.plans.v1.PlansService/UpdatePlan";

/// A trail that refuses every event.
#[derive(Debug)]
struct Refusing;

impl AuditTrail for Refusing {
    fn record(&self, _event: AuditEvent) -> RecordFuture<'_> {
        Box::pin(async { Err(AuditError("the trail is down".into())) })
    }
}

/// A call about `participant` the case manager was allowed to make.
fn passing(gateway: &Arc<Gateway>, path: &str, participant: &str) -> Passing {
    allowed(gateway, case_manager(), path, Some(participant))
}

/// A stub for the rest of the path that notes it was reached and answers empty.
fn rest(
    reached: &Arc<AtomicBool>,
) -> impl Service<Passing, Response = Response<Bytes>, Error = Status, Future: Send>
+ Clone
+ Send
+ 'static {
    let reached = Arc::clone(reached);
    tower::service_fn(move |_: Passing| {
        reached.store(true, Ordering::SeqCst);
        async { Ok::<_, Status>(Response::new(Bytes::new())) }
    })
}

/// A stub service that answers `answer` to a forwarded call.
fn answering(
    answer: Result<Bytes, Status>,
) -> impl Service<Passing, Response = Forwarded, Error = Status, Future: Send> + Clone + Send + 'static
{
    tower::service_fn(move |passing: Passing| {
        let answer = answer.clone().map(Response::new);
        async move {
            Ok::<_, Status>(Forwarded {
                passing,
                answer,
                written: None,
            })
        }
    })
}

fn participant(id: &str) -> Bytes {
    samsyn_proto::participants::v1::Participant {
        participant_id: Some(samsyn_proto::common::v1::ParticipantId { value: id.into() }),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

#[tokio::test]
async fn a_caller_without_credentials_is_refused_and_audited_before_anything_else() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let reached = Arc::new(AtomicBool::new(false));
    let request = Request::new(Bytes::new());
    let status = AdmitLayer
        .layer(rest(&reached))
        .oneshot((call(&gateway, GET_PARTICIPANT), request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!reached.load(Ordering::SeqCst), "the call went on");
    assert_eq!(
        only_ending(&trail),
        (Outcome::Refused, Code::Unauthenticated)
    );
}

#[tokio::test]
async fn a_write_is_in_the_trail_before_it_goes_on() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let seen_before = Arc::new(std::sync::Mutex::new(None));
    let inner = {
        let (trail, seen_before) = (Arc::clone(&trail), Arc::clone(&seen_before));
        tower::service_fn(move |_: Passing| {
            *seen_before.lock().unwrap() = Some(trail.events());
            async { Ok::<_, Status>(Response::new(Bytes::new())) }
        })
    };
    IntentLayer
        .layer(inner)
        .oneshot(passing(&gateway, UPDATE_PLAN, SHARED))
        .await
        .unwrap();
    let before = seen_before
        .lock()
        .unwrap()
        .take()
        .expect("the write went on");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].outcome, Outcome::Intended);
    assert_eq!(before[0].call_id.as_deref(), Some("call-1"));
}

#[tokio::test]
async fn a_read_goes_on_without_an_intent() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let reached = Arc::new(AtomicBool::new(false));
    IntentLayer
        .layer(rest(&reached))
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap();
    assert!(reached.load(Ordering::SeqCst));
    assert!(trail.events().is_empty());
}

#[tokio::test]
async fn a_write_whose_intent_cannot_be_recorded_is_not_made() {
    let gateway = gateway(Arc::new(Refusing));
    let reached = Arc::new(AtomicBool::new(false));
    let status = IntentLayer
        .layer(rest(&reached))
        .oneshot(passing(&gateway, UPDATE_PLAN, SHARED))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(!reached.load(Ordering::SeqCst), "the write went on");
}

#[tokio::test]
async fn a_single_answer_goes_on_past_the_fill() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let reached = Arc::new(AtomicBool::new(false));
    FillLayer
        .layer(rest(&reached))
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap();
    assert!(reached.load(Ordering::SeqCst));
}

#[tokio::test]
async fn an_answer_about_the_decided_participant_is_shown_and_audited() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let response = NarrowLayer
        .layer(answering(Ok(participant(SHARED))))
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), participant(SHARED));
    assert_eq!(only_ending(&trail), (Outcome::Forwarded, Code::Ok));
}

#[tokio::test]
async fn an_answer_about_someone_else_is_withheld_and_audited() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let status = NarrowLayer
        .layer(answering(Ok(participant(UNSHARED))))
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(!status.message().contains(UNSHARED));
    assert_eq!(only_event(&trail).status, Code::PermissionDenied);
}

#[tokio::test]
async fn a_service_refusal_reaches_the_caller_and_the_trail() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let status = NarrowLayer
        .layer(answering(Err(Status::not_found("no such plan"))))
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(only_ending(&trail), (Outcome::Forwarded, Code::NotFound));
}

#[tokio::test]
async fn an_unreachable_service_answers_unavailable_without_its_address() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let forwarded = Forward
        .oneshot(passing(&gateway, GET_PARTICIPANT, SHARED))
        .await
        .unwrap();
    let status = forwarded.answer.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        !status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
    assert!(forwarded.written.is_none());
}
