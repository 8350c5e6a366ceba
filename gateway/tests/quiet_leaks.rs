//! What leaks through structure, time or silence (issue 18): trace ids in the trail without
//! an exporter, a stalled service's deadline, bytes that do not decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use samsyn_kit::tls;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use support::*;
use tonic::Code;

const CASE_MANAGER: &str = "SE2321000255-cm01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_carries_a_trace_id_without_an_exporter() {
    let stack = Stack::start().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let catalogue = |traceparent: Option<&'static str>| {
        let mut request = tonic::Request::new(plans_pb::ListCatalogueRequest::default());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(traceparent) = traceparent {
            request
                .metadata_mut()
                .insert("traceparent", traceparent.parse().unwrap());
        }
        request
    };
    let mut plans = PlansServiceClient::new(stack.channel());
    plans
        .list_catalogue(catalogue(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )))
        .await
        .unwrap();
    plans.list_catalogue(catalogue(None)).await.unwrap();
    // A refusal too: no token at all.
    let refused = plans
        .list_catalogue(plans_pb::ListCatalogueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let events = stack.trail.events();
    let ids: Vec<&str> = events[events.len() - 3..]
        .iter()
        .map(|e| e.trace_id.as_deref().expect("every event has a trace id"))
        .collect();
    assert_eq!(
        ids[0], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    for made_up in &ids[1..] {
        assert_eq!(made_up.len(), 32);
        assert!(made_up.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(ids[1], ids[2], "each call its own trace");
    stack.stop().await;
}

/// A plans service that never answers.
#[derive(Debug, Clone)]
struct Stall;

impl tonic::server::NamedService for Stall {
    const NAME: &'static str = "samsyn.plans.v1.PlansService";
}

impl tower::Service<http::Request<tonic::body::Body>> for Stall {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Pending<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::pending()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_service_ends_the_call_with_deadline_exceeded() {
    let stack = Stack::start().await;
    // A plans service that takes calls and never answers them.
    let certs = stack.certs();
    let pki = tls::DevPki::at(&certs);
    pki.ensure(&["stalled-plans"]).unwrap();
    let stalled = samsyn_kit::serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let stalled_addr = stalled.local_addr().unwrap();
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(Stall);
    let part = samsyn_kit::serve::Part {
        name: "stalled-plans",
        routes,
        services: Vec::new(),
        feeds: Vec::new(),
        http1: false,
    };
    let server = tls::server_config(
        &pki.identity("stalled-plans").unwrap(),
        pki.trust_anchors().unwrap(),
        tls::ClientAuth::Required,
    )
    .unwrap();
    let patient = samsyn_kit::config::Limits {
        default_deadline_ms: 120_000,
        ..Default::default()
    };
    tokio::spawn(async move {
        samsyn_kit::serve::serve(part, stalled, server, &patient, std::future::pending()).await
    });
    let client = tls::client_config(
        pki.trust_anchors().unwrap(),
        Some(&pki.identity("gateway").unwrap()),
    )
    .unwrap();
    let upstreams = samsyn_gateway::proxy::Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: tls::channel(stalled_addr, "localhost", client).unwrap(),
        board: stack.board.channel.clone(),
        audit: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let served = serve_gateway(&certs, dir.path(), Default::default(), upstreams).await;
    let channel = {
        let client = tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
        tls::channel(served.addr, "localhost", client).unwrap()
    };
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    let started = std::time::Instant::now();
    // No deadline from the caller: the gateway's default (10 s) applies.
    let status = PlansServiceClient::with_interceptor(channel, Credentials::bearer(&token))
        .list_catalogue(plans_pb::ListCatalogueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let event = served.trail.events().pop().unwrap();
    assert_eq!(event.status, Code::DeadlineExceeded);
    stack.stop().await;
}
