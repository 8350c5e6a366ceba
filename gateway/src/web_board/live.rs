//! The live board: a Server-Sent Events stream that follows `WatchBoard` through the proxy as
//! the logged-in person and says "board" whenever the board they may see changed. The page
//! then fetches its rows again, through the proxy too; the events carry no personal data.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use tokio_stream::wrappers::ReceiverStream;

use super::{PageError, WebBoard, calls};

/// A comment line this often keeps proxies and the browser from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon a browser reconnects a broken stream.
const RECONNECT: Duration = Duration::from_secs(1);

pub(super) async fn events(
    State(board): State<Arc<WebBoard>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let logged_in = board.logged_in(&headers)?;
    let caller = logged_in.caller.clone();
    let team = calls::team(&caller, &logged_in.login.teams).await?;
    let mut updates = BoardServiceClient::new(caller)
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team.team_id,
            after_sequence: 0,
        })
        .await?
        .into_inner();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::spawn(async move {
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        // A browser whose stream broke tries again after a second, not the default three.
        if sender
            .send(Ok(Event::default().retry(RECONNECT)))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let event = tokio::select! {
                message = updates.message() => match message {
                    Ok(Some(update)) => Event::default()
                        .event("board")
                        .id(update.cursor.to_string())
                        .data(match board_pb::BoardUpdateKind::try_from(update.kind) {
                            Ok(board_pb::BoardUpdateKind::Snapshot) => "snapshot",
                            _ => "changed",
                        }),
                    // The stream ended (credentials expired, session revoked, service gone):
                    // the browser reconnects, and a refused reconnect sends it to the login.
                    Ok(None) | Err(_) => break,
                },
                _ = keep_alive.tick() => Event::default().comment("keep-alive"),
                () = sender.closed() => break,
            };
            if sender.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver)).into_response())
}
