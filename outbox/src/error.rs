//! The outbox's errors.

use std::path::PathBuf;

use sea_orm::DbErr;

/// What went wrong in the outbox.
///
/// Messages name fields and files, never message content: bodies may hold personal data.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A message or link setting is not acceptable; the text names the field.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The database could not be reached or timed out.
    #[error("outbox storage unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other storage failure.
    #[error("outbox storage failed")]
    Storage(#[source] DbErr),
    /// A PEM file of a link is missing or unreadable.
    #[error("cannot read {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the TLS material of a link.
    #[error("tls configuration refused: {0}")]
    Tls(#[from] rustls::Error),
}

impl From<DbErr> for OutboxError {
    fn from(err: DbErr) -> Self {
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(err),
            _ => Self::Storage(err),
        }
    }
}
