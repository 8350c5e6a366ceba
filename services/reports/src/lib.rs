//! Aggregate follow-up for the steering group: a read model built from the participants,
//! consent, plans and board change feeds (resumable: the feed positions are stored with the
//! facts they produced), and reports over it whose small cells are suppressed so that no
//! participant can be singled out, from one report or from several.

mod api;
mod consultation_api;
pub mod domain;
mod follow;
pub mod store;
mod wire;

use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::reports::v1::consultation_service_server::ConsultationServiceServer;
use samsyn_proto::reports::v1::reports_service_server::ReportsServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

pub use domain::research::{DatePrecision, Study};
pub use domain::{Feed, ReportSettings, ReportingConfig, StudyConfig};
pub use follow::{FeedChannels, FollowSettings, Follower, Progress, follow};

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "reports";

/// Opens (and migrates) the database, starts following the feeds and builds the part's
/// gRPC service. The feeds are followed for as long as the service is served.
pub async fn part(
    context: &PartContext,
    settings: ReportSettings,
    feeds: FeedChannels,
) -> Result<Part, sea_orm::DbErr> {
    Ok(part_with_progress(context, settings, feeds).await?.0)
}

/// As [`part`], with a handle on how far the read model has got (for tests and tools that
/// must wait for it).
pub async fn part_with_progress(
    context: &PartContext,
    settings: ReportSettings,
    feeds: FeedChannels,
) -> Result<(Part, Progress), sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let readiness = samsyn_kit::ready::Readiness::database::<store::Migrator>(db.clone());
    let store = store::Store::new(db);
    let follower = follow::follow(store.clone(), feeds, follow::FollowSettings::default());
    let progress = follower.progress();
    let consultation = consultation_api::ConsultationApi::new(store.clone());
    let api = api::ReportsApi::new(store, settings, follower);
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        ReportsServiceServer::new(api).max_decoding_message_size(context.limits.max_request_bytes),
    );
    routes.add_service(
        ConsultationServiceServer::new(consultation)
            .max_decoding_message_size(context.limits.max_request_bytes),
    );
    let part = Part {
        name: NAME,
        routes,
        services: vec![
            <ReportsServiceServer<api::ReportsApi<store::Store>> as NamedService>::NAME,
            <ConsultationServiceServer<consultation_api::ConsultationApi<store::Store>> as NamedService>::NAME,
        ],
        feeds: Vec::new(),
        readiness,
        http1: false,
    };
    Ok((part, progress))
}
