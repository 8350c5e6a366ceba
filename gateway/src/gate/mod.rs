//! Deciding one call: who calls, what the call touches, what the access view knows about the
//! participant, what the consent rule says, and what the policies make of it all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use samsyn_consent_rule as rule;
use samsyn_proto::MethodAccess;
use samsyn_proto::common::v1::DataCategory;

use crate::access_view::{AccessView, ParticipantFacts, ViewError};
use crate::auth::{Principal, PrincipalKind};
use crate::describe::RequestedAct;
use crate::links::Links;
use crate::policy::{
    self, Act, Action, Decision, DecisionInput, Emergency, PolicyEngine, Resource,
};
use crate::settings::{AccessSettings, Owner};

/// How long an emergency declaration is remembered; the policies decide how long it counts.
pub(crate) const EMERGENCY_MEMORY: chrono::Duration = chrono::Duration::hours(24);

/// A decision about one call or one row, with what the audit trail records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The policy decision.
    pub decision: Decision,
    /// The organisation that owns the data, when one does.
    pub owner: Option<String>,
}

impl Verdict {
    fn refused(reason: &str) -> Self {
        Self {
            decision: Decision {
                allowed: false,
                policies: vec![reason.to_owned()],
                ..Decision::default()
            },
            owner: None,
        }
    }
}

/// Why a call cannot be decided at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The access view cannot vouch for its facts; decisions fail closed.
    #[error(transparent)]
    View(#[from] ViewError),
}

/// The decision maker: policies over facts from the access view.
#[derive(Debug)]
pub struct Gate {
    engine: PolicyEngine,
    view: Arc<AccessView>,
    links: Links,
    settings: AccessSettings,
    /// First emergency declaration per (staff, participant): the policies bound how long an
    /// emergency lasts from its declaration, so a caller cannot renew it by asking again.
    emergencies: Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

impl Gate {
    /// A gate deciding with `engine` over `view`.
    pub fn new(
        engine: PolicyEngine,
        view: Arc<AccessView>,
        links: Links,
        settings: AccessSettings,
    ) -> Self {
        Self {
            engine,
            view,
            links,
            settings,
            emergencies: Mutex::new(HashMap::new()),
        }
    }

    /// The configured links.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The access view the gate decides over.
    pub fn view(&self) -> &Arc<AccessView> {
        &self.view
    }

    /// The settings the gate decides with.
    pub fn settings(&self) -> &AccessSettings {
        &self.settings
    }

    /// Decides a call by `principal` to `access`, about `participant_id` if the call names
    /// one, with an emergency reason if one was given.
    pub fn decide_call(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        participant_id: Option<&str>,
        emergency_reason: bool,
    ) -> Result<Verdict, GateError> {
        self.decide_act(
            principal,
            access,
            participant_id,
            emergency_reason,
            &RequestedAct::default(),
        )
    }

    /// Decides a call as [`Gate::decide_call`], with what its request says about consents
    /// and restrictions (a disclosure recorded, a restriction lifted).
    pub fn decide_act(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        participant_id: Option<&str>,
        emergency_reason: bool,
        requested: &RequestedAct,
    ) -> Result<Verdict, GateError> {
        let now = Instant::now();
        let at = Utc::now();
        // Unknown to the view: decided on empty facts like any other participant, then
        // refused exactly like a record one may not see, so neither the answer nor its time
        // tells whether the participant exists.
        let mut unknown = false;
        let facts = match participant_id {
            Some(id) => match self.view.facts(id, now)? {
                Some(facts) => Some(facts),
                None => {
                    unknown = true;
                    Some(Arc::new(ParticipantFacts::placeholder(id)))
                }
            },
            None => {
                // A call about nobody still needs a current view: a list is narrowed by it.
                if access.narrowed_list {
                    self.view.ensure_current(now)?;
                }
                None
            }
        };
        let key = |p: &Principal, f: &ParticipantFacts| (p.id.clone(), f.participant_id.clone());
        let declared_at = match (&facts, emergency_reason) {
            (Some(facts), true) if !unknown => self.emergency_declared(&key(principal, facts), at),
            _ => None,
        };
        // The restriction a call lifts or revokes, as the view holds it: whom it blocks and
        // whose data it protects. Unknown to the view, neither is known and the consent
        // service holds the same rule.
        let restriction = requested
            .restriction_id
            .as_deref()
            .and_then(|id| facts.as_deref()?.restrictions.iter().find(|r| r.id == id));
        let act = Act {
            disclosing_organisation: requested.disclosing_organisation.clone(),
            receiving_organisation: requested.receiving_organisation.clone(),
            restricted_organisation: restriction.map(|r| r.organisation.clone()),
            protected_owner: restriction.and_then(|r| r.owner_organisation.clone()),
        };
        let verdict = self.decide(
            principal,
            access,
            facts.as_deref(),
            access.narrowed_list,
            act,
            Emergency {
                reason_given: emergency_reason,
                declared_at,
            },
            at,
        );
        if unknown {
            return Ok(Verdict::refused("unknown-participant"));
        }
        if verdict.decision.allowed
            && verdict.decision.emergency
            && declared_at.is_none()
            && let Some(facts) = &facts
        {
            self.lock_emergencies()
                .entry(key(principal, facts))
                .or_insert(at);
        }
        Ok(verdict)
    }

    /// The organisations with a stake in these participants' data: the region, and each
    /// one's home municipality as the view knows it.
    pub fn stakeholders<'a>(&self, participants: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut stake = std::collections::BTreeSet::new();
        let now = Instant::now();
        for participant in participants {
            stake.insert(self.settings.region_organisation.clone());
            if let Ok(Some(facts)) = self.view.facts(participant, now)
                && !facts.home_municipality.is_empty()
            {
                stake.insert(facts.home_municipality.clone());
            }
        }
        stake.into_iter().collect()
    }

    /// Decides whether `principal` may see one row about `participant_id` of a list
    /// returned by `access`. Rows never ride on an emergency: that is for one participant.
    pub fn decide_row(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        participant_id: &str,
    ) -> Result<Verdict, GateError> {
        let Some(facts) = self.view.facts(participant_id, Instant::now())? else {
            return Ok(Verdict::refused("unknown-participant"));
        };
        Ok(self.decide(
            principal,
            access,
            Some(&facts),
            false,
            Act::default(),
            Emergency::default(),
            Utc::now(),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        facts: Option<&ParticipantFacts>,
        narrowed_list: bool,
        act: Act,
        emergency: Emergency,
        at: DateTime<Utc>,
    ) -> Verdict {
        let category = access.category();
        let action = Action::of(access);
        let owner = facts.and_then(|facts| self.owner(category, facts));
        // Systems are asked about as their organisation: no unit, no member of staff, so a
        // consent limited to either does not cover them.
        let consent = match (facts, &owner, action, principal.kind) {
            (
                Some(facts),
                Some(owner),
                Action::Read,
                PrincipalKind::Staff | PrincipalKind::System,
            ) => crate::access_view::rule_category(category as i32).map(|category| {
                facts.decide(&rule::Request {
                    reader_organisation: principal.organisation.clone().unwrap_or_default(),
                    reader_unit: principal.unit.clone(),
                    reader_staff: (principal.kind == PrincipalKind::Staff)
                        .then(|| principal.id.clone()),
                    owner_organisation: owner.clone(),
                    category,
                    purpose: purpose(principal.purpose.as_deref()),
                    at,
                    emergency: false,
                })
            }),
            _ => None,
        };
        let call = policy::Call {
            rpc: access.path.clone(),
            action,
            category,
            internal_only: access.internal_only,
            narrowed_list,
            link_allows: match (principal.kind, &principal.acting_through) {
                (PrincipalKind::System, _) => self.links.allows(&principal.id, &access.path),
                (_, Some(link)) => self.links.allows(link, &access.path),
                _ => false,
            },
            programme_member: principal
                .organisation
                .as_deref()
                .is_some_and(|o| self.settings.in_programme(o)),
            act,
        };
        let decision = self.engine.decide(&DecisionInput {
            principal,
            call: &call,
            resource: Resource {
                owner_organisation: owner.as_deref(),
                participant: facts,
            },
            consent: consent.as_ref(),
            emergency,
            at,
        });
        Verdict { decision, owner }
    }

    /// The organisation that owns `category` of this participant's data; `None` when both
    /// principals keep it together.
    fn owner(&self, category: DataCategory, facts: &ParticipantFacts) -> Option<String> {
        match self.settings.owners.of(category) {
            Owner::Joint => None,
            Owner::Region => Some(self.settings.region_organisation.clone()),
            Owner::HomeMunicipality => Some(facts.home_municipality.clone()),
        }
    }

    /// When `staff` first declared an emergency for `participant`, as this gateway knows it.
    pub fn emergency_declared_at(&self, staff: &str, participant: &str) -> Option<DateTime<Utc>> {
        self.emergency_declared(&(staff.to_owned(), participant.to_owned()), Utc::now())
    }

    /// Learns first emergency declarations other gateways recorded: the earliest time counts.
    pub fn learn_emergencies(
        &self,
        declared: impl IntoIterator<Item = ((String, String), DateTime<Utc>)>,
    ) {
        let mut emergencies = self.lock_emergencies();
        for (key, at) in declared {
            let first = emergencies.entry(key).or_insert(at);
            if at < *first {
                *first = at;
            }
        }
    }

    fn emergency_declared(
        &self,
        key: &(String, String),
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut emergencies = self.lock_emergencies();
        emergencies.retain(|_, declared| at - *declared < EMERGENCY_MEMORY);
        emergencies.get(key).copied()
    }

    fn lock_emergencies(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), DateTime<Utc>>> {
        self.emergencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The consent rule's purpose for an assignment purpose; research is the only one that needs
/// more than an information-sharing consent.
fn purpose(purpose: Option<&str>) -> rule::Purpose {
    match purpose {
        Some("research") => rule::Purpose::Research,
        _ => rule::Purpose::Care,
    }
}

#[cfg(test)]
pub(crate) mod tests;
