//! The tonic adapter of `samsyn.board.v1`.

use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_proto::board::v1::board_service_server::BoardService;
use samsyn_proto::common::v1::WatchChangesRequest;
use tonic::{Request, Response, Status};

/// The handlers of `BoardService`.
#[derive(Debug, Clone)]
pub struct BoardApi {
    feed: ChangeFeed,
}

impl BoardApi {
    /// Handlers over the service's change feed.
    pub fn new(feed: ChangeFeed) -> Self {
        Self { feed }
    }
}

#[tonic::async_trait]
impl BoardService for BoardApi {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}
