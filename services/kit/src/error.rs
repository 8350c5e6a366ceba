//! The one place where a service's failure becomes a `tonic::Status`.

use samsyn_proto::ids::FieldError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// A failure as a caller should see it. Each service converts its own error enum into this.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; each violation names the field (a dotted path) and why.
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    /// The named record does not exist (or the caller may not know that it does).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this. Says nothing about whether the record exists.
    #[error("permission denied")]
    PermissionDenied,
    /// A record with the same key exists already.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The caller sent this idempotency key (the named field) before, with another request.
    #[error("{0} already used for a different request")]
    KeyReused(String),
    /// The update named a revision that is no longer current.
    #[error("stale revision")]
    StaleRevision {
        /// The revision now current.
        current: u64,
    },
    /// The record's state does not allow this (e.g. enrolling a declined referral).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency is down; the caller may retry.
    #[error("service unavailable")]
    Unavailable,
    /// A bug or broken storage; logged with detail, answered without.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An `INVALID_ARGUMENT` for one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// An internal error from any source.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

/// Collects field violations while a request is converted into domain types.
#[derive(Debug, Default)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Keeps `Ok` values and records the field of an `Err`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// Keeps an `Ok` id, records the field an id parser named (`samsyn_proto::ids`).
    pub fn id<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(e.field, e.error.to_string());
                None
            }
        }
    }

    /// `Ok` when nothing was recorded, else one `INVALID_ARGUMENT` naming every field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

/// What collects a request's field violations while a handler parses it.
pub trait Violations: Default {
    /// `Ok` when nothing was recorded, else one error naming every field.
    fn finish(self) -> Result<(), ApiError>;
}

impl Violations for FieldViolations {
    fn finish(self) -> Result<(), ApiError> {
        FieldViolations::finish(self)
    }
}

/// A handler's opening: `parse` reads every field of a request into domain values,
/// recording each violation in `v` and answering `None` for what it could not build; the
/// result is the values, or one `INVALID_ARGUMENT` naming every bad field.
pub fn parse_fields<V: Violations, T>(
    parse: impl FnOnce(&mut V) -> Option<T>,
) -> Result<T, ApiError> {
    let mut v = V::default();
    let parsed = parse(&mut v);
    v.finish()?;
    // Each parser that answers `None` has recorded why, so this is a bug if it happens.
    parsed.ok_or_else(|| ApiError::Internal("a parsed field went missing".into()))
}

/// One field parsed on its own: its value, or an `INVALID_ARGUMENT` naming it.
pub fn parse_field<T, E: std::fmt::Display>(
    field: &str,
    result: Result<T, E>,
) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::invalid(field, e.to_string()))
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::invalid(error.field, error.error.to_string())
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument(violations) => {
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                let message = format!("invalid {}", fields.join(", "));
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ApiError::PermissionDenied => Status::permission_denied("permission denied"),
            ApiError::AlreadyExists(what) => {
                Status::already_exists(format!("{what} already exists"))
            }
            ApiError::KeyReused(field) => Status::with_error_details(
                Code::AlreadyExists,
                format!("{field} already used for a different request"),
                ErrorDetails::with_error_info(
                    "IDEMPOTENCY_KEY_REUSED",
                    "samsyn",
                    [("field".to_owned(), field)],
                ),
            ),
            ApiError::StaleRevision { current } => Status::with_error_details(
                Code::Aborted,
                format!("stale revision; the current revision is {current}"),
                ErrorDetails::with_error_info(
                    "STALE_REVISION",
                    "samsyn",
                    [("current_revision".to_owned(), current.to_string())],
                ),
            ),
            ApiError::FailedPrecondition(reason) => Status::failed_precondition(reason),
            ApiError::Unavailable => Status::unavailable("service unavailable, retry later"),
            ApiError::Internal(source) => {
                // The detail stays in our logs: it may name tables, queries or hosts.
                tracing::error!(error = %source, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        match crate::db::classify(&error) {
            crate::db::StoreFailure::Unavailable => {
                tracing::warn!(error = %error, "database unavailable");
                ApiError::Unavailable
            }
            _ => ApiError::internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_every_field_in_bad_request_details() {
        let mut violations = FieldViolations::new();
        violations.add("participant_id", "must be a UUID");
        let parsed: Option<u32> = violations.check("revision.value", "x".parse::<u32>());
        assert!(parsed.is_none());
        let status = Status::from(violations.finish().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid participant_id, revision.value");
        let bad_request = status.get_details_bad_request().unwrap();
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("participant_id", "must be a UUID"),
                ("revision.value", "invalid digit found in string")
            ]
        );
    }

    #[test]
    fn nothing_recorded_is_ok() {
        assert!(FieldViolations::new().finish().is_ok());
    }

    #[test]
    fn an_opening_names_every_bad_field_or_answers_every_value() {
        use samsyn_proto::common::v1 as common;
        use samsyn_proto::ids::ParticipantId;
        let upper = common::ParticipantId {
            value: "0198C0DE-0000-7000-8000-0000000000A1".into(),
        };
        let refused = parse_fields(|v: &mut FieldViolations| {
            let participant = v.id(ParticipantId::from_field("participant_id", Some(&upper)));
            let revision = v.check("revision", "x".parse::<u32>());
            let owner = v.id(ParticipantId::from_field("owner", None));
            Some((participant?, revision?, owner?))
        })
        .unwrap_err();
        let ApiError::InvalidArgument(violations) = refused else {
            panic!("{refused:?}")
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["participant_id.value", "revision", "owner"]);
        let parsed =
            parse_fields(|v: &mut FieldViolations| v.check("revision", "7".parse::<u32>()));
        assert_eq!(parsed.unwrap(), 7);
        let one = parse_field("revision", "x".parse::<u32>()).unwrap_err();
        assert!(matches!(one, ApiError::InvalidArgument(v) if v[0].field == "revision"));
    }

    #[test]
    fn stale_revision_is_aborted_with_the_current_revision() {
        let status = Status::from(ApiError::StaleRevision { current: 7 });
        assert_eq!(status.code(), Code::Aborted);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "STALE_REVISION");
        assert_eq!(
            info.metadata.get("current_revision").map(String::as_str),
            Some("7")
        );
    }

    #[test]
    fn internal_detail_never_reaches_the_caller() {
        let source = std::io::Error::other("table participant_secret at db-host-3 is corrupt");
        let status = Status::from(ApiError::internal(source));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert!(status.details().is_empty());
    }

    #[test]
    fn permission_denied_does_not_say_whether_the_record_exists() {
        let status = Status::from(ApiError::PermissionDenied);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "permission denied");
    }
}
