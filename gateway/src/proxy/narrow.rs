//! What of a service's answer the caller may see.

use std::collections::HashMap;

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tonic::Status;

use super::error::GatewayError;
use super::withhold::withhold;
use super::{Admitted, Call};
use crate::audit::RowAccess;
use crate::auth::Principal;

impl Call {
    /// Defence in depth: a single-record answer must be about the participant the call was
    /// decided for; a create's answer only about participants the caller may now read.
    /// Anything else is refused (`PERMISSION_DENIED`, audited), whatever the service said.
    pub(super) fn check_answer(
        &self,
        admitted: &Admitted,
        access: &MethodAccess,
        body: &[u8],
    ) -> Result<(), Status> {
        if access.narrowed_list {
            return Ok(());
        }
        let named = self
            .gateway
            .describer
            .answer_participants(&self.path, body)
            .map_err(GatewayError::internal(
                "reading the participants an answer names",
            ))?;
        let read = MethodAccess {
            action: samsyn_proto::common::v1::Action::Read as i32,
            ..access.clone()
        };
        for participant in named {
            let fits = match &admitted.admission.participant_id {
                Some(decided) => *decided == participant,
                None => {
                    self.gateway
                        .gate
                        .decide_row(&admitted.admission.principal, &read, &participant)
                        .map_err(|e| Status::from(GatewayError::ViewUnavailable(e)))?
                        .decision
                        .allowed
                }
            };
            if !fits {
                tracing::warn!(rpc = %self.path, "answer about another participant withheld");
                return Err(GatewayError::NotPermitted.into());
            }
        }
        Ok(())
    }

    /// Withholds the rows of a list response that the caller may not see.
    pub(super) fn narrow(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        body: Bytes,
    ) -> Result<(Bytes, Vec<RowAccess>), Status> {
        let body = withhold(&self.gateway, principal, &self.path, access, body)?;
        if !access.narrowed_list {
            return Ok((body, Vec::new()));
        }
        let describer = &self.gateway.describer;
        let participants =
            describer
                .row_participants(&self.path, &body)
                .map_err(GatewayError::internal(
                    "reading the participants of a list's rows",
                ))?;
        // Per participant: `Some(disclosure)` when shown, `None` when withheld.
        let mut decided: HashMap<String, Option<bool>> = HashMap::new();
        for participant in participants.into_iter().flatten() {
            if decided.contains_key(&participant) {
                continue;
            }
            let verdict = self
                .gateway
                .gate
                .decide_row(principal, access, &participant)
                .map_err(|e| Status::from(GatewayError::ViewUnavailable(e)))?;
            let shown = verdict
                .decision
                .allowed
                .then_some(verdict.decision.disclosure);
            decided.insert(participant, shown);
        }
        let narrowed = describer
            .narrow(&self.path, &body, |participant| {
                decided.get(participant).is_some_and(Option::is_some)
            })
            .map_err(GatewayError::internal("withholding rows of a list"))?;
        let mut rows: Vec<RowAccess> = decided
            .into_iter()
            .filter_map(|(participant_id, shown)| {
                shown.map(|disclosure| RowAccess {
                    participant_id,
                    disclosure,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        Ok((Bytes::from(narrowed), rows))
    }
}
