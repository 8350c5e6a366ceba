//! Policy decisions: Cedar policies from `deploy/policies/`, validated against a schema.
//!
//! The decision is a pure function of (principal, call, facts): the gateway gathers the facts
//! (the access view, the consent rule's outcome, the link configuration) and applies the
//! answer; this module only decides. Which roles may write, who has emergency access and for
//! how long, and what each kind of caller may touch are written in the policy files, not here.
//!
//! Every policy carries `@id("...")`, the name the audit trail records. A permit marked
//! `@flag("disclosure")` is a read across organisations by consent; one marked
//! `@flag("emergency")` is emergency access. A decision is flagged emergency only when
//! nothing but emergency policies allowed it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Entities, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    Schema, ValidationMode, Validator,
};
use chrono::{DateTime, Utc};
use samsyn_consent_rule::Decision as ConsentDecision;
use samsyn_proto::common::v1::DataCategory;

use crate::access_view::ParticipantFacts;
use crate::auth::Principal;

mod memo;
mod prune;
mod request;

use self::memo::{Memo, context_key, store_key};
use self::prune::{Features, prune};

/// The schema file in a policy directory.
pub const SCHEMA_FILE: &str = "samsyn.cedarschema";

/// Largest policy or schema file accepted.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Whether a call reads or changes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Reads.
    Read,
    /// Changes.
    Write,
}

impl Action {
    /// What a method does to its data, from its access annotation.
    pub fn of(access: &samsyn_proto::MethodAccess) -> Self {
        match access.action() {
            samsyn_proto::common::v1::Action::Write => Self::Write,
            samsyn_proto::common::v1::Action::Read
            | samsyn_proto::common::v1::Action::Unspecified => Self::Read,
        }
    }

    /// The action's name in policies, the audit trail and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// What is being called, from the RPC's access annotation and the link configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The gRPC path (`/samsyn.consent.v1.ConsentService/RevokeConsent`).
    pub rpc: String,
    /// Read or write.
    pub action: Action,
    /// The category of data the call touches.
    pub category: DataCategory,
    /// Only Samsyn's own components may call it.
    pub internal_only: bool,
    /// The response is a list narrowed row by row afterwards.
    pub narrowed_list: bool,
    /// For a system: its link allows this RPC. Ignored for other callers.
    pub link_allows: bool,
    /// The caller acts for one of the programme's organisations (the region or a programme
    /// municipality).
    pub programme_member: bool,
    /// What the call would do to consents and restrictions.
    pub act: Act,
}

/// The organisations a consent or restriction call concerns: `context.act` in the policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Act {
    /// A sharing consent being recorded discloses this organisation's information ...
    pub disclosing_organisation: Option<String>,
    /// ... to this organisation.
    pub receiving_organisation: Option<String>,
    /// A restriction being lifted or revoked blocks this organisation ...
    pub restricted_organisation: Option<String>,
    /// ... from this owner's data (absent: any owner's).
    pub protected_owner: Option<String>,
}

impl Act {
    fn attributes(&self) -> [(&'static str, Option<&str>); 4] {
        [
            (
                "disclosing_organisation",
                self.disclosing_organisation.as_deref(),
            ),
            (
                "receiving_organisation",
                self.receiving_organisation.as_deref(),
            ),
            (
                "restricted_organisation",
                self.restricted_organisation.as_deref(),
            ),
            ("protected_owner", self.protected_owner.as_deref()),
        ]
    }
}

/// The data a call touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource<'a> {
    /// The organisation that owns the data; `None` for data both principals keep together
    /// (the joint plan) and for calls that name no participant.
    pub owner_organisation: Option<&'a str>,
    /// What the access view knows about the participant the data is about; `None` when the
    /// call names none.
    pub participant: Option<&'a ParticipantFacts>,
}

/// An emergency claim made with the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Emergency {
    /// The caller gave an emergency reason (request metadata).
    pub reason_given: bool,
    /// When the caller first declared this emergency; `None` means with this call.
    pub declared_at: Option<DateTime<Utc>>,
}

/// Everything one decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// Who calls.
    pub principal: &'a Principal,
    /// What is called.
    pub call: &'a Call,
    /// What it touches.
    pub resource: Resource<'a>,
    /// The consent rule's outcome for this reader, owner and category, when it was asked
    /// (reads about a participant). Ask it without the emergency flag: emergency access is
    /// decided by the policies.
    pub consent: Option<&'a ConsentDecision>,
    /// The emergency claim.
    pub emergency: Emergency,
    /// The moment of the call.
    pub at: DateTime<Utc>,
}

/// The answer, with what the audit trail records about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Whether the call may proceed.
    pub allowed: bool,
    /// Ids of the policies that determined the answer (sorted): the permits that allowed
    /// it, or the forbids that refused it; empty for a denial by default.
    pub policies: Vec<String>,
    /// A read across organisations allowed by the participant's consent.
    pub disclosure: bool,
    /// Allowed only by emergency access.
    pub emergency: bool,
}

/// Why the policies cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or the directory cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than any policy file should be.
    #[error("{0}: file too large")]
    TooLarge(PathBuf),
    /// The directory holds no `*.cedar` file.
    #[error("{0}: no *.cedar policy files")]
    NoPolicies(PathBuf),
    /// The schema does not parse.
    #[error("schema {file}: {message}")]
    Schema {
        /// The schema's file name.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A policy file does not parse.
    #[error("policy file {file}: {message}")]
    Parse {
        /// The policy file's name.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A policy lacks `@id`, reuses one, or has an unknown `@flag`.
    #[error("policy file {file}: {message}")]
    Annotation {
        /// The policy file's name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Invalid(String),
}

/// What a permit's `@flag` says about a decision it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Disclosure,
    Emergency,
}

/// The type names of the schema, built once.
#[derive(Debug, Clone)]
struct Types {
    care_team: EntityTypeName,
    staff: EntityTypeName,
    system: EntityTypeName,
    participant: EntityTypeName,
    data: EntityTypeName,
}

/// Loaded, validated policies and the authorizer that evaluates them.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    schema: Schema,
    policies: PolicySet,
    /// The policies that can apply, one set per distinct outcome of `prune`. Cedar rebuilds
    /// each policy's expression on every evaluation, so leaving out those that cannot apply
    /// is much of what a decision costs; the answer is the same.
    scoped: Vec<PolicySet>,
    /// For each `Features::index`, the index in `scoped` of the set to evaluate.
    slots: Vec<u16>,
    flags: HashMap<PolicyId, Flag>,
    /// Contexts built before, by an exact key of the facts they were built from.
    contexts: Memo<Context>,
    /// The principal's uid and the whole entity store of a request, likewise, so that a
    /// request about the same people and data as an earlier one builds nothing.
    stores: Memo<(EntityUid, Arc<Entities>)>,
    authorizer: Authorizer,
    types: Types,
    read: EntityUid,
    write: EntityUid,
    data: EntityUid,
}

impl PolicyEngine {
    /// Loads `samsyn.cedarschema` and every `*.cedar` file of `dir`, and validates the
    /// policies against the schema.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let schema = read_bounded(&dir.join(SCHEMA_FILE))?;
        let entries = std::fs::read_dir(dir).map_err(|source| PolicyError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| PolicyError::Read {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cedar") {
                paths.push(path);
            }
        }
        // A stable order, so that error messages and ids do not depend on the directory.
        paths.sort();
        if paths.is_empty() {
            return Err(PolicyError::NoPolicies(dir.to_owned()));
        }
        let mut files = Vec::new();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, read_bounded(&path)?));
        }
        Self::from_sources(&schema, &files)
    }

    /// Builds the engine from a schema text and `(file name, policy text)` pairs.
    pub fn from_sources(schema: &str, files: &[(String, String)]) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema).map_err(|e| PolicyError::Schema {
                file: SCHEMA_FILE.into(),
                message: e.to_string(),
            })?;
        let mut policies = PolicySet::new();
        let mut flags = HashMap::new();
        for (file, text) in files {
            let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Parse {
                file: file.clone(),
                message: e.to_string(),
            })?;
            if parsed.num_of_templates() > 0 {
                return Err(PolicyError::Annotation {
                    file: file.clone(),
                    message: "templates are not used".into(),
                });
            }
            for policy in parsed.policies() {
                let annotation = |message: String| PolicyError::Annotation {
                    file: file.clone(),
                    message,
                };
                let id = policy
                    .annotation("id")
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| annotation("a policy without @id(\"...\")".into()))?;
                let id = PolicyId::new(id);
                match policy.annotation("flag") {
                    None => {}
                    Some("disclosure") => {
                        flags.insert(id.clone(), Flag::Disclosure);
                    }
                    Some("emergency") => {
                        flags.insert(id.clone(), Flag::Emergency);
                    }
                    Some(other) => {
                        return Err(annotation(format!("policy {id}: unknown @flag {other:?}")));
                    }
                }
                policies
                    .add(policy.new_id(id.clone()))
                    .map_err(|_| annotation(format!("policy {id}: @id used twice")))?;
            }
        }
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let messages: Vec<String> = result
                .validation_errors()
                .map(|e| format!("policy {}: {e}", e.policy_id()))
                .collect();
            return Err(PolicyError::Invalid(messages.join("; ")));
        }
        let name = |n: &str| {
            EntityTypeName::from_str(n).map_err(|e| PolicyError::Schema {
                file: SCHEMA_FILE.into(),
                message: e.to_string(),
            })
        };
        let types = Types {
            care_team: name("Samsyn::CareTeam")?,
            staff: name("Samsyn::Staff")?,
            system: name("Samsyn::System")?,
            participant: name("Samsyn::Participant")?,
            data: name("Samsyn::Data")?,
        };
        let action = name("Samsyn::Action")?;
        let uid = |t: &EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
        };
        let read = uid(&action, Action::Read.as_str());
        let write = uid(&action, Action::Write.as_str());
        let (scoped, slots) = prune(&policies, &types, &read, &write)?;
        Ok(Self {
            read,
            write,
            data: uid(&types.data, "call"),
            scoped,
            slots,
            types,
            schema,
            policies,
            flags,
            contexts: Memo::default(),
            stores: Memo::default(),
            authorizer: Authorizer::new(),
        })
    }

    /// The ids of the loaded policies.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.policies.policies().map(|p| p.id().as_ref())
    }

    /// Decides one call. Deny by default; any evaluation error denies (fail closed).
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        match self.evaluate(input, None) {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(%error, "policy request could not be built; denied");
                Decision::default()
            }
        }
    }

    /// As [`PolicyEngine::decide`], with the request and entities checked against the schema,
    /// built anew rather than kept from earlier calls, and every policy evaluated, whatever
    /// its scope (slower; for tests).
    pub fn decide_checked(&self, input: &DecisionInput<'_>) -> Result<Decision, String> {
        self.evaluate(input, Some(&self.schema))
    }

    fn evaluate(
        &self,
        input: &DecisionInput<'_>,
        schema: Option<&Schema>,
    ) -> Result<Decision, String> {
        // The checked path builds everything anew, so that tests compare the memos with it.
        let memo = schema.is_none();
        let (principal, entities) =
            self.stores
                .get_or_build(memo, || store_key(input), || self.store(input, schema))?;

        let context = self.contexts.get_or_build(
            memo,
            || context_key(input),
            || Context::from_pairs(self.context(input)).map_err(err),
        )?;
        let action = match input.call.action {
            Action::Read => self.read.clone(),
            Action::Write => self.write.clone(),
        };
        let request =
            cedar_policy::Request::new(principal, action, self.data.clone(), context, schema)
                .map_err(err)?;
        // The checked path evaluates every policy, so that tests also prove the scoped sets
        // decide as the whole set does.
        let policies = match schema {
            Some(_) => &self.policies,
            None => {
                let slot = self.slots.get(Features::of(input).index());
                match slot.and_then(|s| self.scoped.get(usize::from(*s))) {
                    Some(set) => set,
                    None => &self.policies,
                }
            }
        };
        let response = self.authorizer.is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let errored: Vec<String> = diagnostics
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => {
                    e.policy_id().to_string()
                }
            })
            .collect();
        if !errored.is_empty() {
            // A policy that cannot be evaluated might have been a forbid: fail closed.
            tracing::warn!(policies = ?errored, "policy evaluation errors; denied");
            return Ok(Decision {
                allowed: false,
                policies: errored,
                ..Decision::default()
            });
        }
        let mut policies: Vec<&PolicyId> = diagnostics.reason().collect();
        policies.sort();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let (mut disclosure, mut emergency) = (false, false);
        if allowed {
            let flags: Vec<Option<Flag>> = policies
                .iter()
                .map(|id| self.flags.get(*id).copied())
                .collect();
            emergency = !flags.is_empty() && flags.iter().all(|f| *f == Some(Flag::Emergency));
            disclosure = !emergency && flags.contains(&Some(Flag::Disclosure));
        }
        Ok(Decision {
            allowed,
            // The id as written: `Display` would escape it, at a cost on every decision.
            policies: policies
                .iter()
                .map(|id| AsRef::<str>::as_ref(id).to_owned())
                .collect(),
            disclosure,
            emergency,
        })
    }
}

/// The code policies use for a data category.
pub fn category_code(category: DataCategory) -> &'static str {
    match category {
        DataCategory::Unspecified => "unspecified",
        DataCategory::Enrolment => "enrolment",
        DataCategory::CareTeam => "care_team",
        DataCategory::Consent => "consent",
        DataCategory::Plan => "plan",
        DataCategory::Decision => "decision",
        DataCategory::Board => "board",
        DataCategory::Audit => "audit",
        DataCategory::Admin => "admin",
        DataCategory::ChangeFeed => "change_feed",
        DataCategory::Report => "report",
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn read_bounded(path: &Path) -> Result<String, PolicyError> {
    let read = |source| PolicyError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(PolicyError::TooLarge(path.to_owned()));
    }
    std::fs::read_to_string(path).map_err(read)
}

#[cfg(test)]
mod tests;
