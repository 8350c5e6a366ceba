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
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, RestrictedExpression, Schema, ValidationMode, Validator,
};
use chrono::{DateTime, Utc};
use samsyn_consent_rule::Decision as ConsentDecision;
use samsyn_proto::common::v1::DataCategory;

use crate::access_view::ParticipantFacts;
use crate::auth::{Principal, PrincipalKind};

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
    /// The policies whose scope can match, per principal kind and action (see `slot`).
    /// Cedar rebuilds each policy's expression on every evaluation, so leaving out those
    /// that cannot apply is most of what a decision costs; the answer is the same.
    scoped: Vec<PolicySet>,
    flags: HashMap<PolicyId, Flag>,
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
        let read = uid(&action, "read");
        let write = uid(&action, "write");
        let mut scoped = Vec::with_capacity(6);
        for kind in [
            PrincipalKind::Staff,
            PrincipalKind::System,
            PrincipalKind::Participant,
        ] {
            let principal_type = match kind {
                PrincipalKind::Staff => &types.staff,
                PrincipalKind::System => &types.system,
                PrincipalKind::Participant => &types.participant,
            };
            for action in [&read, &write] {
                let mut set = PolicySet::new();
                for policy in policies.policies() {
                    if scope_may_match(policy, principal_type, action) {
                        set.add(policy.clone())
                            .map_err(|e| PolicyError::Annotation {
                                file: String::new(),
                                message: e.to_string(),
                            })?;
                    }
                }
                scoped.push(set);
            }
        }
        Ok(Self {
            read,
            write,
            data: uid(&types.data, "call"),
            scoped,
            types,
            schema,
            policies,
            flags,
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

    /// As [`PolicyEngine::decide`], with the request and entities checked against the schema
    /// and every policy evaluated, whatever its scope (slower; for tests).
    pub fn decide_checked(&self, input: &DecisionInput<'_>) -> Result<Decision, String> {
        self.evaluate(input, Some(&self.schema))
    }

    fn evaluate(
        &self,
        input: &DecisionInput<'_>,
        schema: Option<&Schema>,
    ) -> Result<Decision, String> {
        let mut entities = Vec::with_capacity(3);
        let principal = self.principal_entity(input.principal, &input.resource, &mut entities)?;
        let participant = match input.resource.participant {
            Some(facts) => {
                // A participant acting for themself has no entity of its own (see
                // `principal_entity`), so this is the only entity with this uid.
                let uid = self.uid(&self.types.participant, &facts.participant_id);
                entities.push(self.participant_entity(uid.clone(), facts)?);
                Some(uid)
            }
            None => None,
        };
        let mut data = HashMap::with_capacity(3);
        data.insert(
            "category".to_owned(),
            RestrictedExpression::new_string(category_code(input.call.category).to_owned()),
        );
        if let Some(owner) = input.resource.owner_organisation {
            data.insert(
                "owner".to_owned(),
                RestrictedExpression::new_string(owner.to_owned()),
            );
        }
        if let Some(uid) = participant {
            data.insert(
                "participant".to_owned(),
                RestrictedExpression::new_entity_uid(uid),
            );
        }
        entities.push(Entity::new(self.data.clone(), data, HashSet::new()).map_err(err)?);
        let entities = Entities::from_entities(entities, schema).map_err(err)?;

        let context = Context::from_pairs(self.context(input)).map_err(err)?;
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
            None => &self.scoped[slot(input.principal.kind, input.call.action)],
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
            policies: policies.iter().map(|id| id.to_string()).collect(),
            disclosure,
            emergency,
        })
    }

    fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    fn principal_entity(
        &self,
        principal: &Principal,
        resource: &Resource<'_>,
        entities: &mut Vec<Entity>,
    ) -> Result<EntityUid, String> {
        let strings = |v: &[String]| {
            RestrictedExpression::new_set(
                v.iter()
                    .map(|s| RestrictedExpression::new_string(s.clone())),
            )
        };
        let organisation = || {
            principal
                .organisation
                .clone()
                .ok_or_else(|| "principal without organisation".to_owned())
        };
        match principal.kind {
            PrincipalKind::Staff => {
                let uid = self.uid(&self.types.staff, &principal.id);
                let mut attrs = HashMap::with_capacity(5);
                attrs.insert(
                    "organisation".to_owned(),
                    RestrictedExpression::new_string(organisation()?),
                );
                attrs.insert("roles".to_owned(), strings(&principal.roles));
                attrs.insert("teams".to_owned(), strings(&principal.teams));
                if let Some(unit) = &principal.unit {
                    attrs.insert(
                        "unit".to_owned(),
                        RestrictedExpression::new_string(unit.clone()),
                    );
                }
                if let Some(purpose) = &principal.purpose {
                    attrs.insert(
                        "purpose".to_owned(),
                        RestrictedExpression::new_string(purpose.clone()),
                    );
                }
                // On the care team: listed with the organisation they act for now. Staff who
                // moved to another organisation do not carry their old team along.
                let mut parents = HashSet::new();
                if let Some(facts) = resource.participant
                    && facts.care_team.iter().any(|m| {
                        m.staff_id == principal.id
                            && principal.organisation.as_deref() == Some(m.organisation_id.as_str())
                    })
                {
                    parents.insert(self.uid(&self.types.care_team, &facts.participant_id));
                }
                entities.push(Entity::new(uid.clone(), attrs, parents).map_err(err)?);
                Ok(uid)
            }
            PrincipalKind::System => {
                let uid = self.uid(&self.types.system, &principal.id);
                let attrs = HashMap::from([
                    (
                        "organisation".to_owned(),
                        RestrictedExpression::new_string(organisation()?),
                    ),
                    ("roles".to_owned(), strings(&principal.roles)),
                ]);
                entities.push(Entity::new(uid.clone(), attrs, HashSet::new()).map_err(err)?);
                Ok(uid)
            }
            // A participant principal is only ever compared with the data's participant, so
            // it needs no attributes of its own.
            PrincipalKind::Participant => Ok(self.uid(&self.types.participant, &principal.id)),
        }
    }

    fn participant_entity(
        &self,
        uid: EntityUid,
        facts: &ParticipantFacts,
    ) -> Result<Entity, String> {
        let mut attrs = HashMap::with_capacity(4);
        attrs.insert(
            "care_team".to_owned(),
            RestrictedExpression::new_entity_uid(
                self.uid(&self.types.care_team, &facts.participant_id),
            ),
        );
        attrs.insert(
            "fact_teams".to_owned(),
            RestrictedExpression::new_set(
                facts
                    .fact_teams
                    .iter()
                    .map(|t| RestrictedExpression::new_string(t.clone())),
            ),
        );
        if !facts.home_municipality.is_empty() {
            attrs.insert(
                "home_municipality".to_owned(),
                RestrictedExpression::new_string(facts.home_municipality.clone()),
            );
        }
        attrs.insert(
            "status".to_owned(),
            RestrictedExpression::new_string(facts.status.code().to_owned()),
        );
        Entity::new(uid, attrs, HashSet::new()).map_err(err)
    }

    fn context(&self, input: &DecisionInput<'_>) -> [(String, RestrictedExpression); 6] {
        let call = input.call;
        let consent = input.consent;
        let consent = [
            (
                "decided".to_owned(),
                RestrictedExpression::new_bool(consent.is_some()),
            ),
            (
                "permit".to_owned(),
                RestrictedExpression::new_bool(consent.is_some_and(|c| c.is_permit())),
            ),
            (
                "reason".to_owned(),
                RestrictedExpression::new_string(
                    consent.map_or("none", |c| c.reason.code()).to_owned(),
                ),
            ),
        ];
        let age = input
            .emergency
            .declared_at
            .map_or(0, |declared| (input.at - declared).num_seconds());
        let emergency = [
            (
                "reason_given".to_owned(),
                RestrictedExpression::new_bool(input.emergency.reason_given),
            ),
            (
                "age_seconds".to_owned(),
                RestrictedExpression::new_long(age),
            ),
        ];
        [
            (
                "rpc".to_owned(),
                RestrictedExpression::new_string(call.rpc.clone()),
            ),
            (
                "internal_only".to_owned(),
                RestrictedExpression::new_bool(call.internal_only),
            ),
            (
                "narrowed_list".to_owned(),
                RestrictedExpression::new_bool(call.narrowed_list),
            ),
            (
                "link_allows".to_owned(),
                RestrictedExpression::new_bool(
                    input.principal.kind == PrincipalKind::System && call.link_allows,
                ),
            ),
            (
                "consent".to_owned(),
                RestrictedExpression::new_record(consent)
                    .unwrap_or_else(|_| RestrictedExpression::new_bool(false)),
            ),
            (
                "emergency".to_owned(),
                RestrictedExpression::new_record(emergency)
                    .unwrap_or_else(|_| RestrictedExpression::new_bool(false)),
            ),
        ]
    }
}

/// The index in `PolicyEngine::scoped` of a principal kind and action.
fn slot(kind: PrincipalKind, action: Action) -> usize {
    let kind = match kind {
        PrincipalKind::Staff => 0,
        PrincipalKind::System => 1,
        PrincipalKind::Participant => 2,
    };
    kind * 2 + usize::from(action == Action::Write)
}

/// Whether a policy's scope can match a request from a principal of `principal_type` for
/// `action`. Conservative: a constraint this does not look into counts as a match.
fn scope_may_match(
    policy: &cedar_policy::Policy,
    principal_type: &EntityTypeName,
    action: &EntityUid,
) -> bool {
    use cedar_policy::{ActionConstraint, PrincipalConstraint};
    let principal = match policy.principal_constraint() {
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => t == *principal_type,
        PrincipalConstraint::Eq(uid) => uid.type_name() == principal_type,
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
    };
    let action = match policy.action_constraint() {
        ActionConstraint::Eq(uid) => uid == *action,
        // `in` also matches members of action groups: not looked into.
        ActionConstraint::In(_) | ActionConstraint::Any => true,
    };
    principal && action
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
