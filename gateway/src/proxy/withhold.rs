//! Withholding the parts of an answer that hold another category's data: a municipal
//! decision on the board's agenda is the municipality's decision data, shown only to a
//! caller who may read that participant's decisions, whoever may see the row around it.
//! Which fields these are is data (`field_category` in access.proto); every answer and
//! stream message passes through here before it leaves, so a new marked field is covered
//! without a change here.

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tonic::Status;

use super::Gateway;
use super::error::GatewayError;
use crate::auth::Principal;

/// `body`, an answer of `path`, without the marked fields `principal` may not read. A field
/// whose participant the access view cannot decide on now is withheld.
pub(super) fn withhold(
    gateway: &Gateway,
    principal: &Principal,
    path: &str,
    access: &MethodAccess,
    body: Bytes,
) -> Result<Bytes, Status> {
    let withheld = gateway
        .describer()
        .withhold(path, &body, |category, participant| {
            let read = MethodAccess {
                category: category as i32,
                action: samsyn_proto::common::v1::Action::Read as i32,
                ..access.clone()
            };
            gateway
                .gate()
                .decide_row(principal, &read, participant)
                .is_ok_and(|verdict| verdict.decision.allowed)
        })
        .map_err(GatewayError::internal(
            "withholding fields of another category",
        ))?;
    Ok(withheld.map_or(body, Bytes::from))
}
