//! What the participants handlers need from storage, in domain terms.

use std::future::Future;

use chrono::{DateTime, Utc};
use samsyn_kit::idempotency::IdempotencyKey;

use super::{
    Assignment, AssignmentChange, ConsentReference, KnownConsent, ListFilter, NewReferral,
    Participant, ParticipantId, ParticipantSummary, ParticipantsError, ParticipantsSettings,
    YearCount,
};

/// The outcome of a create call.
#[derive(Debug)]
pub enum Created {
    /// Newly created.
    New(Box<Participant>),
    /// A retry: the encoded first answer.
    Replayed(Vec<u8>),
    /// A referral for a caller who may not learn whether the person is known: the encoded
    /// receipt, the same whatever the referral matched.
    Receipt(Vec<u8>),
}

/// What a participant change did, for the feed.
#[derive(Debug, Clone, Copy)]
pub struct Effect {
    /// The feed's change kind ("enrolled", "discharged").
    pub change_kind: &'static str,
    /// Participation ended: every current assignment ends too.
    pub ends_assignments: bool,
}

/// Storage of participants, referrals and care teams. Every change is one transaction that
/// also appends to the change feed.
pub trait ParticipantRepository: Clone + Send + Sync + 'static {
    /// A participation consent as last taken from the consent feed.
    fn participation_consent(
        &self,
        consent: ConsentReference,
    ) -> impl Future<Output = Result<Option<KnownConsent>, ParticipantsError>> + Send;

    /// Refers a person (new participant or new episode); a retry with `key` replays.
    ///
    /// A `blind` referrer (anyone the gateway forwards) gets a receipt that is the same
    /// whether the person is unknown, a former or an active participant: for an active one
    /// (or one a new episode cannot open for) the referral is kept beside the participant
    /// for its reviewers and the participant is left as it is.
    fn create_referral(
        &self,
        new: NewReferral,
        key: Option<&IdempotencyKey>,
        settings: &ParticipantsSettings,
        blind: bool,
    ) -> impl Future<Output = Result<Created, ParticipantsError>> + Send;

    /// Applies `op` to the participant at revision `expected` and stores the result.
    fn update<F>(
        &self,
        id: ParticipantId,
        expected: u64,
        op: F,
    ) -> impl Future<Output = Result<Participant, ParticipantsError>> + Send
    where
        F: FnOnce(&mut Participant, DateTime<Utc>) -> Result<Effect, ParticipantsError> + Send;

    /// Changes the assignments of an enrolled participant at revision `expected`.
    fn change_assignments<F>(
        &self,
        id: ParticipantId,
        expected: u64,
        change_kind: &'static str,
        op: F,
    ) -> impl Future<Output = Result<(Participant, Vec<Assignment>), ParticipantsError>> + Send
    where
        F: FnOnce(&[Assignment], DateTime<Utc>) -> Result<AssignmentChange, ParticipantsError>
            + Send;

    /// One participant.
    fn get(
        &self,
        id: ParticipantId,
    ) -> impl Future<Output = Result<Participant, ParticipantsError>> + Send;

    /// A participant and their assignments (current, or all with `include_history`).
    fn care_team(
        &self,
        id: ParticipantId,
        include_history: bool,
    ) -> impl Future<Output = Result<(Participant, Vec<Assignment>), ParticipantsError>> + Send;

    /// Up to `limit` participants matching `filter` with ids after `after`, in id order.
    fn list(
        &self,
        filter: &ListFilter,
        after: Option<ParticipantId>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ParticipantSummary>, ParticipantsError>> + Send;

    /// Enrolments per municipality (at enrolment) and year, for the years `from..=to`.
    fn enrolment_counts(
        &self,
        from: i32,
        to: i32,
    ) -> impl Future<Output = Result<Vec<YearCount>, ParticipantsError>> + Send;
}
