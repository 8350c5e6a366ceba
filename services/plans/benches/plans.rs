//! Latency of the plans service over real gRPC and mutual TLS on SQLite: reading a full plan
//! (30 interventions, 50 revisions), an old revision, updating, pushing decisions and their
//! replays, and the due follow-up list over 200 participants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use samsyn_proto::common::v1::PageRequest;
use samsyn_proto::plans::v1 as pb;

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)];
    println!(
        "{what:<44} n={n:<4} mean={:>8.2?} p50={:>8.2?} p95={:>8.2?} max={:>8.2?}",
        total / n as u32,
        at(0.50),
        at(0.95),
        samples[n - 1]
    );
}

fn full_content(need_ids: &[String], intervention_ids: &[String]) -> pb::PlanContent {
    let mut content = content(&need_ids[0]);
    content.needs = need_ids
        .iter()
        .enumerate()
        .map(|(i, id)| pb::Need {
            id: id.clone(),
            life_area: (i % 8 + 1) as i32,
            description: format!("Behov {i}: stöd i vardagen, ekonomi och boende"),
            no_intervention_reason: 0,
        })
        .collect();
    content.interventions = intervention_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut intervention = intervention(
                id,
                &need_ids[i % need_ids.len()],
                "municipality.housing_support",
            );
            intervention.kind = Some(pb::intervention::Kind::FreeText(format!(
                "Insats {i}: boendestöd två gånger i veckan, hjälp med tvätt och inköp"
            )));
            intervention
        })
        .collect();
    content.follow_ups = (0..10)
        .map(|i| follow_up(day(2026, 12, 1 + i), "fact-bench"))
        .collect();
    content
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut served = serve(None).await;
    let client = &mut served.client;
    let person = new_participant();
    let need_ids: Vec<String> = (0..10).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let intervention_ids: Vec<String> = (0..30).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut content = full_content(&need_ids, &intervention_ids);
    let plan = client
        .create_plan(pb::CreatePlanRequest {
            participant_id: participant(&person),
            content: Some(content.clone()),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // 49 updates: revision 50.
    let mut updates = Vec::new();
    for revision_now in 1..50u64 {
        content.strengths = format!("Styrkor, version {revision_now}: envis och omtänksam");
        let started = Instant::now();
        client
            .update_plan(pb::UpdatePlanRequest {
                participant_id: participant(&person),
                plan_id: plan.id.clone(),
                expected_revision: revision(revision_now),
                content: Some(content.clone()),
            })
            .await
            .unwrap();
        updates.push(started.elapsed());
    }
    let full = client
        .get_plan(pb::GetPlanRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.revision.unwrap().value, 50);
    println!(
        "plan: 10 needs, 30 interventions, 10 follow-ups, 50 revisions; encoded {} bytes",
        prost::Message::encoded_len(&full)
    );
    report("UpdatePlan (full content, 30 interventions)", updates);

    let mut gets = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        client
            .get_plan(pb::GetPlanRequest {
                participant_id: participant(&person),
                plan_id: plan.id.clone(),
            })
            .await
            .unwrap();
        gets.push(started.elapsed());
    }
    report("GetPlan (full plan, revision 50)", gets);

    let mut old = Vec::new();
    for i in 0..200u64 {
        let started = Instant::now();
        client
            .get_plan_revision(pb::GetPlanRevisionRequest {
                participant_id: participant(&person),
                plan_id: plan.id.clone(),
                revision: revision(1 + i % 50),
            })
            .await
            .unwrap();
        old.push(started.elapsed());
    }
    report("GetPlanRevision (any of 50)", old);

    let mut pushes = Vec::new();
    for (i, id) in intervention_ids.iter().enumerate() {
        let started = Instant::now();
        let receipt = client
            .push_decision(pb::PushDecisionRequest {
                decision: Some(decision(&format!("BB-BENCH-{i}"), &person, id)),
            })
            .await
            .unwrap()
            .into_inner();
        pushes.push(started.elapsed());
        assert!(!receipt.replayed);
    }
    report("PushDecision (first push, new revision)", pushes);
    let mut replays = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        let receipt = client
            .push_decision(pb::PushDecisionRequest {
                decision: Some(decision(
                    &format!("BB-BENCH-{}", i % 30),
                    &person,
                    &intervention_ids[i % 30],
                )),
            })
            .await
            .unwrap()
            .into_inner();
        replays.push(started.elapsed());
        assert!(receipt.replayed);
    }
    report("PushDecision (replay)", replays);

    // 200 more participants, each with a plan and two follow-ups for the bench team.
    for i in 0..200u32 {
        let need = uuid::Uuid::new_v4().to_string();
        let mut small = common::content(&need);
        small.follow_ups = vec![
            follow_up(day(2026, 11, 1 + i % 28), "fact-bench"),
            follow_up(day(2027, 2, 1 + i % 28), "fact-bench"),
        ];
        client
            .create_plan(pb::CreatePlanRequest {
                participant_id: participant(&new_participant()),
                content: Some(small),
                supersede_active: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mut lists = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let page = client
            .list_due_follow_ups(pb::ListDueFollowUpsRequest {
                owner: Some(pb::list_due_follow_ups_request::Owner::TeamId(
                    "fact-bench".into(),
                )),
                as_of: day(2026, 11, 23),
                within_days: 30,
                page: Some(PageRequest {
                    page_size: 50,
                    page_token: String::new(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        lists.push(started.elapsed());
        assert_eq!(page.follow_ups.len(), 50);
    }
    report("ListDueFollowUps (page of 50 of 410 open)", lists);
}
