//! The FACT board: entries, status history and the morning meeting.
//!
//! The domain API arrives with the service's own issue; until then the service serves its
//! change feed, health and reflection.

mod api;
pub mod store;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::board::v1::board_service_server::BoardServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "board";

/// Opens (and migrates) the database and builds the part's gRPC services.
pub async fn part(context: &PartContext) -> Result<Part, sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let api = api::BoardApi::new(ChangeFeed::new(db));
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        BoardServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    Ok(Part {
        name: NAME,
        routes,
        services: vec![<BoardServiceServer<api::BoardApi> as NamedService>::NAME],
    })
}
