//! The prover: one SMT solver process, the symbolic compiler in front of it, and the three
//! questions the proofs ask (does the law imply a property, can a permit ever decide, does one
//! permit cover another).
//!
//! Which solver: `cedar-policy-symcc` documents cvc5 (1.3) and talks to a `cvc5` executable
//! over a pipe. PyPI ships cvc5 1.4 as a library without the executable, so
//! `solver/cvc5` beside this crate is that executable over the library; the test command
//! installs the library with the project's other test tools (`python3 -m pip install -r
//! policy-proofs/requirements.txt`). `CVC5` names another cvc5 executable (as the crate
//! reads it); without it and without the library, a `cvc5` on `PATH` is used. Z3 does not
//! do: the compiled queries use cvc5's theory of finite sets (`set.member`). No solver is a
//! failure that says how to install one, never a skipped proof.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, PolicySet, RequestEnv};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env};

use crate::law::Law;
use crate::properties::Property;

/// How to install a solver, for every message that lacks one.
pub const INSTALL: &str = "install cvc5 with `python3 -m pip install -r policy-proofs/requirements.txt` \
     (run by policy-proofs/solver/cvc5), or set CVC5 to a cvc5 1.3 executable";

/// Seconds one solver query may take before the solver gives up (and the proof fails).
const QUERY_LIMIT_SECONDS: u32 = 120;

#[derive(Debug, thiserror::Error)]
pub enum ProverError {
    #[error("no SMT solver for the policy proofs: {0}; {INSTALL}")]
    NoSolver(String),
    #[error("cannot build the prover's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{what}: {message}")]
    Symcc { what: String, message: String },
}

/// The cvc5 executable the proofs run, and where it was found.
#[derive(Debug, Clone)]
pub struct SolverChoice {
    path: PathBuf,
    from: &'static str,
}

impl fmt::Display for SolverChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.from)
    }
}

impl SolverChoice {
    /// `CVC5` when set; else this crate's `solver/cvc5` when Python has the cvc5 library;
    /// else `cvc5` on `PATH`. The one chosen must answer `--version`.
    pub fn find() -> Result<Self, ProverError> {
        if let Some(path) = std::env::var_os("CVC5").filter(|p| !p.is_empty()) {
            let choice = Self {
                path: PathBuf::from(path),
                from: "CVC5",
            };
            choice.version()?;
            return Ok(choice);
        }
        let pypi = Self {
            path: Path::new(env!("CARGO_MANIFEST_DIR")).join("solver/cvc5"),
            from: "PyPI cvc5",
        };
        let pypi_error = match pypi.probe() {
            Ok(_) => return Ok(pypi),
            Err(reason) => format!("{pypi} does not run: {reason}"),
        };
        let on_path = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| dir.join("cvc5"))
            .find(|path| path.is_file());
        if let Some(path) = on_path {
            let choice = Self { path, from: "PATH" };
            choice.version()?;
            return Ok(choice);
        }
        Err(ProverError::NoSolver(format!(
            "CVC5 is not set, no cvc5 on PATH, and {pypi_error}"
        )))
    }

    /// The solver's own version line; also proves that it runs.
    pub fn version(&self) -> Result<String, ProverError> {
        self.probe()
            .map_err(|reason| ProverError::NoSolver(format!("{self} does not run: {reason}")))
    }

    fn probe(&self) -> Result<String, String> {
        let output = std::process::Command::new(&self.path)
            .arg("--version")
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().next().unwrap_or_default().trim().to_owned();
        if output.status.success() && !line.is_empty() {
            return Ok(line);
        }
        // The last line of an error says why (a Python traceback ends with it).
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr
            .lines()
            .last()
            .unwrap_or("no version")
            .trim()
            .to_owned())
    }

    fn spawn(&self) -> Result<LocalSolver, ProverError> {
        LocalSolver::from_command(
            tokio::process::Command::new(&self.path)
                .args(["--lang", "smt"])
                .arg(format!("--tlimit-per={}", QUERY_LIMIT_SECONDS * 1000)),
        )
        .map_err(|e| ProverError::Symcc {
            what: format!("starting {self}"),
            message: e.to_string(),
        })
    }
}

/// A request the law permits and the property does not, in the policies' own terms.
#[derive(Debug)]
pub struct Counterexample {
    env: Env,
    permitted_by: Vec<String>,
}

impl Counterexample {
    fn new(env: Env, law: &PolicySet) -> Self {
        let response = Authorizer::new().is_authorized(&env.request, law, &env.entities);
        let mut permitted_by: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        permitted_by.sort();
        Self { env, permitted_by }
    }

    /// The ids of the law's policies that permitted the request.
    pub fn permitted_by(&self) -> &[String] {
        &self.permitted_by
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.env)?;
        write!(f, "permitted by: {}", self.permitted_by.join(", "))
    }
}

/// The answer for one property.
#[derive(Debug)]
pub struct Proof {
    pub property: &'static str,
    /// Time in the solver (including the SMT encoding of the query).
    pub solver_time: Duration,
    /// Time compiling policies to terms.
    pub compile_time: Duration,
    /// One per request environment (principal type, action) in which the property fails.
    pub counterexamples: Vec<Counterexample>,
}

impl Proof {
    pub fn holds(&self) -> bool {
        self.counterexamples.is_empty()
    }
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.holds() {
            return write!(f, "{}: proven", self.property);
        }
        writeln!(
            f,
            "{}: FALSE, the law permits what the property forbids:",
            self.property
        )?;
        for c in &self.counterexamples {
            writeln!(f, "---\n{c}")?;
        }
        Ok(())
    }
}

/// A permit and whether any request reaches it past every forbid.
#[derive(Debug)]
pub struct Reach {
    pub permit: String,
    pub reachable: bool,
}

/// Everything the redundancy and reachability check found.
#[derive(Debug, Default)]
pub struct Coverage {
    pub reaches: Vec<Reach>,
    /// `(p, q)`: every request `p` matches, `q` matches too (in every request environment).
    pub redundant: Vec<(String, String)>,
    pub solver_time: Duration,
}

/// The symbolic compiler over one solver process.
#[derive(Debug)]
pub struct Prover {
    runtime: tokio::runtime::Runtime,
    compiler: CedarSymCompiler<LocalSolver>,
    solver: SolverChoice,
}

impl Prover {
    /// Finds and starts the solver; fails, saying how to install one, when there is none.
    pub fn start() -> Result<Self, ProverError> {
        let solver = SolverChoice::find()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProverError::Runtime)?;
        // The child process is tied to the runtime that spawns it.
        let local = runtime.block_on(async { solver.spawn() })?;
        let compiler = CedarSymCompiler::new(local).map_err(|e| symcc("starting", e))?;
        Ok(Self {
            runtime,
            compiler,
            solver,
        })
    }

    pub fn solver(&self) -> &SolverChoice {
        &self.solver
    }

    /// Proves that every request the law permits, the property allows; else returns the
    /// counterexamples.
    pub fn prove(&mut self, law: &Law, property: &Property) -> Result<Proof, ProverError> {
        let allows = property.allows(law)?;
        let mut proof = Proof {
            property: property.name,
            solver_time: Duration::ZERO,
            compile_time: Duration::ZERO,
            counterexamples: Vec::new(),
        };
        for env in law.schema().request_envs() {
            let started = Instant::now();
            let compiled_law = compile_set(law, law.policies(), &env)?;
            let compiled_property = compile_set(law, &allows, &env)?;
            proof.compile_time += started.elapsed();
            let started = Instant::now();
            let found = self
                .runtime
                .block_on(
                    self.compiler
                        .check_implies_with_counterexample_opt(&compiled_law, &compiled_property),
                )
                .map_err(|e| symcc(&format!("proving {}", property.name), e))?;
            proof.solver_time += started.elapsed();
            if let Some(env) = found {
                proof
                    .counterexamples
                    .push(Counterexample::new(env, law.policies()));
            }
        }
        Ok(proof)
    }

    /// For every permit: can some request reach it past every forbid? And which pairs of
    /// permits are redundant, one matching whatever the other does?
    pub fn coverage(&mut self, law: &Law) -> Result<Coverage, ProverError> {
        let permits = law.permits();
        let forbids = law.forbids();
        let mut coverage = Coverage::default();
        let mut reachable = vec![false; permits.len()];
        // matchable[e][i]: permit i matches some request of environment e.
        let mut matchable = Vec::new();
        let mut compiled = Vec::new();
        let envs: Vec<RequestEnv> = law.schema().request_envs().collect();
        let started = Instant::now();
        for env in &envs {
            let mut row = Vec::new();
            let mut compiled_row = Vec::new();
            for (i, permit) in permits.iter().enumerate() {
                let alone = CompiledPolicy::compile(permit, env, law.schema())
                    .map_err(|e| symcc(&format!("compiling {}", permit.id()), e))?;
                let never = self
                    .runtime
                    .block_on(self.compiler.check_never_matches_opt(&alone))
                    .map_err(|e| symcc(&format!("matching {}", permit.id()), e))?;
                row.push(!never);
                if !never && !reachable.get(i).copied().unwrap_or(true) {
                    let guarded = PolicySet::from_policies(
                        forbids
                            .iter()
                            .map(|p| (*p).clone())
                            .chain(std::iter::once((*permit).clone())),
                    )
                    .map_err(|e| ProverError::Symcc {
                        what: format!("reaching {}", permit.id()),
                        message: e.to_string(),
                    })?;
                    let guarded = compile_set(law, &guarded, env)?;
                    let denied = self
                        .runtime
                        .block_on(self.compiler.check_always_denies_opt(&guarded))
                        .map_err(|e| symcc(&format!("reaching {}", permit.id()), e))?;
                    if let Some(r) = reachable.get_mut(i) {
                        *r = !denied;
                    }
                }
                compiled_row.push(alone);
            }
            matchable.push(row);
            compiled.push(compiled_row);
        }
        for (i, p) in permits.iter().enumerate() {
            for (j, q) in permits.iter().enumerate() {
                if i == j {
                    continue;
                }
                let mut covered = true;
                let mut ever = false;
                for (e, row) in matchable.iter().enumerate() {
                    if !row.get(i).copied().unwrap_or(false) {
                        continue;
                    }
                    ever = true;
                    if !row.get(j).copied().unwrap_or(false) {
                        covered = false;
                        break;
                    }
                    let (Some(cp), Some(cq)) = (
                        compiled.get(e).and_then(|r| r.get(i)),
                        compiled.get(e).and_then(|r| r.get(j)),
                    ) else {
                        covered = false;
                        break;
                    };
                    let implies = self
                        .runtime
                        .block_on(self.compiler.check_matches_implies_opt(cp, cq))
                        .map_err(|e| symcc(&format!("comparing {} and {}", p.id(), q.id()), e))?;
                    if !implies {
                        covered = false;
                        break;
                    }
                }
                if ever && covered {
                    coverage
                        .redundant
                        .push((p.id().to_string(), q.id().to_string()));
                }
            }
        }
        coverage.solver_time = started.elapsed();
        coverage.reaches = permits
            .iter()
            .zip(reachable)
            .map(|(p, reachable)| Reach {
                permit: p.id().to_string(),
                reachable,
            })
            .collect();
        Ok(coverage)
    }
}

fn compile_set(
    law: &Law,
    policies: &PolicySet,
    env: &RequestEnv,
) -> Result<CompiledPolicySet, ProverError> {
    CompiledPolicySet::compile(policies, env, law.schema()).map_err(|e| {
        symcc(
            &format!(
                "compiling for {} {} {}",
                env.principal(),
                env.action(),
                env.resource()
            ),
            e,
        )
    })
}

fn symcc(what: &str, e: cedar_policy_symcc::err::Error) -> ProverError {
    let mut message = e.to_string();
    if let cedar_policy_symcc::err::Error::PolicyNotWellTyped { errs } = &e {
        for err in errs {
            message.push_str(&format!("; {err}"));
        }
    }
    ProverError::Symcc {
        what: what.to_owned(),
        message,
    }
}
