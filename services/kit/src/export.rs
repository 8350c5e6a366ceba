//! What a service tells the gateway's audit about data it let leave in bulk: response
//! metadata that the gateway records on the call's audit event and never passes on.

/// The id of the study a research export was made for.
pub const STUDY_HEADER: &str = "samsyn-export-study-id";
/// How many rows the export held.
pub const ROW_COUNT_HEADER: &str = "samsyn-export-row-count";
