//! The Cedar request of one decision: the entities and the context, built from the facts.

use std::collections::HashSet;
use std::sync::Arc;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};
use cedar_policy_core::ast;
use cedar_policy_core::entities::{NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;

use super::memo::{care_organisations, member_of};
use super::{DecisionInput, PolicyEngine, Resource, category_code, err};
use crate::access_view::ParticipantFacts;
use crate::auth::{Principal, PrincipalKind};

/// One attribute's value as the facts give it, before Cedar holds it.
enum Attr {
    String(String),
    Strings(Vec<String>),
    Entity(EntityUid),
}

impl Attr {
    fn expression(self) -> RestrictedExpression {
        match self {
            Attr::String(s) => RestrictedExpression::new_string(s),
            Attr::Strings(v) => {
                RestrictedExpression::new_set(v.into_iter().map(RestrictedExpression::new_string))
            }
            Attr::Entity(uid) => RestrictedExpression::new_entity_uid(uid),
        }
    }

    fn value(self) -> ast::PartialValue {
        match self {
            Attr::String(s) => ast::Value::from(s).into(),
            Attr::Strings(v) => {
                ast::Value::set_of_lits(v.into_iter().map(ast::Literal::from), None).into()
            }
            Attr::Entity(uid) => ast::Value::from(ast::EntityUID::from(uid)).into(),
        }
    }
}

/// An entity of `attributes` and `parents`. Checked, Cedar evaluates each attribute as an
/// expression against the schema's extensions; otherwise the values are given as they are,
/// which is what evaluating such literals yields (the tests compare the two) at a fraction
/// of the cost.
fn entity(
    uid: EntityUid,
    attributes: Vec<(&'static str, Attr)>,
    parents: HashSet<EntityUid>,
    checked: bool,
) -> Result<ast::Entity, String> {
    if checked {
        let attributes = attributes
            .into_iter()
            .map(|(name, attr)| (name.to_owned(), attr.expression()));
        return Entity::new(uid, attributes.collect(), parents)
            .map(|entity| entity.as_ref().clone())
            .map_err(err);
    }
    Ok(ast::Entity::new_with_attr_partial_value(
        uid.into(),
        attributes
            .into_iter()
            .map(|(name, attr)| (name.into(), attr.value())),
        HashSet::new(),
        parents.into_iter().map(Into::into).collect(),
        [],
    ))
}

/// The store of `entities`. Checked, against the schema and with the transitive closure
/// computed. Otherwise the hierarchy is taken as closed: the only parent any entity here
/// has is a participant's care team, which is never an entity itself, so there is nothing
/// to close.
fn entity_store(entities: Vec<ast::Entity>, schema: Option<&Schema>) -> Result<Entities, String> {
    match schema {
        Some(schema) => {
            Entities::from_entities(entities.into_iter().map(Entity::from), Some(schema))
                .map_err(err)
        }
        None => cedar_policy_core::entities::Entities::from_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::none(),
        )
        .map(Entities::from)
        .map_err(err),
    }
}

impl PolicyEngine {
    /// The principal's uid and the entities of one request.
    ///
    /// Built whole each time: with the values given rather than evaluated, the entities cost
    /// less to build than to look up one by one, and the whole store is kept by the caller.
    pub(super) fn store(
        &self,
        input: &DecisionInput<'_>,
        schema: Option<&Schema>,
    ) -> Result<(EntityUid, Arc<Entities>), String> {
        let checked = schema.is_some();
        let mut entities = Vec::with_capacity(3);
        let principal =
            self.principal_entity(input.principal, &input.resource, checked, &mut entities)?;
        let participant = match input.resource.participant {
            Some(facts) => {
                // A participant acting for themself has no entity of its own (see
                // `principal_entity`), so this is the only entity with this uid.
                entities.push(self.participant_entity(facts, checked)?);
                Some(facts.participant_id.as_str())
            }
            None => None,
        };
        let category = category_code(input.call.category);
        let owner = input.resource.owner_organisation;
        entities.push({
            let mut data = Vec::with_capacity(3);
            data.push(("category", Attr::String(category.to_owned())));
            if let Some(owner) = owner {
                data.push(("owner", Attr::String(owner.to_owned())));
            }
            if let Some(id) = participant {
                data.push((
                    "participant",
                    Attr::Entity(self.uid(&self.types.participant, id)),
                ));
            }
            entity(self.data.clone(), data, HashSet::new(), checked)?
        });
        Ok((principal, Arc::new(entity_store(entities, schema)?)))
    }

    pub(super) fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    pub(super) fn principal_entity(
        &self,
        principal: &Principal,
        resource: &Resource<'_>,
        checked: bool,
        entities: &mut Vec<ast::Entity>,
    ) -> Result<EntityUid, String> {
        let member_of = member_of(principal, resource);
        let organisation = || {
            principal
                .organisation
                .clone()
                .ok_or_else(|| "principal without organisation".to_owned())
        };
        match principal.kind {
            PrincipalKind::Staff => {
                let uid = self.uid(&self.types.staff, &principal.id);
                let mut attrs = vec![
                    ("organisation", Attr::String(organisation()?)),
                    ("roles", Attr::Strings(principal.roles.clone())),
                    ("teams", Attr::Strings(principal.teams.clone())),
                ];
                let optional = [
                    ("unit", &principal.unit),
                    ("purpose", &principal.purpose),
                    ("acting_through", &principal.acting_through),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        attrs.push((name, Attr::String(value.clone())));
                    }
                }
                let mut parents = HashSet::new();
                if let Some(facts) = member_of {
                    parents.insert(self.uid(&self.types.care_team, &facts.participant_id));
                }
                entities.push(entity(uid.clone(), attrs, parents, checked)?);
                Ok(uid)
            }
            PrincipalKind::System => {
                let uid = self.uid(&self.types.system, &principal.id);
                let attrs = vec![
                    ("organisation", Attr::String(organisation()?)),
                    ("roles", Attr::Strings(principal.roles.clone())),
                ];
                entities.push(entity(uid.clone(), attrs, HashSet::new(), checked)?);
                Ok(uid)
            }
            // A participant principal is only ever compared with the data's participant, so
            // it needs no attributes of its own.
            PrincipalKind::Participant => Ok(self.uid(&self.types.participant, &principal.id)),
        }
    }

    pub(super) fn participant_entity(
        &self,
        facts: &ParticipantFacts,
        checked: bool,
    ) -> Result<ast::Entity, String> {
        let uid = self.uid(&self.types.participant, &facts.participant_id);
        let mut attrs = vec![
            (
                "care_team",
                Attr::Entity(self.uid(&self.types.care_team, &facts.participant_id)),
            ),
            ("fact_teams", Attr::Strings(facts.fact_teams.clone())),
            (
                "care_organisations",
                Attr::Strings(
                    care_organisations(facts)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                ),
            ),
            ("status", Attr::String(facts.status.code().to_owned())),
        ];
        if !facts.home_municipality.is_empty() {
            attrs.push((
                "home_municipality",
                Attr::String(facts.home_municipality.clone()),
            ));
        }
        entity(uid, attrs, HashSet::new(), checked)
    }

    pub(super) fn context(&self, input: &DecisionInput<'_>) -> [(String, RestrictedExpression); 8] {
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

/// `context.emergency.age_seconds`.
pub(super) fn emergency_age(input: &DecisionInput<'_>) -> i64 {
    input
        .emergency
        .declared_at
        .map_or(0, |declared| (input.at - declared).num_seconds())
}

/// What `context.link_allows` says: only a system, or a person acting through one, has a
/// link.
pub(super) fn link_allows(input: &DecisionInput<'_>) -> bool {
    (input.principal.kind == PrincipalKind::System || input.principal.acting_through.is_some())
        && input.call.link_allows
}
