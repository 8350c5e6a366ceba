//! The tonic adapter of `samsyn.consent.v1`.

use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::consent::v1::consent_service_server::ConsentService;
use tonic::{Request, Response, Status};

/// The handlers of `ConsentService`.
#[derive(Debug, Clone)]
pub struct ConsentApi {
    feed: ChangeFeed,
}

impl ConsentApi {
    /// Handlers over the service's change feed.
    pub fn new(feed: ChangeFeed) -> Self {
        Self { feed }
    }
}

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}
