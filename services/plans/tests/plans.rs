//! The plans service over real gRPC and mutual TLS, on SQLite and PostgreSQL: the SIP from
//! creation through a pushed municipal decision, revisions, follow-ups and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use samsyn_proto::common::v1::{PageRequest, StaffRef, WatchChangesRequest};
use samsyn_proto::plans::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn sip_flow(database_url: Option<String>) {
    let mut served = serve(database_url).await;
    let client = &mut served.client;
    let person = new_participant();
    let need_id = uuid::Uuid::new_v4().to_string();

    // Create, with a retry that must not create a second plan.
    let create = pb::CreatePlanRequest {
        participant_id: participant(&person),
        content: Some(content(&need_id)),
        supersede_active: false,
        request_id: "sip-req-1".into(),
    };
    let plan = client
        .create_plan(create.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = client
        .create_plan(create.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.id, plan.id);
    assert_eq!(plan.revision.unwrap().value, 1);
    assert_eq!(plan.status, pb::PlanStatus::Active as i32);
    let stored = plan.content.clone().unwrap();
    let sent = content(&need_id);
    assert_eq!(
        stored.goals[0].text, sent.goals[0].text,
        "Swedish goal text kept exactly"
    );
    assert_eq!(stored.strengths, sent.strengths);
    assert_eq!(stored.other_actions[0].actor, "Försäkringskassan");
    let again = pb::CreatePlanRequest {
        request_id: String::new(),
        ..create.clone()
    };
    let status = client.create_plan(again).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Add an intervention and two follow-ups: one overdue, one later.
    let intervention_id = uuid::Uuid::new_v4().to_string();
    let mut edited = stored.clone();
    edited.interventions = vec![intervention(
        &intervention_id,
        &need_id,
        "municipality.housing_support",
    )];
    edited.follow_ups = vec![
        follow_up(day(2026, 11, 2), "fact-nordvast"),
        follow_up(day(2027, 1, 20), ""),
    ];
    let update = pb::UpdatePlanRequest {
        participant_id: participant(&person),
        plan_id: plan.id.clone(),
        expected_revision: revision(1),
        content: Some(edited.clone()),
    };
    let plan2 = client
        .update_plan(update.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan2.revision.unwrap().value, 2);

    // Someone else's stale copy is refused with the current revision.
    let status = client.update_plan(update).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(
        info.metadata.get("current_revision").map(String::as_str),
        Some("2")
    );

    // A SIP meeting and the participant's own evaluation.
    let plan3 = client
        .record_meeting(pb::RecordMeetingRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            expected_revision: revision(2),
            meeting: Some(pb::Meeting {
                id: String::new(),
                held_on: day(2026, 11, 20),
                attendees: vec![
                    pb::Attendee {
                        who: Some(pb::attendee::Who::Participant(true)),
                    },
                    pb::Attendee {
                        who: Some(pb::attendee::Who::Relative("Syster, Märta".into())),
                    },
                    pb::Attendee {
                        who: Some(pb::attendee::Who::Staff(StaffRef {
                            staff_id: "SE2321000016-S042".into(),
                            organisation_id: org(REGION),
                            unit_id: String::new(),
                        })),
                    },
                ],
                decisions: vec!["Ansöka om boendestöd två gånger i veckan".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan3.meetings[0].attendees.len(), 3);
    let plan4 = client
        .record_evaluation(pb::RecordEvaluationRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            expected_revision: revision(3),
            evaluation: Some(pb::Evaluation {
                id: String::new(),
                recorded_at: None,
                items: vec![
                    pb::EvaluationItem {
                        question: pb::EvaluationQuestion::GoalsAreMine as i32,
                        answer: pb::EvaluationAnswer::Yes as i32,
                    },
                    pb::EvaluationItem {
                        question: pb::EvaluationQuestion::KnowsWhoDoesWhat as i32,
                        answer: pb::EvaluationAnswer::Partly as i32,
                    },
                ],
                comment: "Bra möte, men för många människor på en gång".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan4.revision.unwrap().value, 4);
    assert_eq!(
        plan4.evaluations[0].comment,
        "Bra möte, men för många människor på en gång"
    );
    assert_eq!(
        plan4.meetings[0].attendees[1].who,
        Some(pb::attendee::Who::Relative("Syster, Märta".into()))
    );

    // The municipality's system pushes its decision; a retry is a replay.
    let push = pb::PushDecisionRequest {
        decision: Some(decision("BB-2026-0815", &person, &intervention_id)),
    };
    let first = client
        .push_decision(push.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    assert_eq!(first.plan_revision.unwrap().value, 5);
    assert_eq!(first.intervention_id, intervention_id);
    let replay = client
        .push_decision(push.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.plan_revision, first.plan_revision);
    let mut conflicting = push.decision.clone().unwrap();
    conflicting.outcome = pb::DecisionOutcome::Denied as i32;
    let status = client
        .push_decision(pb::PushDecisionRequest {
            decision: Some(conflicting),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    // A decision for someone without a plan, or for no waiting intervention, is no longer
    // refused (the case system would be left retrying): it is parked, with the reason.
    let no_plan = decision("BB-2026-0816", &new_participant(), &intervention_id);
    let parked = client
        .push_decision(pb::PushDecisionRequest {
            decision: Some(no_plan),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parked.disposition, pb::DecisionDisposition::Parked as i32);
    assert_eq!(parked.park_reason, pb::ParkReason::NoActivePlan as i32);
    let unknown_intervention = decision("BB-2026-0817", &person, &uuid::Uuid::new_v4().to_string());
    let parked = client
        .push_decision(pb::PushDecisionRequest {
            decision: Some(unknown_intervention),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        parked.park_reason,
        pb::ParkReason::NoMatchingIntervention as i32
    );

    // Nobody chases it: the intervention is granted in the plan.
    let now = client
        .get_active_plan(pb::GetActivePlanRequest {
            participant_id: participant(&person),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.revision.unwrap().value,
        5,
        "replays and refusals changed nothing"
    );
    let granted = &now.content.as_ref().unwrap().interventions[0];
    assert_eq!(granted.status, pb::InterventionStatus::Granted as i32);
    let link = granted.decision.as_ref().unwrap();
    assert_eq!(link.external_decision_id, "BB-2026-0815");
    assert_eq!(link.valid_from, day(2026, 12, 1));
    assert_eq!(now.decisions.len(), 1);

    // An old revision is exactly as it was.
    let old = client
        .get_plan_revision(pb::GetPlanRevisionRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            revision: revision(2),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old, plan2);
    assert_eq!(
        old.content.unwrap().interventions[0].status,
        pb::InterventionStatus::Applied as i32
    );
    let history = client
        .list_plan_revisions(pb::ListPlanRevisionsRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    let second_page = client
        .list_plan_revisions(pb::ListPlanRevisionsRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            page: Some(PageRequest {
                page_size: 3,
                page_token: "3".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.revisions, history.revisions[3..]);
    assert!(second_page.page.unwrap().next_page_token.is_empty());
    let kinds: Vec<_> = history.revisions.iter().map(|r| r.kind).collect();
    use pb::RevisionKind as K;
    assert_eq!(
        kinds,
        [
            K::Created,
            K::ContentUpdated,
            K::MeetingRecorded,
            K::EvaluationRecorded,
            K::DecisionRecorded
        ]
        .map(|k| k as i32)
    );

    // Follow-ups: the team's overdue one; the organisation's within a look-ahead, paged.
    let team_due = client
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            owner: Some(pb::list_due_follow_ups_request::Owner::TeamId(
                "fact-nordvast".into(),
            )),
            as_of: day(2026, 11, 23),
            within_days: 0,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team_due.follow_ups.len(), 1);
    assert!(team_due.follow_ups[0].overdue);
    assert_eq!(team_due.follow_ups[0].participant_id, participant(&person));
    let org_request = |token: String| pb::ListDueFollowUpsRequest {
        owner: Some(pb::list_due_follow_ups_request::Owner::OrganisationId(
            org(MUNICIPALITY).unwrap(),
        )),
        as_of: day(2026, 11, 23),
        within_days: 90,
        page: Some(PageRequest {
            page_size: 1,
            page_token: token,
        }),
    };
    let page1 = client
        .list_due_follow_ups(org_request(String::new()))
        .await
        .unwrap()
        .into_inner();
    let token = page1.page.unwrap().next_page_token;
    assert!(!token.is_empty());
    let page2 = client
        .list_due_follow_ups(org_request(token))
        .await
        .unwrap()
        .into_inner();
    assert!(page1.follow_ups[0].overdue);
    assert!(!page2.follow_ups[0].overdue);
    assert_eq!(
        page2.follow_ups[0].follow_up.as_ref().unwrap().due_on,
        day(2027, 1, 20)
    );

    // A new SIP supersedes the old one, which is kept but closed and no longer due.
    let newer = client
        .create_plan(pb::CreatePlanRequest {
            supersede_active: true,
            request_id: "sip-req-2".into(),
            ..create
        })
        .await
        .unwrap()
        .into_inner();
    let plans = client
        .list_plans(pb::ListPlansRequest {
            participant_id: participant(&person),
        })
        .await
        .unwrap()
        .into_inner()
        .plans;
    assert_eq!(plans.len(), 2);
    let closed = plans.iter().find(|p| p.id == plan.id).unwrap();
    assert_eq!(closed.status, pb::PlanStatus::Closed as i32);
    assert!(
        plans
            .iter()
            .any(|p| p.id == newer.id && p.status == pb::PlanStatus::Active as i32)
    );
    let team_due = client
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            owner: Some(pb::list_due_follow_ups_request::Owner::TeamId(
                "fact-nordvast".into(),
            )),
            as_of: day(2026, 11, 23),
            within_days: 0,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(team_due.follow_ups.is_empty());

    // Six colleagues save at once from the same revision: one wins, the others are told.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut client = client.clone();
        let mut content = content(&need_id);
        let id = uuid::Uuid::new_v4().to_string();
        content.interventions = vec![intervention(&id, &need_id, "municipality.guardian")];
        let request = pb::UpdatePlanRequest {
            participant_id: participant(&person),
            plan_id: newer.id.clone(),
            expected_revision: revision(1),
            content: Some(content),
        };
        racers.spawn(async move { (id, client.update_plan(request).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = racers.join_next().await {
        match joined.unwrap() {
            (id, Ok(_)) => winners.push(id),
            (_, Err(status)) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    // The same decision pushed four times at once is recorded once.
    let mut pushes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut client = client.clone();
        let push = pb::PushDecisionRequest {
            decision: Some(decision("BB-2026-0900", &person, &winners[0])),
        };
        pushes.spawn(async move { client.push_decision(push).await.unwrap().into_inner() });
    }
    let receipts = pushes.join_all().await;
    assert_eq!(receipts.iter().filter(|r| !r.replayed).count(), 1);
    assert!(receipts.iter().all(|r| r.plan_revision == revision(3)));
    let status = client
        .update_plan(pb::UpdatePlanRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            expected_revision: revision(6),
            content: Some(content(&need_id)),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "a closed plan no longer changes"
    );

    // The change feed carries each step, the decision included (and the parked ones, for the
    // coordinators' inbox), for the board and SIP tool.
    let mut feed = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 13 {
        let change = tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(format!("{}:{}", change.entity_kind, change.change_kind));
        if seen.len() == 5 {
            // The payload is the plan itself, for consumers such as the SIP-tool link.
            let decided = <pb::Plan as prost::Message>::decode(change.payload.as_slice()).unwrap();
            assert_eq!(decided, now);
            assert_eq!(change.participant_id, participant(&person));
        }
    }
    assert_eq!(
        seen,
        [
            "plan:created",
            "plan:content_updated",
            "plan:meeting_recorded",
            "plan:evaluation_recorded",
            "plan:decision_recorded",
            "decision:recorded",
            "decision_inbox:parked",
            "decision_inbox:parked",
            "plan:closed",
            "plan:created",
            "plan:content_updated",
            "plan:decision_recorded",
            "decision:recorded",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sip_from_creation_to_a_granted_decision_on_sqlite() {
    sip_flow(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sip_from_creation_to_a_granted_decision_on_postgres() {
    let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
    sip_flow(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_stores_nothing() {
    let mut served = serve(None).await;
    let client = &mut served.client;
    let person = new_participant();
    let need_id = uuid::Uuid::new_v4().to_string();
    let create = |content: pb::PlanContent| pb::CreatePlanRequest {
        participant_id: participant(&person),
        content: Some(content),
        supersede_active: false,
        request_id: String::new(),
    };

    let mut empty_goal = content(&need_id);
    empty_goal.goals[0].text = "   ".into();
    let mut huge = content(&need_id);
    huge.strengths = "å".repeat(500_000); // a megabyte
    let mut bad_date = content(&need_id);
    bad_date.follow_ups = vec![follow_up(day(2027, 2, 30), "")];
    let mut year_10000 = content(&need_id);
    year_10000.follow_ups = vec![follow_up(day(10_000, 1, 1), "")];
    let mut unlinked = content(&need_id);
    unlinked.interventions = vec![intervention(
        "",
        &uuid::Uuid::new_v4().to_string(),
        "municipality.guardian",
    )];
    let mut unknown_code = content(&need_id);
    unknown_code.interventions = vec![intervention("", &need_id, "municipality.jetpack")];
    let mut ends_first = content(&need_id);
    let mut backwards = intervention("", &need_id, "region.imr");
    backwards.start_on = day(2027, 3, 1);
    backwards.end_on = day(2027, 1, 1);
    ends_first.interventions = vec![backwards];
    let mut met_with_reason = content(&need_id);
    met_with_reason.needs[0].no_intervention_reason =
        pb::NoInterventionReason::MotivationWork as i32;
    met_with_reason.interventions = vec![intervention("", &need_id, "region.imr")];
    let mut unknown_reason = content(&need_id);
    unknown_reason.needs[0].no_intervention_reason = 99;
    let cases = [
        (empty_goal, "content.goals[0].text"),
        (huge, "content.strengths"),
        (bad_date, "content.follow_ups[0].due_on"),
        (year_10000, "content.follow_ups[0].due_on"),
        (unlinked, "content.interventions[0].need_id"),
        (unknown_code, "content.interventions[0].catalogue_code"),
        (ends_first, "content.interventions[0].end_on"),
        (met_with_reason, "content.needs[0].no_intervention_reason"),
        (unknown_reason, "content.needs[0].no_intervention_reason"),
    ];
    for (bad, field) in cases {
        let status = client.create_plan(create(bad)).await.unwrap_err();
        assert_eq!(fields(&status), [field]);
        assert!(!status.message().contains('å'), "no user text in errors");
    }
    let status = client
        .create_plan(pb::CreatePlanRequest {
            participant_id: participant("19121212-1212"),
            ..create(content(&need_id))
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["participant_id.value"]);
    let plans = client
        .list_plans(pb::ListPlansRequest {
            participant_id: participant(&person),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plans.plans.is_empty(), "nothing was stored");

    // On an existing plan: a forbidden status step and a backwards decision period.
    let plan = client
        .create_plan(create(content(&need_id)))
        .await
        .unwrap()
        .into_inner();
    let mut edited = content(&need_id);
    let mut proposed = intervention(
        &uuid::Uuid::new_v4().to_string(),
        &need_id,
        "municipality.housing_support",
    );
    proposed.status = pb::InterventionStatus::Proposed as i32;
    edited.interventions = vec![proposed.clone()];
    let plan2 = client
        .update_plan(pb::UpdatePlanRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            expected_revision: revision(1),
            content: Some(edited.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    edited.interventions[0].status = pb::InterventionStatus::Paused as i32;
    let status = client
        .update_plan(pb::UpdatePlanRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
            expected_revision: revision(2),
            content: Some(edited),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["content.interventions[0].status"]);
    let mut backwards = decision("BB-1", &person, &proposed.id);
    backwards.valid_until = day(2026, 1, 1);
    let status = client
        .push_decision(pb::PushDecisionRequest {
            decision: Some(backwards),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["decision.valid_until"]);
    for year in [10_000, -1200] {
        let mut out_of_range = decision("BB-1", &person, &proposed.id);
        out_of_range.decided_at = Some(samsyn_kit::testing::new_year(year));
        let status = client
            .push_decision(pb::PushDecisionRequest {
                decision: Some(out_of_range),
            })
            .await
            .unwrap_err();
        assert_eq!(fields(&status), ["decision.decided_at"], "year {year}");
    }
    let status = client
        .get_plan(pb::GetPlanRequest {
            participant_id: participant(&new_participant()),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "another participant's plan id is not found"
    );
    let now = client
        .get_plan(pb::GetPlanRequest {
            participant_id: participant(&person),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now, plan2, "refused changes left the plan as it was");

    // A decision may name the catalogue kind instead of the intervention id.
    let mut by_kind = decision("BB-2", &person, "");
    by_kind.subject = Some(pb::decision::Subject::CatalogueCode(
        "municipality.housing_support".into(),
    ));
    by_kind.outcome = pb::DecisionOutcome::Denied as i32;
    let receipt = client
        .push_decision(pb::PushDecisionRequest {
            decision: Some(by_kind),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.intervention_id, proposed.id);
    let now = client
        .get_active_plan(pb::GetActivePlanRequest {
            participant_id: participant(&person),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.content.unwrap().interventions[0].status,
        pb::InterventionStatus::Denied as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_holds_both_principals_and_admins_edit_it() {
    let mut served = serve(None).await;
    let client = &mut served.client;
    let all = client
        .list_catalogue(pb::ListCatalogueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let named = |name: &str| all.iter().find(|e| e.name == name).cloned().unwrap();
    assert_eq!(
        named("Boendestöd").principal,
        pb::Principal::Municipality as i32
    );
    assert_eq!(
        named("Farmakologisk behandling").principal,
        pb::Principal::Region as i32
    );
    assert_eq!(named("God man").code, "municipality.guardian");

    let entry = pb::CatalogueEntry {
        code: "municipality.fontanhuset".into(),
        principal: pb::Principal::Municipality as i32,
        name: "Fontänhuset (klubbhus)".into(),
        active: true,
    };
    client
        .upsert_catalogue_entry(pb::UpsertCatalogueEntryRequest {
            entry: Some(entry.clone()),
        })
        .await
        .unwrap();
    client
        .upsert_catalogue_entry(pb::UpsertCatalogueEntryRequest {
            entry: Some(pb::CatalogueEntry {
                code: "region.dance_group".into(),
                principal: pb::Principal::Region as i32,
                name: "Dansgrupp".into(),
                active: false,
            }),
        })
        .await
        .unwrap();
    let municipal = client
        .list_catalogue(pb::ListCatalogueRequest {
            principal: pb::Principal::Municipality as i32,
            include_retired: false,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        municipal.last(),
        Some(&entry),
        "new entries come last, name kept exactly"
    );
    assert!(
        municipal
            .iter()
            .all(|e| e.principal == pb::Principal::Municipality as i32)
    );
    let region = client
        .list_catalogue(pb::ListCatalogueRequest {
            principal: pb::Principal::Region as i32,
            include_retired: false,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        !region.iter().any(|e| e.code == "region.dance_group"),
        "retired entries are not offered"
    );
    let status = client
        .upsert_catalogue_entry(pb::UpsertCatalogueEntryRequest {
            entry: Some(pb::CatalogueEntry {
                code: "Boendestöd".into(),
                ..entry
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["entry.code"]);
}

/// A decision for a participant without a plan is parked, not refused; a replay is the same
/// receipt, different content under its id is ALREADY_EXISTS; the inbox lists it.
async fn parking(url: Option<String>) {
    let mut served = serve(url).await;
    let client = &mut served.client;
    let person = new_participant();
    let push = pb::PushDecisionRequest {
        decision: Some(decision(
            "BB-2026-0099",
            &person,
            &uuid::Uuid::new_v4().to_string(),
        )),
    };
    let receipt = client
        .push_decision(push.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.disposition, pb::DecisionDisposition::Parked as i32);
    assert_eq!(receipt.park_reason, pb::ParkReason::NoActivePlan as i32);
    let replay = client
        .push_decision(push.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.inbox_id, receipt.inbox_id);
    let mut changed = push.clone();
    changed.decision.as_mut().unwrap().outcome = pb::DecisionOutcome::Denied as i32;
    let conflict = client.push_decision(changed).await.unwrap_err();
    assert_eq!(conflict.code(), tonic::Code::AlreadyExists);
    let inbox = client
        .list_decision_inbox(pb::ListDecisionInboxRequest {
            organisation_id: org(MUNICIPALITY),
            include_resolved: false,
            page: None,
            team_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.decisions.len(), 1);
    assert_eq!(inbox.decisions[0].inbox_id, receipt.inbox_id);
    // As pushed; version 0 reads as 1, the first.
    let mut expected = push.decision.clone();
    expected.as_mut().unwrap().version = 1;
    assert_eq!(inbox.decisions[0].decision, expected);
    // A later version of a parked decision stays parked, as the inbox's latest.
    let mut amended = push.clone();
    let d = amended.decision.as_mut().unwrap();
    d.version = 2;
    d.change = pb::DecisionChange::Amended as i32;
    d.valid_until = day(2027, 5, 31);
    let receipt2 = client
        .push_decision(amended.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!receipt2.replayed);
    assert_eq!(receipt2.inbox_id, receipt.inbox_id);
    let inbox = client
        .list_decision_inbox(pb::ListDecisionInboxRequest {
            organisation_id: org(MUNICIPALITY),
            include_resolved: false,
            page: None,
            team_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.decisions[0].decision.as_ref().unwrap().version, 2);
    assert!(
        inbox.decisions[0].team_ids.is_empty(),
        "no plan: no team known"
    );
    // Once the participant's plan names the team that follows it up, the decision is in
    // that team's inbox, and in no other team's.
    let mut with_team = content(&uuid::Uuid::new_v4().to_string());
    with_team.follow_ups = vec![follow_up(day(2027, 1, 15), "fact-nordvast")];
    client
        .create_plan(pb::CreatePlanRequest {
            participant_id: participant(&person),
            content: Some(with_team),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap();
    let of_team = |team: &str| pb::ListDecisionInboxRequest {
        organisation_id: org(MUNICIPALITY),
        include_resolved: false,
        page: None,
        team_id: team.into(),
    };
    let team_inbox = client
        .list_decision_inbox(of_team("fact-nordvast"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team_inbox.decisions.len(), 1);
    assert_eq!(team_inbox.decisions[0].team_ids, ["fact-nordvast"]);
    let other = client
        .list_decision_inbox(of_team("fact-sydost"))
        .await
        .unwrap()
        .into_inner();
    assert!(other.decisions.is_empty());
    let bad = client
        .list_decision_inbox(of_team(&"x".repeat(65)))
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["team_id"]);
    assert!(
        client
            .push_decision(push.clone())
            .await
            .unwrap()
            .into_inner()
            .replayed
    );
    // Linking and dismissing are the deciding organisation's staff's: never anonymous.
    let refused = client
        .dismiss_parked_decision(pb::DismissParkedDecisionRequest {
            participant_id: participant(&person),
            inbox_id: receipt.inbox_id,
            reason: "Dubblett".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_without_a_plan_is_parked_on_sqlite() {
    parking(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_without_a_plan_is_parked_on_postgres() {
    let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
    parking(Some(url)).await;
}

/// A need without an intervention says why; the reason comes back on reads and on the feed,
/// and a need whose only intervention was denied may give one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_need_says_why_it_has_no_intervention() {
    let mut served = serve(None).await;
    let client = &mut served.client;
    let person = new_participant();
    let need_id = uuid::Uuid::new_v4().to_string();
    let mut with_reason = content(&need_id);
    with_reason.needs[0].no_intervention_reason = pb::NoInterventionReason::MotivationWork as i32;
    let mut denied = intervention("", &need_id, "municipality.housing_support");
    denied.status = pb::InterventionStatus::Denied as i32;
    let mut denied_need = content(&uuid::Uuid::new_v4().to_string());
    denied_need.needs[0].no_intervention_reason = pb::NoInterventionReason::Denied as i32;
    denied.need_id = denied_need.needs[0].id.clone();
    with_reason.needs.push(denied_need.needs[0].clone());
    with_reason.interventions = vec![denied];
    let plan = client
        .create_plan(pb::CreatePlanRequest {
            participant_id: participant(&person),
            content: Some(with_reason),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let reasons = |plan: &pb::Plan| -> Vec<i32> {
        plan.content
            .as_ref()
            .unwrap()
            .needs
            .iter()
            .map(|n| n.no_intervention_reason)
            .collect()
    };
    let want = [
        pb::NoInterventionReason::MotivationWork as i32,
        pb::NoInterventionReason::Denied as i32,
    ];
    assert_eq!(reasons(&plan), want);
    let read = client
        .get_active_plan(pb::GetActivePlanRequest {
            participant_id: participant(&person),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reasons(&read), want);
    let mut feed = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            heartbeat_seconds: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let change = feed.next().await.unwrap().unwrap();
    let fed = <pb::Plan as prost::Message>::decode(change.payload.as_slice()).unwrap();
    assert_eq!(reasons(&fed), want);
}
