//! Plans: the coordinated individual plan (SIP), its revisions and follow-ups, the
//! intervention catalogue, and municipal decisions pushed by municipal systems.
//!
//! - `domain`: the plan aggregate and its rules (status steps, approval, decisions applied
//!   to interventions, idempotent replays), value types, and the repository trait.
//! - `wire`: `samsyn.plans.v1` messages to domain values (every field violation named by its
//!   path) and back; the store uses it only for change-feed payloads.
//! - `store`: the SQL repository. A plan is one JSON snapshot per revision; each change is
//!   one transaction with the next revision, the follow-up index and the change feed.
//! - `api`: the tonic handlers.

mod api;
pub mod domain;
pub mod store;
pub mod wire;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::ready::Readiness;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::plans::v1::plans_service_server::PlansServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "plans";

/// The gRPC handlers over the SQL repository.
type Api = api::PlansApi<store::SqlPlans>;

/// Opens (and migrates) the database and builds the part's gRPC services.
pub async fn part(context: &PartContext) -> Result<Part, sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let feed = ChangeFeed::new(db.clone());
    let readiness = Readiness::database::<store::Migrator>(db.clone());
    let api = Api::new(store::SqlPlans::new(db, feed.clone()), feed.clone());
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        PlansServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    Ok(Part {
        name: NAME,
        routes,
        services: vec![<PlansServiceServer<Api> as NamedService>::NAME],
        feeds: vec![feed],
        readiness,
        http1: false,
    })
}
