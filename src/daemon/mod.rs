//! The long-running service around the engine: the engine task, its clock, live reload, the
//! config file watch, signals and shutdown.
//!
//! `Daemon::start` wires it together: one engine task owns the `Core` and the metrics
//! `Telemetry`; the HTTP API (`crate::api`) and the outbound webhook subscribers talk to it
//! through an `EngineHandle` and record their own series on the shared `Metrics` handle. SIGTERM/SIGINT stop
//! accepting, let in-flight requests finish within `[server] shutdown_grace_ms`, then stop the
//! engine task; SIGHUP reloads the config file and the TLS certificate. This module never makes a
//! routing decision itself.

pub mod clock;
pub mod commit;
pub mod core;
pub mod decision_log;
pub mod durable;
mod http;
pub mod idempotency;
pub mod preview;
pub mod reload;
pub mod shutdown;
pub mod subscribers;
pub mod task;
mod timed_input;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::auth::AuthKeys;
use crate::api::connections::Limited;
use crate::api::secret::SecretError;
use crate::api::subscriber::{self, Subscriber};
use crate::api::tls::{TlsCell, TlsError, TlsListener};
use crate::api::{self, AppState, Shared};
use crate::config::daemon::AuthConfig;
use crate::config::{DaemonConfig, LoadedConfig};
use crate::metrics::{Metrics, MetricsError, Telemetry};
use subscribers::{SubscriberContext, Subscribers};

use self::clock::Clock;
use self::core::{Core, Input};
use self::http::spawn_http;
use self::reload::{ReloadError, ReloadReport, Reloader};
use self::shutdown::Shutdown;
use self::task::{EngineHandle, EngineTask, FactObserver, InputSink, NoJournal};

/// Reads an environment variable (injectable so tests need not mutate the process environment).
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_env() -> EnvFn {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// Everything `Daemon::start` needs.
pub struct DaemonOptions {
    pub config: LoadedConfig,
    /// The file it came from: SIGHUP and the watch reload it.
    pub config_path: Option<PathBuf>,
    /// Watch `config_path` for changes.
    pub watch_config: bool,
    /// `None`: start at the current wall-clock time.
    pub clock: Option<Clock>,
    pub env: EnvFn,
    pub sink: Box<dyn InputSink>,
    pub observer: Option<Box<dyn FactObserver>>,
    /// Where the series go: `metrics::install` for a served `/metrics` (what `tierline serve`
    /// does). `None`: a private recorder nobody serves (`Metrics::unserved`), so tests and tools
    /// that start several daemons never fight over `[metrics] listen`; the KPI endpoints work
    /// either way.
    pub metrics: Option<Metrics>,
    /// Journal directory: recover the state from it and journal every input before applying
    /// it (`sink` is then unused). `None`: no durability (tests, simulations).
    pub journal_dir: Option<PathBuf>,
    /// How the `tierline-sync` thread makes the journal durable: `None` is fdatasync(2). Not a
    /// config setting: tests inject a failing one here to exercise the fatal sync path.
    pub journal_sync: Option<Box<dyn commit::FileSync>>,
}

impl DaemonOptions {
    /// Defaults: no file, no watch, the process environment, no journal, no observer, unserved
    /// metrics.
    pub fn new(config: LoadedConfig) -> DaemonOptions {
        DaemonOptions {
            config,
            config_path: None,
            watch_config: false,
            clock: None,
            env: process_env(),
            sink: Box::new(NoJournal),
            observer: None,
            metrics: None,
            journal_dir: None,
            journal_sync: None,
        }
    }
}

/// What `check_secrets` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SecretsCheck {
    /// One message per setting that cannot be read or used: `serve` would not start.
    pub problems: Vec<String>,
    /// What `serve` warns about at start and still starts with: a TLS certificate that expired,
    /// is not yet valid or expires within 14 days (`TlsCell::report`).
    pub warnings: Vec<String>,
}

/// Every secret and TLS file `config` names, read as `serve` reads them at start (`env` is the
/// environment: `std::env::var`; `now_ms` the wall clock, which clients judge the certificate's
/// dates by). Nothing is kept. `tierline check-config --secrets` runs it where the daemon runs.
pub fn check_secrets(config: &DaemonConfig, env: &EnvFn, now_ms: u64) -> SecretsCheck {
    let lookup = |var: &str| env(var);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let auth = &config.auth;
    // One `[auth]` pair at a time, so each unreadable one is reported, not only the first.
    let pairs = [
        AuthConfig {
            webhook_secrets_env: auth.webhook_secrets_env.clone(),
            webhook_secrets_file: auth.webhook_secrets_file.clone(),
            ..AuthConfig::default()
        },
        AuthConfig {
            read_tokens_env: auth.read_tokens_env.clone(),
            read_tokens_file: auth.read_tokens_file.clone(),
            ..AuthConfig::default()
        },
        AuthConfig {
            admin_tokens_env: auth.admin_tokens_env.clone(),
            admin_tokens_file: auth.admin_tokens_file.clone(),
            ..AuthConfig::default()
        },
    ];
    for pair in &pairs {
        if let Err(e) = AuthKeys::from_config(pair, &lookup) {
            problems.push(e.to_string());
        }
    }
    for (i, s) in config.subscribers.iter().enumerate() {
        if let Err(e) = Subscriber::from_config(i, s, &lookup) {
            problems.push(e.to_string());
        }
    }
    match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => match TlsCell::load(cert, key) {
            Ok(tls) => warnings.extend(tls.warning(now_ms)),
            Err(e) => problems.push(e.to_string()),
        },
        (None, None) => {}
        _ => problems.push(DaemonError::TlsHalfConfigured.to_string()),
    }
    SecretsCheck { problems, warnings }
}

/// Why the daemon could not start (or stopped with an error).
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("server.tls_cert and server.tls_key must be set together (only one is set)")]
    TlsHalfConfigured,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot watch the config file: {0}")]
    Watch(#[from] notify::Error),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot open the journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("cannot start the engine thread: {0}")]
    EngineThread(std::io::Error),
    /// The journal could not be synced: the daemon stopped (see `commit`). Not retried: after a
    /// failed fsync the kernel may have dropped the data, so only a restart's replay from what
    /// is really on disk is trustworthy.
    #[error("the journal could not be made durable; stopping: {0}")]
    JournalSync(String),
    /// The engine thread panicked: nothing could be routed any more, so the daemon stopped. An
    /// error (exit 1), so that a supervisor restarts it; the restart replays the journal.
    #[error("the engine thread panicked; stopping (a restart replays the journal)")]
    EnginePanicked,
    /// The config file changed while the daemon was down and cannot be applied as a journaled
    /// change (exit 2, like any config the daemon cannot start with).
    #[error("{origin}: cannot apply the config file over the recovered state: {problem}")]
    StartupConfig { origin: String, problem: String },
}

impl DaemonError {
    /// The process exit code for this error (`tierline serve`): 2 for a config the daemon
    /// cannot start with (as for an invalid one, which never gets as far as a `DaemonError`),
    /// 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::StartupConfig { .. } => 2,
            _ => 1,
        }
    }
}

/// A running daemon.
pub struct Daemon {
    addr: SocketAddr,
    tls: bool,
    shutdown: Shutdown,
    reloader: Arc<Reloader>,
    engine: EngineHandle,
    metrics: Metrics,
    done: JoinHandle<Result<(), DaemonError>>,
}

impl Daemon {
    /// Start the engine task, the HTTP server, the subscribers and (optionally) the file watch.
    pub async fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let DaemonOptions {
            config,
            config_path,
            watch_config,
            clock,
            env,
            sink,
            observer,
            metrics,
            journal_dir,
            journal_sync,
        } = opts;
        let server = config.daemon.server.clone();
        let decision_log = server.decision_log;
        let lookup = |var: &str| env(var);
        let keys = AuthKeys::from_config(&config.daemon.auth, &lookup)?;
        if !keys.signatures_required() {
            tracing::warn!(
                "no webhook secret configured (auth.webhook_secrets_env or _file): POST /v1/events accepts unsigned events"
            );
        }
        if !keys.tokens_required() {
            tracing::warn!(
                listen = %server.listen,
                "no bearer tokens configured (auth.read_tokens_env/_file, auth.admin_tokens_env/_file): the read and admin API are open"
            );
        }
        let subscribers = config
            .daemon
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| Subscriber::from_config(i, s, &lookup))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(TlsCell::load(cert, key)?),
            (None, None) => None,
            _ => return Err(DaemonError::TlsHalfConfigured),
        };
        let listener =
            TcpListener::bind(&server.listen)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: server.listen.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
            addr: server.listen.clone(),
            source,
        })?;

        let metrics = match metrics {
            Some(m) => m,
            None => Metrics::unserved(&config.daemon.metrics, &config.routing)?,
        };
        if let Some(tls) = &tls {
            tls.report(&metrics, crate::metrics::wall_clock_ms());
        }
        let clock = clock.unwrap_or_else(Clock::from_system_time);
        let daemon_config = config.daemon.clone();
        let subscriber_entries = config.daemon.subscribers.clone();
        // --- durability: recover the core from the journal (begin) ---
        let now = clock.now_ms();
        let sync_acks = config.daemon.journal.sync != crate::config::daemon::SyncMode::None;
        let acks_dir = journal_dir.clone();
        let startup_origin = config_path.as_ref().map_or_else(
            || "<startup config>".to_string(),
            |p| p.display().to_string(),
        );
        reload::log_notes(&config.routing, &startup_origin);
        for note in config.daemon.server_notes() {
            tracing::warn!(origin = %startup_origin, "{note}");
        }
        let (core, sink, startup_reconfigure) = match journal_dir {
            None => (
                Core::with_decision_log(config, now, decision_log),
                sink,
                None,
            ),
            Some(dir) => {
                let opts = crate::journal::JournalOptions::from_config(&config.daemon.journal);
                let group_commit = (config.daemon.journal.sync
                    == crate::config::daemon::SyncMode::Batch)
                    .then(|| Duration::from_millis(config.daemon.journal.max_batch_delay_ms));
                let syncer = journal_sync.unwrap_or_else(|| Box::new(commit::Fdatasync));
                let sync_metrics = metrics.clone();
                let syncer = Box::new(commit::Timed::new(syncer, move |took| {
                    sync_metrics.journal_sync(took)
                }));
                let (journal, mut core, report) = durable::recover_with_sync_thread(
                    &dir,
                    opts,
                    now,
                    || Core::with_decision_log(config.clone(), now, decision_log),
                    syncer,
                    group_commit,
                )?;
                tracing::info!(dir = %dir.display(), %report, "journal recovered");
                // The snapshot kept the log under the bound in force when it was taken; a
                // restart is how `[server] decision_log` changes.
                if let Some(was) = core.set_decision_log(decision_log) {
                    tracing::info!(
                        was,
                        now = decision_log,
                        "server.decision_log changed: the decision log keeps this many from now on"
                    );
                }
                // The config file (main parsed and validated it) differs from the recovered
                // config: apply it as a config change, below.
                let changed = (core.config().source != config.source)
                    .then(|| Input::reconfigure_journaled(&config, &startup_origin));
                (core, Box::new(journal) as Box<dyn InputSink>, changed)
            }
        };
        // --- durability (end) ---
        // Engine time resumes where the journal left it when the wall clock is behind it;
        // webhook signatures keep the wall clock (`clock`), which is what peers compare with.
        let (engine_clock, behind) = clock.not_before(core.engine().now());
        if behind > 0 {
            tracing::warn!(
                behind_ms = behind,
                "the wall clock is behind the journal's last engine time: engine time continues \
                 from the journal, so decisions are stamped this much ahead of the wall clock \
                 until a restart after it has caught up"
            );
        }
        // Scrapes measure waits on the clock that stamped them.
        metrics.set_clock(move || engine_clock.now_ms());
        let now = engine_clock.now_ms();
        let telemetry = Telemetry::new(metrics.clone(), &core.config().routing, now);
        let start_after = core.next_seq().checked_sub(1);
        // Each subscriber's cursor; a new one's starting point is recorded now, before the
        // engine task makes a decision.
        let cursors: Vec<subscriber::Cursor> = subscribers
            .iter()
            .map(|s| {
                let cursor = subscribers::cursor(acks_dir.as_deref(), sync_acks, s, start_after);
                subscriber::record_first_start(s, &cursor);
                cursor
            })
            .collect();
        let (task, engine) = EngineTask::new(
            core,
            engine_clock,
            server.event_queue_depth,
            sink,
            observer,
            telemetry,
        );
        let (stop_engine, engine_stop) = oneshot::channel::<()>();
        let engine_task =
            spawn_engine_thread(task, engine_stop).map_err(DaemonError::EngineThread)?;
        if let Some(input) = startup_reconfigure {
            // The config file changed while the daemon was down: apply it, journaled. One that
            // cannot be journaled stops the start: running on the recovered config instead would
            // ignore the file the daemon was started with.
            let input = match input {
                Ok(input) => input,
                Err(problem) => {
                    let _ = stop_engine.send(());
                    let _ = engine_task.await;
                    return Err(DaemonError::StartupConfig {
                        origin: startup_origin,
                        problem,
                    });
                }
            };
            reconfigure_on_start(&engine, input, &metrics).await;
        }

        let shutdown = Shutdown::new();
        let live_subscribers = Arc::new(Subscribers::new(SubscriberContext {
            engine: engine.clone(),
            clock,
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            acks_dir,
            sync_acks,
        }));
        // Running before the API serves: a config change must find them to change them.
        for ((s, cursor), entry) in subscribers.into_iter().zip(cursors).zip(subscriber_entries) {
            live_subscribers.launch(entry, s, cursor).await;
        }
        let auth = Arc::new(RwLock::new(Arc::new(keys)));
        let reloader = Arc::new(Reloader::new(
            engine.clone(),
            config_path.clone(),
            auth.clone(),
            tls.clone(),
            daemon_config,
            live_subscribers.clone(),
            env,
            metrics.clone(),
        ));
        let request_timeout = Duration::from_millis(server.request_timeout_ms.max(1));
        let state = AppState(Arc::new(Shared {
            engine: engine.clone(),
            clock,
            auth,
            body_limit: server.body_limit_bytes,
            long_poll_max: request_timeout.saturating_sub(Duration::from_millis(500)),
            shutdown: shutdown.clone(),
            reloader: reloader.clone(),
            metrics: metrics.clone(),
            feed_readers: api::readers::FeedReaders::new(server.feed_readers(), metrics.clone()),
        }));
        let app = api::router(state, request_timeout);
        let is_tls = tls.is_some();
        let (max, conns) = (server.max_connections, metrics.clone());
        let idle_timeout = Duration::from_millis(server.idle_timeout_ms);
        let http = match tls {
            Some(cell) => {
                // A client that sends nothing gets no longer before its handshake than any
                // connection gets before its first request (`idle_timeout_ms`, at most the
                // handshake timeout), and silent clients take handshake slots only as they
                // would take connection slots (`max_connections`).
                let handshakes = crate::api::tls::Handshakes {
                    timeout: idle_timeout.min(crate::api::tls::HANDSHAKE_TIMEOUT),
                    at_once: max,
                };
                let listener = match TlsListener::new(listener, cell, handshakes) {
                    Ok(listener) => listener,
                    Err(source) => {
                        abort_start(&shutdown, stop_engine, engine_task, &live_subscribers).await;
                        return Err(DaemonError::Bind {
                            addr: server.listen.clone(),
                            source,
                        });
                    }
                };
                spawn_http(
                    Limited::new(listener, max, conns),
                    app,
                    &shutdown,
                    idle_timeout,
                )
            }
            None => spawn_http(
                Limited::new(listener, max, conns),
                app,
                &shutdown,
                idle_timeout,
            ),
        };

        let watch_task = match (&config_path, watch_config) {
            (Some(path), true) => match watch::spawn(path, reloader.clone(), shutdown.clone()) {
                Ok(task) => Some(task),
                Err(e) => {
                    abort_start(&shutdown, stop_engine, engine_task, &live_subscribers).await;
                    let _ = http.await;
                    return Err(e.into());
                }
            },
            _ => None,
        };
        tracing::info!(%addr, tls = is_tls, "tierline listening");

        let grace = Duration::from_millis(server.shutdown_grace_ms);
        let done = tokio::spawn(supervise(
            http,
            shutdown.clone(),
            grace,
            stop_engine,
            engine_task,
            live_subscribers,
            watch_task,
        ));
        Ok(Daemon {
            addr,
            tls: is_tls,
            shutdown,
            reloader,
            engine,
            metrics,
            done,
        })
    }

    /// The bound API address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// The metrics handle (its `local_addr` is the `/metrics` listener when served).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// The shutdown signal (trigger it to stop the daemon).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// What SIGHUP does: reload the TLS certificate and the config file.
    pub async fn sighup(&self) -> Result<ReloadReport, ReloadError> {
        self.reloader.on_sighup().await
    }

    /// Wait until the daemon has stopped.
    pub async fn wait(self) -> Result<(), DaemonError> {
        match self.done.await {
            Ok(result) => result,
            Err(e) => Err(DaemonError::Serve(std::io::Error::other(e))),
        }
    }

    /// Trigger shutdown and wait for it.
    pub async fn stop(self) -> Result<(), DaemonError> {
        self.shutdown.trigger();
        self.wait().await
    }
}

/// Apply the startup config over the recovered one (it is journaled like any reload). `input` is
/// the `Reconfigure` of the config `main` parsed and validated, with what it resolved to.
/// Counted in `tierline_config_reloads_total` like any other change of the config in force, so
/// an alert on rejected reloads also sees a deploy that did not take at a restart.
async fn reconfigure_on_start(
    engine: &EngineHandle,
    input: self::core::Input,
    metrics: &crate::metrics::Metrics,
) {
    match engine.apply(vec![input]).await.as_deref() {
        Ok([self::core::Outcome::Applied(_)]) => {
            metrics.config_reload(true);
            tracing::info!("the config file differs from the recovered config: applied it")
        }
        Ok(other) => {
            metrics.config_reload(false);
            tracing::error!(
                problems = %refusal_problems(other),
                "the config file's routing differs from the recovered config but the engine refused it (for what, see `problems`); the recovered routing config stays in force, as does its text at GET /v1/config, while the daemon settings the file gives ([server], [auth], [metrics], [journal], [[subscriber]]) apply, as at every start"
            )
        }
        Err(e) => {
            metrics.config_reload(false);
            tracing::error!(error = %e, "cannot apply the startup config")
        }
    }
}

/// Why the engine did not apply the startup config, each problem as `check-config` and the API
/// word it (`file:line:col: field: …`), for the log.
fn refusal_problems(outcomes: &[self::core::Outcome]) -> String {
    match outcomes {
        [self::core::Outcome::ConfigRefused(errors)] => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => format!("{other:?}"),
    }
}

async fn supervise(
    mut http: JoinHandle<std::io::Result<()>>,
    shutdown: Shutdown,
    grace: Duration,
    stop_engine: oneshot::Sender<()>,
    mut engine_task: oneshot::Receiver<EngineResult>,
    subscribers: Arc<Subscribers>,
    watch_task: Option<JoinHandle<()>>,
) -> Result<(), DaemonError> {
    let mut stopped_early = None;
    // Biased, shutdown first: the HTTP task also ends on the shutdown signal, and when both were
    // ready at once an unbiased pick skipped `drain` and its log line half of the time.
    let served = tokio::select! {
        biased;
        () = shutdown.wait() => drain(&mut http, grace).await,
        r = &mut http => r,
        ended = &mut engine_task => {
            // The engine task stopped by itself: a journal sync failure (it has already failed
            // the held replies) or a panic. Nothing more can be answered: stop serving.
            stopped_early = Some(ended);
            shutdown.trigger();
            drain(&mut http, grace).await
        }
    };
    shutdown.trigger();
    let _ = stop_engine.send(());
    let ended = match stopped_early {
        Some(ended) => ended,
        None => engine_task.await,
    };
    let (sync_failure, panicked) = match ended {
        Ok(Ok(_core)) => (None, false),
        Ok(Err(failed)) => (Some(failed.0), false),
        Err(_) => {
            tracing::error!("the engine thread panicked");
            (None, true)
        }
    };
    subscribers.join_all().await;
    if let Some(w) = watch_task {
        let _ = w.await;
    }
    tracing::info!("stopped");
    if let Some(message) = sync_failure {
        return Err(DaemonError::JournalSync(message));
    }
    if panicked {
        return Err(DaemonError::EnginePanicked);
    }
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DaemonError::Serve(e)),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(DaemonError::Serve(std::io::Error::other(e))),
    }
}

/// A start that fails once the engine task and the subscribers run: stop them (and, through
/// `shutdown`, the API if it serves) before the error is returned, the engine as at a clean stop.
async fn abort_start(
    shutdown: &Shutdown,
    stop_engine: oneshot::Sender<()>,
    engine_task: oneshot::Receiver<EngineResult>,
    subscribers: &Subscribers,
) {
    shutdown.trigger();
    let _ = stop_engine.send(());
    let _ = engine_task.await;
    subscribers.join_all().await;
}

/// Let the HTTP server finish its in-flight requests (it stops accepting once `shutdown` is
/// triggered) for at most `grace`, then close what is left.
async fn drain(
    http: &mut JoinHandle<std::io::Result<()>>,
    grace: Duration,
) -> Result<std::io::Result<()>, tokio::task::JoinError> {
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing in-flight requests"
    );
    match tokio::time::timeout(grace, &mut *http).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
            http.abort();
            Ok(Ok(()))
        }
    }
}

/// How the engine task ended: its final core, or the sync failure that stopped it.
type EngineResult = Result<Core, task::JournalSyncFailed>;

/// Run the engine task on a thread of its own (`tierline-engine`), in a current-thread tokio
/// runtime that runs nothing else, and return where its final `Core` will arrive.
///
/// On the daemon's multi-thread runtime the engine task queued behind connection tasks: a
/// worker only checks its timers between tasks, so under load a due escalation waited for a
/// whole run of HTTP work (timer lateness p99 ≈ 20 ms at 10,000 requests/s on 2 cores). Here
/// its deadline wakes a thread that waits for nothing else. It is still one task talking to
/// everyone through the bounded command channel; tokio's channels work across runtimes.
///
/// `stop` sent: the task finishes the queued commands and stops (final snapshot). `stop`
/// dropped unsent (the daemon's runtime was dropped under it, as a crash would): the task is
/// dropped where it stands, without a final snapshot, as a task of that runtime would have been.
fn spawn_engine_thread(
    task: EngineTask,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<oneshot::Receiver<EngineResult>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name("tierline-engine".into())
        .spawn(move || {
            let core = runtime.block_on(async move {
                let (graceful, stopping) = oneshot::channel::<()>();
                let run = task.run(async move {
                    let _ = stopping.await;
                });
                let mut run = std::pin::pin!(run);
                tokio::select! {
                    core = &mut run => Some(core),
                    signal = stop => match signal {
                        Ok(()) => {
                            let _ = graceful.send(());
                            Some(run.await)
                        }
                        Err(_) => None,
                    },
                }
            });
            if let Some(core) = core {
                let _ = done.send(core);
            }
        })?;
    Ok(finished)
}

/// Opt the daemon's process out of transparent huge pages (Linux `PR_SET_THP_DISABLE`).
///
/// The allocator advises its arenas for huge pages, so on a kernel with THP in `madvise` (or
/// `always`) mode the first touch of each fresh 2 MiB of heap faulted in a whole huge page,
/// zeroed on the spot by the thread that touched it. Measured on this project's 2-core VM at
/// 10,000 events/s, such a fault took 5–15 ms (one minor fault per stall, dozens of forced
/// reschedules within it), and the thread was most often the engine's: 12–13 routing stalls of
/// 3 ms or more per 10 s run, against 1–4 with THP off (docs/BENCHMARKS.md, "Where a single
/// event took 10 ms"). A router's latency matters more than the TLB reach huge pages buy
/// (the engine benchmarks showed no difference either way), the advice Redis and MongoDB give
/// too. Elsewhere than Linux, nothing changes.
fn no_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this
        // process's memory descriptor; no memory is passed.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `tierline serve` arguments (flags override the file).
#[derive(Debug, Clone)]
pub struct ServeArgs {
    pub config: PathBuf,
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub data: Option<PathBuf>,
    pub log_format: LogFormat,
}

/// Install the `tracing` subscriber (`RUST_LOG` filters; default `info`). A log line that cannot
/// be written (stdout closed, its pipe's reader gone) is dropped: the subscriber would otherwise
/// report it with `eprintln!`, which panics when stderr is closed too.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The `serve` command: load the config, start the daemon, handle signals, exit 0 on a clean stop.
pub fn serve_main(args: ServeArgs) -> ExitCode {
    init_tracing(args.log_format);
    // A file over RLIMIT_FSIZE must fail the write (EFBIG → 503), not kill the process.
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    if let Err(e) = no_transparent_huge_pages() {
        tracing::warn!(error = %e, "cannot opt out of transparent huge pages; a first touch of \
            fresh memory may stall routing for milliseconds");
    }
    let mut config = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            crate::report!("{errors}");
            return ExitCode::from(2);
        }
    };
    crate::config::daemon::CommandLine {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        data: args.data,
    }
    .apply(&mut config.daemon);
    raise_open_file_limit(config.daemon.server.max_connections);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = config.daemon.server.http_workers(cpus);
    let runtime = match crate::multi_thread_runtime(workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    tracing::info!(workers, cpus, "HTTP runtime");
    let code = runtime.block_on(serve(args.config, config));
    // The daemon has stopped and its journal is closed. A blocking read that never returns (a
    // reload stuck on a FIFO or a hung mount) must not keep the process from exiting.
    runtime.shutdown_timeout(SHUTDOWN_LEFTOVERS);
    code
}

/// How long the exit waits for blocking work still running after the daemon stopped.
const SHUTDOWN_LEFTOVERS: Duration = Duration::from_secs(1);

/// Files the daemon keeps open besides API connections: journal segments and snapshots, the
/// listeners, subscriber and metrics connections, config and secret files.
const FILES_BESIDE_CONNECTIONS: u64 = 256;

/// Raise the soft open-file limit so `max_connections` connections fit (many systems start
/// processes at 1,024), up to the hard limit; warn if even that is too low, since past it an
/// accept fails with EMFILE before `max_connections` is reached.
fn raise_open_file_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other precondition.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let need = (max_connections as u64).saturating_add(FILES_BESIDE_CONNECTIONS);
    let plan = open_file_plan(limit.rlim_cur, limit.rlim_max, need);
    if let Some(soft) = plan.raise_to {
        let raised = libc::rlimit {
            rlim_cur: soft,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; raising the soft limit up to the hard one
        // needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = limit.rlim_cur,
                to = soft,
                "raised the open-file limit"
            );
        }
    }
    if plan.short {
        tracing::warn!(
            max_connections,
            hard_limit = limit.rlim_max,
            "the open-file hard limit is below max_connections + {FILES_BESIDE_CONNECTIONS}: \
             accepting fails before max_connections is reached (raise LimitNOFILE / ulimit -Hn, \
             or lower [server] max_connections)"
        );
    }
}

/// What to do about the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenFilePlan {
    /// The soft limit to set, when it must rise.
    raise_to: Option<u64>,
    /// Even the hard limit is below what is needed.
    short: bool,
}

fn open_file_plan(soft: u64, hard: u64, need: u64) -> OpenFilePlan {
    let target = need.min(hard);
    OpenFilePlan {
        raise_to: (target > soft).then_some(target),
        short: hard < need,
    }
}

async fn serve(config_path: PathBuf, config: LoadedConfig) -> ExitCode {
    let metrics = match crate::metrics::install(&config.daemon.metrics, &config.routing) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the metrics listener");
            crate::report!("tierline: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = metrics.local_addr() {
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    // (`Journal::recover` warns when `journal.sync = "none"`: tests and simulations only.)
    let journal_dir = config.daemon.journal.dir.clone();
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    options.journal_dir = Some(journal_dir);
    options.config_path = Some(config_path);
    options.watch_config = true;
    // Signal handlers go in before the daemon starts listening: a SIGHUP or SIGTERM sent as soon
    // as "tierline listening" is logged must reach them, not the default action (terminate).
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            crate::report!("tierline: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = match Daemon::start(options).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            crate::report!("tierline: {e}");
            // 2 for a config it cannot take (as `check-config`), 1 for the rest.
            return ExitCode::from(e.exit_code());
        }
    };
    let signals = signals.spawn_handler(&daemon);
    let result = daemon.wait().await;
    signals.abort();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The daemon's signal streams, installed (so the default actions no longer apply) before it
/// starts listening.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// SIGTERM/SIGINT → graceful shutdown; SIGHUP → reload config and TLS certificate.
    fn spawn_handler(self, daemon: &Daemon) -> JoinHandle<()> {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = self;
        let shutdown = daemon.shutdown_signal();
        let reloader = daemon.reloader().clone();
        // Reloads run on their own task, one at a time: a reload stuck reading the file (a FIFO,
        // a hung network mount) must not keep SIGTERM waiting. SIGHUPs that come while one runs
        // are coalesced into one more reload after it (`Notify` keeps a single permit).
        let wanted = Arc::new(tokio::sync::Notify::new());
        let reloads = tokio::spawn({
            let wanted = wanted.clone();
            async move {
                loop {
                    wanted.notified().await;
                    tracing::info!("SIGHUP: reloading");
                    match reloader.on_sighup().await {
                        Ok(r) if r.applied => {
                            tracing::info!(decisions = r.decisions.len(), "config reloaded")
                        }
                        Ok(r) if r.secrets_changed => {
                            tracing::info!("config file unchanged; secrets reloaded")
                        }
                        Ok(_) => tracing::info!("config file unchanged"),
                        Err(e) => tracing::error!(error = %e, "reload failed; old config kept"),
                    }
                }
            }
        });
        tokio::spawn(async move {
            let _reloads = AbortOnDrop(reloads);
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM"); shutdown.trigger(); }
                    _ = int.recv() => { tracing::info!("SIGINT"); shutdown.trigger(); }
                    _ = hup.recv() => wanted.notify_one(),
                }
            }
        })
    }
}

/// Aborts the task when dropped (the signal task is aborted at exit; its reload task goes too).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::{open_file_plan, refusal_problems, OpenFilePlan};

    /// A startup config the engine refuses is logged the way `check-config` and the API word
    /// it, not as a Rust debug dump of the outcome.
    #[test]
    fn a_refused_startup_config_is_logged_as_file_line_field_message() {
        let error = |line, field: &str, message: &str| crate::config::ConfigError {
            file: "/etc/tierline.toml".into(),
            line,
            column: None,
            field: field.into(),
            message: message.into(),
        };
        let refused = [super::core::Outcome::ConfigRefused(vec![
            error(
                None,
                "queue",
                "queue `complaints` is removed but 1 interaction(s) wait",
            ),
            error(Some(7), "queue[0].steps", "steps must start at 0"),
        ])];
        assert_eq!(
            refusal_problems(&refused),
            "/etc/tierline.toml: queue: queue `complaints` is removed but 1 interaction(s) \
             wait; /etc/tierline.toml:7: queue[0].steps: steps must start at 0"
        );
    }

    #[test]
    fn the_soft_open_file_limit_rises_to_fit_max_connections_up_to_the_hard_limit() {
        // 1,024 soft, generous hard: raise to exactly what is needed.
        assert_eq!(
            open_file_plan(1_024, 1_048_576, 10_256),
            OpenFilePlan {
                raise_to: Some(10_256),
                short: false
            }
        );
        // Already enough: leave it.
        assert_eq!(
            open_file_plan(65_536, 1_048_576, 10_256),
            OpenFilePlan {
                raise_to: None,
                short: false
            }
        );
        // Hard limit too low: raise as far as allowed and say so.
        assert_eq!(
            open_file_plan(1_024, 4_096, 10_256),
            OpenFilePlan {
                raise_to: Some(4_096),
                short: true
            }
        );
        // Unlimited hard limit (RLIM_INFINITY).
        assert_eq!(
            open_file_plan(1_024, u64::MAX, 10_256),
            OpenFilePlan {
                raise_to: Some(10_256),
                short: false
            }
        );
    }
}
