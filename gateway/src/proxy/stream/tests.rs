//! Each layer of the stream path on its own, with a stub standing for the rest of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use samsyn_proto::board::v1::{BoardEntry, BoardUpdate, BoardUpdateKind, EntryState};
use samsyn_proto::common::v1::DataCategory;
use samsyn_proto::consent::v1::ConsentState;
use tonic::Request;
use tower::Layer;

use super::redecide::WATCH_BOARD;
use super::*;
use crate::access_view::FeedName;
use crate::access_view::testing::{consent_change, current, pid, sharing};
use crate::audit::{MemoryTrail, Outcome};
use crate::auth::{Principal, Revocation, Session};
use crate::gate::tests::{SHARED, UNSHARED, case_manager, coordinator};
use crate::proxy::Gateway;
use crate::proxy::tests::{allowed, call, gateway, only_ending, only_event};

const WATCH_CHANGES: &str = "/samsyn.plans.v1.PlansService/WatchChanges";

/// A stream of `path` that `principal` was allowed to open.
fn watching(gateway: &Arc<Gateway>, principal: Principal, path: &str) -> Passing {
    allowed(gateway, principal, path, None)
}

/// A stub for the rest of the path whose stream carries `messages`.
fn serving<T: Send + 'static>(
    messages: Messages<T>,
) -> impl Service<Passing, Response = Opened<T>, Error = Status, Future: Send> + Clone + Send + 'static
{
    let messages = Arc::new(Mutex::new(Some(messages)));
    tower::service_fn(move |passing: Passing| {
        let messages = messages.lock().unwrap().take().expect("opened once");
        async move {
            Ok::<_, Status>(Opened {
                passing,
                answer: Ok(messages),
            })
        }
    })
}

fn listed<T: Send + 'static>(messages: Vec<Result<T, Status>>) -> Messages<T> {
    Box::pin(tokio_stream::iter(messages))
}

/// A stream that never says anything.
fn quiet<T: Send + 'static>() -> Messages<T> {
    Box::pin(tokio_stream::pending())
}

fn board(entries: &[(&str, &str)]) -> Bytes {
    BoardUpdate {
        cursor: 1,
        kind: BoardUpdateKind::Snapshot as i32,
        entries: entries
            .iter()
            .map(|(entry, participant)| BoardEntry {
                entry_id: (*entry).into(),
                participant_id: pid(participant),
                state: EntryState::OnBoard as i32,
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
    .into()
}

fn entries(message: &Bytes) -> Vec<String> {
    let update = BoardUpdate::decode(message.as_ref()).unwrap();
    update.entries.into_iter().map(|e| e.entry_id).collect()
}

#[tokio::test]
async fn an_unauthenticated_stream_call_goes_no_further() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let reached = Arc::new(AtomicBool::new(false));
    let rest = {
        let reached = Arc::clone(&reached);
        tower::service_fn(move |_: Passing| {
            reached.store(true, Ordering::SeqCst);
            async { Ok::<_, Status>(Response::new(quiet::<Bytes>())) }
        })
    };
    let status = AdmitLayer
        .layer(rest)
        .oneshot((call(&gateway, WATCH_BOARD), Request::new(Bytes::new())))
        .await
        .err()
        .expect("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!reached.load(Ordering::SeqCst), "the stream was opened");
    assert_eq!(
        only_ending(&trail),
        (Outcome::Refused, Code::Unauthenticated)
    );
}

#[tokio::test]
async fn a_stream_the_service_refuses_ends_with_its_code_in_the_trail() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let refusing = tower::service_fn(|passing: Passing| async {
        Ok::<_, Status>(Opened::<Bytes> {
            passing,
            answer: Err(Status::not_found("no such team")),
        })
    });
    let status = OpenLayer
        .layer(refusing)
        .oneshot(watching(&gateway, case_manager(), WATCH_BOARD))
        .await
        .err()
        .expect("refused");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(only_ending(&trail), (Outcome::Forwarded, Code::NotFound));
}

#[tokio::test]
async fn the_opening_is_in_the_trail_before_any_message_leaves() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let response = OpenLayer
        .layer(serving(listed(vec![Ok(board(&[]))])))
        .oneshot(watching(&gateway, case_manager(), WATCH_BOARD))
        .await
        .unwrap();
    // Before anything was read.
    assert_eq!(only_ending(&trail), (Outcome::Forwarded, Code::Ok));
    let messages: Vec<_> = response.into_inner().collect().await;
    assert_eq!(messages.len(), 1);
}

#[tokio::test]
async fn what_a_stream_showed_is_audited_once_when_it_ends() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let shown = |message: &'static [u8], rows: &[(&str, bool)]| {
        Ok(Shown {
            message: Bytes::from_static(message),
            rows: rows.iter().map(|(p, d)| ((*p).to_owned(), *d)).collect(),
        })
    };
    let opened = ShownLayer
        .layer(serving(listed(vec![
            shown(b"first", &[(SHARED, false)]),
            shown(b"second", &[(SHARED, true), (UNSHARED, false)]),
        ])))
        .oneshot(watching(&gateway, case_manager(), WATCH_BOARD))
        .await
        .unwrap();
    let messages: Vec<_> = opened.answer.unwrap().collect().await;
    let messages: Vec<Bytes> = messages.into_iter().map(Result::unwrap).collect();
    assert_eq!(messages, [&b"first"[..], &b"second"[..]]);
    let event = only_event(&trail);
    let rows: Vec<_> = event
        .rows
        .iter()
        .map(|r| (r.participant_id.as_str(), r.disclosure))
        .collect();
    assert_eq!(rows, [(SHARED, true), (UNSHARED, false)]);
    assert_eq!(event.policies, ["stream-rows"]);
}

#[tokio::test]
async fn a_stream_ends_unauthenticated_when_the_credentials_expire() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let mut passing = watching(&gateway, case_manager(), WATCH_BOARD);
    passing.admitted.expires_at = Some(1);
    let opened = LifetimeLayer
        .layer(serving(quiet::<Shown>()))
        .oneshot(passing)
        .await
        .unwrap();
    let messages: Vec<_> = opened.answer.unwrap().collect().await;
    assert_eq!(messages.len(), 1);
    let status = messages.into_iter().next().unwrap().err().unwrap();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_stream_ends_unauthenticated_when_its_session_is_revoked() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let mut passing = watching(&gateway, case_manager(), WATCH_BOARD);
    passing.admitted.session = Some(Session {
        issuer: "https://idp.example".into(),
        subject: case_manager().id,
        token_id: Some("token-1".into()),
        issued_at: None,
    });
    let opened = LifetimeLayer
        .layer(serving(quiet::<Shown>()))
        .oneshot(passing)
        .await
        .unwrap();
    gateway.authenticator.tokens().revoked().add([Revocation {
        issuer: None,
        token_id: Some("token-1".into()),
        subject: None,
        revoked_at: 0,
        until: u64::MAX,
    }]);
    let mut messages = opened.answer.unwrap();
    let status = messages.next().await.unwrap().err().unwrap();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(messages.next().await.is_none());
}

#[tokio::test]
async fn a_board_row_whose_consent_is_revoked_mid_stream_is_dropped_and_audited() {
    let trail = Arc::new(MemoryTrail::default());
    let gateway = gateway(trail.clone());
    let view = gateway.gate().view();
    // The participant lets the region share the board with Helsingborg.
    let mut consent = sharing("c-board", SHARED, 1);
    consent.sharing.as_mut().unwrap().categories = vec![DataCategory::Board as i32];
    view.apply(FeedName::Consent, &consent_change(2, &consent))
        .unwrap();
    current(view);
    let (service, upstream) = tokio::sync::mpsc::channel(4);
    let opened = ShownLayer
        .layer(RedecideLayer.layer(serving(Box::pin(ReceiverStream::new(upstream)) as Messages)))
        .oneshot(watching(&gateway, coordinator(), WATCH_BOARD))
        .await
        .unwrap();
    let mut messages = opened.answer.unwrap();
    service
        .send(Ok(board(&[("e-1", SHARED), ("e-2", UNSHARED)])))
        .await
        .unwrap();
    let first = messages.next().await.unwrap().unwrap();
    assert_eq!(entries(&first), ["e-1"], "only the consented row");
    // Revoked while the stream is open: the row leaves without the service saying anything.
    consent.state = ConsentState::Revoked as i32;
    view.apply(FeedName::Consent, &consent_change(3, &consent))
        .unwrap();
    let second = messages.next().await.unwrap().unwrap();
    assert!(entries(&second).is_empty(), "{:?}", entries(&second));
    drop(service);
    assert!(messages.next().await.is_none());
    let event = only_event(&trail);
    let shown: Vec<_> = event
        .rows
        .iter()
        .map(|r| r.participant_id.as_str())
        .collect();
    assert_eq!(shown, [SHARED]);
}

#[tokio::test]
async fn a_stream_passes_each_message_until_the_first_failure_ends_it() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let opened = RedecideLayer
        .layer(serving(listed(vec![
            Ok(Bytes::from_static(b"change 1")),
            Err(Status::data_loss("feed row unreadable")),
            Ok(Bytes::from_static(b"change 2")),
        ])))
        .oneshot(watching(&gateway, case_manager(), WATCH_CHANGES))
        .await
        .unwrap();
    let messages: Vec<_> = opened.answer.unwrap().collect().await;
    assert_eq!(messages.len(), 2, "nothing after the failure");
    let mut messages = messages.into_iter();
    assert_eq!(messages.next().unwrap().unwrap().message, "change 1");
    assert_eq!(
        messages.next().unwrap().err().unwrap().code(),
        Code::DataLoss
    );
}

#[tokio::test]
async fn an_unreachable_service_refuses_the_stream_without_its_address() {
    let gateway = gateway(Arc::new(MemoryTrail::default()));
    let opened = ForwardStream
        .oneshot(watching(&gateway, case_manager(), WATCH_BOARD))
        .await
        .unwrap();
    let status = opened.answer.err().expect("refused");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        !status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
}
