//! What filling pages costs (issue 18): a Höganäs coordinator who sees the 220 Höganäs
//! referrals among 10,000 pages `ListParticipants` 50 at a time through the gateway, which
//! reads the service's pages until its own page is full of visible rows. Against: the same
//! pages straight from the participants service (no narrowing), and a region case manager
//! who sees nothing (every service page read, one empty page back). p50/p99 per page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use samsyn_proto::common::v1::{OrganisationKind, PageRequest};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::transport::Channel;

const PARTICIPANTS: usize = 10_000;
const VISIBLE: usize = 220;
const PAGE: u32 = 50;
/// Rounds of paging through the whole visible list.
const ROUNDS: usize = 10;
const HOG_COORDINATOR: &str = "hog-coord-1";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A synthetic personnummer for person `n`: a birth date from 1950 on, a serial.
fn nth_pin(n: usize) -> String {
    let year = 1950 + (n / 3000) % 40;
    let day_of_year = (n / 10) % 300;
    let month = day_of_year / 28 + 1;
    let day = day_of_year % 28 + 1;
    pin(
        &format!("{year}{month:02}{day:02}"),
        &format!("{:03}", (n % 10) * 97 % 1000),
    )
}

async fn seed(stack: &Stack) {
    let mut client = ParticipantsServiceClient::new(stack.participants.channel.clone());
    let started = Instant::now();
    for n in 0..PARTICIPANTS {
        // Every 45th or so lives in Höganäs, spread through the list.
        let home = if n * VISIBLE / PARTICIPANTS != (n + 1) * VISIBLE / PARTICIPANTS {
            HOGANAS
        } else {
            HELSINGBORG
        };
        client
            .create_referral(participants_pb::CreateReferralRequest {
                idempotency_key: String::new(),
                personal_identity_number: nth_pin(n),
                name: "Märta Ödmark".into(),
                home_municipality_code: home.into(),
                referring_principal: OrganisationKind::Region as i32,
                referred_by: staff_ref("SE2321000255-cm01", REGION),
                reason: "Behov av samordnat stöd".into(),
                criteria: Some(participants_pb::AdmissionCriteria {
                    long_term_needs_from_both_principals: true,
                    diagnosis_criteria_met: true,
                }),
            })
            .await
            .unwrap();
    }
    println!(
        "seeded {PARTICIPANTS} referrals ({VISIBLE} in Höganäs) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Pages through the whole list `ROUNDS` times; the time of each page call, and the rows.
async fn page_through(channel: Channel, credentials: Credentials) -> (Vec<Duration>, usize) {
    let mut client = ParticipantsServiceClient::with_interceptor(channel, credentials);
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..ROUNDS {
        rows = 0;
        let mut token = String::new();
        loop {
            let started = Instant::now();
            let page = client
                .list_participants(participants_pb::ListParticipantsRequest {
                    page: Some(PageRequest {
                        page_size: PAGE,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            times.push(started.elapsed());
            rows += page.participants.len();
            token = page.page.map(|p| p.next_page_token).unwrap_or_default();
            if token.is_empty() {
                break;
            }
        }
    }
    times.sort();
    (times, rows)
}

fn print(label: &str, times: &[Duration], rows: usize) {
    println!(
        "{label:<58} {:>4} pages  p50 {:>8.2} ms  p99 {:>8.2} ms  rows seen {rows}",
        times.len() / ROUNDS,
        percentile(times, 50.0).as_secs_f64() * 1e3,
        percentile(times, 99.0).as_secs_f64() * 1e3,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    println!(
        "cores: {}, {PARTICIPANTS} participants, page size {PAGE}, {ROUNDS} rounds",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let stack = Stack::start().await;
    seed(&stack).await;
    stack.settle().await;

    let direct = page_through(stack.participants.channel.clone(), Credentials::none()).await;
    let coordinator = stack.token(&staff(HOG_COORDINATOR, HOGANAS, &["coordinator"]));
    let filled = page_through(stack.channel(), Credentials::bearer(&coordinator)).await;
    assert_eq!(
        filled.1, VISIBLE,
        "the coordinator sees exactly the Höganäs referrals"
    );
    let nobody = stack.token(&staff("SE2321000255-na09", REGION, &["needs_assessor"]));
    let empty = page_through(stack.channel(), Credentials::bearer(&nobody)).await;
    assert_eq!(empty.1, 0);

    print(
        "direct to the service (no narrowing), 50 rows a page",
        &direct.0,
        direct.1,
    );
    print(
        "gateway, sees 220 of 10,000: filled pages of 50",
        &filled.0,
        filled.1,
    );
    print(
        "gateway, sees none: one empty page, no token",
        &empty.0,
        empty.1,
    );
    let ratio = |a: &[Duration], b: &[Duration]| {
        percentile(a, 50.0).as_secs_f64() / percentile(b, 50.0).as_secs_f64()
    };
    println!(
        "p50 per page, filled / direct: {:.1}x; sees-none / direct: {:.1}x",
        ratio(&filled.0, &direct.0),
        ratio(&empty.0, &direct.0)
    );
    stack.stop().await;
}
