//! The tonic adapter of `samsyn.participants.v1`.

use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::participants::v1::participants_service_server::ParticipantsService;
use tonic::{Request, Response, Status};

/// The handlers of `ParticipantsService`.
#[derive(Debug, Clone)]
pub struct ParticipantsApi {
    feed: ChangeFeed,
}

impl ParticipantsApi {
    /// Handlers over the service's change feed.
    pub fn new(feed: ChangeFeed) -> Self {
        Self { feed }
    }
}

#[tonic::async_trait]
impl ParticipantsService for ParticipantsApi {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}
