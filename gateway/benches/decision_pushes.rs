//! Decisions pushed by a municipal case system through the gateway over mutual TLS (issue
//! 23): in the case system's own terms (personal identity number looked up, code mapped),
//! matched to an intervention of the active plan (a new plan revision each) and parked in
//! the decision inbox (no plan yet), and, for comparison, matched by Samsyn's participant
//! id. Prints pushes per second and the median latency of each, with CONCURRENCY pushes in
//! flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use support::*;

const PUSHES: usize = 400;
const CONCURRENCY: usize = 8;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

fn push(
    external_id: String,
    person: Person<'_>,
    subject: plans_pb::decision::Subject,
) -> plans_pb::PushDecisionRequest {
    let (participant_id, personal_identity_number) = match person {
        Person::Id(id) => (pid(id), String::new()),
        Person::Number(number) => (None, number.to_owned()),
    };
    plans_pb::PushDecisionRequest {
        decision: Some(plans_pb::Decision {
            external_decision_id: external_id,
            participant_id,
            personal_identity_number,
            subject: Some(subject),
            outcome: plans_pb::DecisionOutcome::Granted as i32,
            valid_from: Some(today()),
            decided_by: staff_ref("hbg-bh-7", HELSINGBORG),
            decided_at: Some(samsyn_kit::time::to_timestamp(chrono::Utc::now())),
            ..Default::default()
        }),
    }
}

#[derive(Clone, Copy)]
enum Person<'a> {
    Id(&'a str),
    Number(&'a str),
}

/// Sends `requests` with CONCURRENCY in flight; pushes per second and the median latency.
async fn run(
    stack: &Stack,
    requests: Vec<plans_pb::PushDecisionRequest>,
    expect: plans_pb::DecisionDisposition,
) -> (f64, Duration) {
    let client = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));
    let queue: Queue = std::sync::Arc::new(tokio::sync::Mutex::new(requests));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let mut client = client.clone();
        let queue = queue.clone();
        tasks.spawn(async move {
            let mut times = Vec::new();
            loop {
                let Some(request) = queue.lock().await.pop() else {
                    break;
                };
                let at = Instant::now();
                let receipt = client.push_decision(request).await.unwrap().into_inner();
                times.push(at.elapsed());
                assert_eq!(receipt.disposition, expect as i32);
            }
            times
        });
    }
    let mut times: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    times.sort();
    let rate = times.len() as f64 / elapsed.as_secs_f64();
    (rate, times[times.len() / 2])
}

/// The requests still to send, shared by the senders.
type Queue = std::sync::Arc<tokio::sync::Mutex<Vec<plans_pb::PushDecisionRequest>>>;

async fn bench() {
    let stack = Stack::start().await;
    let number = pin("19790321", "482");
    let id = enrolled(
        &stack,
        &number,
        "Örjan Åkesson",
        Team {
            region: &["SE2321000255-cm01"],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    let unplanned_number = pin("19810704", "339");
    enrolled(
        &stack,
        &unplanned_number,
        "Gösta Ängel",
        Team {
            region: &["SE2321000255-cm01"],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    let need = uuid::Uuid::new_v4().to_string();
    let housing = uuid::Uuid::new_v4().to_string();
    PlansServiceClient::new(stack.plans.channel.clone())
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(&id),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Ett eget boende".into(),
                }],
                needs: vec![plans_pb::Need {
                    id: need.clone(),
                    life_area: plans_pb::LifeArea::Housing as i32,
                    description: "Stöd i hemmet".into(),
                    no_intervention_reason: 0,
                }],
                interventions: vec![plans_pb::Intervention {
                    id: housing.clone(),
                    need_id: need,
                    responsible_organisation_id: org(HELSINGBORG),
                    kind: Some(plans_pb::intervention::Kind::CatalogueCode(
                        "municipality.housing_support".into(),
                    )),
                    status: plans_pb::InterventionStatus::Applied as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap();
    stack.settle().await;
    let intervention = plans_pb::decision::Subject::InterventionId(housing);
    let code = plans_pb::decision::Subject::DecisionTypeCode("BS-SOL-4:1".into());

    let cases = [
        (
            "matched, by participant id",
            (0..PUSHES)
                .map(|n| push(format!("ID-{n}"), Person::Id(&id), intervention.clone()))
                .collect::<Vec<_>>(),
            plans_pb::DecisionDisposition::Applied,
        ),
        (
            "matched, by personal identity number",
            (0..PUSHES)
                .map(|n| {
                    push(
                        format!("PIN-{n}"),
                        Person::Number(&number),
                        intervention.clone(),
                    )
                })
                .collect(),
            plans_pb::DecisionDisposition::Applied,
        ),
        (
            "parked (no plan), by number and own code",
            (0..PUSHES)
                .map(|n| {
                    push(
                        format!("PARK-{n}"),
                        Person::Number(&unplanned_number),
                        code.clone(),
                    )
                })
                .collect(),
            plans_pb::DecisionDisposition::Parked,
        ),
    ];
    println!("{PUSHES} pushes each, {CONCURRENCY} in flight, through the gateway over mTLS");
    for (name, requests, expect) in cases {
        let (rate, median) = run(&stack, requests, expect).await;
        println!(
            "{name:<45} {rate:>7.0} pushes/s   median {:>6.2} ms",
            median.as_secs_f64() * 1e3
        );
    }
    stack.stop().await;
}
