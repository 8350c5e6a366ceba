//! Consent: scoped, revocable consents, restrictions (*spärr*) with temporary lifts, their
//! history, and the decision query — a thin wrapper over `samsyn-consent-rule`, the rule the
//! gateway also evaluates locally from this service's change feed.

mod api;
pub mod domain;
pub mod store;
mod wire;

use samsyn_kit::ready::Readiness;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::consent::v1::consent_service_server::ConsentServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "consent";

/// Opens (and migrates) the database and builds the part's gRPC services.
pub async fn part(context: &PartContext) -> Result<Part, sea_orm::DbErr> {
    let store = store::Store::open(&context.database_url).await?;
    let feed = store.feed().clone();
    let readiness = Readiness::database::<store::Migrator>(store.connection().clone());
    let api = api::ConsentApi::new(store, feed.clone());
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        ConsentServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    Ok(Part {
        name: NAME,
        routes,
        services: vec![<ConsentServiceServer<api::ConsentApi<store::Store>> as NamedService>::NAME],
        feeds: vec![feed],
        readiness,
        http1: false,
    })
}
