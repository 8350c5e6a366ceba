//! Proof that the proofs can fail: for each property, a deliberately broken copy of the
//! shipped policies in which the matching proof finds a counterexample.

use samsyn_policy_proofs::properties::{
    AUDIT_TRAIL_READERS, CONSENT_RULE_REFUSALS_STAND, CROSS_ORGANISATION_READ,
    CROSS_ORGANISATION_WRITE, EMERGENCY_IS_NARROW, INTERNAL_ONLY, OWNER_DECIDES_ACTS,
    PARTICIPANT_ONLY_OWN, SYSTEM_WITHIN_LINK,
};
use samsyn_policy_proofs::{Law, Property, Prover};

const OWNER: &str =
    "(if resource has owner then resource.owner == principal.organisation else true) &&";

fn shipped() -> Law {
    Law::shipped().expect("the shipped policies load")
}

/// The proof of `property` fails on `mutant`, and (when named) `culprit` is among the
/// policies that permitted a counterexample.
fn refuted(property: Property, mutant: Law, culprit: Option<&str>) {
    let mut prover = Prover::start().unwrap_or_else(|e| panic!("{e}"));
    let proof = prover
        .prove(&mutant, &property)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{proof}");
    eprintln!(
        "{}: {} ms solver",
        property.name,
        proof.solver_time.as_millis()
    );
    assert!(!proof.holds(), "the mutant should break {}", property.name);
    if let Some(culprit) = culprit {
        assert!(
            proof
                .counterexamples
                .iter()
                .any(|c| c.permitted_by().iter().any(|p| p == culprit)),
            "{culprit} should permit a counterexample"
        );
    }
}

#[test]
fn care_team_read_without_its_owner_condition_reads_across_organisations() {
    let mutant = shipped().mutant("care-team-read", OWNER, "").unwrap();
    refuted(CROSS_ORGANISATION_READ, mutant, Some("care-team-read"));
}

#[test]
fn care_team_write_without_its_owner_condition_writes_across_organisations() {
    let mutant = shipped().mutant("care-team-write", OWNER, "").unwrap();
    refuted(CROSS_ORGANISATION_WRITE, mutant, Some("care-team-write"));
}

#[test]
fn a_guard_that_forgets_restrictions_lets_a_read_through() {
    let mutant = shipped()
        .mutant(
            "consent-rule-forbids",
            r#"["restricted", "no_research_consent"]"#,
            r#"["no_research_consent"]"#,
        )
        .unwrap();
    refuted(CONSENT_RULE_REFUSALS_STAND, mutant, None);
}

#[test]
fn emergency_read_without_the_role_check_opens_to_anyone() {
    let mutant = shipped()
        .mutant(
            "emergency-read",
            r#"principal.roles.containsAny(["physician", "nurse"])"#,
            "true",
        )
        .unwrap();
    refuted(EMERGENCY_IS_NARROW, mutant, Some("emergency-read"));
}

#[test]
fn without_the_discloser_guard_the_receiver_records_its_own_consent() {
    let mutant = shipped()
        .mutant(
            "consent-by-discloser",
            "context.act has receiving_organisation &&",
            "false &&",
        )
        .unwrap();
    refuted(OWNER_DECIDES_ACTS, mutant, None);
}

#[test]
fn an_internal_guard_for_staff_only_lets_systems_in() {
    let mutant = shipped()
        .mutant(
            "internal-only",
            "when { context.internal_only }",
            "when { context.internal_only && principal is Samsyn::Staff }",
        )
        .unwrap();
    refuted(INTERNAL_ONLY, mutant, None);
}

#[test]
fn without_the_link_guard_a_system_reads_outside_its_link() {
    let mutant = shipped()
        .mutant(
            "system-outside-link",
            "unless { context.link_allows }",
            "unless { true }",
        )
        .unwrap()
        .mutant("system-care-read", "context.link_allows &&", "")
        .unwrap();
    refuted(SYSTEM_WITHIN_LINK, mutant, Some("system-care-read"));
}

#[test]
fn participant_read_own_without_the_self_check_reads_another() {
    let mutant = shipped()
        .mutant(
            "participant-read-own",
            "resource.participant == principal",
            "true",
        )
        .unwrap();
    refuted(PARTICIPANT_ONLY_OWN, mutant, Some("participant-read-own"));
}

#[test]
fn auditor_read_without_the_role_check_opens_the_trail() {
    let mutant = shipped()
        .mutant(
            "auditor-read",
            r#"principal.roles.contains("auditor") &&"#,
            "",
        )
        .unwrap();
    refuted(AUDIT_TRAIL_READERS, mutant, Some("auditor-read"));
}

#[test]
fn a_forbid_on_every_emergency_shadows_emergency_read() {
    let mutant = shipped()
        .with_policy(
            r#"@id("mutant-shadow")
            forbid (principal, action, resource) when { context.emergency.reason_given };"#,
        )
        .unwrap();
    let mut prover = Prover::start().unwrap_or_else(|e| panic!("{e}"));
    let coverage = prover.coverage(&mutant).unwrap_or_else(|e| panic!("{e}"));
    let shadowed: Vec<&str> = coverage
        .reaches
        .iter()
        .filter(|r| !r.reachable)
        .map(|r| r.permit.as_str())
        .collect();
    eprintln!("shadowed: {shadowed:?}");
    assert_eq!(shadowed, ["emergency-read"]);
}

#[test]
fn a_copy_of_a_permit_is_reported_redundant() {
    let mutant = shipped()
        .with_policy(
            r#"@id("auditor-read-again")
            permit (principal is Samsyn::Staff, action == Samsyn::Action::"read", resource is Samsyn::Data)
            when { resource.category == "audit" && principal.roles.contains("auditor") && !(resource has owner) };"#,
        )
        .unwrap();
    let mut prover = Prover::start().unwrap_or_else(|e| panic!("{e}"));
    let coverage = prover.coverage(&mutant).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("redundant: {:?}", coverage.redundant);
    assert!(
        coverage
            .redundant
            .contains(&("auditor-read-again".to_owned(), "auditor-read".to_owned()))
    );
}
