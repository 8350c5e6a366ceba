//! Decision latency: the shipped policies over a mix of calls (care team, disclosure by
//! consent, emergency, system, participant, denials), p50/p99 per decision; then the same
//! mix about participants never seen before, which nothing the engine keeps can help.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use samsyn_consent_rule as rule;
use samsyn_gateway::access_view::{
    AssignmentRole, CareRole, ParticipantFacts, ParticipantStatus, TeamMember,
};
use samsyn_gateway::auth::{Principal, PrincipalKind};
use samsyn_gateway::policy::{Action, Call, DecisionInput, Emergency, PolicyEngine, Resource};
use samsyn_proto::common::v1::DataCategory;

/// The allocator the `samsyn` binary runs the gateway with, so that this measures that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REGION: &str = "SE2321000016-F00D";
const MUNICIPALITY: &str = "1283";
const DECISIONS: usize = 200_000;
const COLD_DECISIONS: usize = 20_000;

fn staff(id: &str, organisation: &str, roles: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::Staff,
        organisation: Some(organisation.into()),
        unit: Some("unit-1".into()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        teams: vec!["fact-nordvast".into()],
        purpose: Some("care".into()),
        acting_through: None,
    }
}

fn call(rpc: &str, action: Action, category: DataCategory, link_allows: bool) -> Call {
    Call {
        rpc: rpc.into(),
        action,
        category,
        internal_only: false,
        narrowed_list: false,
        link_allows,
        programme_member: true,
        act: Default::default(),
    }
}

/// A participant with a care team the size the seeds describe for one person (eight).
fn participant() -> ParticipantFacts {
    let member = |staff: String, organisation: &str| TeamMember {
        assignment_id: format!("assignment-{staff}"),
        staff_id: staff,
        organisation_id: organisation.into(),
        unit_id: None,
        role: AssignmentRole::CareTeamMember(CareRole::CaseManager),
    };
    let mut care_team: Vec<TeamMember> = (0..6)
        .map(|i| member(format!("SE2321000016-m{i:02}"), REGION))
        .collect();
    care_team.push(member("SE1283-coord01".into(), MUNICIPALITY));
    care_team.push(member("SE1283-bs01".into(), MUNICIPALITY));
    ParticipantFacts {
        participant_id: "0b6f7c52-4a8e-4f43-9a3e-2f1f5f0c9d11".into(),
        status: ParticipantStatus::Enrolled,
        home_municipality: MUNICIPALITY.into(),
        revision: 1,
        care_team,
        fact_teams: vec!["fact-nordvast".into()],
        consents: Vec::new(),
        restrictions: Vec::new(),
    }
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies");
    let started = Instant::now();
    let engine = PolicyEngine::load(&dir).unwrap();
    println!("load and validate policies: {:?}", started.elapsed());

    let at: DateTime<Utc> = DateTime::from_timestamp(1_780_308_000, 0).unwrap();
    let consent = rule::Decision {
        effect: rule::Effect::Permit,
        reason: rule::Reason::Consent,
        consents: vec!["consent-1".into()],
        restriction: None,
        lift: None,
    };
    let no_consent = rule::Decision {
        effect: rule::Effect::Deny,
        reason: rule::Reason::NoConsent,
        consents: Vec::new(),
        restriction: None,
        lift: None,
    };
    let case_manager = staff("SE2321000016-m01", REGION, &["case_manager"]);
    let coordinator = staff("SE1283-coord01", MUNICIPALITY, &["coordinator"]);
    let physician = staff("SE2321000016-akut", REGION, &["physician"]);
    let stranger = staff("SE0180-x", "0180", &[]);
    let system = Principal {
        id: "kommun-1283-system".into(),
        kind: PrincipalKind::System,
        organisation: Some(MUNICIPALITY.into()),
        unit: None,
        roles: vec!["municipal_case_system".into()],
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    };
    let person = Principal {
        id: "0b6f7c52-4a8e-4f43-9a3e-2f1f5f0c9d11".into(),
        kind: PrincipalKind::Participant,
        organisation: None,
        unit: None,
        roles: Vec::new(),
        teams: Vec::new(),
        purpose: None,
        acting_through: None,
    };
    let get_plan = call(
        "/samsyn.plans.v1.PlansService/GetPlan",
        Action::Read,
        DataCategory::Plan,
        false,
    );
    let update_plan = call(
        "/samsyn.plans.v1.PlansService/UpdatePlan",
        Action::Write,
        DataCategory::Plan,
        false,
    );
    let push = call(
        "/samsyn.plans.v1.PlansService/PushDecision",
        Action::Write,
        DataCategory::Decision,
        true,
    );
    let facts = participant();
    let region_data = Resource {
        owner_organisation: Some(REGION),
        participant: Some(&facts),
    };
    let municipal_data = Resource {
        owner_organisation: Some(MUNICIPALITY),
        participant: Some(&facts),
    };
    let joint = Resource {
        owner_organisation: None,
        participant: Some(&facts),
    };
    let none = Emergency::default();
    let declared = Emergency {
        reason_given: true,
        declared_at: None,
    };
    let inputs = [
        (
            "care team read",
            DecisionInput {
                principal: &case_manager,
                call: &get_plan,
                resource: region_data,
                consent: None,
                emergency: none,
                at,
            },
        ),
        (
            "care team write",
            DecisionInput {
                principal: &case_manager,
                call: &update_plan,
                resource: region_data,
                consent: None,
                emergency: none,
                at,
            },
        ),
        (
            "disclosure by consent",
            DecisionInput {
                principal: &coordinator,
                call: &get_plan,
                resource: region_data,
                consent: Some(&consent),
                emergency: none,
                at,
            },
        ),
        (
            "denied, no consent",
            DecisionInput {
                principal: &coordinator,
                call: &get_plan,
                resource: region_data,
                consent: Some(&no_consent),
                emergency: none,
                at,
            },
        ),
        (
            "emergency",
            DecisionInput {
                principal: &physician,
                call: &get_plan,
                resource: municipal_data,
                consent: Some(&no_consent),
                emergency: declared,
                at,
            },
        ),
        (
            "system push",
            DecisionInput {
                principal: &system,
                call: &push,
                resource: municipal_data,
                consent: None,
                emergency: none,
                at,
            },
        ),
        (
            "participant own plan",
            DecisionInput {
                principal: &person,
                call: &get_plan,
                resource: joint,
                consent: None,
                emergency: none,
                at,
            },
        ),
        (
            "stranger",
            DecisionInput {
                principal: &stranger,
                call: &get_plan,
                resource: region_data,
                consent: None,
                emergency: none,
                at,
            },
        ),
    ];

    // Warm up caches and the allocator.
    for i in 0..10_000 {
        std::hint::black_box(engine.decide(&inputs[i % inputs.len()].1));
    }
    let mut all = Vec::with_capacity(DECISIONS);
    let mut per_kind: Vec<Vec<Duration>> =
        vec![Vec::with_capacity(DECISIONS / inputs.len() + 1); inputs.len()];
    let started = Instant::now();
    for i in 0..DECISIONS {
        let kind = i % inputs.len();
        let t = Instant::now();
        let decision = engine.decide(std::hint::black_box(&inputs[kind].1));
        let elapsed = t.elapsed();
        std::hint::black_box(decision);
        all.push(elapsed);
        per_kind[kind].push(elapsed);
    }
    let total = started.elapsed();
    println!(
        "{DECISIONS} decisions in {total:?}: {:.0} decisions/s on one thread",
        DECISIONS as f64 / total.as_secs_f64()
    );
    println!("all        {}", summary(&mut all));
    for ((name, _), samples) in inputs.iter().zip(per_kind.iter_mut()) {
        println!("{name:<22} {}", summary(samples));
    }

    // The same mix about participants the engine has never seen (a new one each call), so
    // that nothing it keeps between calls helps: the cost of a first call about someone.
    let fresh: Vec<ParticipantFacts> = (0..COLD_DECISIONS)
        .map(|i| ParticipantFacts {
            participant_id: format!("00000000-0000-4000-8000-{i:012}"),
            ..participant()
        })
        .collect();
    let mut cold = Vec::with_capacity(COLD_DECISIONS);
    for (i, facts) in fresh.iter().enumerate() {
        let mut input = inputs[i % inputs.len()].1;
        if input.resource.participant.is_some() {
            input.resource.participant = Some(facts);
        }
        let t = Instant::now();
        let decision = engine.decide(std::hint::black_box(&input));
        cold.push(t.elapsed());
        std::hint::black_box(decision);
    }
    println!("new facts  {}", summary(&mut cold));
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:>6.1} µs  p99 {:>6.1} µs  p99.9 {:>6.1} µs  max {:>7.1} µs",
        micros(at(0.50)),
        micros(at(0.99)),
        micros(at(0.999)),
        micros(at(1.0)),
    )
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
