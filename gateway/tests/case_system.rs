//! A municipal case system pushes decisions in its own terms, through the gateway over mutual
//! TLS: the person by personal identity number, the intervention by its own decision-type
//! code. Only its own municipality's residents in the programme are found; anyone else, known
//! or not, gets the same refusal; bad input is refused naming the field and changes nothing;
//! the number is never forwarded, stored or audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::{DataCategory, OrganisationKind};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const HBG_COORDINATOR: &str = "hbg-coord-1";

fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// A plan for `id` with Helsingborg's housing support and the region's treatment, applied;
/// returns the plan and the housing intervention's id.
async fn plan_with_housing(stack: &Stack, id: &str) -> (plans_pb::Plan, String) {
    let need = uuid::Uuid::new_v4().to_string();
    let housing = uuid::Uuid::new_v4().to_string();
    let intervention = |iid: String, organisation: &str, code: &str| plans_pb::Intervention {
        id: iid,
        need_id: need.clone(),
        responsible_organisation_id: org(organisation),
        kind: Some(plans_pb::intervention::Kind::CatalogueCode(code.into())),
        status: plans_pb::InterventionStatus::Applied as i32,
        ..Default::default()
    };
    let plan = PlansServiceClient::new(stack.plans.channel.clone())
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(id),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Ett eget boende och mindre ångest".into(),
                }],
                needs: vec![plans_pb::Need {
                    id: need.clone(),
                    life_area: plans_pb::LifeArea::Housing as i32,
                    description: "Stöd i hemmet".into(),
                    no_intervention_reason: 0,
                }],
                interventions: vec![
                    intervention(housing.clone(), HELSINGBORG, "municipality.housing_support"),
                    intervention(
                        uuid::Uuid::new_v4().to_string(),
                        REGION,
                        "region.psychological_treatment",
                    ),
                ],
                ..Default::default()
            }),
            supersede_active: false,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (plan, housing)
}

/// A decision in the case system's own terms.
fn in_own_terms(external_id: &str, number: &str, code: &str) -> plans_pb::PushDecisionRequest {
    plans_pb::PushDecisionRequest {
        decision: Some(plans_pb::Decision {
            external_decision_id: external_id.into(),
            personal_identity_number: number.into(),
            subject: Some(plans_pb::decision::Subject::DecisionTypeCode(code.into())),
            outcome: plans_pb::DecisionOutcome::Granted as i32,
            valid_from: Some(today()),
            decided_by: staff_ref("hbg-bh-7", HELSINGBORG),
            decided_at: Some(prost_types::Timestamp {
                seconds: 1_795_000_000,
                nanos: 0,
            }),
            ..Default::default()
        }),
    }
}

/// `number` with its check digit changed: well formed, but no personal identity number.
fn broken(number: &str) -> String {
    let (body, last) = number.split_at(number.len() - 1);
    let digit = last.parse::<u8>().unwrap();
    format!("{body}{}", (digit + 1) % 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_system_pushes_by_personal_identity_number_and_its_own_code() {
    let stack = Stack::start().await;
    let number = pin("19790321", "482");
    let id = enrolled(
        &stack,
        &number,
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let (plan, housing) = plan_with_housing(&stack, &id).await;
    // Höganäs's resident, in the programme; and a person Samsyn has never heard of.
    let hoganas_number = pin("19810704", "339");
    ParticipantsServiceClient::new(stack.participants.channel.clone())
        .create_referral(participants_pb::CreateReferralRequest {
            idempotency_key: String::new(),
            personal_identity_number: hoganas_number.clone(),
            name: "Gösta Ängel".into(),
            home_municipality_code: HOGANAS.into(),
            referring_principal: OrganisationKind::Region as i32,
            referred_by: staff_ref(CASE_MANAGER, REGION),
            reason: "Behov av samordnat stöd från båda huvudmännen".into(),
            criteria: Some(participants_pb::AdmissionCriteria {
                long_term_needs_from_both_principals: true,
                diagnosis_criteria_met: true,
            }),
        })
        .await
        .unwrap();
    let unknown_number = pin("19650101", "118");
    stack.settle().await;
    let mut system = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));

    // Another municipality's resident and an unknown person: the same refusal.
    let mut refusals = Vec::new();
    for (n, other) in [&hoganas_number, &unknown_number].into_iter().enumerate() {
        let refused = system
            .push_decision(in_own_terms(&format!("HBG-X{n}"), other, "BS-SOL-4:1"))
            .await
            .unwrap_err();
        refusals.push((refused.code(), refused.message().to_owned()));
    }
    assert_eq!(refusals[0], refusals[1]);
    assert_eq!(refusals[0].0, Code::PermissionDenied);

    // Bad input, named: an unmapped code, a number with a wrong check digit, both a
    // participant id and a number.
    let refused = system
        .push_decision(in_own_terms("HBG-1", &number, "OKÄND-KOD"))
        .await
        .unwrap_err();
    assert_eq!(fields(&refused), ["decision.decision_type_code"]);
    let refused = system
        .push_decision(in_own_terms("HBG-1", &broken(&number), "BS-SOL-4:1"))
        .await
        .unwrap_err();
    assert_eq!(fields(&refused), ["decision.personal_identity_number"]);
    let mut both = in_own_terms("HBG-1", &number, "BS-SOL-4:1");
    both.decision.as_mut().unwrap().participant_id = pid(&id);
    let refused = system.push_decision(both).await.unwrap_err();
    assert_eq!(fields(&refused), ["decision.personal_identity_number"]);
    let mut plans = PlansServiceClient::new(stack.plans.channel.clone());
    let unchanged = plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.revision, plan.revision);
    assert!(unchanged.decisions.is_empty());

    // The own resident, by number and own code: applied to the housing intervention.
    let receipt = system
        .push_decision(in_own_terms("HBG-1", &number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.plan_id, plan.id);
    assert_eq!(receipt.intervention_id, housing);
    assert!(!receipt.replayed);
    // A replay is idempotent.
    let again = system
        .push_decision(in_own_terms("HBG-1", &number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.plan_revision, receipt.plan_revision);
    let decided = plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.decisions.len(), 1);
    let recorded = &decided.decisions[0];
    assert_eq!(recorded.participant_id, pid(&id));
    assert!(recorded.personal_identity_number.is_empty());
    assert_eq!(
        recorded.subject,
        Some(plans_pb::decision::Subject::CatalogueCode(
            "municipality.housing_support".into()
        ))
    );

    // The trail has every push, refused ones too, under the participant where known; and
    // never a personal identity number.
    let events = stack.trail.events();
    let pushes: Vec<_> = events
        .iter()
        .filter(|e| e.rpc.ends_with("/PushDecision"))
        .collect();
    assert_eq!(pushes.len(), 2 + 3 + 2 * 2);
    let trail = format!("{events:?}");
    for n in [&number, &hoganas_number, &unknown_number] {
        assert!(
            !trail.contains(n.as_str()),
            "a personal identity number in the trail"
        );
        assert!(!trail.contains(&n[2..]));
    }
    // The plans service itself never takes the case system's terms: only the gateway does.
    let refused = plans
        .push_decision(in_own_terms("HBG-2", &number, "BS-SOL-4:1"))
        .await
        .unwrap_err();
    let named = fields(&refused);
    assert!(named.contains(&"decision.personal_identity_number".to_owned()));
    assert!(named.contains(&"decision.decision_type_code".to_owned()));
    stack.stop().await;
}

type Authed =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>;

fn plans_as(stack: &Stack, token: &str) -> PlansServiceClient<Authed> {
    PlansServiceClient::with_interceptor(stack.channel(), Credentials::bearer(token))
}

fn inbox_of(organisation: &str) -> plans_pb::ListDecisionInboxRequest {
    plans_pb::ListDecisionInboxRequest {
        organisation_id: org(organisation),
        include_resolved: false,
        page: None,
        team_id: String::new(),
    }
}

/// The newest entry of a plan's history.
async fn last_revision(
    plans: &mut PlansServiceClient<tonic::transport::Channel>,
    id: &str,
    plan_id: &str,
) -> plans_pb::PlanRevisionSummary {
    plans
        .list_plan_revisions(plans_pb::ListPlanRevisionsRequest {
            participant_id: pid(id),
            plan_id: plan_id.to_owned(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .revisions
        .pop()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_matches_nothing_is_parked_then_linked_or_dismissed() {
    let stack = Stack::start().await;
    let number = pin("19790321", "482");
    let id = enrolled(
        &stack,
        &number,
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    stack.settle().await;
    let mut system = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));
    let coordinator = stack.token(&staff(HBG_COORDINATOR, HELSINGBORG, &["coordinator"]));
    let case_manager = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));

    // No plan yet: accepted and parked, with the reason; a replay is the same receipt.
    let receipt = system
        .push_decision(in_own_terms("HBG-10", &number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        receipt.disposition,
        plans_pb::DecisionDisposition::Parked as i32
    );
    assert_eq!(
        receipt.park_reason,
        plans_pb::ParkReason::NoActivePlan as i32
    );
    assert!(receipt.plan_id.is_empty());
    let replay = system
        .push_decision(in_own_terms("HBG-10", &number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.inbox_id, receipt.inbox_id);

    // Helsingborg's coordinator finds it in the inbox; the region's case manager, whose
    // organisation the decision is not, sees no row.
    let inbox = plans_as(&stack, &coordinator)
        .list_decision_inbox(inbox_of(HELSINGBORG))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.decisions.len(), 1);
    let parked = &inbox.decisions[0];
    assert_eq!(parked.inbox_id, receipt.inbox_id);
    assert_eq!(parked.state, plans_pb::InboxState::Parked as i32);
    assert_eq!(parked.decision.as_ref().unwrap().participant_id, pid(&id));
    let withheld = plans_as(&stack, &case_manager)
        .list_decision_inbox(inbox_of(HELSINGBORG))
        .await
        .unwrap()
        .into_inner();
    assert!(withheld.decisions.is_empty());

    // The plan is made; the coordinator links the decision to its intervention: applied.
    let (plan, housing) = plan_with_housing(&stack, &id).await;
    stack.settle().await;
    let refused = plans_as(&stack, &case_manager)
        .link_parked_decision(plans_pb::LinkParkedDecisionRequest {
            participant_id: pid(&id),
            inbox_id: receipt.inbox_id.clone(),
            intervention_id: housing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let missing = plans_as(&stack, &coordinator)
        .link_parked_decision(plans_pb::LinkParkedDecisionRequest {
            participant_id: pid(&id),
            inbox_id: uuid::Uuid::now_v7().to_string(),
            intervention_id: housing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let linked = plans_as(&stack, &coordinator)
        .link_parked_decision(plans_pb::LinkParkedDecisionRequest {
            participant_id: pid(&id),
            inbox_id: receipt.inbox_id.clone(),
            intervention_id: housing.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        linked.disposition,
        plans_pb::DecisionDisposition::Applied as i32
    );
    assert_eq!(linked.plan_id, plan.id);
    assert_eq!(linked.intervention_id, housing);
    let mut plans = PlansServiceClient::new(stack.plans.channel.clone());
    let decided = plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decided.decisions.len(), 1);
    let housing_now = decided
        .content
        .unwrap()
        .interventions
        .into_iter()
        .find(|i| i.id == housing)
        .unwrap();
    assert_eq!(housing_now.decision.unwrap().external_decision_id, "HBG-10");
    // The plan's history has the revision that linked it, naming the inbox entry, the
    // case system's id and the coordinator; the inbox is empty again.
    let linked = last_revision(&mut plans, &id, &plan.id).await;
    assert_eq!(
        linked.kind,
        plans_pb::RevisionKind::ParkedDecisionLinked as i32
    );
    assert_eq!(linked.inbox_id, receipt.inbox_id);
    assert_eq!(linked.external_decision_id, "HBG-10");
    assert_eq!(
        linked.resolved_by.as_ref().unwrap().staff_id,
        HBG_COORDINATOR
    );
    assert!(linked.dismissal_reason.is_empty());
    let inbox = plans_as(&stack, &coordinator)
        .list_decision_inbox(inbox_of(HELSINGBORG))
        .await
        .unwrap()
        .into_inner();
    assert!(inbox.decisions.is_empty());
    // A replay of the push now answers as applied.
    let replay = system
        .push_decision(in_own_terms("HBG-10", &number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(
        replay.disposition,
        plans_pb::DecisionDisposition::Applied as i32
    );
    assert_eq!(replay.intervention_id, housing);

    // A decision no intervention waits for (occupation): parked; dismissed with a reason,
    // in Swedish, once.
    let receipt = system
        .push_decision(in_own_terms("HBG-11", &number, "SYSS-SOL"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        receipt.park_reason,
        plans_pb::ParkReason::NoMatchingIntervention as i32
    );
    let reason = "Insatsen avslutad före beslutet; ingen åtgärd i planen";
    let dismiss = plans_pb::DismissParkedDecisionRequest {
        participant_id: pid(&id),
        inbox_id: receipt.inbox_id.clone(),
        reason: reason.into(),
    };
    let dismissed = plans_as(&stack, &coordinator)
        .dismiss_parked_decision(dismiss.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dismissed.state, plans_pb::InboxState::Dismissed as i32);
    assert_eq!(dismissed.dismissal_reason, reason);
    assert_eq!(dismissed.resolved_by.unwrap().staff_id, HBG_COORDINATOR);
    let again = plans_as(&stack, &coordinator)
        .dismiss_parked_decision(dismiss)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    // The dismissal, with its reason exactly as written, is in the plan's history too.
    let last = last_revision(&mut plans, &id, &plan.id).await;
    assert_eq!(
        last.kind,
        plans_pb::RevisionKind::ParkedDecisionDismissed as i32
    );
    assert_eq!(last.inbox_id, receipt.inbox_id);
    assert_eq!(last.external_decision_id, "HBG-11");
    assert_eq!(last.dismissal_reason, reason);
    let everything = plans_as(&stack, &coordinator)
        .list_decision_inbox(plans_pb::ListDecisionInboxRequest {
            include_resolved: true,
            ..inbox_of(HELSINGBORG)
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<i32> = everything.decisions.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [
            plans_pb::InboxState::Linked as i32,
            plans_pb::InboxState::Dismissed as i32
        ]
    );

    // An unknown catalogue code is a mistake, never parked.
    let mut unknown = in_own_terms("HBG-12", &number, "BS-SOL-4:1");
    let d = unknown.decision.as_mut().unwrap();
    d.personal_identity_number.clear();
    d.participant_id = pid(&id);
    d.subject = Some(plans_pb::decision::Subject::CatalogueCode(
        "municipality.no_such_thing".into(),
    ));
    let refused = system.push_decision(unknown).await.unwrap_err();
    assert_eq!(fields(&refused), ["decision.catalogue_code"]);
    stack.stop().await;
}

/// Version `version` of decision `external_id`, doing `change`, in the case system's terms.
fn version_of(
    external_id: &str,
    number: &str,
    version: u32,
    change: plans_pb::DecisionChange,
    outcome: plans_pb::DecisionOutcome,
) -> plans_pb::PushDecisionRequest {
    let mut request = in_own_terms(external_id, number, "BS-SOL-4:1");
    let d = request.decision.as_mut().unwrap();
    d.version = version;
    d.change = change as i32;
    d.outcome = outcome as i32;
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_is_amended_appealed_and_withdrawn_by_versions() {
    use plans_pb::DecisionChange as Change;
    use plans_pb::DecisionOutcome as Outcome;
    let stack = Stack::start().await;
    let number = pin("19790321", "482");
    let id = enrolled(
        &stack,
        &number,
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    let (plan, housing) = plan_with_housing(&stack, &id).await;
    stack.settle().await;
    let mut system = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));
    let mut plans = PlansServiceClient::new(stack.plans.channel.clone());
    let current = |plan: plans_pb::Plan| {
        let housing_now = plan
            .content
            .unwrap()
            .interventions
            .into_iter()
            .find(|i| i.id == housing)
            .unwrap();
        (housing_now.status, housing_now.decision.unwrap())
    };

    // Bad input changes nothing: a later version of a decision never pushed, a first
    // version that says it changes something, dates out of order.
    let refused = system
        .push_decision(version_of(
            "HBG-20",
            &number,
            2,
            Change::Withdrawn,
            Outcome::Granted,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert!(refused.message().contains("decision.external_decision_id"));
    let refused = system
        .push_decision(version_of(
            "HBG-20",
            &number,
            1,
            Change::Amended,
            Outcome::Granted,
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&refused), ["decision.change"]);
    let mut backwards = in_own_terms("HBG-20", &number, "BS-SOL-4:1");
    backwards.decision.as_mut().unwrap().valid_until =
        Some(samsyn_proto::common::v1::CalendarDate {
            year: 2001,
            month: 1,
            day: 1,
        });
    let refused = system.push_decision(backwards).await.unwrap_err();
    assert_eq!(fields(&refused), ["decision.valid_until"]);

    // Granted (version 1), amended to denied (2), appealed (3), appeal decided: granted (4).
    let steps = [
        (
            1,
            Change::Unspecified,
            Outcome::Granted,
            plans_pb::InterventionStatus::Granted,
        ),
        (
            2,
            Change::Amended,
            Outcome::Denied,
            plans_pb::InterventionStatus::Denied,
        ),
        (
            3,
            Change::Appealed,
            Outcome::Denied,
            plans_pb::InterventionStatus::Denied,
        ),
        (
            4,
            Change::AppealDecided,
            Outcome::Granted,
            plans_pb::InterventionStatus::Granted,
        ),
        (
            5,
            Change::Withdrawn,
            Outcome::Granted,
            plans_pb::InterventionStatus::Applied,
        ),
    ];
    let mut revisions = Vec::new();
    for (version, change, outcome, status) in steps {
        let receipt = system
            .push_decision(version_of("HBG-20", &number, version, change, outcome))
            .await
            .unwrap()
            .into_inner();
        assert!(!receipt.replayed);
        assert_eq!(receipt.intervention_id, housing);
        revisions.push(receipt.plan_revision.unwrap().value);
        let (now, link) = current(
            plans
                .get_plan(plans_pb::GetPlanRequest {
                    participant_id: pid(&id),
                    plan_id: plan.id.clone(),
                })
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!(now, status as i32, "after version {version}");
        assert_eq!(link.version, version);
        assert_eq!(link.change, change as i32);
        assert_eq!(link.outcome, outcome as i32);
    }
    assert!(revisions.windows(2).all(|w| w[1] == w[0] + 1));

    // Every version is kept; replays of any of them change nothing; a gap or a different
    // content under a recorded version is refused.
    let kept = plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let versions: Vec<u32> = kept.decisions.iter().map(|d| d.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let replay = system
        .push_decision(version_of(
            "HBG-20",
            &number,
            2,
            Change::Amended,
            Outcome::Denied,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    let refused = system
        .push_decision(version_of(
            "HBG-20",
            &number,
            2,
            Change::Amended,
            Outcome::Granted,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    let refused = system
        .push_decision(version_of(
            "HBG-20",
            &number,
            7,
            Change::Amended,
            Outcome::Granted,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let after = plans
        .get_plan(plans_pb::GetPlanRequest {
            participant_id: pid(&id),
            plan_id: plan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.revision, kept.revision);
    stack.stop().await;
}

type BoardAs = samsyn_proto::board::v1::board_service_client::BoardServiceClient<Authed>;

fn board_as(stack: &Stack, token: &str) -> BoardAs {
    samsyn_proto::board::v1::board_service_client::BoardServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(token),
    )
}

/// Waits until the board has applied everything the plans and participants services wrote.
async fn board_settled(stack: &Stack) {
    use samsyn_reports::Feed;
    let followers = &stack.board_followers;
    for (feed, channel, following) in [
        (Feed::Plans, &stack.plans.channel, &followers.plans),
        (
            Feed::Participants,
            &stack.participants.channel,
            &followers.participants,
        ),
    ] {
        let head = report_feed_head(feed, channel.clone()).await;
        assert!(
            following
                .wait_for(head, std::time::Duration::from_secs(10))
                .await,
            "the board never caught up with {}",
            feed.as_str()
        );
    }
}

async fn agenda_of(board: &mut BoardAs, team_id: &str) -> board_pb::Agenda {
    board
        .get_agenda(board_pb::GetAgendaRequest {
            team_id: team_id.into(),
            on: None,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next update of a live board that shows `entry_id`, with at most a few seconds' wait.
async fn next_with(
    stream: &mut tonic::Streaming<board_pb::BoardUpdate>,
    entry_id: &str,
    done: impl Fn(&board_pb::BoardEntry) -> bool,
) -> board_pb::BoardEntry {
    let deadline = std::time::Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        loop {
            let update = stream.message().await.unwrap().expect("the stream goes on");
            if let Some(entry) = update
                .entries
                .into_iter()
                .find(|e| e.entry_id == entry_id && done(e))
            {
                return entry;
            }
        }
    })
    .await
    .expect("the live board shows the change")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_meeting_sees_new_and_parked_decisions_and_revoked_participation() {
    let stack = Stack::start().await;
    let team = Team {
        region: &[CASE_MANAGER],
        municipal: &[HBG_COORDINATOR],
    };
    let planned_number = pin("19790321", "482");
    let planned = enrolled(&stack, &planned_number, "Örjan Åkesson", team).await;
    let unplanned_number = pin("19830212", "227");
    let unplanned = enrolled(
        &stack,
        &unplanned_number,
        "Märta Ölund",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[HBG_COORDINATOR],
        },
    )
    .await;
    plan_with_housing(&stack, &planned).await;
    let team_id = board_team(&stack).await;
    let planned_entry = put_on_board(&stack, &team_id, &planned).await;
    put_on_board(&stack, &team_id, &unplanned).await;
    // Helsingborg's coordinator sees the region's board rows by the participants' consent;
    // the region's case manager, on both care teams, has no consent to read Helsingborg's
    // decisions.
    for id in [&planned, &unplanned] {
        share_with_helsingborg(&stack, id, &[DataCategory::Board], None).await;
    }
    stack.settle().await;
    let coordinator = stack.token(&staff(HBG_COORDINATOR, HELSINGBORG, &["coordinator"]));
    let mut case_manager = staff(CASE_MANAGER, REGION, &["case_manager"]);
    case_manager.teams = vec![team_id.clone()];
    let case_manager = stack.token(&case_manager);
    let mut live = board_as(&stack, &coordinator)
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut live_without_consent = board_as(&stack, &case_manager)
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();

    // The case system pushes one decision that applies and one that parks (no plan yet).
    let mut system = PlansServiceClient::new(stack.system_channel(MUNICIPAL_SYSTEM));
    let applied = system
        .push_decision(in_own_terms("HBG-30", &planned_number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        applied.disposition,
        plans_pb::DecisionDisposition::Applied as i32
    );
    let parked = system
        .push_decision(in_own_terms("HBG-31", &unplanned_number, "BS-SOL-4:1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        parked.disposition,
        plans_pb::DecisionDisposition::Parked as i32
    );

    // Live, without asking: the coordinator's board shows that a decision landed.
    let shown = next_with(&mut live, &planned_entry, |e| {
        e.latest_decision_at.is_some()
    })
    .await;
    assert_eq!(shown.reason, BOARD_REASON);
    board_settled(&stack).await;

    // The morning meeting's agenda: the new decision and the parked one, each under its
    // participant, in the case system's ids; nobody had to ask for them.
    let agenda = agenda_of(&mut board_as(&stack, &coordinator), &team_id).await;
    let mut seen: Vec<(String, String, i32, String)> = agenda
        .decisions
        .iter()
        .flat_map(|d| {
            let who = d.participant_id.as_ref().unwrap().value.clone();
            d.notices.iter().map(move |n| {
                (
                    who.clone(),
                    n.external_decision_id.clone(),
                    n.kind,
                    n.inbox_id.clone(),
                )
            })
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (
            planned.clone(),
            "HBG-30".to_owned(),
            board_pb::DecisionNoticeKind::Recorded as i32,
            String::new(),
        ),
        (
            unplanned.clone(),
            "HBG-31".to_owned(),
            board_pb::DecisionNoticeKind::Parked as i32,
            parked.inbox_id.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let notice = agenda
        .decisions
        .iter()
        .find(|d| d.participant_id == pid(&planned))
        .map(|d| d.notices[0].clone())
        .unwrap();
    // Named as the case system's code maps in the catalogue.
    assert_eq!(notice.catalogue_code, "municipality.housing_support");
    assert_eq!(notice.outcome, plans_pb::DecisionOutcome::Granted as i32);
    assert_eq!(notice.organisation_id, org(HELSINGBORG));
    assert_eq!(agenda.items.len(), 2, "both are new on the board");

    // The region's case manager sees the same board rows, but not Helsingborg's decisions:
    // no notices, no time of the latest one, neither on the agenda nor live.
    let withheld = agenda_of(&mut board_as(&stack, &case_manager), &team_id).await;
    assert_eq!(withheld.items.len(), 2);
    assert!(withheld.decisions.is_empty(), "{:?}", withheld.decisions);
    assert!(
        withheld
            .items
            .iter()
            .all(|i| i.entry.as_ref().unwrap().latest_decision_at.is_none())
    );
    let board = board_as(&stack, &case_manager)
        .get_board(board_pb::GetBoardRequest {
            team_id: team_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.entries.len(), 2);
    assert!(board.entries.iter().all(|e| e.latest_decision_at.is_none()));
    let quiet = next_with(&mut live_without_consent, &planned_entry, |_| true).await;
    assert_eq!(quiet.latest_decision_at, None);

    // The participant revokes the participation consent: the participation is flagged, and
    // the flag is on the agenda and on the live board.
    let mut consent = samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient::new(
        stack.consent.channel.clone(),
    );
    let participation = consent
        .list_consents(samsyn_proto::consent::v1::ListConsentsRequest {
            participant_id: pid(&planned),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .consents
        .into_iter()
        .find(|c| c.kind == samsyn_proto::consent::v1::ConsentKind::Participation as i32)
        .unwrap();
    consent
        .revoke_consent(samsyn_proto::consent::v1::RevokeConsentRequest {
            participant_id: pid(&planned),
            consent_id: participation.id.clone(),
            revision: participation.revision,
            revoked_by: actor(CASE_MANAGER, REGION),
            reason: "Vill inte längre delta".into(),
        })
        .await
        .unwrap();
    let flagged = next_with(&mut live, &planned_entry, |e| {
        e.participation_consent_revoked_at.is_some()
    })
    .await;
    assert_eq!(flagged.participant_id, pid(&planned));
    board_settled(&stack).await;
    let agenda = agenda_of(&mut board_as(&stack, &coordinator), &team_id).await;
    let item = agenda
        .items
        .iter()
        .find(|i| i.participant_id == pid(&planned))
        .unwrap();
    assert!(
        item.reasons
            .contains(&(board_pb::AgendaReason::ParticipationConsentRevoked as i32)),
        "{:?}",
        item.reasons
    );
    assert!(item.participation_consent_revoked_at.is_some());
    let other = agenda
        .items
        .iter()
        .find(|i| i.participant_id == pid(&unplanned))
        .unwrap();
    assert!(other.participation_consent_revoked_at.is_none());
}
