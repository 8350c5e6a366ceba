//! Pruning: the policies that cannot apply to a request's features, found once per
//! feature combination by reading each policy's conditions from Cedar's JSON form.

use std::collections::HashMap;

use cedar_policy::{EntityTypeName, EntityUid, PolicySet};
use samsyn_proto::common::v1::DataCategory;

use super::request::link_allows;
use super::{Action, DecisionInput, PolicyError, Types, category_code};
use crate::auth::PrincipalKind;

pub(super) const KINDS: [PrincipalKind; 3] = [
    PrincipalKind::Staff,
    PrincipalKind::System,
    PrincipalKind::Participant,
];

pub(super) const ACTIONS: [Action; 2] = [Action::Read, Action::Write];

pub(super) const CATEGORIES: [DataCategory; 11] = [
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
pub(super) enum Bit {
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
pub(super) const BITS: usize = 10;

/// What a request is, as far as policies are pruned by it: the caller's kind, the action,
/// the data category and the `Bit`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Features {
    kind: PrincipalKind,
    action: Action,
    category: DataCategory,
    bits: usize,
}

impl Features {
    pub(super) fn of(input: &DecisionInput<'_>) -> Self {
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

    pub(super) fn has(&self, bit: Bit) -> bool {
        self.bits & (1 << bit as usize) != 0
    }

    /// A dense index: every request maps to one below `Features::COUNT`.
    pub(super) fn index(&self) -> usize {
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
pub(super) enum Condition {
    /// The bit is set (`true`) or clear (`false`).
    Bit(Bit, bool),
    /// The category is one of these codes (`true`) or none of them (`false`).
    Category(Vec<String>, bool),
}

impl Condition {
    pub(super) fn negate(self) -> Self {
        match self {
            Self::Bit(bit, set) => Self::Bit(bit, !set),
            Self::Category(codes, member) => Self::Category(codes, !member),
        }
    }

    pub(super) fn holds(&self, features: &Features) -> bool {
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
pub(super) fn prune(
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
pub(super) fn scope_may_match(
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
pub(super) fn conditions(policy: &cedar_policy::Policy) -> Vec<Condition> {
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

pub(super) fn conjuncts(expr: &serde_json::Value, found: &mut Vec<Condition>) {
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
pub(super) fn condition(expr: &serde_json::Value) -> Option<Condition> {
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
pub(super) fn attribute_path(expr: &serde_json::Value) -> Option<Vec<&str>> {
    if let Some(var) = expr.get("Var") {
        return Some(vec![var.as_str()?]);
    }
    let access = expr.get(".")?;
    let mut path = attribute_path(access.get("left")?)?;
    path.push(access.get("attr")?.as_str()?);
    Some(path)
}

pub(super) fn is_category(expr: &serde_json::Value) -> bool {
    attribute_path(expr).is_some_and(|p| p == ["resource", "category"])
}

pub(super) fn string(expr: &serde_json::Value) -> Option<String> {
    expr.get("Value")?.as_str().map(str::to_owned)
}
