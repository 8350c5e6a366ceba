//! Memoised request parts, keyed by an exact encoding of the facts they were built from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::request::{emergency_age, link_allows};
use super::{DecisionInput, Resource, category_code};
use crate::access_view::ParticipantFacts;
use crate::auth::{Principal, PrincipalKind};

/// How many values a `Memo` keeps before it starts over.
pub(super) const MEMO_CAPACITY: usize = 4096;

/// Values built from request facts, kept by an exact encoding of the facts they were built
/// from (see `Key`), so that facts that change make a new key rather than a stale hit.
/// Shared by the clones of an engine; bounded by `MEMO_CAPACITY`.
#[derive(Clone)]
pub(super) struct Memo<V> {
    map: Arc<Mutex<Table<V>>>,
}

type Table<V> = HashMap<Key, V>;

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self {
            map: Arc::new(Mutex::new(Table::default())),
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
    pub(super) fn get_or_build(
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
        let mut evicted = None;
        if let Ok(mut map) = self.map.lock() {
            // Full: one entry goes, whichever the table yields first (the hasher's keys are
            // random, so in effect a random one). Emptying the whole table instead would
            // make one unlucky call pay for dropping thousands of entries.
            if map.len() >= MEMO_CAPACITY
                && let Some(old) = map.keys().next().cloned()
            {
                evicted = map.remove(&old);
            }
            map.insert(key, value.clone());
        }
        // Freed after the lock is let go, so other decisions do not wait for it.
        drop(evicted);
        Ok(value)
    }
}

/// An unambiguous encoding of the facts a value is built from: a tag for the kind of value,
/// then each field with its length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key(Vec<u8>);

impl Key {
    pub(super) fn new(tag: u8) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.push(tag);
        Self(bytes)
    }

    pub(super) fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    pub(super) fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(&s.len().to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    pub(super) fn opt(self, s: Option<&str>) -> Self {
        match s {
            Some(s) => self.byte(1).str(s),
            None => self.byte(0),
        }
    }

    pub(super) fn strs(mut self, v: &[String]) -> Self {
        self.0.extend_from_slice(&v.len().to_le_bytes());
        let mut key = self;
        for s in v {
            key = key.str(s);
        }
        key
    }

    pub(super) fn key(mut self, other: &Key) -> Self {
        self.0.extend_from_slice(&other.0.len().to_le_bytes());
        self.0.extend_from_slice(&other.0);
        self
    }

    pub(super) fn long(mut self, n: i64) -> Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
}

/// On the participant's care team: listed with the organisation they act for now. Staff who
/// moved to another organisation do not carry their old team along.
pub(super) fn member_of<'a>(
    principal: &Principal,
    resource: &Resource<'a>,
) -> Option<&'a ParticipantFacts> {
    resource.participant.filter(|facts| {
        principal.kind == PrincipalKind::Staff
            && facts.care_team.iter().any(|m| {
                m.staff_id == principal.id
                    && principal.organisation.as_deref() == Some(m.organisation_id.as_str())
            })
    })
}

/// Everything the principal's entity is built from.
pub(super) fn principal_key(principal: &Principal, member_of: Option<&ParticipantFacts>) -> Key {
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
pub(super) fn participant_key(facts: &ParticipantFacts) -> Key {
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
pub(super) fn care_organisations(facts: &ParticipantFacts) -> std::collections::BTreeSet<&str> {
    facts
        .care_team
        .iter()
        .map(|m| m.organisation_id.as_str())
        .collect()
}

/// Everything the data's entity is built from.
pub(super) fn data_key(category: &str, owner: Option<&str>, participant: Option<&str>) -> Key {
    Key::new(b'd').str(category).opt(owner).opt(participant)
}

/// Everything `PolicyEngine::store` reads.
pub(super) fn store_key(input: &DecisionInput<'_>) -> Key {
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
pub(super) fn context_key(input: &DecisionInput<'_>) -> Key {
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
