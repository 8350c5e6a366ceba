//! Properties of the gateway's Cedar policies, proven by an SMT solver rather than sampled.
//!
//! The policies in `deploy/policies/` are the law of the door: the gateway's table tests show
//! that chosen requests are decided as intended, but a table only samples. Here Cedar's
//! symbolic compiler (`cedar-policy-symcc`) turns the shipped schema and policies into SMT
//! formulas over *every* request the schema admits (any principal, any attribute values, any
//! context), and a solver proves a property or returns a counterexample.
//!
//! A property is written in Cedar too, as the set of requests it allows: "the law permits
//! only what the property allows" is then "the law's decisions imply the property's", which
//! the compiler asks the solver directly (`check_implies`). A failed proof carries the
//! solver's request, printed in the policies' own terms, and the policies that permitted it.
//!
//! The solver is found once (see [`solver`]); a missing solver fails the proofs with the
//! install line, never skips them.

pub mod law;
pub mod properties;
pub mod solver;

pub use law::{Law, LawError};
pub use properties::{Property, properties};
pub use solver::{Prover, ProverError, SolverChoice};
