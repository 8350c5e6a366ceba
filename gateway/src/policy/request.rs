//! The Cedar request of one decision: the entities and the context, built from the facts.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};

use super::memo::{care_organisations, data_key, member_of, participant_key, principal_key};
use super::{DecisionInput, PolicyEngine, Resource, category_code, err};
use crate::access_view::ParticipantFacts;
use crate::auth::{Principal, PrincipalKind};

impl PolicyEngine {
    /// The principal's uid and the entities of one request.
    pub(super) fn store(
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

    pub(super) fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    pub(super) fn principal_entity(
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

    pub(super) fn participant_entity(&self, facts: &ParticipantFacts) -> Result<Entity, String> {
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
