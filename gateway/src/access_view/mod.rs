//! The access view: the facts a decision needs, kept current from the change feeds.
//!
//! The gateway decides every call from facts held in its own memory — status, home
//! municipality, care team, FACT boards, consents and restrictions per participant — so a
//! decision costs no network hop. The facts come from the participants, consent and board
//! services' change feeds ([`follow`] keeps one stream per feed), applied strictly in feed
//! order and idempotently by sequence, so a resumed or replayed stream changes nothing twice.
//!
//! **Fail closed.** Each feed records how current it is known to be: a heartbeat says "caught
//! up now", a change says "complete up to when this change was recorded". When any feed
//! has never been current, or was last current longer ago than the configured bound,
//! [`AccessView::facts`] answers [`ViewError::Behind`] instead of facts that may be stale.
//! A change that cannot be read makes its participant's facts fail
//! ([`ViewError::Unreadable`]) until a readable version of the same record arrives, rather
//! than keeping (say) a consent that was revoked in the unreadable version.
//!
//! **Cheap reads.** Facts are kept per participant behind an [`Arc`]; a read takes a shared
//! lock for a map lookup and a reference-count increment. A writer decodes outside the lock
//! and holds it only to swap one participant's facts (copy on write).

mod convert;
mod follow;
pub mod testing;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use samsyn_consent_rule as rule;
use samsyn_proto::common::v1::Change;
use tokio::sync::watch;

pub(crate) use convert::category as rule_category;
pub use follow::{FeedChannels, FollowSettings, Follower, follow};

/// A change feed the view follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedName {
    /// The participants service: participants and their care teams.
    Participants,
    /// The consent service: consents and restrictions.
    Consent,
    /// The board service: which FACT team's board each participant is on.
    Board,
}

impl FeedName {
    /// Every feed the view follows.
    pub const ALL: [FeedName; 3] = [FeedName::Participants, FeedName::Consent, FeedName::Board];

    /// The feed's name in logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedName::Participants => "participants",
            FeedName::Consent => "consent",
            FeedName::Board => "board",
        }
    }

    fn index(self) -> usize {
        match self {
            FeedName::Participants => 0,
            FeedName::Consent => 1,
            FeedName::Board => 2,
        }
    }
}

impl std::fmt::Display for FeedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the view cannot answer (or did not apply a change).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The feed has never caught up, or was last known current longer ago than the bound.
    #[error("access view is behind on the {feed} feed")]
    Behind {
        /// The feed that is behind.
        feed: FeedName,
    },
    /// A change about this participant could not be read; their facts are withheld until a
    /// readable version of the same record arrives.
    #[error("access view holds an unreadable {feed} change for the participant")]
    Unreadable {
        /// The feed the unreadable change came from.
        feed: FeedName,
    },
    /// The change could not be read; it was counted (the cursor moved past it) and the
    /// participant it names, if any, is withheld.
    #[error("unreadable {feed} change at sequence {sequence}")]
    Malformed {
        /// The feed.
        feed: FeedName,
        /// The change's sequence.
        sequence: u64,
    },
    /// An update failed halfway (a panic); the view no longer answers.
    #[error("access view is broken")]
    Broken,
    /// What was waited for was not applied in time.
    #[error("timed out waiting for the {feed} feed")]
    Timeout {
        /// The feed waited on.
        feed: FeedName,
    },
}

/// Where a participant stands in the programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantStatus {
    /// Referred; the joint review has not decided yet.
    Referred,
    /// The joint review accepted the referral; enrolment awaits consent.
    Accepted,
    /// The joint review declined the referral.
    Declined,
    /// Enrolled: taking part.
    Enrolled,
    /// Participation ended.
    Discharged,
}

impl ParticipantStatus {
    /// The stable text code (for policy attributes).
    pub fn code(self) -> &'static str {
        match self {
            ParticipantStatus::Referred => "referred",
            ParticipantStatus::Accepted => "accepted",
            ParticipantStatus::Declined => "declined",
            ParticipantStatus::Enrolled => "enrolled",
            ParticipantStatus::Discharged => "discharged",
        }
    }
}

/// Which kind of principal an organisation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganisationKind {
    /// A region (health care).
    Region,
    /// A municipality (social services).
    Municipality,
    /// Another actor.
    Other,
}

impl OrganisationKind {
    /// The stable text code (for policy attributes).
    pub fn code(self) -> &'static str {
        match self {
            OrganisationKind::Region => "region",
            OrganisationKind::Municipality => "municipality",
            OrganisationKind::Other => "other",
        }
    }
}

/// Main or deputy coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorRank {
    /// The main coordinator.
    Main,
    /// The deputy.
    Deputy,
}

/// A care-team member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CareRole {
    /// Case manager (primärkontakt).
    CaseManager,
    /// Physician.
    Physician,
    /// Nurse.
    Nurse,
    /// Psychologist.
    Psychologist,
    /// Social worker (socialsekreterare).
    SocialWorker,
    /// Needs assessor (biståndshandläggare).
    NeedsAssessor,
    /// Housing-support worker (boendestödjare).
    HousingSupportWorker,
    /// Peer support specialist (brukarspecialist).
    PeerSupportSpecialist,
    /// IPS specialist.
    IpsSpecialist,
    /// Team leader.
    TeamLeader,
    /// Another role.
    Other,
}

impl CareRole {
    /// The stable text code, as roles are named in tokens and policies.
    pub fn code(self) -> &'static str {
        match self {
            CareRole::CaseManager => "case_manager",
            CareRole::Physician => "physician",
            CareRole::Nurse => "nurse",
            CareRole::Psychologist => "psychologist",
            CareRole::SocialWorker => "social_worker",
            CareRole::NeedsAssessor => "needs_assessor",
            CareRole::HousingSupportWorker => "housing_support_worker",
            CareRole::PeerSupportSpecialist => "peer_support_specialist",
            CareRole::IpsSpecialist => "ips_specialist",
            CareRole::TeamLeader => "team_leader",
            CareRole::Other => "other",
        }
    }
}

/// What an assignment makes a member of staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentRole {
    /// Coordinator (samordnare) for one principal.
    Coordinator {
        /// The principal they coordinate for.
        principal: OrganisationKind,
        /// Main or deputy.
        rank: CoordinatorRank,
    },
    /// Member of the care team in a role.
    CareTeamMember(CareRole),
    /// Fixed care contact (fast vårdkontakt).
    FixedCareContact,
}

/// A member of staff currently assigned to a participant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TeamMember {
    /// The assignment's id.
    pub assignment_id: String,
    /// HSA-style staff id.
    pub staff_id: String,
    /// The organisation they act for.
    pub organisation_id: String,
    /// Their unit, when given.
    pub unit_id: Option<String>,
    /// What the assignment makes them.
    pub role: AssignmentRole,
}

impl TeamMember {
    /// The principal and rank when the assignment is a coordinator's.
    pub fn coordinator(&self) -> Option<(OrganisationKind, CoordinatorRank)> {
        match self.role {
            AssignmentRole::Coordinator { principal, rank } => Some((principal, rank)),
            _ => None,
        }
    }
}

/// What a policy decision needs to know about one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantFacts {
    /// The internal participant id.
    pub participant_id: String,
    /// Where they stand.
    pub status: ParticipantStatus,
    /// The home municipality's code (also its organisation id).
    pub home_municipality: String,
    /// The participant's revision (care-team changes advance it too).
    pub revision: u64,
    /// Current assignments: coordinators, care-team members, fixed care contact.
    pub care_team: Vec<TeamMember>,
    /// FACT teams whose board the participant is on now (taken off: no longer), sorted.
    pub fact_teams: Vec<String>,
    /// Every consent, as the rule sees it, the revoked and voided ones included.
    pub consents: Vec<rule::Consent>,
    /// Every restriction, the revoked ones included.
    pub restrictions: Vec<rule::Restriction>,
}

impl ParticipantFacts {
    /// The current assignments of one member of staff.
    pub fn assignments_of<'a>(&'a self, staff_id: &'a str) -> impl Iterator<Item = &'a TeamMember> {
        self.care_team
            .iter()
            .filter(move |m| m.staff_id == staff_id)
    }

    /// Whether this member of staff is currently assigned to the participant in any way.
    pub fn is_assigned(&self, staff_id: &str) -> bool {
        self.assignments_of(staff_id).next().is_some()
    }

    /// The consent rule's answer for `request` from these consents and restrictions.
    pub fn decide(&self, request: &rule::Request) -> rule::Decision {
        rule::decide(&self.consents, &self.restrictions, request)
    }

    /// Facts of a participant nobody has heard of: no care team, no consents. Decided like
    /// any other, so an unknown id costs what a forbidden one does.
    pub fn placeholder(participant_id: &str) -> Self {
        Self {
            participant_id: participant_id.to_owned(),
            status: ParticipantStatus::Referred,
            home_municipality: String::new(),
            revision: 0,
            care_team: Vec::new(),
            fact_teams: Vec::new(),
            consents: Vec::new(),
            restrictions: Vec::new(),
        }
    }
}

/// One participant in the view.
#[derive(Debug, Clone)]
struct Entry {
    /// The participants feed has described them (consents may arrive first).
    known: bool,
    facts: Arc<ParticipantFacts>,
    /// Revisions of the consents and restrictions held, by record id.
    record_revisions: HashMap<String, u64>,
    /// The board entries the participant is on now: entry id → its team's id.
    on_boards: HashMap<String, String>,
    /// Records whose latest change could not be read: (feed, entity kind, entity id).
    unreadable: BTreeSet<(FeedName, String, String)>,
}

impl Entry {
    fn new(participant_id: &str) -> Self {
        Self {
            known: false,
            facts: Arc::new(ParticipantFacts::placeholder(participant_id)),
            record_revisions: HashMap::new(),
            on_boards: HashMap::new(),
            unreadable: BTreeSet::new(),
        }
    }
}

/// How current one feed is.
#[derive(Debug, Clone, Copy, Default)]
struct FeedState {
    /// The last applied sequence.
    cursor: u64,
    /// The moment (this process's clock) up to which everything the feed had is applied.
    complete_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    feeds: [FeedState; 3],
    participants: HashMap<String, Entry>,
}

impl Inner {
    fn behind(&self, now: Instant, bound: Duration) -> Option<FeedName> {
        FeedName::ALL.into_iter().find(|feed| {
            self.feeds[feed.index()]
                .complete_at
                .is_none_or(|at| now.saturating_duration_since(at) > bound)
        })
    }
}

/// A change decoded outside the lock.
enum Decoded {
    Heartbeat,
    Participant(convert::ParticipantRecord),
    CareTeam(convert::CareTeamRecord),
    Consent(convert::ConsentRecord),
    Restriction(convert::RestrictionRecord),
    BoardEntry(convert::BoardEntryRecord),
    /// A kind the view does not use; the cursor still moves past it.
    Ignored,
    /// Could not be read: withhold the participant it names, if any.
    Unreadable {
        participant_id: Option<String>,
        why: convert::Unreadable,
    },
}

/// Feed entity kinds, as the services write them.
const PARTICIPANT_KIND: &str = "participant";
const CARE_TEAM_KIND: &str = "care_team";
const CONSENT_KIND: &str = "consent";
const RESTRICTION_KIND: &str = "restriction";
const BOARD_ENTRY_KIND: &str = "board_entry";

fn decode(feed: FeedName, change: &Change) -> Decoded {
    if change.change_kind == samsyn_kit::feed::HEARTBEAT {
        return Decoded::Heartbeat;
    }
    let result = match (feed, change.entity_kind.as_str()) {
        (FeedName::Participants, PARTICIPANT_KIND) => {
            convert::participant(&change.payload).map(Decoded::Participant)
        }
        (FeedName::Participants, CARE_TEAM_KIND) => {
            convert::care_team(&change.payload).map(Decoded::CareTeam)
        }
        (FeedName::Consent, CONSENT_KIND) => {
            convert::consent(&change.payload).map(Decoded::Consent)
        }
        (FeedName::Consent, RESTRICTION_KIND) => {
            convert::restriction(&change.payload).map(Decoded::Restriction)
        }
        (FeedName::Board, BOARD_ENTRY_KIND) => {
            convert::board_entry(&change.payload).map(Decoded::BoardEntry)
        }
        _ => Ok(Decoded::Ignored),
    };
    result.unwrap_or_else(|why| Decoded::Unreadable {
        participant_id: change
            .participant_id
            .as_ref()
            .map(|p| p.value.clone())
            .filter(|v| !v.is_empty()),
        why,
    })
}

/// The gateway's access view. Share it behind an [`Arc`].
#[derive(Debug)]
pub struct AccessView {
    inner: RwLock<Inner>,
    /// How long a feed may go without being known current before reads fail.
    max_lag: Duration,
    /// The applied cursor of each feed, for waiters.
    applied: [watch::Sender<u64>; 3],
}

impl AccessView {
    /// An empty view; reads fail with [`ViewError::Behind`] until every feed is current,
    /// and whenever one was last current longer than `max_lag` ago.
    pub fn new(max_lag: Duration) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            max_lag,
            applied: FeedName::ALL.map(|_| watch::Sender::new(0)),
        }
    }

    /// The configured bound.
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// For cursors, lags and waits; [`AccessView::facts`] refuses a poisoned view.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last applied sequence of `feed` (0 before any).
    pub fn cursor(&self, feed: FeedName) -> u64 {
        self.read().feeds[feed.index()].cursor
    }

    /// How long ago `feed` was last known current, as of `now`; `None` if it never was.
    pub fn lag(&self, feed: FeedName, now: Instant) -> Option<Duration> {
        self.read().feeds[feed.index()]
            .complete_at
            .map(|at| now.saturating_duration_since(at))
    }

    /// The facts about one participant as of `now`: `None` when the participants feed has
    /// not described them; an error when a feed is behind or their record is unreadable.
    pub fn facts(
        &self,
        participant_id: &str,
        now: Instant,
    ) -> Result<Option<Arc<ParticipantFacts>>, ViewError> {
        // A writer that panicked may have moved a cursor without applying its change.
        let inner = self.inner.read().map_err(|_| ViewError::Broken)?;
        if let Some(feed) = inner.behind(now, self.max_lag) {
            return Err(ViewError::Behind { feed });
        }
        let Some(entry) = inner.participants.get(participant_id) else {
            return Ok(None);
        };
        if let Some((feed, _, _)) = entry.unreadable.first() {
            return Err(ViewError::Unreadable { feed: *feed });
        }
        Ok(entry.known.then(|| Arc::clone(&entry.facts)))
    }

    /// Whether every feed is current as of `now` (a list about nobody in particular is still
    /// narrowed by the view's facts).
    pub fn ensure_current(&self, now: Instant) -> Result<(), ViewError> {
        let inner = self.inner.read().map_err(|_| ViewError::Broken)?;
        match inner.behind(now, self.max_lag) {
            Some(feed) => Err(ViewError::Behind { feed }),
            None => Ok(()),
        }
    }

    /// A receiver that changes whenever `feed` applies a change: streams re-check what they
    /// have shown.
    pub fn applied(&self, feed: FeedName) -> watch::Receiver<u64> {
        self.applied[feed.index()].subscribe()
    }

    /// Applies one change (or heartbeat) of `feed`. A change at or below the applied cursor
    /// is ignored, so replays are harmless; changes must come in feed order.
    pub fn apply(&self, feed: FeedName, change: &Change) -> Result<(), ViewError> {
        self.apply_at(feed, change, Instant::now(), Utc::now())
    }

    /// [`AccessView::apply`] with the moment of receipt on both clocks (tests pass theirs).
    fn apply_at(
        &self,
        feed: FeedName,
        change: &Change,
        received: Instant,
        wall_now: DateTime<Utc>,
    ) -> Result<(), ViewError> {
        let decoded = decode(feed, change);
        let why = match &decoded {
            Decoded::Unreadable { why, .. } => Some(*why),
            _ => None,
        };
        let sequence = change.sequence;
        let result;
        {
            let mut inner = self.write();
            let state = &mut inner.feeds[feed.index()];
            if let Decoded::Heartbeat = decoded {
                // A heartbeat says: caught up to `sequence`. It proves the view current only
                // when the view has applied exactly that far.
                if sequence == state.cursor {
                    state.complete_at =
                        Some(state.complete_at.map_or(received, |c| c.max(received)));
                } else {
                    tracing::warn!(
                        feed = feed.as_str(),
                        heartbeat = sequence,
                        cursor = state.cursor,
                        "heartbeat does not match the applied cursor"
                    );
                }
                return Ok(());
            }
            if sequence <= state.cursor {
                return Ok(());
            }
            state.cursor = sequence;
            // Everything up to this change is applied: current as of when it was recorded.
            // A change from the future (clocks apart) counts as recorded on receipt.
            if let Some(recorded) = change
                .recorded_at
                .as_ref()
                .and_then(samsyn_kit::time::from_timestamp)
            {
                let age = (wall_now - recorded).to_std().unwrap_or(Duration::ZERO);
                if let Some(at) = received.checked_sub(age) {
                    state.complete_at = Some(state.complete_at.map_or(at, |c| c.max(at)));
                }
            }
            result = apply_record(&mut inner, feed, change, decoded);
        }
        self.applied[feed.index()].send_replace(sequence);
        if let Some(why) = why {
            tracing::error!(
                feed = feed.as_str(),
                sequence,
                entity_kind = %change.entity_kind,
                reason = %why,
                "unreadable change; its participant is withheld"
            );
        }
        result
    }

    /// Waits until `feed` has applied `sequence` (or beyond).
    pub async fn wait_for(
        &self,
        feed: FeedName,
        sequence: u64,
        timeout: Duration,
    ) -> Result<(), ViewError> {
        self.wait_until(feed, timeout, |inner| {
            inner.feeds[feed.index()].cursor >= sequence
        })
        .await
    }

    /// Waits until the view holds the participant at `revision` or later (care-team changes
    /// advance it too): what the gateway uses after forwarding a participants write.
    pub async fn wait_for_participant(
        &self,
        participant_id: &str,
        revision: u64,
        timeout: Duration,
    ) -> Result<(), ViewError> {
        self.wait_until(FeedName::Participants, timeout, |inner| {
            inner
                .participants
                .get(participant_id)
                .is_some_and(|e| e.known && e.facts.revision >= revision)
        })
        .await
    }

    /// Waits until the view holds consent or restriction `record_id` of the participant at
    /// `revision` or later: what the gateway uses after forwarding a consent write (a
    /// revocation is then in force for the very next call).
    pub async fn wait_for_record(
        &self,
        participant_id: &str,
        record_id: &str,
        revision: u64,
        timeout: Duration,
    ) -> Result<(), ViewError> {
        self.wait_until(FeedName::Consent, timeout, |inner| {
            inner
                .participants
                .get(participant_id)
                .and_then(|e| e.record_revisions.get(record_id))
                .is_some_and(|r| *r >= revision)
        })
        .await
    }

    async fn wait_until(
        &self,
        feed: FeedName,
        timeout: Duration,
        done: impl Fn(&Inner) -> bool,
    ) -> Result<(), ViewError> {
        let mut applied = self.applied[feed.index()].subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Marked seen before the check, so a change applied after it wakes the wait.
            applied.borrow_and_update();
            if done(&self.read()) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(ViewError::Timeout { feed }),
            }
        }
    }
}

/// Applies a decoded change (already past the cursor check) to its participant's entry.
fn apply_record(
    inner: &mut Inner,
    feed: FeedName,
    change: &Change,
    decoded: Decoded,
) -> Result<(), ViewError> {
    let key = (feed, change.entity_kind.clone(), change.entity_id.clone());
    match decoded {
        Decoded::Heartbeat | Decoded::Ignored => Ok(()),
        Decoded::Unreadable { participant_id, .. } => {
            if let Some(id) = participant_id {
                entry(inner, &id).unreadable.insert(key);
            }
            Err(ViewError::Malformed {
                feed,
                sequence: change.sequence,
            })
        }
        Decoded::Participant(record) => {
            let e = entry(inner, &record.participant_id);
            e.unreadable.remove(&key);
            e.known = true;
            let facts = Arc::make_mut(&mut e.facts);
            facts.status = record.status;
            facts.home_municipality = record.home_municipality;
            facts.revision = facts.revision.max(record.revision);
            Ok(())
        }
        Decoded::CareTeam(record) => {
            let e = entry(inner, &record.participant_id);
            e.unreadable.remove(&key);
            let facts = Arc::make_mut(&mut e.facts);
            // The change carries the whole current team: replace, never merge.
            facts.care_team = record.members;
            facts.revision = facts.revision.max(record.revision);
            Ok(())
        }
        Decoded::Consent(record) => {
            let e = entry(inner, &record.participant_id);
            e.unreadable.remove(&key);
            e.record_revisions
                .insert(record.consent.id.clone(), record.revision);
            let consents = &mut Arc::make_mut(&mut e.facts).consents;
            match consents.iter_mut().find(|c| c.id == record.consent.id) {
                Some(held) => *held = record.consent,
                None => consents.push(record.consent),
            }
            Ok(())
        }
        Decoded::Restriction(record) => {
            let e = entry(inner, &record.participant_id);
            e.unreadable.remove(&key);
            e.record_revisions
                .insert(record.restriction.id.clone(), record.revision);
            let restrictions = &mut Arc::make_mut(&mut e.facts).restrictions;
            match restrictions
                .iter_mut()
                .find(|r| r.id == record.restriction.id)
            {
                Some(held) => *held = record.restriction,
                None => restrictions.push(record.restriction),
            }
            Ok(())
        }
        Decoded::BoardEntry(record) => {
            let e = entry(inner, &record.participant_id);
            e.unreadable.remove(&key);
            if record.on_board {
                e.on_boards.insert(record.entry_id, record.team_id);
            } else {
                e.on_boards.remove(&record.entry_id);
            }
            let mut teams: Vec<String> = e.on_boards.values().cloned().collect();
            teams.sort_unstable();
            teams.dedup();
            // Most entry changes (a status, an action) leave the teams as they were.
            if e.facts.fact_teams != teams {
                Arc::make_mut(&mut e.facts).fact_teams = teams;
            }
            Ok(())
        }
    }
}

fn entry<'a>(inner: &'a mut Inner, participant_id: &str) -> &'a mut Entry {
    inner
        .participants
        .entry(participant_id.to_owned())
        .or_insert_with(|| Entry::new(participant_id))
}
