//! The bound on open API connections (`[server] max_connections`).
//!
//! Every connection costs a socket, a task and its buffers, and a client that opens connections
//! faster than it closes them (a misconfigured PBX pool, a reconnect storm) would otherwise grow
//! them until the process runs out of file descriptors, when accepting fails for everyone. At the
//! limit this listener stops accepting until a connection closes: further clients wait in the
//! kernel's listen backlog, and past it their connection attempts are retried by their TCP stack,
//! as with nginx's `worker_connections` or HAProxy's `maxconn`. Connections already open are
//! served as before. `tierline_http_connections` shows how many are open; reaching the limit is
//! logged at most once every 10 s, with how many times it was reached since the last warning (a
//! storm of short connections reaches it once per connection closed).
//!
//! It never refuses or closes a connection itself, and never counts one twice: the permit travels
//! with the connection's stream and is returned when the stream is dropped. With TLS the limit
//! counts connections whose handshake is done; the TLS listener's own bounds (handshakes in
//! progress, handshaken connections queued for accepting) hold at most a few hundred more.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// A listener that holds at most `max` accepted connections open at once.
pub struct Limited<L> {
    inner: L,
    count: Arc<Count>,
    warnings: Throttle,
}

/// How often reaching the limit is logged, at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Logs a recurring condition at most once per `WARN_EVERY`, counting the times in between.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<tokio::time::Instant>,
    unlogged: u64,
}

impl Throttle {
    /// The condition happened at `now`: `Some(times)` when it is to be logged, counting this
    /// one and those not logged since the last warning.
    fn happened(&mut self, now: tokio::time::Instant) -> Option<u64> {
        self.unlogged += 1;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// The connection limit, shared by the listener and every stream it handed out.
struct Count {
    /// One per connection allowed.
    permits: Arc<Semaphore>,
    max: usize,
    metrics: Metrics,
    /// Set while at the limit, so that an episode counts once (cleared when a connection closes).
    full: AtomicBool,
}

impl<L: Listener> Limited<L> {
    /// `max` is at least 1 (the config validation refuses 0).
    pub fn new(inner: L, max: usize, metrics: Metrics) -> Limited<L> {
        let max = max.max(1);
        metrics.http_connections_max(max);
        Limited {
            inner,
            count: Arc::new(Count {
                permits: Arc::new(Semaphore::new(max)),
                max,
                metrics,
                full: AtomicBool::new(false),
            }),
            warnings: Throttle::default(),
        }
    }
}

impl<L: Listener> Listener for Limited<L> {
    type Io = Counted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match self.count.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !self.count.full.swap(true, Ordering::Relaxed) {
                    if let Some(times) = self.warnings.happened(tokio::time::Instant::now()) {
                        tracing::warn!(
                            max_connections = self.count.max,
                            times_since_last_warning = times,
                            "API connection limit reached: new connections wait until one \
                             closes (logged at most once every 10 s)"
                        );
                    }
                }
                match self.count.permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    // The semaphore is never closed; should it be, accept nothing more.
                    Err(_) => std::future::pending().await,
                }
            }
        };
        let (io, addr) = self.inner.accept().await;
        self.count.metrics.http_connection(true);
        let stream = Counted {
            io,
            _permit: permit,
            count: Arc::clone(&self.count),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection's stream, holding its place under the limit until dropped.
pub struct Counted<Io> {
    io: Io,
    /// Returned to the listener when the stream is dropped (after `drop` below has run).
    _permit: OwnedSemaphorePermit,
    count: Arc<Count>,
}

impl<Io> Drop for Counted<Io> {
    fn drop(&mut self) {
        self.count.full.store(false, Ordering::Relaxed);
        self.count.metrics.http_connection(false);
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::daemon::MetricsConfig;
    use crate::config::RoutingConfig;
    use tokio::net::{TcpListener, TcpStream};

    fn open_gauge(metrics: &Metrics) -> Option<f64> {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("tierline_http_connections "))
            .and_then(|v| v.trim().parse().ok())
    }

    #[tokio::test(start_paused = true)]
    async fn reaching_the_limit_is_logged_at_most_every_ten_seconds_with_a_count() {
        let mut t = Throttle::default();
        let start = tokio::time::Instant::now();
        assert_eq!(t.happened(start), Some(1), "the first time is logged");
        for k in 1..=298u64 {
            let at = start + Duration::from_millis(k);
            assert_eq!(t.happened(at), None, "reached again {k} ms later");
        }
        let later = start + Duration::from_millis(9_999);
        assert_eq!(t.happened(later), None);
        let due = start + WARN_EVERY;
        assert_eq!(t.happened(due), Some(300), "the 299 in between are counted");
        assert_eq!(t.happened(due + WARN_EVERY * 3), Some(1));
    }

    #[tokio::test]
    async fn at_the_limit_the_next_connection_is_accepted_only_when_one_closes() {
        let metrics = Metrics::unserved(&MetricsConfig::default(), &RoutingConfig::empty())
            .expect("a private recorder");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let mut listener = Limited::new(tcp, 2, metrics.clone());
        assert_eq!(open_gauge(&metrics), Some(0.0));
        let max = metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("tierline_http_connections_max "))
            .map(str::trim)
            .map(str::to_string);
        assert_eq!(max.as_deref(), Some("2"));

        let _c1 = TcpStream::connect(addr).await.expect("connect 1");
        let (first, _) = listener.accept().await;
        let _c2 = TcpStream::connect(addr).await.expect("connect 2");
        let (second, _) = listener.accept().await;
        assert_eq!(open_gauge(&metrics), Some(2.0));

        // The third client's connection is complete in the kernel (backlog), but not accepted.
        let _c3 = TcpStream::connect(addr).await.expect("connect 3");
        let mut third = Box::pin(listener.accept());
        assert!(futures::poll!(third.as_mut()).is_pending());
        tokio::task::yield_now().await;
        assert!(futures::poll!(third.as_mut()).is_pending());

        drop(first);
        assert_eq!(open_gauge(&metrics), Some(1.0));
        let (third, _) = third.await;
        assert_eq!(open_gauge(&metrics), Some(2.0));
        drop(second);
        drop(third);
        assert_eq!(open_gauge(&metrics), Some(0.0));
    }
}
