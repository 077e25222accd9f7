//! Daemon settings that live beside the routing config: listeners, TLS, journal, auth, subscribers.
//!
//! The engine never sees these; they are read by `serve` and may be overridden by CLI flags.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// API listen address.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, serve HTTPS (rustls).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body; larger ⇒ 413.
    pub body_limit_bytes: usize,
    /// Per-request timeout (long-polls are capped by it too).
    pub request_timeout_ms: u64,
    /// How long a connection may carry no request, from when it opens or its last answer
    /// ended; then it is shut down (`daemon::http`). Also hyper's HTTP/1.1 header-read timeout.
    pub idle_timeout_ms: u64,
    /// Depth of the command channel into the engine task; full ⇒ 503 with Retry-After.
    pub event_queue_depth: usize,
    /// How long in-flight requests get to finish on SIGTERM.
    pub shutdown_grace_ms: u64,
    /// Idempotency ids remembered (a repeated id within this window is a `duplicate`).
    pub idempotency_ids: usize,
    /// Decisions kept for long-poll, SSE and webhook readers (`daemon::decision_log`); a reader
    /// further behind gets 410 `decisions_gone`.
    pub decision_log: usize,
    /// HTTP worker threads; 0 = one fewer than the CPUs (at least 1): the engine has a thread
    /// of its own (`ServerConfig::http_workers`).
    pub workers: usize,
    /// Open API connections at most. At the limit the listener stops accepting until one closes
    /// (further clients wait in the kernel's listen backlog), so sockets, tasks and buffers stay
    /// bounded (`api::connections`).
    pub max_connections: usize,
    /// Long-polls that wait and SSE streams open at once, at most; 0 = half of
    /// `max_connections` (at least 1). Beyond it a reader is answered 503 `too_many_readers`, so
    /// readers, which hold their connection, never take every connection from the events and
    /// the health probes (`ServerConfig::feed_readers`).
    pub max_feed_readers: usize,
}

impl ServerConfig {
    /// The feed reader limit in force: `max_feed_readers`, or with 0 half of
    /// `max_connections`, at least 1.
    pub fn feed_readers(&self) -> usize {
        match self.max_feed_readers {
            0 => (self.max_connections / 2).max(1),
            n => n,
        }
    }

    /// The HTTP runtime's worker threads: `workers`, or with 0 one fewer than `cpus`, at least 1.
    /// The engine task runs on a thread of its own (plus the sync thread beside it), so on a
    /// 2-core machine one HTTP worker leaves it a core instead of three busy threads taking
    /// turns on two (measured in docs/BENCHMARKS.md, "HTTP, second pass").
    pub fn http_workers(&self, cpus: usize) -> usize {
        match self.workers {
            0 => cpus.saturating_sub(1).max(1),
            n => n,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            body_limit_bytes: 1 << 20,
            request_timeout_ms: 60_000,
            idle_timeout_ms: 30_000,
            event_queue_depth: 4096,
            max_connections: 10_000,
            max_feed_readers: 0,
            shutdown_grace_ms: 10_000,
            idempotency_ids: 1_000_000,
            decision_log: crate::daemon::decision_log::DEFAULT_DECISION_LOG,
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Prometheus listener (`GET /metrics`).
    pub listen: String,
    /// Per-agent series (cardinality!). Off by default.
    pub per_agent: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
            per_agent: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// fsync every append before answering.
    Always,
    /// Group commit: batches are written and applied at once, and synced on the sync thread
    /// (one fsync for every batch written so far, at most one per `max_batch_delay_ms`);
    /// answers wait for the sync.
    #[default]
    Batch,
    /// No fsync (tests and simulations only; warns at startup).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub sync: SyncMode,
    pub max_batch_delay_ms: u64,
    /// Take a snapshot after this many journal records…
    pub snapshot_every_events: u64,
    /// …or this many seconds, whichever comes first.
    pub snapshot_every_s: u64,
    /// The count waits, too, until the journal written since the last snapshot is at least this
    /// percentage of that snapshot's size (0 = the count alone).
    pub snapshot_journal_percent: u64,
    /// Segment size before rolling to a new file.
    pub segment_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("data"),
            sync: SyncMode::Batch,
            max_batch_delay_ms: 2,
            snapshot_every_events: 100_000,
            snapshot_every_s: 300,
            snapshot_journal_percent: 100,
            segment_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Env var holding comma-separated HMAC secrets for inbound webhooks.
    pub webhook_secrets_env: Option<String>,
    /// File holding the same (the platform's secret mount); at most one of `_env`/`_file`.
    pub webhook_secrets_file: Option<PathBuf>,
    /// Env var holding comma-separated bearer tokens with the `read` role.
    pub read_tokens_env: Option<String>,
    /// File holding the same.
    pub read_tokens_file: Option<PathBuf>,
    /// Env var holding comma-separated bearer tokens with the `admin` role.
    pub admin_tokens_env: Option<String>,
    /// File holding the same.
    pub admin_tokens_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberConfig {
    /// Name used in metrics labels, logs and its ack file's name (defaults to the URL).
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// Env var holding the signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (at most one of `secret_env`/`secret_file`).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Decision types to deliver (empty = all).
    #[serde(default)]
    pub types: Vec<String>,
    /// First retry delay after a failed delivery; doubles per failure (with jitter).
    #[serde(default = "SubscriberConfig::default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    #[serde(default = "SubscriberConfig::default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Decisions per POST.
    #[serde(default = "SubscriberConfig::default_batch_max")]
    pub batch_max: usize,
    /// Per-request timeout.
    #[serde(default = "SubscriberConfig::default_timeout_ms")]
    pub timeout_ms: u64,
}

impl SubscriberConfig {
    fn default_retry_initial_ms() -> u64 {
        500
    }
    fn default_retry_max_ms() -> u64 {
        30_000
    }
    fn default_batch_max() -> usize {
        100
    }
    fn default_timeout_ms() -> u64 {
        10_000
    }

    /// A subscriber for `url` with every default (tests and builders start here).
    pub fn new(url: &str) -> SubscriberConfig {
        SubscriberConfig {
            name: None,
            url: url.to_string(),
            secret_env: None,
            secret_file: None,
            types: Vec::new(),
            retry_initial_ms: Self::default_retry_initial_ms(),
            retry_max_ms: Self::default_retry_max_ms(),
            batch_max: Self::default_batch_max(),
            timeout_ms: Self::default_timeout_ms(),
        }
    }
}

/// Everything in the file that is not routing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DaemonConfig {
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub journal: JournalConfig,
    pub auth: AuthConfig,
    pub subscribers: Vec<SubscriberConfig>,
    /// What `tierline serve --listen / --metrics-listen / --data` put in place of the file's
    /// values (never read from a file). A reload applies them to the file it reads too, so a
    /// file that still has its own values is not "changed, needs a restart".
    #[serde(skip)]
    pub overrides: CommandLine,
}

impl DaemonConfig {
    /// Daemon settings that are legal but work against the daemon, named by their path in
    /// the file: `check-config` prints them after the routing notes. `serve` logs
    /// `server_notes` at start (journal recovery warns about `sync = "none"` itself).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.server_notes();
        if self.journal.sync == SyncMode::None {
            notes.push(
                "journal.sync = \"none\": answers are given before anything reaches the disk, so a \
                 crash or power loss loses events that were acknowledged (for tests and \
                 simulations)"
                    .to_string(),
            );
        }
        notes
    }

    /// The `[server]` part of `notes`.
    pub fn server_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let server = &self.server;
        // The limit in force: 0 means half of max_connections, at least 1 (so 0 with a single
        // connection allowed is that whole connection).
        if server.feed_readers() >= server.max_connections {
            let limit = match server.max_feed_readers {
                0 => format!(
                    "{} (server.max_feed_readers = 0: half of it, at least 1)",
                    server.feed_readers()
                ),
                n => format!("{n}"),
            };
            notes.push(format!(
                "the feed reader limit {limit} is not below server.max_connections = {}: waiting \
                 long-polls and SSE streams, which hold their connection, can take every \
                 connection, and events and health probes then wait for one to close",
                server.max_connections
            ));
        }
        let batch = crate::api::events::MAX_BATCH_EVENTS;
        if server.decision_log < batch {
            notes.push(format!(
                "server.decision_log = {} is below the {batch} events one request may carry: a \
                 single batch can decide more than the log keeps, and a reader that was caught \
                 up then gets 410 decisions_gone for the rest",
                server.decision_log
            ));
        }
        notes
    }
}

/// Settings given on the command line instead of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub data: Option<PathBuf>,
}

impl CommandLine {
    /// Put these settings into `config` (and remember them there).
    pub fn apply(&self, config: &mut DaemonConfig) {
        if let Some(listen) = &self.listen {
            config.server.listen = listen.clone();
        }
        if let Some(metrics) = &self.metrics_listen {
            config.metrics.listen = metrics.clone();
        }
        if let Some(data) = &self.data {
            config.journal.dir = data.clone();
        }
        config.overrides = self.clone();
    }
}

/// `url` as logs and metric labels show it: a user name, password, query or fragment (which
/// may hold credentials or tokens) is replaced by `…`. A URL with none of them is shown as
/// written.
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        // Validation admits only http(s) URLs; reqwest refuses the rest when sending.
        return "(a URL that does not parse)".to_string();
    };
    let userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let rest = parsed.query().is_some() || parsed.fragment().is_some();
    if !(userinfo || rest) {
        return url.to_string();
    }
    // Cannot fail on an http(s) URL, which has a host; kept whole otherwise below.
    let cleared = parsed.set_username("").is_ok() && parsed.set_password(None).is_ok();
    parsed.set_query(None);
    parsed.set_fragment(None);
    if !cleared {
        return "(a URL with credentials that cannot be hidden)".to_string();
    }
    let mut shown = parsed.to_string();
    if userinfo {
        if let Some(at) = shown.find("://") {
            shown.insert_str(at + 3, "…@");
        }
    }
    if rest {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_workers_leave_the_engine_a_core_unless_set() {
        let auto = ServerConfig::default();
        assert_eq!(auto.workers, 0);
        assert_eq!(auto.http_workers(1), 1);
        assert_eq!(auto.http_workers(2), 1);
        assert_eq!(auto.http_workers(8), 7);
        let set = ServerConfig {
            workers: 3,
            ..ServerConfig::default()
        };
        assert_eq!(set.http_workers(2), 3);
        assert_eq!(set.http_workers(16), 3);
    }
}
