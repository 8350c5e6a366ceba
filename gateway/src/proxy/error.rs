//! Why the gateway itself ends a call, and the one place that turns it into what the caller
//! sees: the cause is logged here, the caller gets a code and a message that reveal nothing
//! (never whether a record exists, never an internal address).

use std::fmt::Display;

use tonic::{Code, Status};

use crate::auth::AuthError;
use crate::gate::GateError;

/// Why the gateway ended a call, or did not make one of its own (a service's own answer
/// passes through [`super::forward::scrub`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// No such method behind the gateway.
    #[error("unknown method")]
    UnknownMethod,
    /// The caller's credentials were refused.
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthError),
    /// The principal's claims cannot be written to the forwarded call's metadata.
    #[error("token claims cannot be forwarded")]
    ClaimsCannotTravel,
    /// A stream's token session was revoked.
    #[error("session revoked")]
    SessionRevoked,
    /// A stream outlived the caller's credentials.
    #[error("credentials expired")]
    CredentialsExpired,
    /// The policies refused, or the answer was about someone else.
    #[error("not permitted")]
    NotPermitted,
    /// The access view cannot vouch for its facts: decisions fail closed.
    #[error("access view: {0}")]
    ViewUnavailable(GateError),
    /// The access view did not reach the caller's consistency token in time.
    #[error("consistency token not reached: {0}")]
    NotCaughtUp(String),
    /// The audit trail refused an event: no call goes on unaudited.
    #[error("audit trail: {0}")]
    AuditUnavailable(String),
    /// The owning service cannot be reached: the transport's reason (it names internal
    /// addresses, so it goes to the log only).
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// The gateway's own deadline for the call passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A fault in the gateway: what it was doing and why it failed.
    #[error("{context}: {cause}")]
    Internal {
        /// What the gateway was doing.
        context: &'static str,
        /// Why it failed (never personal data: decode and encode errors name fields only).
        cause: String,
    },
}

impl GatewayError {
    /// A fault while doing `context`, for `map_err`.
    pub(crate) fn internal<E: Display>(context: &'static str) -> impl FnOnce(E) -> Self {
        move |cause| Self::Internal {
            context,
            cause: cause.to_string(),
        }
    }

    /// The status code the caller gets.
    pub(crate) fn code(&self) -> Code {
        match self {
            Self::UnknownMethod => Code::Unimplemented,
            Self::Unauthenticated(_)
            | Self::ClaimsCannotTravel
            | Self::SessionRevoked
            | Self::CredentialsExpired => Code::Unauthenticated,
            Self::NotPermitted => Code::PermissionDenied,
            Self::ViewUnavailable(_)
            | Self::NotCaughtUp(_)
            | Self::AuditUnavailable(_)
            | Self::ServiceUnavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal { .. } => Code::Internal,
        }
    }

    /// The status the caller sees; the cause of every fault goes to the log, at the level it
    /// deserves, naming no person (causes name fields, feeds and addresses only).
    pub(crate) fn into_status(self) -> Status {
        let message = match &self {
            Self::UnknownMethod => "unknown method",
            Self::Unauthenticated(error) => {
                tracing::debug!(%error, "unauthenticated call");
                "valid credentials required"
            }
            Self::ClaimsCannotTravel => {
                // Which claim is not said: its value may be personal.
                tracing::warn!("principal claims cannot be written to a forwarded call");
                "token claims cannot be forwarded"
            }
            Self::SessionRevoked => "session revoked",
            Self::CredentialsExpired => {
                "credentials expired; reconnect with a fresh token and the cursor"
            }
            Self::NotPermitted => "not permitted",
            Self::ViewUnavailable(error) => {
                tracing::warn!(%error, "decision refused: access view cannot vouch for its facts");
                "access decisions temporarily unavailable"
            }
            Self::NotCaughtUp(error) => {
                tracing::warn!(%error, "consistency token not reached");
                "access decisions not yet current with the consistency token; retry"
            }
            Self::AuditUnavailable(error) => {
                tracing::error!(%error, "audit trail refused an event; call failed");
                "audit trail unavailable"
            }
            Self::ServiceUnavailable(cause) => {
                tracing::warn!(%cause, "service unavailable");
                "service unavailable"
            }
            Self::DeadlineExceeded => "deadline exceeded",
            Self::Internal { context, cause } => {
                tracing::error!(context, %cause, "internal error");
                "internal error"
            }
        };
        Status::new(self.code(), message)
    }
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        error.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_reveal_nothing_and_faults_hide_their_cause() {
        let faults = [
            (GatewayError::UnknownMethod, Code::Unimplemented),
            (
                GatewayError::Unauthenticated(AuthError::Missing),
                Code::Unauthenticated,
            ),
            (GatewayError::NotPermitted, Code::PermissionDenied),
            (
                GatewayError::AuditUnavailable("disk full at /var/lib/samsyn".into()),
                Code::Unavailable,
            ),
            (
                GatewayError::internal("sealing a page token")("key 3 missing"),
                Code::Internal,
            ),
        ];
        for (error, code) in faults {
            let cause = error.to_string();
            let status = error.into_status();
            assert_eq!(status.code(), code, "{cause}");
            assert!(
                !status.message().contains("/var/lib") && !status.message().contains("key 3"),
                "{cause} leaked into {:?}",
                status.message()
            );
        }
        assert_eq!(
            GatewayError::NotPermitted.into_status().message(),
            "not permitted"
        );
        // The transport's reason names the service's address: logged, never shown.
        let unreachable =
            GatewayError::ServiceUnavailable("tcp connect error: 10.0.0.7:7402".into());
        let status = unreachable.into_status();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"), "{status:?}");
    }
}
