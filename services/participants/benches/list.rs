//! List latency with 10 000 participants on SQLite, over real gRPC and mutual TLS.
//!
//! Seeds the rows directly in one transaction (the API would take minutes), then times
//! `ListParticipants` pages with and without filters, and `CountNewParticipants`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_sqlite_url};
use samsyn_participants::domain::pin::check_digit;
use samsyn_participants::store::Migrator;
use samsyn_participants::store::entities::{assignment, participant, referral};
use samsyn_proto::common::v1::PageRequest;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::participants::v1::{
    CountNewParticipantsRequest, ListParticipantsRequest, ParticipantStatus,
};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};

const PARTICIPANTS: usize = 10_000;
const STAFF: usize = 50;
const MUNICIPALITIES: [&str; 10] = [
    "1257", "1260", "1275", "1276", "1277", "1278", "1282", "1283", "1284", "1292",
];
const STATUSES: [&str; 5] = ["referred", "accepted", "declined", "enrolled", "discharged"];

fn pin(i: usize) -> String {
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1)
        .unwrap()
        .checked_add_days(Days::new((i / 1000) as u64 * 37))
        .unwrap();
    let nine = format!("{}{:03}", birth.format("%y%m%d"), i % 1000);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!(
        "{}{:03}{}",
        birth.format("%Y%m%d"),
        i % 1000,
        check_digit(&digits)
    )
}

async fn seed(url: &str) -> Duration {
    let started = Instant::now();
    let db = samsyn_kit::db::connect::<Migrator>(url).await.unwrap();
    let txn = db.begin().await.unwrap();
    let now = Utc::now();
    let mut people = Vec::new();
    let mut referrals = Vec::new();
    let mut assignments = Vec::new();
    for i in 0..PARTICIPANTS {
        let id = uuid::Uuid::now_v7().to_string();
        let referral_id = uuid::Uuid::now_v7().to_string();
        let status = STATUSES[i % STATUSES.len()];
        let municipality = MUNICIPALITIES[i % MUNICIPALITIES.len()];
        let enrolled = matches!(status, "enrolled" | "discharged");
        people.push(participant::ActiveModel {
            id: Set(id.clone()),
            personal_identity_number: Set(pin(i)),
            name: Set(format!("Deltagare Nummer{i} Åström")),
            home_municipality_code: Set(municipality.to_owned()),
            status: Set(status.to_owned()),
            current_referral_id: Set(referral_id.clone()),
            revision: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        });
        let enrolled_on = NaiveDate::from_ymd_opt(2021 + (i % 3) as i32, 1 + (i % 12) as u32, 10);
        referrals.push(referral::ActiveModel {
            id: Set(referral_id),
            participant_id: Set(id.clone()),
            referring_principal: Set("region".to_owned()),
            referred_by_staff_id: Set("SE2321000255-P001".to_owned()),
            referred_by_organisation_id: Set("SE2321000255".to_owned()),
            referred_by_unit_id: Set(None),
            reason: Set("Behov från båda huvudmännen".to_owned()),
            long_term_needs_from_both_principals: Set(true),
            diagnosis_criteria_met: Set(true),
            referred_at: Set(now),
            outcome_accepted: Set(None),
            outcome_reason: Set(None),
            decided_at: Set(None),
            consent_reference: Set(enrolled.then(|| uuid::Uuid::now_v7().to_string())),
            enrolled_on: Set(enrolled.then_some(enrolled_on).flatten()),
            enrolled_municipality_code: Set(enrolled.then(|| municipality.to_owned())),
            discharge_reason: Set(None),
            discharged_on: Set(None),
            discharge_note: Set(None),
            consent_revoked_at: Set(None),
        });
        assignments.push(assignment::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            participant_id: Set(id),
            kind: Set("care_team_member".to_owned()),
            principal: Set(None),
            rank: Set(None),
            role: Set(Some("nurse".to_owned())),
            staff_id: Set(format!("staff-{}", i % STAFF)),
            organisation_id: Set("SE2321000255".to_owned()),
            unit_id: Set(None),
            valid_from: Set(now),
            valid_until: Set(None),
        });
    }
    // Batches stay under SQLite's limit on bound parameters per statement.
    for chunk in people.chunks(500) {
        participant::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    for chunk in referrals.chunks(500) {
        referral::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    for chunk in assignments.chunks(500) {
        assignment::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    db.close().await.unwrap();
    started.elapsed()
}

fn report(label: &str, mut samples: Vec<Duration>, rows: usize) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{label:<44} rows {rows:>4}  p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms  (n={})",
        p(0.5).as_secs_f64() * 1e3,
        p(0.95).as_secs_f64() * 1e3,
        p(1.0).as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_sqlite_url(dir.path());
        let seeded = seed(&url).await;
        println!(
            "seeded {PARTICIPANTS} participants (+ referrals, assignments) in one transaction: {:.0} ms",
            seeded.as_secs_f64() * 1e3
        );
        let context = PartContext {
            database_url: url,
            data_dir: dir.path().to_path_buf(),
            limits: Limits::default(),
        };
        let served = ServedPart::start(samsyn_participants::part(&context, None).await.unwrap()).await;
        let mut client = ParticipantsServiceClient::new(served.channel.clone());

        let page = |size: u32| Some(PageRequest { page_size: size, page_token: String::new() });
        let cases: Vec<(&str, ListParticipantsRequest)> = vec![
            ("first page of 50, no filter", ListParticipantsRequest { page: page(50), ..Default::default() }),
            ("first page of 500, no filter", ListParticipantsRequest { page: page(500), ..Default::default() }),
            (
                "page of 50, status enrolled",
                ListParticipantsRequest { page: page(50), status: ParticipantStatus::Enrolled as i32, ..Default::default() },
            ),
            (
                "page of 50, home municipality 1283",
                ListParticipantsRequest { page: page(50), home_municipality_code: "1283".to_owned(), ..Default::default() },
            ),
            (
                "page of 50, staff (200 of 10 000)",
                ListParticipantsRequest { page: page(50), staff_id: "staff-7".to_owned(), ..Default::default() },
            ),
            (
                "page of 50, organisation (all match)",
                ListParticipantsRequest {
                    page: page(50),
                    organisation_id: Some(samsyn_proto::common::v1::OrganisationId { value: "SE2321000255".to_owned() }),
                    ..Default::default()
                },
            ),
        ];
        for (label, request) in cases {
            // One warm-up call, then timed calls.
            client.list_participants(request.clone()).await.unwrap();
            let mut samples = Vec::new();
            let mut rows = 0;
            for _ in 0..100 {
                let started = Instant::now();
                let response = client.list_participants(request.clone()).await.unwrap().into_inner();
                samples.push(started.elapsed());
                rows = response.participants.len();
            }
            report(label, samples, rows);
        }

        // Walking every page of 500.
        let started = Instant::now();
        let mut token = String::new();
        let mut total = 0;
        let mut pages = 0;
        loop {
            let response = client
                .list_participants(ListParticipantsRequest {
                    page: Some(PageRequest { page_size: 500, page_token: token }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            total += response.participants.len();
            pages += 1;
            token = response.page.unwrap_or_default().next_page_token;
            if token.is_empty() {
                break;
            }
        }
        println!(
            "all {total} participants in {pages} pages of 500: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );

        let mut samples = Vec::new();
        let mut rows = 0;
        for _ in 0..20 {
            let started = Instant::now();
            let response = client
                .count_new_participants(CountNewParticipantsRequest { from_year: 2021, to_year: 2023 })
                .await
                .unwrap()
                .into_inner();
            samples.push(started.elapsed());
            rows = response.counts.len();
        }
        report("yearly counts 2021-2023 (6 000 enrolments)", samples, rows);
        served.stop().await;
    });
}
