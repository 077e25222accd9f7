//! The layer every request passes first: it counts the answer by route template and status,
//! turns any error answer that is not already our JSON error body into one, and logs failures.
//!
//! One hand-written tower layer instead of three (`from_fn` request counting, `TraceLayer`,
//! `from_fn` JSON errors): each `from_fn` boxed and cloned the inner service per request, and
//! `TraceLayer` built a span and wrapped the body of every answer. Together they were ≈ 15 % of
//! the daemon's CPU under load. A request now costs one clock read, a lookup of cached metric
//! handles (`Metrics::http_request`) and one boxed future; only error answers take the slow path
//! (`error::into_json_error`). Every request is logged at DEBUG when it arrives and when it is
//! answered (`RUST_LOG=tierline::api::edge=debug`), server errors at ERROR.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

use crate::metrics::Metrics;

use super::error::into_json_error;
use super::UNMATCHED_ROUTE;

/// Wraps a service in [`Edge`]. Outermost, so the status it counts is the one the client gets.
#[derive(Clone)]
pub struct EdgeLayer {
    metrics: Metrics,
}

impl EdgeLayer {
    pub fn new(metrics: Metrics) -> EdgeLayer {
        EdgeLayer { metrics }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The route template, never the raw path (ids in labels would grow the series count).
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        tracing::debug!(%method, path = request.uri().path(), "started processing request");
        let started = Instant::now();
        let answer = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let Ok(mut response) = answer.await;
            let status = response.status();
            if status.is_client_error() || status.is_server_error() {
                response = into_json_error(response).await;
            }
            let elapsed = started.elapsed();
            let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            metrics.http_request(route, status.as_u16(), elapsed);
            if status.is_server_error() {
                tracing::error!(
                    %method,
                    route,
                    status = status.as_u16(),
                    latency_us = elapsed.as_micros() as u64,
                    "request failed"
                );
            } else {
                tracing::debug!(
                    %method,
                    route,
                    status = status.as_u16(),
                    latency_us = elapsed.as_micros() as u64,
                    "request answered"
                );
            }
            Ok(response)
        })
    }
}
