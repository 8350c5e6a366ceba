//! Participants: referral, joint review, enrolment, care team, coordinators and discharge.
//!
//! Three layers: [`api`] (tonic) → [`domain`] (rules and newtypes) → [`store`] (sea-orm);
//! `wire` puts domain values in their protobuf form for answers and feed payloads alike.

mod api;
mod consent_feed;
pub mod domain;
pub mod store;
mod wire;

use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::ready::Readiness;
use samsyn_kit::serve::{Part, PartContext};
use samsyn_proto::participants::v1::participants_service_server::ParticipantsServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Channel;

pub use domain::{ParticipantsSettings, ReviewRule};

/// The part's name: its certificate, database file and log target.
pub const NAME: &str = "participants";

/// Opens (and migrates) the database and builds the part's gRPC services, with default
/// settings, following the consent service's feed over `consent_feed`. Without it, `Enrol`
/// cannot check participation consents and refuses (`UNAVAILABLE`): it never enrols on an
/// unchecked consent.
pub async fn part(
    context: &PartContext,
    consent_feed: Option<Channel>,
) -> Result<Part, sea_orm::DbErr> {
    part_with_settings(context, ParticipantsSettings::default(), consent_feed).await
}

/// Like [`part`], with the service's settings.
pub async fn part_with_settings(
    context: &PartContext,
    settings: ParticipantsSettings,
    consent_feed: Option<Channel>,
) -> Result<Part, sea_orm::DbErr> {
    let db = samsyn_kit::db::connect::<store::Migrator>(&context.database_url).await?;
    let feed = ChangeFeed::new(db.clone());
    let readiness = Readiness::database::<store::Migrator>(db.clone());
    let store = store::ParticipantStore::new(db, feed.clone());
    let consents = consent_feed.map(|channel| {
        consent_feed::ConsentFollower::start(
            store.clone(),
            channel,
            settings.on_participation_consent_revoked,
        )
    });
    let api = api::ParticipantsApi::new(store, feed.clone(), settings, consents);
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        ParticipantsServiceServer::new(api)
            .max_decoding_message_size(context.limits.max_request_bytes),
    );
    Ok(Part {
        name: NAME,
        routes,
        services: vec![<ParticipantsServiceServer<api::ParticipantsApi<store::ParticipantStore>> as NamedService>::NAME],
        feeds: vec![feed],
        readiness,
        http1: false,
    })
}
