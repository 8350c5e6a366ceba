//! A municipal case system's own terms, translated at the door. A case system names the
//! person by personal identity number (or samordningsnummer) and the intervention by its own
//! decision-type code; Samsyn's services know participant ids and catalogue codes. Before a
//! push is decided, the gateway
//!
//! - maps the code by the link's code mapping (`decision_codes`; an unmapped code is
//!   `INVALID_ARGUMENT` naming `decision.decision_type_code`), and
//! - looks the person up in the participants service, as an internal step of this push
//!   only: the answer is used only when the person lives in the link's own municipality and
//!   takes part in the programme. Anyone else — another municipality's resident, a person
//!   Samsyn does not know, a discharged participant — gets the same `PERMISSION_DENIED` as
//!   any refusal, so the lookup tells the case system nothing it did not know.
//!
//! The number is never logged, never forwarded and never stored: the forwarded push carries
//! the participant id instead, and is then decided, audited and forwarded like any other.

use bytes::Bytes;
use prost::Message;
use samsyn_kit::error::ApiError;
use samsyn_proto::common::v1::{PageRequest, ParticipantId};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use tonic::{Code, Status};

use crate::auth::{Principal, PrincipalKind};
use crate::proxy::Gateway;

/// The method whose requests may come in a case system's own terms.
pub const PUSH_DECISION: &str = "/samsyn.plans.v1.PlansService/PushDecision";

/// Why a push in a case system's terms was not translated.
#[derive(Debug)]
pub struct Untranslated {
    /// The answer to the caller.
    pub status: Status,
    /// The participant the push turned out to be about, for the audit trail only.
    pub participant_id: Option<String>,
}

impl Untranslated {
    fn new(status: Status) -> Self {
        Self {
            status,
            participant_id: None,
        }
    }
}

/// Whether `message` (a `PushDecisionRequest`) uses a case system's own terms.
pub fn in_case_terms(message: &Bytes) -> bool {
    plans_pb::PushDecisionRequest::decode(message.clone())
        .ok()
        .and_then(|r| r.decision)
        .is_some_and(|d| {
            !d.personal_identity_number.is_empty()
                || matches!(
                    d.subject,
                    Some(plans_pb::decision::Subject::DecisionTypeCode(_))
                )
        })
}

/// Translates a push from `principal` into Samsyn's terms: the request to decide and
/// forward instead.
pub async fn translate(
    gateway: &Gateway,
    principal: &Principal,
    message: &Bytes,
) -> Result<Bytes, Untranslated> {
    let mut request = plans_pb::PushDecisionRequest::decode(message.clone()).map_err(|_| {
        Untranslated::new(
            ApiError::invalid("request", "does not decode as the method's request message").into(),
        )
    })?;
    let Some(decision) = request.decision.as_mut() else {
        return Ok(message.clone());
    };
    // Only a linked case system speaks in its own terms; anyone else is refused as always.
    let organisation = match (principal.kind, principal.organisation.as_deref()) {
        (PrincipalKind::System, Some(org)) => org.to_owned(),
        _ => return Err(Untranslated::new(permission_denied())),
    };
    if let Some(plans_pb::decision::Subject::DecisionTypeCode(code)) = &decision.subject {
        let catalogue = gateway
            .gate()
            .links()
            .decision_code(&principal.id, code)
            .ok_or_else(|| {
                Untranslated::new(
                    ApiError::invalid(
                        "decision.decision_type_code",
                        "not in this link's code mapping",
                    )
                    .into(),
                )
            })?;
        decision.subject = Some(plans_pb::decision::Subject::CatalogueCode(
            catalogue.to_owned(),
        ));
    }
    if !decision.personal_identity_number.is_empty() {
        if decision
            .participant_id
            .as_ref()
            .is_some_and(|p| !p.value.is_empty())
        {
            return Err(Untranslated::new(
                ApiError::invalid(
                    "decision.personal_identity_number",
                    "give participant_id or personal_identity_number, not both",
                )
                .into(),
            ));
        }
        let number = std::mem::take(&mut decision.personal_identity_number);
        let id = resident(gateway, &organisation, number).await?;
        decision.participant_id = Some(ParticipantId { value: id });
    }
    Ok(Bytes::from(request.encode_to_vec()))
}

/// The participant id of the person with `number`, when they live in `municipality` and take
/// part in the programme; the same refusal otherwise.
async fn resident(
    gateway: &Gateway,
    municipality: &str,
    number: String,
) -> Result<String, Untranslated> {
    let answer = ParticipantsServiceClient::new(gateway.upstreams().participants.clone())
        .list_participants(participants_pb::ListParticipantsRequest {
            personal_identity_number: number,
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await;
    let rows = match answer {
        Ok(response) => response.into_inner().participants,
        Err(status) if status.code() == Code::InvalidArgument => {
            return Err(Untranslated::new(
                ApiError::invalid(
                    "decision.personal_identity_number",
                    "a personal identity number or samordningsnummer (12 digits, valid check digit)",
                )
                .into(),
            ));
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "participant lookup failed");
            return Err(Untranslated::new(Status::unavailable("try again later")));
        }
    };
    let Some(row) = rows.into_iter().next() else {
        return Err(Untranslated::new(permission_denied()));
    };
    let id = row.participant_id.map(|p| p.value).unwrap_or_default();
    let taking_part = [
        participants_pb::ParticipantStatus::Referred,
        participants_pb::ParticipantStatus::Accepted,
        participants_pb::ParticipantStatus::Enrolled,
    ]
    .iter()
    .any(|s| *s as i32 == row.status);
    if id.is_empty() || row.home_municipality_code != municipality || !taking_part {
        return Err(Untranslated {
            status: permission_denied(),
            participant_id: (!id.is_empty()).then_some(id),
        });
    }
    Ok(id)
}

fn permission_denied() -> Status {
    Status::permission_denied("not permitted")
}
