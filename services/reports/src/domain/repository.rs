//! What the reports handlers need from the read model, in domain terms.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Facts;
use super::consultation::{CaseFact, MeetingFact};
use super::research::Allocation;

/// The read model could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The database failed.
    #[error("database: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
    /// A row does not decode.
    #[error("stored {0} does not decode")]
    Corrupt(String),
}

/// One research export, as the export log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The study.
    pub study_id: String,
    /// Rows exported.
    pub row_count: u64,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who asked (staff id) and for which organisation.
    pub requested_by: String,
    /// The organisation they acted for.
    pub organisation: String,
}

/// The read model: the facts taken from the feeds, consultation cases and meetings, and
/// research allocations and exports.
pub trait ReadModel: Clone + Send + Sync + 'static {
    /// Everything the read model holds, from memory (loaded by the first call).
    fn facts(&self) -> impl Future<Output = Result<Arc<Facts>, ReadModelError>> + Send;

    /// The recorded allocations of `study`, by participant id.
    fn allocations(
        &self,
        study: &str,
    ) -> impl Future<Output = Result<HashMap<String, Allocation>, ReadModelError>> + Send;

    /// Records the allocations an export drew and the export itself, together.
    fn record_export(
        &self,
        record: ExportRecord,
        allocations: Vec<(String, Allocation)>,
    ) -> impl Future<Output = Result<(), ReadModelError>> + Send;

    /// Stores a consultation case.
    fn save_case(
        &self,
        id: &str,
        case: &CaseFact,
    ) -> impl Future<Output = Result<(), ReadModelError>> + Send;

    /// The consultation cases, oldest first (ids are time-ordered).
    fn cases(&self)
    -> impl Future<Output = Result<Vec<(String, CaseFact)>, ReadModelError>> + Send;

    /// Stores a consultation meeting.
    fn save_meeting(
        &self,
        id: &str,
        meeting: &MeetingFact,
    ) -> impl Future<Output = Result<(), ReadModelError>> + Send;

    /// The consultation meetings, oldest first.
    fn meetings(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, MeetingFact)>, ReadModelError>> + Send;
}
