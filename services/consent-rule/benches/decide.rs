//! Decision latency for a participant with 20 consents and restrictions: prints ns/decision.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration};
use samsyn_consent_rule::{
    Categories, Category, Consent, ConsentKind, Lift, LiftReason, Purpose, Request, Restriction,
    Sharing, decide,
};

const ORGS: [&str; 4] = ["SE2321000016-F00D", "1283", "1280", "SE2321000016-PRIM"];

fn main() {
    let now = DateTime::from_timestamp(1_780_308_000, 0).unwrap();
    let categories: Categories = [Category::Plan, Category::CareTeam, Category::Board]
        .into_iter()
        .collect();
    // 15 consents in every direction between four organisations, some expired or revoked...
    let consents: Vec<Consent> = (0..15)
        .map(|i| Consent {
            id: format!("0198c0de-0000-7000-8000-{i:012}"),
            kind: ConsentKind::InformationSharing,
            sharing: Some(Sharing {
                from_organisation: ORGS[i % 4].into(),
                to_organisation: ORGS[(i / 4 + i + 1) % 4].into(),
                categories,
                unit: (i % 3 == 0).then(|| format!("unit-{i}")),
                staff: None,
            }),
            valid_from: now - Duration::days(100),
            valid_until: (i % 5 == 0).then(|| now - Duration::days(1)),
            revoked_at: (i % 7 == 0).then(|| now - Duration::days(2)),
            voided: i == 11,
        })
        .collect();
    // ...and 5 restrictions, two of them with lifts.
    let restrictions: Vec<Restriction> = (0..5)
        .map(|i| Restriction {
            id: format!("0198c0de-1111-7000-8000-{i:012}"),
            organisation: ORGS[(i + 1) % 4].into(),
            unit: (i % 2 == 0).then(|| format!("unit-{i}")),
            owner_organisation: None,
            categories: [Category::Decision, Category::Board].into_iter().collect(),
            valid_from: now - Duration::days(10),
            valid_until: None,
            revoked_at: None,
            lifts: (0..i % 3)
                .map(|j| Lift {
                    id: format!("lift-{i}-{j}"),
                    reason: LiftReason::Consent,
                    unit: None,
                    staff: None,
                    categories: [Category::Board].into_iter().collect(),
                    starts_at: now - Duration::days(1),
                    ends_at: now + Duration::days(2),
                })
                .collect(),
        })
        .collect();
    let requests: Vec<Request> = [Category::Plan, Category::Board, Category::Decision]
        .into_iter()
        .flat_map(|category| {
            (0..4).map(move |i| Request {
                reader_organisation: ORGS[(i + 1) % 4].into(),
                reader_unit: Some("unit-2".into()),
                reader_staff: Some("SE1283-staff-0007".into()),
                owner_organisation: ORGS[i].into(),
                category,
                purpose: Purpose::Care,
                at: now,
                emergency: false,
            })
        })
        .collect();

    for _ in 0..10_000 {
        for request in &requests {
            black_box(decide(&consents, &restrictions, request));
        }
    }
    let rounds = 200_000;
    let started = Instant::now();
    let mut permits = 0u64;
    for round in 0..rounds {
        let request = &requests[round % requests.len()];
        if decide(black_box(&consents), black_box(&restrictions), request).is_permit() {
            permits += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "decide: {} consents + {} restrictions, {rounds} decisions over {} request shapes ({permits} permits): {:.0} ns/decision",
        consents.len(),
        restrictions.len(),
        requests.len(),
        elapsed.as_nanos() as f64 / rounds as f64
    );
}
