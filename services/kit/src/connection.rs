//! What a part allows its connections: how many may be open at once, and how long one may
//! stay silent.
//!
//! The bound is checked right after accept, before a TLS handshake spends any work on the
//! peer. Silence is measured on what the peer sends: a live HTTP/2 client answers the
//! server's keep-alive pings (sent after `keepalive_interval` without a frame), so it is
//! never silent for long, even while it only waits on a server stream; a peer that never
//! sends the HTTP/2 preface, or an HTTP/1.1 connection left open between requests, is.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

/// The open connections of one part, at most a fixed number.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    part: &'static str,
    permits: Arc<Semaphore>,
}

impl ConnectionLimit {
    /// At most `max` open connections to `part`.
    pub fn new(part: &'static str, max: usize) -> Self {
        Self {
            part,
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// A slot for one more connection, or `None` (counted as refused) when all are taken.
    pub fn try_open(&self) -> Option<Slot> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                crate::metrics::connections_open(self.part, 1);
                Some(Slot {
                    part: self.part,
                    _permit: permit,
                })
            }
            Err(_) => {
                crate::metrics::connection_refused(self.part);
                None
            }
        }
    }
}

/// One open connection's place under its [`ConnectionLimit`], given back when dropped.
#[derive(Debug)]
pub struct Slot {
    part: &'static str,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::metrics::connections_open(self.part, -1);
    }
}

/// An accepted connection: holds its [`Slot`], and fails reads once the peer has sent
/// nothing for the idle timeout, which ends the connection.
#[derive(Debug)]
pub struct Connection<T> {
    // Dropped before `inner`: the slot is free by the time the socket closes, so a peer
    // that sees the close can connect again at once.
    _slot: Slot,
    inner: T,
    idle: Duration,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> Connection<T> {
    /// Wraps `inner`, which holds `slot` and is closed after `idle` without a byte read.
    pub fn new(inner: T, slot: Slot, idle: Duration) -> Self {
        let last_read = Instant::now();
        Self {
            _slot: slot,
            inner,
            idle,
            last_read,
            timer: Box::pin(tokio::time::sleep_until(last_read + idle)),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Pending until the peer has been silent for the idle timeout, then the error to fail
    /// the read with.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = self.last_read + self.idle;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Requests see the wrapped stream's connect info (the gateway reads the client certificate
/// from `TlsConnectInfo<TcpConnectInfo>`).
impl<T: Connected> Connected for Connection<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_bound_refuses_beyond_max_and_frees_on_drop() {
        let limit = ConnectionLimit::new("test", 2);
        let first = limit.try_open();
        let second = limit.try_open();
        assert!(first.is_some() && second.is_some());
        assert!(limit.try_open().is_none());
        drop(first);
        assert!(limit.try_open().is_some());
    }

    #[tokio::test]
    async fn reads_fail_after_silence_and_each_byte_restarts_the_clock() {
        let idle = Duration::from_millis(300);
        let limit = ConnectionLimit::new("test", 1);
        let (server, mut client) = tokio::io::duplex(64);
        let slot = limit.try_open().unwrap();
        let mut connection = Connection::new(server, slot, idle);
        let mut byte = [0u8; 1];

        // Silent for longer than `idle` in all, but never for `idle` at a stretch.
        for letter in [b"a", b"b"] {
            tokio::time::sleep(idle * 2 / 3).await;
            client.write_all(letter).await.unwrap();
            connection.read_exact(&mut byte).await.unwrap();
        }

        let started = Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut byte))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= idle * 2 / 3, "{:?}", started.elapsed());
        assert!(limit.try_open().is_none(), "still open until dropped");
        drop(connection);
        assert!(limit.try_open().is_some());
    }
}
