//! The audit trail under SIGKILL: the real `samsyn up` takes a load of writes through the
//! gateway, is killed without warning, and every call whose answer the clients received has
//! its event in the trail, which still verifies and continues after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod common;

use common::Up;
use samsyn_gateway::audit::store::{AuditStore, Filter};
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls;
use samsyn_proto::common::v1::{OrganisationId, OrganisationKind, StaffRef};
use samsyn_proto::participants::v1 as pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;

const CREATE_REFERRAL: &str = "/samsyn.participants.v1.ParticipantsService/CreateReferral";

/// A synthetic, valid personnummer for the n-th referral (never a real person's).
fn pin(n: u64) -> String {
    let day = 1 + (n / 900) % 28;
    let month = 1 + (n / (900 * 28)) % 12;
    let nine = format!("80{month:02}{day:02}{:03}", 100 + n % 900);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    let check = samsyn_participants::domain::pin::check_digit(&digits);
    format!("19{nine}{check}")
}

fn referral(n: u64) -> pb::CreateReferralRequest {
    pb::CreateReferralRequest {
        idempotency_key: String::new(),
        personal_identity_number: pin(n),
        name: format!("Testperson Åström {n}"),
        home_municipality_code: "1283".into(),
        referring_principal: OrganisationKind::Region as i32,
        referred_by: Some(StaffRef {
            staff_id: "SE2321000255-cm01".into(),
            organisation_id: Some(OrganisationId {
                value: "SE2321000255".into(),
            }),
            unit_id: String::new(),
        }),
        reason: "Behov av samordnat stöd".into(),
        criteria: Some(pb::AdmissionCriteria {
            long_term_needs_from_both_principals: true,
            diagnosis_criteria_met: true,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_loses_no_event_of_an_answered_call() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path());
    let gateway = up.addr("gateway");
    let certs = dir.path().join("certs");
    let token = DevIssuer::at(&certs)
        .issue(
            &Principal {
                id: "SE2321000255-cm01".into(),
                kind: PrincipalKind::Staff,
                organisation: Some("SE2321000255".into()),
                unit: None,
                roles: vec!["case_manager".into()],
                teams: vec![],
                purpose: Some("care".into()),
                acting_through: None,
            },
            Duration::from_secs(600),
        )
        .unwrap();
    let client =
        tls::client_config(tls::DevPki::at(&certs).trust_anchors().unwrap(), None).unwrap();
    let channel = tls::channel(gateway, "localhost", client).unwrap();
    let bearer: tonic::metadata::AsciiMetadataValue = format!("Bearer {token}").parse().unwrap();

    // Eight writers call until the process dies; each counts the answers it received.
    let answered = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let bearer = bearer.clone();
        let mut participants = ParticipantsServiceClient::with_interceptor(
            channel.clone(),
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", bearer.clone());
                Ok(request)
            },
        );
        let answered = Arc::clone(&answered);
        let killed = Arc::clone(&killed);
        let next = Arc::clone(&next);
        writers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match participants.create_referral(referral(n)).await {
                    Ok(_) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    // Once killed, calls fail however the connection broke: the writer is done.
                    Err(_) if killed.load(Ordering::SeqCst) => return,
                    Err(status) => panic!("unexpected {status:?}"),
                }
            }
        });
    }
    // Let the load run, then kill without warning.
    while answered.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    up.kill();
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);

    // Every answered call has its event; the chain is intact.
    let url = samsyn_kit::db::sqlite_url(&dir.path().join("gateway.db"));
    let key = certs.join("audit-signing-key");
    let store = AuditStore::open(&url, &key).await.unwrap();
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.first_broken, None, "{verification:?}");
    let mut recorded = 0u64;
    let mut after = 0;
    loop {
        let page = store.query(&Filter::default(), after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        recorded += page
            .iter()
            .filter(|e| e.record.rpc == CREATE_REFERRAL && e.record.status == 0)
            .count() as u64;
    }
    assert!(
        recorded >= answered,
        "{answered} calls answered, only {recorded} events committed"
    );
    eprintln!("{answered} answered, {recorded} recorded before SIGKILL");
    drop(store);

    // After a restart the trail continues the same chain.
    drop(Up::start(dir.path()));
    let store = AuditStore::open(&url, &key).await.unwrap();
    assert_eq!(store.verify().await.unwrap().first_broken, None);
}
