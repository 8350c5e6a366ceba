//! The shipped law proves every property of issue 19; a false one prints its counterexample.

use std::time::Duration;

use samsyn_policy_proofs::{Law, Prover, properties};

#[test]
fn the_shipped_law_proves_every_property() {
    let law = Law::shipped().expect("the shipped policies load");
    let mut prover = Prover::start().unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "solver: {} {}",
        prover.solver(),
        prover.solver().version().unwrap_or_default()
    );
    let (mut total, mut failed) = (Duration::ZERO, Vec::new());
    for property in properties() {
        let proof = prover
            .prove(&law, &property)
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "{:<30} {:>6} ms solver, {:>5} ms compile  {}",
            property.name,
            proof.solver_time.as_millis(),
            proof.compile_time.as_millis(),
            if proof.holds() { "proven" } else { "FALSE" },
        );
        total += proof.solver_time;
        if !proof.holds() {
            failed.push(format!("{proof}\n(the rule: {})", property.rule));
        }
    }
    eprintln!("total solver time: {} ms", total.as_millis());
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}
