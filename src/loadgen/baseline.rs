//! The bare-hyper baseline: the cheapest possible answer to `POST /v1/events` on this machine.
//!
//! Same stack as the daemon minus everything tierline does (hyper 1.x through hyper-util's
//! HTTP/1+2 connection builder, a multi-thread tokio runtime (tokio's default worker count unless
//! `--workers`), no
//! TCP_NODELAY on accepted sockets, as `axum::serve` does by default). It reads each request body
//! in full (so the bytes cost the same to receive) and answers a fixed small JSON body. Its
//! throughput and latency are the denominator of the ratios we publish, because absolute numbers
//! drift on a shared machine. It must never do per-request work beyond that.

use std::convert::Infallible;
use std::future::Future;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What every `POST` is answered with: one applied result without decisions.
pub const ANSWER: &[u8] = br#"{"results":[{"id":"baseline","status":"applied","decisions":[]}]}"#;

fn json(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST {
        return Ok(json(
            StatusCode::METHOD_NOT_ALLOWED,
            br#"{"error":{"code":"method_not_allowed","message":"the baseline server answers POST only"}}"#,
        ));
    }
    match request.into_body().collect().await {
        Ok(_) => Ok(json(StatusCode::OK, ANSWER)),
        Err(_) => Ok(json(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":"body_unreadable","message":"the request body could not be read"}}"#,
        )),
    }
}

/// Serve on `listener` until `shutdown` completes; open connections are dropped then.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: the next accept may succeed.
                Err(e) => {
                    tracing::warn!("baseline accept failed: {e}");
                    continue;
                }
            },
        };
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

/// The `baseline-server` command: serve on `listen` until Ctrl-C or SIGTERM, on `workers`
/// worker threads (0 = tokio's default, one per CPU).
pub fn main(listen: &str, workers: usize) -> ExitCode {
    let runtime = match crate::multi_thread_runtime(workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        // An IP or a host name (`localhost:8081`), as `[server] listen` takes.
        if !crate::config::is_host_port(listen) {
            crate::report!(
                "--listen `{listen}` is not host:port (e.g. 127.0.0.1:8081 or localhost:8081)"
            );
            return ExitCode::from(2);
        }
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                crate::report!("cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Scripts read the address from stdout; with stdout closed the server still serves.
        let shown = match listener.local_addr() {
            Ok(a) => a.to_string(),
            Err(_) => listen.to_string(),
        };
        let _ = crate::write_stdout(&format!("baseline server listening on http://{shown}\n"));
        serve(listener, stop_signal()).await;
        ExitCode::SUCCESS
    })
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
