//! The tonic adapter of `samsyn.plans.v1`.

use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::plans::v1::plans_service_server::PlansService;
use tonic::{Request, Response, Status};

/// The handlers of `PlansService`.
#[derive(Debug, Clone)]
pub struct PlansApi {
    feed: ChangeFeed,
}

impl PlansApi {
    /// Handlers over the service's change feed.
    pub fn new(feed: ChangeFeed) -> Self {
        Self { feed }
    }
}

#[tonic::async_trait]
impl PlansService for PlansApi {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}
