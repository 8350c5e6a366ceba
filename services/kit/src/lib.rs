//! The plumbing every Samsyn part reuses: configuration, database and migrations, the change
//! feed, mutual TLS, error mapping, serving and telemetry. No domain rules live here.

pub mod caller;
pub mod config;
pub mod connection;
pub mod db;
pub mod error;
pub mod export;
pub mod feed;
pub mod follow;
pub mod idempotency;
pub mod metrics;
pub mod paging;
pub mod probe;
pub mod ready;
pub mod serve;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod tls;
pub mod write;

pub use error::{ApiError, FieldViolations, Violations, parse_field, parse_fields};
