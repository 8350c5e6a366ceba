//! Whether an answer's time tells that a participant exists (issue 18): `GetParticipant`
//! through the gateway by a stranger, for an existing participant they may not see and for a
//! made-up id, interleaved; both are refused alike. Prints the medians and their difference,
//! and the decision alone for each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use samsyn_gateway::describe::CallDescriber;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::Code;

const ROUNDS: usize = 2_000;
const DECISIONS: usize = 50_000;
const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let stack = Stack::start().await;
    let existing = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &["SE2321000255-cm01"],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let stranger = staff("SE0180-sos-1", "0180", &["case_manager"]);
    let token = stack.token(&stranger);
    let mut client =
        ParticipantsServiceClient::with_interceptor(stack.channel(), Credentials::bearer(&token));
    let mut known = Vec::with_capacity(ROUNDS);
    let mut unknown = Vec::with_capacity(ROUNDS);
    for n in 0..ROUNDS {
        // A fresh made-up id each time, as a prober would send.
        let made_up = uuid::Uuid::now_v7().to_string();
        let order: [(&str, bool); 2] = if n % 2 == 0 {
            [(existing.as_str(), true), (made_up.as_str(), false)]
        } else {
            [(made_up.as_str(), false), (existing.as_str(), true)]
        };
        for (id, is_known) in order {
            let started = Instant::now();
            let refused = client
                .get_participant(participants_pb::GetParticipantRequest {
                    participant_id: pid(id),
                })
                .await
                .unwrap_err();
            let took = started.elapsed();
            assert_eq!(refused.code(), Code::PermissionDenied);
            if is_known {
                known.push(took)
            } else {
                unknown.push(took)
            }
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    println!(
        "through the gateway, median of {ROUNDS} interleaved: forbidden {:.3} ms, unknown {:.3} ms, \
         difference {:+.3} ms",
        known.as_secs_f64() * 1e3,
        unknown.as_secs_f64() * 1e3,
        (unknown.as_secs_f64() - known.as_secs_f64()) * 1e3
    );

    let describer = CallDescriber::samsyn().unwrap();
    let (access, _) = describer.method_access(GET_PARTICIPANT).unwrap();
    let gate = stack.gateway.gate();
    let time = |id: &str| {
        let started = Instant::now();
        for _ in 0..DECISIONS {
            std::hint::black_box(
                gate.decide_call(&stranger, access, Some(id), false)
                    .unwrap(),
            );
        }
        started.elapsed().as_secs_f64() * 1e6 / DECISIONS as f64
    };
    let made_up = uuid::Uuid::now_v7().to_string();
    let (forbidden, unknown) = (time(&existing), time(&made_up));
    println!(
        "decision alone: forbidden {forbidden:.2} µs, unknown {unknown:.2} µs (ratio {:.2})",
        unknown / forbidden
    );
    stack.stop().await;
}
