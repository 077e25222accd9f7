//! The API's HTTP server: hyper-util's connection builder (HTTP/1.1, and h2 by preface or ALPN)
//! over the connection-limited listener, with an idle watchdog on every connection.
//!
//! Not `axum::serve`: that sets no timer on hyper's connections, so a client that connects and
//! sends nothing, half a request line, or part of an HTTP/2 preface, or keeps an h2 connection
//! open without using it, holds a slot of `max_connections` for ever.
//!
//! Here each connection counts the requests it is answering (a request counts from the moment
//! its head is handed to the router until its response body has been sent or dropped, so an
//! SSE stream or a long-poll counts for as long as it runs). Once that count has been zero for
//! `[server] idle_timeout_ms`, the connection is shut down gracefully: a connection still
//! sniffing its protocol is dropped, an HTTP/1.1 one closes, an h2 one is sent GOAWAY. Should
//! the peer not let it close (an h2 client that never acknowledges the GOAWAY's ping), it is
//! dropped after a further idle period. hyper's own header-read timeout (the same duration)
//! still bounds a slow HTTP/1.1 request head.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::shutdown::Shutdown;

/// Serve `app` on `listener` until shutdown, then let open connections finish the requests they
/// are answering (`supervise` bounds that wait by `shutdown_grace_ms`).
pub(super) fn spawn_http<L>(
    mut listener: L,
    app: axum::Router,
    shutdown: &Shutdown,
    idle_timeout: Duration,
) -> JoinHandle<io::Result<()>>
where
    L: axum::serve::Listener,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;

    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(idle_timeout);
        builder.http2().timer(TokioTimer::new());
        // The connection tasks, owned here: when the daemon's grace period ends it aborts this
        // task, and dropping the set aborts every connection still open with it.
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (io, _addr) = tokio::select! {
                accepted = listener.accept() => accepted,
                // Reap ended connections so the set holds only open ones.
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                () = shutdown.wait() => break,
            };
            let activity = Activity::new();
            let service = counted_service(app.clone(), Arc::clone(&activity));
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
                .into_owned();
            let shutdown = shutdown.clone();
            conns.spawn(async move {
                let conn = pin!(conn);
                let graceful = |c: Pin<&mut _>| {
                    hyper_util::server::conn::auto::UpgradeableConnection::graceful_shutdown(c)
                };
                if let Err(e) = drive(conn, graceful, &activity, &shutdown, idle_timeout).await {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
            });
        }
        // Stop accepting (the listener closes), then wait for the connections to finish.
        drop(listener);
        while conns.join_next().await.is_some() {}
        Ok(())
    })
}

/// Run one connection to its end: shut it down gracefully when the daemon stops or when it has
/// answered nothing for `idle`; drop it if, shut down for idleness, it stays idle for another
/// `idle` without closing.
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    graceful_shutdown: impl Fn(Pin<&mut C>),
    activity: &Activity,
    shutdown: &Shutdown,
    idle: Duration,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let (mut stopping, mut idle_closing) = (false, false);
    let mut idle_timer = pin!(activity.idle_for(idle));
    loop {
        tokio::select! {
            done = conn.as_mut() => return done,
            () = shutdown.wait(), if !stopping => {
                stopping = true;
                if !idle_closing {
                    graceful_shutdown(conn.as_mut());
                }
            }
            () = idle_timer.as_mut() => {
                idle_timer.set(activity.idle_for(idle));
                if idle_closing {
                    tracing::debug!("an idle connection did not close when asked: dropped");
                    return Ok(());
                }
                idle_closing = true;
                if !stopping {
                    graceful_shutdown(conn.as_mut());
                }
            }
        }
    }
}

/// One connection's requests in flight, and when the last one ended. Requests only touch
/// atomics (and wake nobody unless the watchdog waits for the last one to end): the watchdog's
/// timer is re-armed when it expires, not on every request.
pub(super) struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    /// Nanoseconds after `base` when a request last ended (0: none yet).
    last_end_ns: AtomicU64,
    /// Signalled when the count falls to zero.
    all_done: Notify,
}

impl Activity {
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end_ns: AtomicU64::new(0),
            all_done: Notify::new(),
        })
    }

    /// Count a request in flight until the guard is dropped.
    pub(super) fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Resolve once no request has been in flight for `idle` (counted from when this is called,
    /// or from the end of the last request, whichever is later).
    pub(super) async fn idle_for(&self, idle: Duration) {
        let mut deadline = Instant::now() + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            let done = self.all_done.notified();
            let mut done = pin!(done);
            done.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                done.await;
            }
            let since = self.base + Duration::from_nanos(self.last_end_ns.load(Ordering::SeqCst));
            if since + idle <= Instant::now() && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            deadline = deadline.max(since + idle);
        }
    }
}

/// One request in flight, until dropped.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ended = u64::try_from(a.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        a.last_end_ns.fetch_max(ended, Ordering::SeqCst);
        if a.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            a.all_done.notify_waiters();
        }
    }
}

/// The router as a hyper service that counts its requests in flight on `activity`.
fn counted_service(
    app: axum::Router,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<hyper::Response<Body>, std::convert::Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    use tower::ServiceExt;
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let guard = activity.enter();
        let answer = app.clone().oneshot(req.map(Body::new));
        async move {
            let response = answer.await?;
            Ok(response.map(|body| {
                Body::new(Guarded {
                    body,
                    _guard: guard,
                })
            }))
        }
    })
}

/// A response body that keeps its request counted until hyper has sent or dropped it.
struct Guarded {
    body: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In virtual time: idle resolves `idle` after the last request ended, never while one is
    /// in flight, and a request that starts and ends restarts the clock.
    #[tokio::test(start_paused = true)]
    async fn idleness_is_counted_from_the_last_request_and_never_during_one() {
        let idle = Duration::from_secs(30);
        let activity = Activity::new();

        let start = Instant::now();
        activity.idle_for(idle).await;
        assert_eq!(
            start.elapsed(),
            idle,
            "a connection that never asked anything"
        );

        // A request that lasts 100 s (an SSE stream), then a quick one at 120 s.
        let busy = activity.enter();
        let start = Instant::now();
        let a = Arc::clone(&activity);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
            drop(busy);
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(a.enter());
        });
        activity.idle_for(idle).await;
        assert_eq!(start.elapsed(), Duration::from_secs(150));

        // Requests that come and go within each idle period keep the connection.
        let start = Instant::now();
        let a = Arc::clone(&activity);
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                drop(a.enter());
            }
        });
        activity.idle_for(idle).await;
        assert_eq!(start.elapsed(), Duration::from_secs(130));
    }

    /// A connection that never finishes (a peer that ignores GOAWAY): asked to shut down after
    /// `idle`, dropped after a second `idle`; asked once only, even when the daemon stops too.
    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_that_will_not_close_is_asked_once_then_dropped() {
        let idle = Duration::from_secs(30);
        let activity = Activity::new();
        let asked = AtomicUsize::new(0);
        let shutdown = Shutdown::new();
        let stop_later = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(40)).await;
            stop_later.trigger();
        });
        let never = pin!(std::future::pending::<Result<(), io::Error>>());
        let start = Instant::now();
        let ended = drive(
            never,
            |_| {
                asked.fetch_add(1, Ordering::Relaxed);
            },
            &activity,
            &shutdown,
            idle,
        )
        .await;
        assert!(ended.is_ok());
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        // Asked at 30 s; the daemon's stop at 40 s asks nothing more; dropped at 60 s.
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
