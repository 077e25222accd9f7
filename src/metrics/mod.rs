//! Prometheus metrics and KPI statistics.
//!
//! Owns: the Prometheus recorder and its `/metrics` listener ([`Metrics`], made by [`install`]),
//! the engine-side [`Telemetry`] that turns engine facts and views into series, KPI windows and
//! the per-queue figures since start ([`QueueTally`], `GET /v1/queues`), and the KPI reports
//! ([`QueueStats`], [`AgentStats`]).
//!
//! Must never: read the engine's state other than through its views and per-queue loads
//! (`Engine::queue_load`, for the queues `Engine::take_changed_queues` lists), hold a lock across I/O,
//! create a series per interaction, or let memory grow with traffic (every window is a bounded
//! ring). Per-agent series exist only with `[metrics] per_agent = true`.
//!
//! Who calls what: the engine task owns one `Telemetry` (no locks on that path) and calls
//! [`Telemetry::observe`] after every batch of events and timers. HTTP handlers, the subscriber
//! dispatcher and the reload path share the cheap clonable [`Metrics`] handle and call its
//! helpers. Series that depend on the clock (oldest wait, agent state seconds) are brought
//! up to date at scrape time, on the engine's clock, from what the last batch published, so a
//! quiet queue's longest wait still grows on the wallboard while the engine sleeps.

pub mod catalog;
mod live;
mod series;
pub mod since_start;
pub mod stats;
mod telemetry;
mod upkeep;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use thiserror::Error;

use crate::config::daemon::MetricsConfig;
use crate::config::{Millis, RoutingConfig};

pub use live::Board;
pub use since_start::QueueTally;
pub use stats::{AgentStats, QueueStats, StatsError};
pub use telemetry::{RoutingState, Telemetry};

/// Why the metrics listener could not start.
#[derive(Debug, Error)]
pub enum MetricsError {
    #[error(
        "[metrics] listen = `{listen}` is not a socket address (e.g. 127.0.0.1:9464): {message}"
    )]
    BadListen { listen: String, message: String },
    #[error("cannot listen for /metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics::install must run inside a tokio runtime (it spawns the /metrics listener)")]
    NoRuntime,
    #[error("histogram buckets for `{metric}` were refused: {message}")]
    Buckets {
        metric: &'static str,
        message: String,
    },
}

/// How a delivery to a subscriber ended (`tierline_subscriber_deliveries_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The subscriber answered 2xx.
    Delivered,
    /// An attempt failed (it may be retried; each attempt counts).
    Failed,
    /// Given up after the last retry, or dropped because the subscriber's buffer was full.
    Dropped,
}

impl DeliveryResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "ok",
            DeliveryResult::Failed => "failed",
            DeliveryResult::Dropped => "dropped",
        }
    }
}

/// The clock a scrape measures clock-dependent series on (engine time, in milliseconds).
type ScrapeClock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// Histogram samples are buffered lock-free by the exporter until drained; draining every this
/// many samples keeps that buffer bounded even when nobody scrapes (no timer needed).
const UPKEEP_EVERY_SAMPLES: u64 = 4096;

/// Whether this process already installed a global recorder (the first `install` does).
static GLOBAL_INSTALLED: AtomicBool = AtomicBool::new(false);

static METADATA: Metadata<'static> =
    Metadata::new("tierline", Level::INFO, Some("tierline::metrics"));

/// The shared metrics handle: a Prometheus recorder of its own, optionally served on
/// `[metrics] listen`. Cheap to clone; every clone records into the same recorder.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    recorder: Arc<PrometheusRecorder>,
    prometheus: PrometheusHandle,
    per_agent: bool,
    is_global: bool,
    /// Wall-clock-dependent series, published by `Telemetry` after each batch and completed at
    /// scrape time. The only lock here: held for O(queues) copies, never across I/O.
    board: Mutex<Board>,
    samples_since_upkeep: AtomicU64,
    /// Where the buffers are drained (`upkeep`: a thread of its own).
    upkeep: upkeep::Upkeep,
    local_addr: Option<SocketAddr>,
    server: OnceLock<tokio::task::AbortHandle>,
    event_queue_depth: Gauge,
    http_connections: Gauge,
    decision: Histogram,
    timer_lateness: Histogram,
    journal_sync: Histogram,
    /// The bucket bounds `tierline_wait_seconds` was built with (fixed for the recorder's life).
    wait_buckets: Vec<f64>,
    /// The engine's clock, once the daemon set it ([`Metrics::set_clock`]); the wall clock
    /// before that.
    clock: RwLock<Option<ScrapeClock>>,
    /// The HTTP series' handles by route template, so an answer costs a map lookup instead of
    /// building labels and looking the series up in the registry. Bounded: the keys are the
    /// router's templates (plus `unmatched`), each with the statuses it answered.
    http: RwLock<HashMap<Box<str>, RouteSeries>>,
}

/// `tierline_http_request_seconds{route}` and `tierline_http_requests_total{route,status}` of
/// one route template.
struct RouteSeries {
    seconds: Histogram,
    by_status: Vec<(u16, Counter)>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(server) = self.server.get() {
            server.abort();
        }
    }
}

/// Build the recorder for `routing` (buckets include every queue's `sla_s`), serve `GET
/// /metrics` on `cfg.listen`, and return the handle.
///
/// May be called more than once per process (tests start several daemons): each call gets its
/// own recorder and listener; only the first also becomes the process-wide `metrics` recorder, so
/// `metrics::counter!` used anywhere lands in it. The listener stops when the last clone of the
/// handle is dropped. A `listen` port of 0 picks a free port ([`Metrics::local_addr`]).
pub fn install(cfg: &MetricsConfig, routing: &RoutingConfig) -> Result<Metrics, MetricsError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| MetricsError::NoRuntime)?;
    let addr: SocketAddr =
        cfg.listen
            .parse()
            .map_err(|e: std::net::AddrParseError| MetricsError::BadListen {
                listen: cfg.listen.clone(),
                message: e.to_string(),
            })?;
    let bind = |addr| -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    let std_listener = bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = std_listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let listener = {
        let _enter = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener)
            .map_err(|source| MetricsError::Bind { addr, source })?
    };

    let (recorder, wait_buckets) = build_recorder(routing)?;
    let recorder = Arc::new(recorder);
    let is_global = !GLOBAL_INSTALLED.swap(true, Ordering::SeqCst)
        && metrics::set_global_recorder(Arc::clone(&recorder)).is_ok();
    let metrics = Metrics::from_recorder(
        recorder,
        wait_buckets,
        cfg.per_agent,
        is_global,
        Some(local_addr),
    );
    let task = runtime.spawn(serve(listener, Arc::downgrade(&metrics.shared)));
    // A fresh OnceLock: `set` cannot fail here.
    let _ = metrics.shared.server.set(task.abort_handle());
    Ok(metrics)
}

impl Metrics {
    /// A private recorder with no listener and no global install: for tests, the simulator and
    /// tools that render the text themselves.
    pub fn unserved(cfg: &MetricsConfig, routing: &RoutingConfig) -> Result<Metrics, MetricsError> {
        let (recorder, wait_buckets) = build_recorder(routing)?;
        Ok(Metrics::from_recorder(
            Arc::new(recorder),
            wait_buckets,
            cfg.per_agent,
            false,
            None,
        ))
    }

    /// The bucket bounds of `tierline_wait_seconds`, in seconds: fixed when the recorder was
    /// built (a reload cannot add one).
    pub fn wait_buckets(&self) -> &[f64] {
        &self.shared.wait_buckets
    }

    fn from_recorder(
        recorder: Arc<PrometheusRecorder>,
        wait_buckets: Vec<f64>,
        per_agent: bool,
        is_global: bool,
        local_addr: Option<SocketAddr>,
    ) -> Metrics {
        for (name, help) in catalog::HELP {
            let unit = name.ends_with("_seconds").then_some(Unit::Seconds);
            // The exporter keys descriptions by name only; the kind does not matter here.
            recorder.describe_counter((*name).into(), unit, (*help).into());
        }
        let reg = |name: &'static str| Key::from_name(name);
        let event_queue_depth =
            recorder.register_gauge(&reg(catalog::EVENT_QUEUE_DEPTH), &METADATA);
        let http_connections = recorder.register_gauge(&reg(catalog::HTTP_CONNECTIONS), &METADATA);
        let decision = recorder.register_histogram(&reg(catalog::DECISION), &METADATA);
        let timer_lateness = recorder.register_histogram(&reg(catalog::TIMER_LATENESS), &METADATA);
        let journal_sync = recorder.register_histogram(&reg(catalog::JOURNAL_SYNC), &METADATA);
        let prometheus = recorder.handle();
        let upkeep = {
            let handle = prometheus.clone();
            upkeep::Upkeep::start(Arc::new(move || handle.run_upkeep()))
        };
        let metrics = Metrics {
            shared: Arc::new(Shared {
                recorder,
                prometheus,
                per_agent,
                is_global,
                board: Mutex::new(Board::default()),
                samples_since_upkeep: AtomicU64::new(0),
                upkeep,
                local_addr,
                server: OnceLock::new(),
                event_queue_depth,
                http_connections,
                decision,
                timer_lateness,
                journal_sync,
                wait_buckets,
                clock: RwLock::default(),
                http: RwLock::default(),
            }),
        };
        metrics
            .gauge(
                catalog::BUILD_INFO,
                &[("version", env!("CARGO_PKG_VERSION"))],
            )
            .set(1.0);
        metrics.shared.event_queue_depth.set(0.0);
        metrics.shared.http_connections.set(0.0);
        for result in ["ok", "rejected"] {
            metrics
                .counter(catalog::CONFIG_RELOADS, &[("result", result)])
                .increment(0);
        }
        // At 0 from the start, so an alert on `increase()` sees the first failure.
        metrics
            .counter(catalog::JOURNAL_APPEND_FAILURES, &[])
            .increment(0);
        metrics
    }

    /// Where `/metrics` is served (`None` for [`Metrics::unserved`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Whether this handle's recorder is the process-wide `metrics` recorder.
    pub fn is_global(&self) -> bool {
        self.shared.is_global
    }

    /// Whether per-agent series are enabled (`[metrics] per_agent`).
    pub fn per_agent(&self) -> bool {
        self.shared.per_agent
    }

    /// Measure clock-dependent series (oldest wait, agent-seconds) on `clock` at every scrape:
    /// the daemon's engine clock, which stamped the times they are computed from. It may run
    /// ahead of the wall clock (engine time resumes from the journal, NTP steps the wall clock
    /// back) or behind it, and a wait measured across the two clocks would be off by the gap.
    pub fn set_clock(&self, clock: impl Fn() -> Millis + Send + Sync + 'static) {
        *self
            .shared
            .clock
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(clock));
    }

    /// Now on the clock set by [`Metrics::set_clock`], else on the wall clock.
    fn now(&self) -> Millis {
        let clock = self
            .shared
            .clock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match clock {
            Some(clock) => clock(),
            None => wall_clock_ms(),
        }
    }

    /// The exposition text, with clock-dependent series brought up to now on the engine's clock
    /// ([`Metrics::set_clock`]; the wall clock when none was set).
    pub fn render(&self) -> String {
        self.render_at(self.now())
    }

    /// The exposition text with clock-dependent series computed for time `now` (engine time:
    /// virtual milliseconds in tests and the simulator).
    pub fn render_at(&self, now: Millis) -> String {
        self.board().publish(now);
        self.shared.samples_since_upkeep.store(0, Ordering::Relaxed);
        self.shared.prometheus.render()
    }

    /// `tierline_http_requests_total{route,status}` and `tierline_http_request_seconds{route}`.
    /// `route` must be the route template (axum's `MatchedPath`, e.g. `/v1/agents/{id}/stats`),
    /// never the raw path: ids in labels would make cardinality unbounded.
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        {
            let routes = self
                .shared
                .http
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = routes.get(route) {
                if let Some((_, counter)) = series.by_status.iter().find(|(s, _)| *s == status) {
                    counter.increment(1);
                    series.seconds.record(seconds);
                    self.note_samples(1);
                    return;
                }
            }
        }
        // First answer of this route with this status: register the series once.
        let mut routes = self
            .shared
            .http
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let series = routes.entry(route.into()).or_insert_with(|| RouteSeries {
            seconds: self.histogram_owned(
                catalog::HTTP_REQUEST_SECONDS,
                vec![Label::new("route", route.to_string())],
            ),
            by_status: Vec::new(),
        });
        let counter = match series.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.clone(),
            None => {
                let counter = self.counter_owned(
                    catalog::HTTP_REQUESTS,
                    vec![
                        Label::new("route", route.to_string()),
                        Label::new("status", status.to_string()),
                    ],
                );
                series.by_status.push((status, counter.clone()));
                counter
            }
        };
        counter.increment(1);
        series.seconds.record(seconds);
        drop(routes);
        self.note_samples(1);
    }

    /// `tierline_event_queue_depth`: commands waiting for the engine task.
    pub fn event_queue_depth(&self, depth: usize) {
        self.shared.event_queue_depth.set(depth as f64);
    }

    /// `tierline_decision_seconds`: engine time spent on one event (or one timer batch).
    pub fn decision_time(&self, elapsed: Duration) {
        self.shared.decision.record(elapsed.as_secs_f64());
        self.note_samples(1);
    }

    /// `tierline_timer_lateness_seconds`: how long after its deadline a timer fired.
    pub fn timer_lateness(&self, late: Duration) {
        self.shared.timer_lateness.record(late.as_secs_f64());
        self.note_samples(1);
    }

    /// `tierline_http_connections`: one API connection opened (`true`) or closed. An atomic
    /// add, so connections opening and closing on different threads never leave a stale count.
    pub fn http_connection(&self, opened: bool) {
        if opened {
            self.shared.http_connections.increment(1.0);
        } else {
            self.shared.http_connections.decrement(1.0);
        }
    }

    /// `tierline_feed_readers`: the feed readers holding a place now (waiting long-polls, open
    /// SSE streams); the handle, kept by `api::readers` and set as places are taken.
    pub fn feed_readers(&self) -> Gauge {
        self.gauge(catalog::FEED_READERS, &[])
    }

    /// `tierline_feed_readers_max`: the feed reader limit in force.
    pub fn feed_readers_max(&self, max: usize) {
        self.gauge(catalog::FEED_READERS_MAX, &[]).set(max as f64);
    }

    /// `tierline_http_connections_max`: the connection limit in force.
    pub fn http_connections_max(&self, max: usize) {
        self.gauge(catalog::HTTP_CONNECTIONS_MAX, &[])
            .set(max as f64);
    }

    /// `tierline_journal_sync_seconds`: one fdatasync on the sync thread.
    pub fn journal_sync(&self, elapsed: Duration) {
        self.shared.journal_sync.record(elapsed.as_secs_f64());
        self.note_samples(1);
    }

    /// `tierline_subscriber_deliveries_total{subscriber,result}`.
    pub fn subscriber_delivery(&self, subscriber: &str, result: DeliveryResult) {
        self.counter_owned(
            catalog::SUBSCRIBER_DELIVERIES,
            vec![
                Label::new("subscriber", subscriber.to_string()),
                Label::new("result", result.as_str()),
            ],
        )
        .increment(1);
    }

    /// `tierline_subscriber_acked_seq{subscriber}`: the last decision it acknowledged (or, after
    /// falling behind the log, the one before the oldest it resumed from).
    pub fn subscriber_acked(&self, subscriber: &str, seq: u64) {
        self.gauge(catalog::SUBSCRIBER_ACKED_SEQ, &[("subscriber", subscriber)])
            .set(seq as f64);
    }

    /// A subscriber removed by a config change: its `tierline_subscriber_acked_seq` reads NaN
    /// (the exporter keeps a series once made; a frozen seq would read as a lag growing for
    /// ever).
    pub fn subscriber_gone(&self, subscriber: &str) {
        self.gauge(catalog::SUBSCRIBER_ACKED_SEQ, &[("subscriber", subscriber)])
            .set(f64::NAN);
    }

    /// `tierline_tls_certificate_not_after_seconds`: when the certificate chain in force
    /// expires; NaN when its dates could not be read (rather than an earlier certificate's).
    pub fn tls_not_after(&self, unix_seconds: Option<i64>) {
        self.gauge(catalog::TLS_NOT_AFTER, &[])
            .set(unix_seconds.map_or(f64::NAN, |t| t as f64));
    }

    /// `tierline_journal_append_failures_total`: one batch the journal could not write.
    pub fn journal_append_failed(&self) {
        self.counter(catalog::JOURNAL_APPEND_FAILURES, &[])
            .increment(1);
    }

    /// `tierline_events_refused_total{code}`: `n` events of `POST /v1/events` refused, by their
    /// error code (the engine's, the engine task's, or an event's own fields).
    pub fn events_refused(&self, code: &str, n: u64) {
        self.counter(catalog::EVENTS_REFUSED, &[("code", code)])
            .increment(n);
    }

    /// `tierline_config_reloads_total{result}`: `ok` or `rejected`.
    pub fn config_reload(&self, applied: bool) {
        let result = if applied { "ok" } else { "rejected" };
        self.counter(catalog::CONFIG_RELOADS, &[("result", result)])
            .increment(1);
    }

    pub(crate) fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.counter_owned(name, to_labels(labels))
    }

    pub(crate) fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        let key = Key::from_parts(name, to_labels(labels));
        self.shared.recorder.register_gauge(&key, &METADATA)
    }

    pub(crate) fn histogram(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        self.histogram_owned(name, to_labels(labels))
    }

    fn counter_owned(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        let key = Key::from_parts(name, labels);
        self.shared.recorder.register_counter(&key, &METADATA)
    }

    fn histogram_owned(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        let key = Key::from_parts(name, labels);
        self.shared.recorder.register_histogram(&key, &METADATA)
    }

    /// Count histogram samples and have the exporter's buffers drained every
    /// `UPKEEP_EVERY_SAMPLES`, on the drain thread (`upkeep`), not on the recording one.
    pub(crate) fn note_samples(&self, n: u64) {
        let before = self
            .shared
            .samples_since_upkeep
            .fetch_add(n, Ordering::Relaxed);
        if before + n >= UPKEEP_EVERY_SAMPLES {
            self.shared.samples_since_upkeep.store(0, Ordering::Relaxed);
            self.shared.upkeep.ask();
        }
    }

    pub(crate) fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        // A panic while holding the board cannot leave it inconsistent in a harmful way: every
        // value in it is republished whole by the next batch.
        self.shared
            .board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn to_labels(labels: &[(&'static str, &str)]) -> Vec<Label> {
    labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect()
}

/// The recorder, and the bucket bounds of `tierline_wait_seconds` it was built with.
fn build_recorder(routing: &RoutingConfig) -> Result<(PrometheusRecorder, Vec<f64>), MetricsError> {
    let mut builder = PrometheusBuilder::new();
    let mut wait_buckets = Vec::new();
    for (metric, bounds) in catalog::histogram_buckets(routing) {
        if metric == catalog::WAIT {
            wait_buckets.clone_from(&bounds);
        }
        builder = builder
            .set_buckets_for_metric(Matcher::Full(metric.to_string()), &bounds)
            .map_err(|e| MetricsError::Buckets {
                metric,
                message: e.to_string(),
            })?;
    }
    Ok((builder.build_recorder(), wait_buckets))
}

/// Unix milliseconds from the system clock. The daemon's engine time starts from it but is its
/// own (monotonic, and never behind the journal): scrapes of a daemon use that one instead.
pub fn wall_clock_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

async fn serve(listener: tokio::net::TcpListener, shared: Weak<Shared>) {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    async fn scrape(
        axum::extract::State(shared): axum::extract::State<Weak<Shared>>,
    ) -> axum::response::Response {
        match shared.upgrade() {
            Some(shared) => {
                let text = Metrics { shared }.render();
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
                    .into_response()
            }
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the daemon is shutting down",
            ),
        }
    }

    async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "no route {}: the metrics listener serves only GET /metrics",
                uri.path()
            ),
        )
    }

    async fn method_not_allowed(method: axum::http::Method) -> axum::response::Response {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} /metrics: the metrics listener serves only GET (and HEAD) /metrics"),
        );
        response.headers_mut().insert(
            header::ALLOW,
            axum::http::HeaderValue::from_static("GET,HEAD"),
        );
        response
    }

    fn error(status: StatusCode, code: &str, message: &str) -> axum::response::Response {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        (status, axum::Json(body)).into_response()
    }

    let app = axum::Router::new()
        .route("/metrics", get(scrape))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the /metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series` in a rendered page.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn http_answers_count_per_route_and_status_from_the_cached_handles() {
        let metrics = Metrics::unserved(&Default::default(), &RoutingConfig::empty()).unwrap();
        for _ in 0..3 {
            metrics.http_request("/v1/events", 200, Duration::from_micros(300));
        }
        metrics.http_request("/v1/events", 422, Duration::from_micros(100));
        metrics.http_request("/v1/queues/{id}", 200, Duration::from_millis(2));
        metrics.http_request("/v1/events", 200, Duration::from_micros(300));
        let text = metrics.render();
        let total = |route: &str, status: &str| {
            value(
                &text,
                &format!("tierline_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
            )
        };
        assert_eq!(total("/v1/events", "200"), Some(4.0), "{text}");
        assert_eq!(total("/v1/events", "422"), Some(1.0));
        assert_eq!(total("/v1/queues/{id}", "200"), Some(1.0));
        assert_eq!(total("/v1/queues/{id}", "422"), None);
        assert_eq!(
            value(
                &text,
                "tierline_http_request_seconds_count{route=\"/v1/events\"}"
            ),
            Some(5.0)
        );
        // One series per route template, not one per answer.
        assert_eq!(metrics.shared.http.read().unwrap().len(), 2);
    }
}
