//! The FACT board: teams, board entries with status over time and agreed actions, the
//! morning meeting's agenda and minutes, and a live, resumable watch of a team's board. It
//! follows the plans and participants feeds so the agenda shows municipal decisions and
//! revoked participation consents without anyone asking.

mod api;
pub mod domain;
mod follow;
pub mod store;
mod wire;

use std::sync::Arc;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::ready::Readiness;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::board::v1::board_service_server::BoardServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

pub use follow::{BoardFeeds, Followers};
pub use samsyn_kit::follow::FollowSettings;

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "board";

/// Opens (and migrates) the database and builds the part's gRPC services, following no
/// feeds: the agenda then shows no municipal decisions or revoked participation consents.
pub async fn part(context: &PartContext) -> Result<Part, sea_orm::DbErr> {
    Ok(part_with_feeds(context, None, FollowSettings::default())
        .await?
        .0)
}

/// Like [`part`], following the plans and participants feeds over `feeds` for as long as
/// the service is served; the followers are returned for whoever must wait for them.
pub async fn part_with_feeds(
    context: &PartContext,
    feeds: Option<BoardFeeds>,
    settings: FollowSettings,
) -> Result<(Part, Option<Arc<Followers>>), sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let feed = ChangeFeed::new(db.clone());
    let readiness = Readiness::database::<store::Migrator>(db.clone());
    let store = store::Store::new(db, feed.clone());
    let followers = feeds.map(|feeds| Arc::new(follow::start(store.clone(), feeds, settings)));
    let api = api::BoardApi::new(store, feed.clone(), followers.clone());
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        BoardServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    let part = Part {
        name: NAME,
        routes,
        services: vec![<BoardServiceServer<api::BoardApi<store::Store>> as NamedService>::NAME],
        feeds: vec![feed],
        readiness,
        http1: false,
    };
    Ok((part, followers))
}
