//! The FACT board: teams, board entries with status over time and agreed actions, the
//! morning meeting's agenda and minutes, and a live, resumable watch of a team's board.

mod api;
pub mod domain;
pub mod store;
mod wire;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::ready::Readiness;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::board::v1::board_service_server::BoardServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "board";

/// Opens (and migrates) the database and builds the part's gRPC services.
pub async fn part(context: &PartContext) -> Result<Part, sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let feed = ChangeFeed::new(db.clone());
    let readiness = Readiness::database::<store::Migrator>(db.clone());
    let api = api::BoardApi::new(store::Store::new(db, feed.clone()));
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        BoardServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    Ok(Part {
        name: NAME,
        routes,
        services: vec![<BoardServiceServer<api::BoardApi> as NamedService>::NAME],
        feeds: vec![feed],
        readiness,
        http1: false,
    })
}
