//! The gate as a table: principal × call × what the view knows → verdict, owner and audit
//! flags, with the shipped policies and the real consent rule; then what the gate itself adds
//! (unknown participants, emergency memory, a view that cannot vouch, stakeholders).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use samsyn_proto::board::v1::EntryState;
use samsyn_proto::participants::v1::{CareRole, ParticipantStatus};

use super::*;
use crate::access_view::FeedName;
use crate::access_view::testing::*;
use crate::describe::CallDescriber;

/// Enrolled, home Helsingborg, with a care team and a consent to share the plan with
/// Helsingborg; on the FACT team's board.
pub(crate) const SHARED: &str = "0198c0de-0000-7000-8000-0000000000a1";
/// Enrolled, home Helsingborg, the same care team, no consent.
pub(crate) const UNSHARED: &str = "0198c0de-0000-7000-8000-0000000000a2";
/// Nobody the view has heard of.
const UNKNOWN: &str = "0198c0de-0000-7000-8000-0000000000ff";

const CASE_MANAGER: &str = "SE2321000255-P001";
const COORDINATOR: &str = "hbg-soc-7";
const PHYSICIAN: &str = "SE2321000255-D01";
const FACT_TEAM: &str = "fact-nordvast";

const GET_PLAN: &str = "/samsyn.plans.v1.PlansService/GetPlan";
const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
const GET_ENTRY: &str = "/samsyn.board.v1.BoardService/GetEntry";
const PUSH_DECISION: &str = "/samsyn.plans.v1.PlansService/PushDecision";

fn staff(id: &str, organisation: &str, roles: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Staff,
        organisation: Some(organisation.into()),
        unit: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        teams: Vec::new(),
        purpose: Some("care".into()),
        acting_through: None,
    }
}

pub(crate) fn case_manager() -> Principal {
    staff(CASE_MANAGER, REGION, &["case_manager"])
}

pub(crate) fn coordinator() -> Principal {
    staff(COORDINATOR, HELSINGBORG, &["coordinator"])
}

fn outsider() -> Principal {
    staff("SE0180-c1", "0180", &["coordinator"])
}

fn physician() -> Principal {
    staff(PHYSICIAN, REGION, &["physician"])
}

pub(crate) fn case_system() -> Principal {
    Principal {
        id: "kommun-case-system".into(),
        kind: PrincipalKind::System,
        organisation: Some(HELSINGBORG.into()),
        unit: None,
        roles: vec!["case_system".into()],
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    }
}

fn access(path: &str) -> MethodAccess {
    CallDescriber::samsyn()
        .unwrap()
        .method_access(path)
        .unwrap()
        .0
        .clone()
}

fn policy_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies")
}

fn team() -> Vec<samsyn_proto::participants::v1::Assignment> {
    vec![
        crate::access_view::testing::coordinator(COORDINATOR, HELSINGBORG),
        member(CASE_MANAGER, REGION, CareRole::CaseManager),
    ]
}

/// A gate over a current view holding the two participants.
pub(crate) fn gate() -> Gate {
    let view = Arc::new(AccessView::new(Duration::from_secs(60)));
    let participants = [
        participant(1, SHARED, ParticipantStatus::Enrolled, 1),
        care_team(2, SHARED, 2, team()),
        participant(3, UNSHARED, ParticipantStatus::Enrolled, 1),
        care_team(4, UNSHARED, 2, team()),
    ];
    for change in &participants {
        view.apply(FeedName::Participants, change).unwrap();
    }
    view.apply(
        FeedName::Consent,
        &consent_change(1, &sharing("c-1", SHARED, 1)),
    )
    .unwrap();
    view.apply(
        FeedName::Board,
        &board_entry(1, "e-1", FACT_TEAM, SHARED, EntryState::OnBoard),
    )
    .unwrap();
    current(&view);
    let links = Links::new(vec![crate::links::LinkConfig {
        id: "kommun-case-system".into(),
        kind: crate::links::SystemKind::MunicipalCaseSystem,
        organisation: HELSINGBORG.into(),
        ca_cert: "ca.pem".into(),
        certificate_sha256: vec!["00".repeat(32)],
        allowed_rpcs: vec![PUSH_DECISION.into()],
        acts_for_users: false,
        decision_codes: Default::default(),
    }])
    .unwrap();
    let settings = AccessSettings {
        region_organisation: REGION.into(),
        ..AccessSettings::default()
    };
    Gate::new(
        PolicyEngine::load(&policy_dir()).unwrap(),
        view,
        links,
        settings,
    )
}

/// What a user of the gate notices about one verdict.
struct Seen {
    allowed: bool,
    disclosure: bool,
    emergency: bool,
    owner: Option<&'static str>,
}

const fn seen(allowed: bool, disclosure: bool, owner: Option<&'static str>) -> Seen {
    Seen {
        allowed,
        disclosure,
        emergency: false,
        owner,
    }
}

#[test]
fn calls_are_decided_by_owner_consent_and_care_team() {
    let gate = gate();
    let rows: Vec<(&str, Principal, &str, &str, Seen)> = vec![
        // The plan is joint: the care team of either principal reads it, no disclosure.
        (
            "case manager reads the plan",
            case_manager(),
            GET_PLAN,
            SHARED,
            seen(true, false, None),
        ),
        (
            "coordinator reads the plan",
            coordinator(),
            GET_PLAN,
            SHARED,
            seen(true, false, None),
        ),
        // Another municipality's staff reads nothing, consent or not.
        (
            "outsider reads the plan",
            outsider(),
            GET_PLAN,
            SHARED,
            seen(false, false, None),
        ),
        (
            "outsider reads the participant",
            outsider(),
            GET_PARTICIPANT,
            UNSHARED,
            seen(false, false, None),
        ),
        // The board is the region's: the municipality reads an entry only with consent.
        (
            "case manager reads the board entry",
            case_manager(),
            GET_ENTRY,
            SHARED,
            seen(true, false, Some(REGION)),
        ),
        (
            "coordinator reads the board entry without consent for the board",
            coordinator(),
            GET_ENTRY,
            UNSHARED,
            seen(false, false, Some(REGION)),
        ),
        // A case system pushes decisions over its link; the decision is the municipality's.
        (
            "case system pushes a decision",
            case_system(),
            PUSH_DECISION,
            SHARED,
            seen(true, false, Some(HELSINGBORG)),
        ),
        (
            "case system reads the plan, outside its link",
            case_system(),
            GET_PLAN,
            SHARED,
            seen(false, false, None),
        ),
    ];
    for (name, principal, path, participant, expected) in rows {
        let verdict = gate
            .decide_call(&principal, &access(path), Some(participant), false)
            .unwrap();
        let got = (
            verdict.decision.allowed,
            verdict.decision.disclosure,
            verdict.decision.emergency,
            verdict.owner.as_deref(),
        );
        let want = (
            expected.allowed,
            expected.disclosure,
            expected.emergency,
            expected.owner,
        );
        assert_eq!(got, want, "{name}: {verdict:?}");
    }
}

#[test]
fn an_unknown_participant_is_refused_like_one_the_caller_may_not_see() {
    let gate = gate();
    for principal in [case_manager(), coordinator(), outsider()] {
        let verdict = gate
            .decide_call(&principal, &access(GET_PLAN), Some(UNKNOWN), false)
            .unwrap();
        assert!(!verdict.decision.allowed);
        assert_eq!(verdict.decision.policies, vec!["unknown-participant"]);
        assert_eq!(verdict.owner, None);
        let row = gate
            .decide_row(&principal, &access(GET_PLAN), UNKNOWN)
            .unwrap();
        assert!(!row.decision.allowed);
    }
    // Even an emergency opens nothing about someone the view does not know, and is not
    // remembered.
    let verdict = gate
        .decide_call(&physician(), &access(GET_PLAN), Some(UNKNOWN), true)
        .unwrap();
    assert!(!verdict.decision.allowed);
    assert_eq!(gate.emergency_declared_at(PHYSICIAN, UNKNOWN), None);
}

#[test]
fn an_emergency_is_remembered_from_its_first_declaration_and_never_opens_rows() {
    let gate = gate();
    let first = gate
        .decide_call(&physician(), &access(GET_PLAN), Some(UNSHARED), true)
        .unwrap();
    assert!(
        first.decision.allowed && first.decision.emergency,
        "{first:?}"
    );
    let declared = gate.emergency_declared_at(PHYSICIAN, UNSHARED).unwrap();
    // Asking again does not renew it.
    gate.decide_call(&physician(), &access(GET_PLAN), Some(UNSHARED), true)
        .unwrap();
    assert_eq!(
        gate.emergency_declared_at(PHYSICIAN, UNSHARED),
        Some(declared)
    );
    // Another gateway's earlier declaration wins; a later one changes nothing.
    let earlier = declared - chrono::Duration::minutes(30);
    gate.learn_emergencies([
        ((PHYSICIAN.to_owned(), UNSHARED.to_owned()), earlier),
        (
            (PHYSICIAN.to_owned(), UNSHARED.to_owned()),
            declared + chrono::Duration::minutes(5),
        ),
    ]);
    assert_eq!(
        gate.emergency_declared_at(PHYSICIAN, UNSHARED),
        Some(earlier)
    );
    // A declaration older than the memory is forgotten.
    gate.learn_emergencies([(
        (PHYSICIAN.to_owned(), SHARED.to_owned()),
        Utc::now() - EMERGENCY_MEMORY - chrono::Duration::minutes(1),
    )]);
    assert_eq!(gate.emergency_declared_at(PHYSICIAN, SHARED), None);
    // A list's rows never ride on an emergency.
    let row = gate
        .decide_row(&physician(), &access(GET_PLAN), UNSHARED)
        .unwrap();
    assert!(!row.decision.emergency);
}

#[test]
fn a_view_that_cannot_vouch_for_its_facts_decides_nothing() {
    let view = Arc::new(AccessView::new(Duration::from_secs(60)));
    view.apply(
        FeedName::Participants,
        &participant(1, SHARED, ParticipantStatus::Enrolled, 1),
    )
    .unwrap();
    // No feed has confirmed it is current.
    let gate = Gate::new(
        PolicyEngine::load(&policy_dir()).unwrap(),
        view,
        Links::new(Vec::new()).unwrap(),
        AccessSettings::default(),
    );
    let error = gate
        .decide_call(&case_manager(), &access(GET_PLAN), Some(SHARED), false)
        .unwrap_err();
    assert!(matches!(error, GateError::View(_)), "{error:?}");
    assert!(
        gate.decide_row(&case_manager(), &access(GET_PLAN), SHARED)
            .is_err()
    );
}

#[test]
fn stakeholders_are_the_region_and_each_home_municipality() {
    let gate = gate();
    assert_eq!(
        gate.stakeholders([SHARED, UNSHARED].into_iter()),
        vec![HELSINGBORG.to_owned(), REGION.to_owned()]
    );
    assert_eq!(
        gate.stakeholders([UNKNOWN].into_iter()),
        vec![REGION.to_owned()]
    );
    assert!(gate.stakeholders(std::iter::empty()).is_empty());
}
