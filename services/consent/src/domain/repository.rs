//! What the consent service needs from storage, in domain terms.

use std::future::Future;

use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;

use super::{Consent, ConsentError, ParticipantId, Restriction, Version};

/// Storage of consents and restrictions. Every change is one transaction with its version
/// row and its change-feed row.
pub trait ConsentRepository: Clone + Send + Sync + 'static {
    /// Stores a new consent; a retry with the same key returns the first one.
    fn record_consent(
        &self,
        consent: Consent,
        key: Option<&IdempotencyKey>,
    ) -> impl Future<Output = Result<Consent, ConsentError>> + Send;

    /// Stores a new restriction; a retry with the same key returns the first one.
    fn create_restriction(
        &self,
        restriction: Restriction,
        key: Option<&IdempotencyKey>,
    ) -> impl Future<Output = Result<Restriction, ConsentError>> + Send;

    /// Applies `change` to the consent at `revision` and stores the result as a new version.
    fn change_consent(
        &self,
        participant: &ParticipantId,
        id: &str,
        revision: u64,
        change_kind: &'static str,
        change: impl FnOnce(&mut Consent) -> Result<(), ConsentError> + Send,
    ) -> impl Future<Output = Result<Consent, ConsentError>> + Send;

    /// Applies `change` to the restriction at `revision`; with a key, a retry returns the
    /// restriction as it is now instead of changing it twice.
    fn change_restriction(
        &self,
        participant: &ParticipantId,
        id: &str,
        revision: u64,
        change_kind: &'static str,
        key: Option<(&'static str, &IdempotencyKey)>,
        change: impl FnOnce(&mut Restriction) -> Result<(), ConsentError> + Send,
    ) -> impl Future<Output = Result<Restriction, ConsentError>> + Send;

    /// A page of the participant's consents, newest first.
    fn consents(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> impl Future<Output = Result<(Vec<Consent>, String), ConsentError>> + Send;

    /// A page of the participant's restrictions, newest first.
    fn restrictions(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> impl Future<Output = Result<(Vec<Restriction>, String), ConsentError>> + Send;

    /// Every consent and restriction of the participant: the facts of a decision.
    fn facts(
        &self,
        participant: &ParticipantId,
    ) -> impl Future<Output = Result<(Vec<Consent>, Vec<Restriction>), ConsentError>> + Send;

    /// A page of every version of the participant's records, oldest first.
    fn history(
        &self,
        participant: &ParticipantId,
        page: &Page,
    ) -> impl Future<Output = Result<(Vec<Version>, String), ConsentError>> + Send;
}
