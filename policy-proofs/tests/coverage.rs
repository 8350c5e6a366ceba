//! Every permit can decide some request (no forbid shadows it for every request); pairs of
//! redundant permits are reported, not failed: a narrower permit kept beside a wider one may
//! still be worth its own name in the audit trail.

use samsyn_policy_proofs::{Law, Prover};

#[test]
fn every_permit_is_reachable() {
    let law = Law::shipped().expect("the shipped policies load");
    let mut prover = Prover::start().unwrap_or_else(|e| panic!("{e}"));
    let coverage = prover.coverage(&law).unwrap_or_else(|e| panic!("{e}"));
    for (narrower, wider) in &coverage.redundant {
        eprintln!("redundant: every request {narrower} permits, {wider} permits too");
    }
    eprintln!(
        "coverage: {} permits, {} redundant pairs, {} ms solver",
        coverage.reaches.len(),
        coverage.redundant.len(),
        coverage.solver_time.as_millis()
    );
    let shadowed: Vec<&str> = coverage
        .reaches
        .iter()
        .filter(|r| !r.reachable)
        .map(|r| r.permit.as_str())
        .collect();
    assert!(
        shadowed.is_empty(),
        "permits no request reaches past the forbids: {shadowed:?}"
    );
}
