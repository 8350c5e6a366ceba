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
use std::sync::{Arc, Mutex};

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

impl Action {
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
    /// Entities built before, by an exact key of the facts they were built from.
    entities: Memo<Entity>,
    /// Contexts built before, likewise.
    contexts: Memo<Context>,
    /// The principal's uid and the whole entity store of a request, likewise: building the
    /// store computes the transitive closure of its hierarchy, the largest cost left.
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
            entities: Memo::default(),
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
        let (principal, entities) = self.stores.get_or_build(
            memo,
            || store_key(input),
            || self.store(input, memo, schema),
        )?;

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
            policies: policies.iter().map(|id| id.to_string()).collect(),
            disclosure,
            emergency,
        })
    }

    /// The principal's uid and the entities of one request.
    fn store(
        &self,
        input: &DecisionInput<'_>,
        memo: bool,
        schema: Option<&Schema>,
    ) -> Result<(EntityUid, Arc<Entities>), String> {
        let mut entities = Vec::with_capacity(3);
        let principal =
            self.principal_entity(input.principal, &input.resource, memo, &mut entities)?;
        let participant = match input.resource.participant {
            Some(facts) => {
                // A participant acting for themself has no entity of its own (see
                // `principal_entity`), so this is the only entity with this uid.
                entities.push(self.entities.get_or_build(
                    memo,
                    || participant_key(facts),
                    || self.participant_entity(facts),
                )?);
                Some(facts.participant_id.as_str())
            }
            None => None,
        };
        let category = category_code(input.call.category);
        let owner = input.resource.owner_organisation;
        let key = || data_key(category, owner, participant);
        entities.push(self.entities.get_or_build(memo, key, || {
            let mut data = HashMap::with_capacity(3);
            data.insert(
                "category".to_owned(),
                RestrictedExpression::new_string(category.to_owned()),
            );
            if let Some(owner) = owner {
                data.insert(
                    "owner".to_owned(),
                    RestrictedExpression::new_string(owner.to_owned()),
                );
            }
            if let Some(id) = participant {
                data.insert(
                    "participant".to_owned(),
                    RestrictedExpression::new_entity_uid(self.uid(&self.types.participant, id)),
                );
            }
            Entity::new(self.data.clone(), data, HashSet::new()).map_err(err)
        })?);
        let entities = Entities::from_entities(entities, schema).map_err(err)?;
        Ok((principal, Arc::new(entities)))
    }

    fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    fn principal_entity(
        &self,
        principal: &Principal,
        resource: &Resource<'_>,
        memo: bool,
        entities: &mut Vec<Entity>,
    ) -> Result<EntityUid, String> {
        let member_of = member_of(principal, resource);
        let key = || principal_key(principal, member_of);
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
                let build = || {
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
                    if let Some(link) = &principal.acting_through {
                        attrs.insert(
                            "acting_through".to_owned(),
                            RestrictedExpression::new_string(link.clone()),
                        );
                    }
                    let mut parents = HashSet::new();
                    if let Some(facts) = member_of {
                        parents.insert(self.uid(&self.types.care_team, &facts.participant_id));
                    }
                    Entity::new(uid.clone(), attrs, parents).map_err(err)
                };
                entities.push(self.entities.get_or_build(memo, key, build)?);
                Ok(uid)
            }
            PrincipalKind::System => {
                let uid = self.uid(&self.types.system, &principal.id);
                let build = || {
                    let attrs = HashMap::from([
                        (
                            "organisation".to_owned(),
                            RestrictedExpression::new_string(organisation()?),
                        ),
                        ("roles".to_owned(), strings(&principal.roles)),
                    ]);
                    Entity::new(uid.clone(), attrs, HashSet::new()).map_err(err)
                };
                entities.push(self.entities.get_or_build(memo, key, build)?);
                Ok(uid)
            }
            // A participant principal is only ever compared with the data's participant, so
            // it needs no attributes of its own.
            PrincipalKind::Participant => Ok(self.uid(&self.types.participant, &principal.id)),
        }
    }

    fn participant_entity(&self, facts: &ParticipantFacts) -> Result<Entity, String> {
        let uid = self.uid(&self.types.participant, &facts.participant_id);
        let mut attrs = HashMap::with_capacity(5);
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
        attrs.insert(
            "care_organisations".to_owned(),
            RestrictedExpression::new_set(
                care_organisations(facts)
                    .into_iter()
                    .map(|o| RestrictedExpression::new_string(o.to_owned())),
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

    fn context(&self, input: &DecisionInput<'_>) -> [(String, RestrictedExpression); 8] {
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
        let age = emergency_age(input);
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
                RestrictedExpression::new_bool(link_allows(input)),
            ),
            (
                "programme_member".to_owned(),
                RestrictedExpression::new_bool(call.programme_member),
            ),
            (
                "act".to_owned(),
                RestrictedExpression::new_record(call.act.attributes().into_iter().filter_map(
                    |(name, value)| {
                        value.map(|v| {
                            (
                                name.to_owned(),
                                RestrictedExpression::new_string(v.to_owned()),
                            )
                        })
                    },
                ))
                .unwrap_or_else(|_| RestrictedExpression::new_bool(false)),
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

/// How many values a `Memo` keeps before it starts over.
const MEMO_CAPACITY: usize = 4096;

/// Values built from request facts, kept by an exact encoding of the facts they were built
/// from (see `Key`), so that facts that change make a new key rather than a stale hit.
/// Shared by the clones of an engine; bounded by `MEMO_CAPACITY`.
#[derive(Clone)]
struct Memo<V> {
    map: Arc<Mutex<HashMap<Key, V>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self {
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<V> std::fmt::Debug for Memo<V> {
    // The keys hold ids of staff and participants: only the count is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.map.lock().map_or(0, |m| m.len());
        f.debug_struct("Memo").field("len", &len).finish()
    }
}

impl<V: Clone> Memo<V> {
    /// The value kept for `key`, or `build`'s, kept. With `use_memo` false, always `build`'s,
    /// not kept.
    fn get_or_build(
        &self,
        use_memo: bool,
        key: impl FnOnce() -> Key,
        build: impl FnOnce() -> Result<V, String>,
    ) -> Result<V, String> {
        if !use_memo {
            return build();
        }
        let key = key();
        if let Ok(map) = self.map.lock()
            && let Some(value) = map.get(&key)
        {
            return Ok(value.clone());
        }
        let value = build()?;
        if let Ok(mut map) = self.map.lock() {
            // Full: one entry goes, whichever the table yields first (the hasher's keys are
            // random, so in effect a random one). Emptying the whole table instead would
            // make one unlucky call pay for dropping thousands of entries.
            if map.len() >= MEMO_CAPACITY
                && let Some(old) = map.keys().next().cloned()
            {
                map.remove(&old);
            }
            map.insert(key, value.clone());
        }
        Ok(value)
    }
}

/// An unambiguous encoding of the facts a value is built from: a tag for the kind of value,
/// then each field with its length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key(Vec<u8>);

impl Key {
    fn new(tag: u8) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.push(tag);
        Self(bytes)
    }

    fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(&s.len().to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn opt(self, s: Option<&str>) -> Self {
        match s {
            Some(s) => self.byte(1).str(s),
            None => self.byte(0),
        }
    }

    fn strs(mut self, v: &[String]) -> Self {
        self.0.extend_from_slice(&v.len().to_le_bytes());
        let mut key = self;
        for s in v {
            key = key.str(s);
        }
        key
    }

    fn key(mut self, other: &Key) -> Self {
        self.0.extend_from_slice(&other.0.len().to_le_bytes());
        self.0.extend_from_slice(&other.0);
        self
    }

    fn long(mut self, n: i64) -> Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
}

/// On the participant's care team: listed with the organisation they act for now. Staff who
/// moved to another organisation do not carry their old team along.
fn member_of<'a>(principal: &Principal, resource: &Resource<'a>) -> Option<&'a ParticipantFacts> {
    resource.participant.filter(|facts| {
        principal.kind == PrincipalKind::Staff
            && facts.care_team.iter().any(|m| {
                m.staff_id == principal.id
                    && principal.organisation.as_deref() == Some(m.organisation_id.as_str())
            })
    })
}

/// Everything the principal's entity is built from.
fn principal_key(principal: &Principal, member_of: Option<&ParticipantFacts>) -> Key {
    let kind = match principal.kind {
        PrincipalKind::Staff => b's',
        PrincipalKind::System => b'y',
        PrincipalKind::Participant => b'a',
    };
    Key::new(kind)
        .str(&principal.id)
        .opt(principal.organisation.as_deref())
        .opt(principal.unit.as_deref())
        .opt(principal.purpose.as_deref())
        .opt(principal.acting_through.as_deref())
        .strs(&principal.roles)
        .strs(&principal.teams)
        .opt(member_of.map(|f| f.participant_id.as_str()))
}

/// Everything the participant's entity is built from.
fn participant_key(facts: &ParticipantFacts) -> Key {
    let organisations: Vec<String> = care_organisations(facts)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Key::new(b'p')
        .str(&facts.participant_id)
        .str(facts.status.code())
        .str(&facts.home_municipality)
        .strs(&facts.fact_teams)
        .strs(&organisations)
}

/// The organisations with a current assignment on the participant's care team, sorted.
fn care_organisations(facts: &ParticipantFacts) -> std::collections::BTreeSet<&str> {
    facts
        .care_team
        .iter()
        .map(|m| m.organisation_id.as_str())
        .collect()
}

/// Everything the data's entity is built from.
fn data_key(category: &str, owner: Option<&str>, participant: Option<&str>) -> Key {
    Key::new(b'd').str(category).opt(owner).opt(participant)
}

/// Everything `PolicyEngine::store` reads.
fn store_key(input: &DecisionInput<'_>) -> Key {
    let resource = &input.resource;
    let participant = resource.participant;
    let mut key = Key::new(b'e')
        .key(&principal_key(
            input.principal,
            member_of(input.principal, resource),
        ))
        .key(&data_key(
            category_code(input.call.category),
            resource.owner_organisation,
            participant.map(|f| f.participant_id.as_str()),
        ));
    if let Some(facts) = participant {
        key = key.key(&participant_key(facts));
    }
    key
}

/// Everything `PolicyEngine::context` reads.
fn context_key(input: &DecisionInput<'_>) -> Key {
    let consent = input.consent;
    let flags = [
        input.call.internal_only,
        input.call.narrowed_list,
        link_allows(input),
        consent.is_some(),
        consent.is_some_and(|c| c.is_permit()),
        input.emergency.reason_given,
        input.call.programme_member,
    ]
    .iter()
    .enumerate()
    .fold(0u8, |bits, (i, set)| bits | u8::from(*set) << i);
    let mut key = Key::new(b'c').str(&input.call.rpc).byte(flags);
    for (_, value) in input.call.act.attributes() {
        key = match value {
            Some(organisation) => key.byte(1).str(organisation),
            None => key.byte(0),
        };
    }
    key.str(consent.map_or("none", |c| c.reason.code()))
        .long(emergency_age(input))
}

/// `context.emergency.age_seconds`.
fn emergency_age(input: &DecisionInput<'_>) -> i64 {
    input
        .emergency
        .declared_at
        .map_or(0, |declared| (input.at - declared).num_seconds())
}

/// What `context.link_allows` says: only a system, or a person acting through one, has a
/// link.
fn link_allows(input: &DecisionInput<'_>) -> bool {
    (input.principal.kind == PrincipalKind::System || input.principal.acting_through.is_some())
        && input.call.link_allows
}

const KINDS: [PrincipalKind; 3] = [
    PrincipalKind::Staff,
    PrincipalKind::System,
    PrincipalKind::Participant,
];

const ACTIONS: [Action; 2] = [Action::Read, Action::Write];

const CATEGORIES: [DataCategory; 11] = [
    DataCategory::Unspecified,
    DataCategory::Enrolment,
    DataCategory::CareTeam,
    DataCategory::Consent,
    DataCategory::Plan,
    DataCategory::Decision,
    DataCategory::Board,
    DataCategory::Audit,
    DataCategory::Admin,
    DataCategory::ChangeFeed,
    DataCategory::Report,
];

/// A boolean of the request that policies test directly; the discriminant is its bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bit {
    HasParticipant,
    HasOwner,
    InternalOnly,
    NarrowedList,
    LinkAllows,
    ConsentDecided,
    ConsentPermit,
    EmergencyReason,
    /// `principal has purpose`: only staff have the attribute.
    HasPurpose,
    /// `principal has acting_through`: staff acting through a system.
    ActingThrough,
}

/// How many `Bit`s there are.
const BITS: usize = 10;

/// What a request is, as far as policies are pruned by it: the caller's kind, the action,
/// the data category and the `Bit`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Features {
    kind: PrincipalKind,
    action: Action,
    category: DataCategory,
    bits: usize,
}

impl Features {
    fn of(input: &DecisionInput<'_>) -> Self {
        let consent = input.consent;
        let bits = [
            (Bit::HasParticipant, input.resource.participant.is_some()),
            (Bit::HasOwner, input.resource.owner_organisation.is_some()),
            (Bit::InternalOnly, input.call.internal_only),
            (Bit::NarrowedList, input.call.narrowed_list),
            (Bit::LinkAllows, link_allows(input)),
            (Bit::ConsentDecided, consent.is_some()),
            (Bit::ConsentPermit, consent.is_some_and(|c| c.is_permit())),
            (Bit::EmergencyReason, input.emergency.reason_given),
            (
                Bit::HasPurpose,
                input.principal.kind == PrincipalKind::Staff && input.principal.purpose.is_some(),
            ),
            (
                Bit::ActingThrough,
                input.principal.kind == PrincipalKind::Staff
                    && input.principal.acting_through.is_some(),
            ),
        ]
        .iter()
        .fold(0, |bits, (bit, set)| {
            bits | usize::from(*set) << *bit as usize
        });
        Self {
            kind: input.principal.kind,
            action: input.call.action,
            category: input.call.category,
            bits,
        }
    }

    fn has(&self, bit: Bit) -> bool {
        self.bits & (1 << bit as usize) != 0
    }

    /// A dense index: every request maps to one below `Features::COUNT`.
    fn index(&self) -> usize {
        let kind = match self.kind {
            PrincipalKind::Staff => 0,
            PrincipalKind::System => 1,
            PrincipalKind::Participant => 2,
        };
        let action = usize::from(self.action == Action::Write);
        let category = match self.category {
            DataCategory::Unspecified => 0,
            DataCategory::Enrolment => 1,
            DataCategory::CareTeam => 2,
            DataCategory::Consent => 3,
            DataCategory::Plan => 4,
            DataCategory::Decision => 5,
            DataCategory::Board => 6,
            DataCategory::Audit => 7,
            DataCategory::Admin => 8,
            DataCategory::ChangeFeed => 9,
            DataCategory::Report => 10,
        };
        (((kind * ACTIONS.len() + action) * CATEGORIES.len() + category) << BITS) | self.bits
    }

    const COUNT: usize = (KINDS.len() * ACTIONS.len() * CATEGORIES.len()) << BITS;
}

/// A condition a policy requires, read from its `when` and `unless` clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The bit is set (`true`) or clear (`false`).
    Bit(Bit, bool),
    /// The category is one of these codes (`true`) or none of them (`false`).
    Category(Vec<String>, bool),
}

impl Condition {
    fn negate(self) -> Self {
        match self {
            Self::Bit(bit, set) => Self::Bit(bit, !set),
            Self::Category(codes, member) => Self::Category(codes, !member),
        }
    }

    fn holds(&self, features: &Features) -> bool {
        match self {
            Self::Bit(bit, set) => features.has(*bit) == *set,
            Self::Category(codes, member) => {
                codes.iter().any(|c| c == category_code(features.category)) == *member
            }
        }
    }
}

/// The policies that can apply, per distinct set of them, and for each `Features::index`
/// the set's index.
///
/// A policy is left out of a set when its scope cannot match the principal's kind and the
/// action, or when one of the conjuncts of its condition (see `conditions`) is false for
/// every request with those features. A conjunct before the false one could only have made
/// the policy fail with an error instead, which a validated policy over entities built
/// here does not do; `decide_checked` evaluates every policy, and the table tests compare.
fn prune(
    policies: &PolicySet,
    types: &Types,
    read: &EntityUid,
    write: &EntityUid,
) -> Result<(Vec<PolicySet>, Vec<u16>), PolicyError> {
    let analysed: Vec<(&cedar_policy::Policy, Vec<Condition>)> =
        policies.policies().map(|p| (p, conditions(p))).collect();
    let mut sets = Vec::new();
    let mut known: HashMap<Vec<bool>, u16> = HashMap::new();
    let mut slots = vec![0; Features::COUNT];
    let failed = |message: String| PolicyError::Annotation {
        file: String::new(),
        message,
    };
    for kind in KINDS {
        let principal_type = match kind {
            PrincipalKind::Staff => &types.staff,
            PrincipalKind::System => &types.system,
            PrincipalKind::Participant => &types.participant,
        };
        for action in ACTIONS {
            let action_uid = match action {
                Action::Read => read,
                Action::Write => write,
            };
            let in_scope: Vec<bool> = analysed
                .iter()
                .map(|(p, _)| scope_may_match(p, principal_type, action_uid))
                .collect();
            for category in CATEGORIES {
                for bits in 0..1 << BITS {
                    let features = Features {
                        kind,
                        action,
                        category,
                        bits,
                    };
                    let applies: Vec<bool> = analysed
                        .iter()
                        .zip(&in_scope)
                        .map(|((_, conditions), scope)| {
                            *scope && conditions.iter().all(|c| c.holds(&features))
                        })
                        .collect();
                    let slot = match known.get(&applies) {
                        Some(slot) => *slot,
                        None => {
                            let slot = u16::try_from(sets.len())
                                .map_err(|_| failed("too many distinct policy sets".into()))?;
                            let mut set = PolicySet::new();
                            for ((policy, _), applies) in analysed.iter().zip(&applies) {
                                if *applies {
                                    set.add((*policy).clone())
                                        .map_err(|e| failed(e.to_string()))?;
                                }
                            }
                            sets.push(set);
                            known.insert(applies, slot);
                            slot
                        }
                    };
                    if let Some(entry) = slots.get_mut(features.index()) {
                        *entry = slot;
                    }
                }
            }
        }
    }
    Ok((sets, slots))
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

/// The conditions a policy requires, as far as they are recognised: each conjunct of a
/// `when` clause, and an `unless` clause that is a single test. Conservative: what this
/// does not recognise requires nothing.
fn conditions(policy: &cedar_policy::Policy) -> Vec<Condition> {
    let mut found = Vec::new();
    let Ok(json) = policy.to_json() else {
        return found;
    };
    let clauses = json.get("conditions").and_then(|c| c.as_array());
    for clause in clauses.into_iter().flatten() {
        let Some(body) = clause.get("body") else {
            continue;
        };
        match clause.get("kind").and_then(|k| k.as_str()) {
            Some("when") => conjuncts(body, &mut found),
            Some("unless") => found.extend(condition(body).map(Condition::negate)),
            _ => {}
        }
    }
    found
}

fn conjuncts(expr: &serde_json::Value, found: &mut Vec<Condition>) {
    match expr.get("&&") {
        Some(and) => {
            if let (Some(left), Some(right)) = (and.get("left"), and.get("right")) {
                conjuncts(left, found);
                conjuncts(right, found);
            }
        }
        None => found.extend(condition(expr)),
    }
}

/// One test of a policy's JSON form, when it is one `Condition` speaks of.
fn condition(expr: &serde_json::Value) -> Option<Condition> {
    let operands = |op: &str| {
        let e = expr.get(op)?;
        Some((e.get("left")?, e.get("right")?))
    };
    if let Some(not) = expr.get("!") {
        return condition(not.get("arg")?).map(Condition::negate);
    }
    if let Some(has) = expr.get("has") {
        let bit = match (
            attribute_path(has.get("left")?)?.as_slice(),
            has.get("attr")?.as_str()?,
        ) {
            (["resource"], "participant") => Bit::HasParticipant,
            (["resource"], "owner") => Bit::HasOwner,
            (["principal"], "purpose") => Bit::HasPurpose,
            (["principal"], "acting_through") => Bit::ActingThrough,
            _ => return None,
        };
        return Some(Condition::Bit(bit, true));
    }
    if let Some(path) = attribute_path(expr) {
        let bit = match path.as_slice() {
            ["context", "internal_only"] => Bit::InternalOnly,
            ["context", "narrowed_list"] => Bit::NarrowedList,
            ["context", "link_allows"] => Bit::LinkAllows,
            ["context", "consent", "decided"] => Bit::ConsentDecided,
            ["context", "consent", "permit"] => Bit::ConsentPermit,
            ["context", "emergency", "reason_given"] => Bit::EmergencyReason,
            _ => return None,
        };
        return Some(Condition::Bit(bit, true));
    }
    for (op, member) in [("==", true), ("!=", false)] {
        if let Some((left, right)) = operands(op) {
            let code = match (is_category(left), is_category(right)) {
                (true, false) => string(right)?,
                (false, true) => string(left)?,
                _ => return None,
            };
            return Some(Condition::Category(vec![code], member));
        }
    }
    if let Some((set, element)) = operands("contains") {
        if !is_category(element) {
            return None;
        }
        let codes = set.get("Set")?.as_array()?;
        let codes = codes.iter().map(string).collect::<Option<Vec<_>>>()?;
        return Some(Condition::Category(codes, true));
    }
    if let Some((left, right)) = operands("||") {
        return match (condition(left)?, condition(right)?) {
            (Condition::Category(mut a, true), Condition::Category(b, true)) => {
                a.extend(b);
                Some(Condition::Category(a, true))
            }
            _ => None,
        };
    }
    None
}

/// `["resource", "participant"]` for `resource.participant`; `None` for anything but a
/// variable and attribute accesses.
fn attribute_path(expr: &serde_json::Value) -> Option<Vec<&str>> {
    if let Some(var) = expr.get("Var") {
        return Some(vec![var.as_str()?]);
    }
    let access = expr.get(".")?;
    let mut path = attribute_path(access.get("left")?)?;
    path.push(access.get("attr")?.as_str()?);
    Some(path)
}

fn is_category(expr: &serde_json::Value) -> bool {
    attribute_path(expr).is_some_and(|p| p == ["resource", "category"])
}

fn string(expr: &serde_json::Value) -> Option<String> {
    expr.get("Value")?.as_str().map(str::to_owned)
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
