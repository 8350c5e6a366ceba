//! The gateway: the only door into Samsyn. Authentication, policy decisions, narrowing, audit
//! and forwarding arrive with the gateway issue; today it serves health and reflection over
//! TLS with optional client certificates.

pub mod access_view;
pub mod auth;
pub mod authenticate;
pub mod describe;
pub mod links;
pub mod policy;

use samsyn_kit::serve::Part;
use tonic::service::RoutesBuilder;

/// The part's name: its certificate and log target.
pub const NAME: &str = "gateway";

/// The gateway's gRPC services.
pub fn part() -> Part {
    Part {
        name: NAME,
        routes: RoutesBuilder::default(),
        services: Vec::new(),
        feeds: Vec::new(),
    }
}
