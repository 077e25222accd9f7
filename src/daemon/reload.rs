//! Live config changes: the config file (SIGHUP or the file watch) and `PUT /v1/config` all go
//! through `Reloader`, which parses and validates first and then applies the new routing config
//! atomically on the engine task (`Input::Reconfigure`). A bad config never replaces a good one:
//! every problem is reported and the old config stays in force.
//!
//! Every reload also reads the secrets again (`api::secret`): the auth keys from the env vars or
//! files the new `[auth]` names, and the subscribers' signing secrets: with the config file
//! unchanged (SIGHUP), each running subscriber's from the source it started with, so a rotated
//! secret file takes effect; with a changed config, those of its `[[subscriber]]` entries (an
//! added or changed subscriber starts with them, an unchanged one is rotated to them, and a
//! removed one's old source is not read; `daemon::subscribers`: subscribers change live).
//! Secrets are read before anything changes: if one cannot be read, the reload is refused and
//! the old config and every old secret stay in force. SIGHUP also reloads the TLS certificate.
//! Settings that only take effect at start (listen addresses, body limit, queue depth, journal,
//! metrics) are reported as "restart needed".
//!
//! Every attempt to change the config counts in `tierline_config_reloads_total{result}`: `ok`
//! when the new config is in force, `rejected` when the file or a secret could not be read, the
//! config was refused, or SIGHUP could not reload the TLS certificate. An unchanged file is not a reload unless a secret changed (`ok`) or could
//! not be read (`rejected`); `POST /v1/config/validate` is not a reload either.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;

use crate::api::auth::{AuthCell, AuthKeys};
use crate::api::secret::{Secret, SecretError};
use crate::api::subscriber::Subscriber;
use crate::api::tls::TlsCell;
use crate::config::daemon::AuthConfig;
use crate::config::{self, ConfigError, DaemonConfig};
use crate::engine::Decision;
use crate::metrics::Metrics;

use super::core::{Input, Outcome};
use super::subscribers::{SubscriberChanges, Subscribers};
use super::task::{EngineHandle, ReadView, SubmitError};
use super::EnvFn;

/// Why a reload did not happen.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ReloadError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config refused ({} problem{}), old config kept: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, every_problem(.0))]
    Invalid(Vec<ConfigError>),
    #[error("{0}; the old config and secrets stay in force")]
    Secret(SecretError),
    #[error(transparent)]
    Engine(#[from] SubmitError),
    /// Another preview is being worked out (each holds a copy of the engine).
    #[error("another config preview is being worked out; try again in a moment")]
    PreviewBusy,
    /// The preview could not be worked out (never a verdict on the config).
    #[error("{0}")]
    Preview(String),
    /// `If-Match` named another config than the one in force (someone changed it meanwhile).
    #[error(
        "the config in force is {current}, not the one If-Match names ({expected}): it changed \
         since it was read (or the tag is not one GET /v1/config gave); GET /v1/config again, \
         merge, and retry"
    )]
    Stale { current: String, expected: String },
}

/// The origin `PUT /v1/config` gives its changes (in the log and the journal).
pub const PUT_ORIGIN: &str = "PUT /v1/config";

/// The entity tag of a config text (`ETag` of `GET /v1/config`, `If-Match` of a `PUT`): its
/// SHA-256, quoted.
pub fn config_etag(source: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("\"{}\"", hex::encode(Sha256::digest(source.as_bytes())))
}

/// Whether an `If-Match` value (`*`, or entity tags separated by commas) matches `etag`. Weak
/// tags (`W/"…"`) never do: `If-Match` compares strongly.
pub fn if_match_allows(if_match: &str, etag: &str) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

/// Every problem of a refused reload, one after another (`; `), so the log line an operator
/// reads after a SIGHUP or a file change says all that is wrong, not only the first; past
/// `SHOWN` the rest are counted (`check-config` lists them all).
fn every_problem(problems: &[ConfigError]) -> String {
    const SHOWN: usize = 20;
    let mut text = problems
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!(
            "; and {} more (`tierline check-config FILE` lists them all)",
            problems.len() - SHOWN
        ));
    }
    text
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReloadReport {
    /// Whether a new routing config was applied (false: the file was unchanged).
    pub applied: bool,
    /// Decisions the change caused at once.
    pub decisions: Vec<Decision>,
    /// Changed daemon settings that need a restart.
    pub restart_needed: Vec<String>,
    /// Whether a secret read again differs from the one it replaced (a rotation).
    pub secrets_changed: bool,
    /// Settings of the applied config that have no effect (`config::summary::notes`).
    pub notes: Vec<String>,
    /// Subscribers the change started, stopped or started again with new settings.
    pub subscribers: SubscriberChanges,
}

/// Every secret read again by a reload, not yet in force.
struct FreshSecrets {
    auth: AuthKeys,
    /// The running subscribers' signing secrets, in the order of `Subscribers::secrets`.
    subscribers: Vec<Secret>,
    /// The new config's `[[subscriber]]` entries, each ready to run (its secret read).
    planned: Vec<Subscriber>,
}

/// A change that passed `Reloader::vet`: its config, its secrets (not yet in force) and the
/// input the engine applies.
struct Vetted {
    loaded: config::LoadedConfig,
    fresh: FreshSecrets,
    input: Input,
}

/// Applies config changes; shared by the signal handler, the file watch and the admin API.
pub struct Reloader {
    engine: EngineHandle,
    path: Option<PathBuf>,
    auth: AuthCell,
    tls: Option<TlsCell>,
    started_with: DaemonConfig,
    /// The `[auth]` of the config in force (where the auth keys are read from).
    auth_config: Mutex<AuthConfig>,
    /// The running subscribers (a change starts, stops and restarts them; secrets rotate).
    subscribers: Arc<Subscribers>,
    env: EnvFn,
    metrics: Metrics,
    /// Serializes reloads so two never interleave their check-then-apply.
    gate: tokio::sync::Mutex<()>,
    /// One preview at a time: each holds a whole copy of the engine while it is worked out.
    preview_gate: Arc<tokio::sync::Mutex<()>>,
    /// Whether the routing config in force came from `PUT /v1/config` (not from the file): a
    /// reload of the file then replaces it, which is logged as such.
    put_in_force: std::sync::atomic::AtomicBool,
    /// Bumped each time a reload changes the auth keys, so whatever a token opened (an SSE
    /// stream) can check it again at once instead of on a timer.
    auth_changed: tokio::sync::watch::Sender<u64>,
}

impl Reloader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: EngineHandle,
        path: Option<PathBuf>,
        auth: AuthCell,
        tls: Option<TlsCell>,
        started_with: DaemonConfig,
        subscribers: Arc<Subscribers>,
        env: EnvFn,
        metrics: Metrics,
    ) -> Reloader {
        Reloader {
            engine,
            path,
            auth,
            tls,
            auth_config: Mutex::new(started_with.auth.clone()),
            started_with,
            subscribers,
            env,
            metrics,
            gate: tokio::sync::Mutex::new(()),
            preview_gate: Arc::new(tokio::sync::Mutex::new(())),
            put_in_force: std::sync::atomic::AtomicBool::new(false),
            auth_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes when a reload put different auth keys in force.
    pub fn auth_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.auth_changed.subscribe()
    }

    /// The config file this daemon was started from, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// SIGHUP: reload the TLS certificate, then the config file if it changed.
    pub async fn on_sighup(self: &Arc<Self>) -> Result<ReloadReport, ReloadError> {
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("TLS certificate reloaded");
                    tls.report(&self.metrics, crate::metrics::wall_clock_ms());
                }
                Err(e) => {
                    // Refused like a config file that cannot be read, and counted so.
                    self.metrics.config_reload(false);
                    tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one")
                }
            }
        }
        self.reload_file().await
    }

    /// Re-read the config file and apply it if its text changed; if it did not, read the
    /// secrets again (a rotated secret file takes effect).
    pub async fn reload_file(self: &Arc<Self>) -> Result<ReloadReport, ReloadError> {
        let Some(path) = &self.path else {
            return Ok(ReloadReport::default());
        };
        let origin = path.display().to_string();
        let read = {
            let path = path.clone();
            move || crate::config::read_text(&path)
        };
        let text = match tokio::task::spawn_blocking(read).await {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                self.metrics.config_reload(false);
                return Err(ReloadError::Invalid(vec![e]));
            }
            Err(e) => {
                self.metrics.config_reload(false);
                return Err(ReloadError::Read {
                    path: origin.clone(),
                    message: format!("the task reading it failed: {e}"),
                });
            }
        };
        let current = self
            .engine
            .read_core_admin(|v| v.core.config().source.clone())
            .await?;
        if current == text {
            tracing::debug!(file = %origin, "config file unchanged");
            return self.reload_secrets().await;
        }
        let over_a_put = self.put_in_force.load(std::sync::atomic::Ordering::Relaxed);
        let result = self.apply_source(text, &origin).await;
        if over_a_put && result.as_ref().is_ok_and(|r| r.applied) {
            tracing::warn!(
                file = %origin,
                "the config file replaced the routing config a PUT /v1/config had put in force \
                 (a PUT is not written to the file: write it there to keep it)"
            );
        }
        result
    }

    /// Read every secret again and put them in force if all could be read.
    async fn reload_secrets(&self) -> Result<ReloadReport, ReloadError> {
        let _gate = self.gate.lock().await;
        let auth = self.current_auth_config();
        let fresh = match self.read_secrets(auth, None).await {
            Ok(fresh) => fresh,
            Err(e) => {
                self.metrics.config_reload(false);
                return Err(e);
            }
        };
        let secrets_changed = self.install(fresh.auth, fresh.subscribers).await;
        if secrets_changed {
            self.metrics.config_reload(true);
            tracing::info!("secrets reloaded: a rotated secret is in force");
        }
        Ok(ReloadReport {
            secrets_changed,
            ..ReloadReport::default()
        })
    }

    fn current_auth_config(&self) -> AuthConfig {
        match self.auth_config.lock() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Read secrets again, off the runtime's worker threads (files), without changing
    /// anything: the auth keys `auth` names, and the subscribers': with `planned` (the
    /// `[[subscriber]]` entries of a config about to be applied) theirs, an added or changed
    /// subscriber starting with them and an unchanged one rotated to them, so that a change
    /// naming one that cannot be read is refused before anything changes (a subscriber the
    /// change removes or moves to another source is not read from its old one); without (the
    /// config file is unchanged), each running subscriber's from its source.
    async fn read_secrets(
        &self,
        auth: AuthConfig,
        planned: Option<Vec<crate::config::daemon::SubscriberConfig>>,
    ) -> Result<FreshSecrets, ReloadError> {
        let env = self.env.clone();
        let subscribers = match planned {
            None => self.subscribers.secrets().await,
            Some(_) => Vec::new(),
        };
        let planned = planned.unwrap_or_default();
        let read = move || -> Result<FreshSecrets, SecretError> {
            let lookup = |var: &str| env(var);
            let planned = planned
                .iter()
                .enumerate()
                .map(|(i, s)| Subscriber::from_config(i, s, &lookup))
                .collect::<Result<_, _>>()?;
            Ok(FreshSecrets {
                auth: AuthKeys::from_config(&auth, &lookup)?,
                subscribers: subscribers
                    .iter()
                    .map(|s| s.read_again(&lookup))
                    .collect::<Result<_, _>>()?,
                planned,
            })
        };
        match tokio::task::spawn_blocking(read).await {
            Ok(result) => result.map_err(ReloadError::Secret),
            Err(e) => Err(ReloadError::Read {
                path: "secrets".into(),
                message: format!("the task reading them failed: {e}"),
            }),
        }
    }

    /// Everything a change is checked for before the engine sees it, in order: the file's
    /// problems; its secrets, every one read before anything changes (one that cannot be read
    /// refuses the whole change); that it keeps auth on; that its journal record fits.
    async fn vet(&self, source: String, origin: &str) -> Result<Vetted, ReloadError> {
        let loaded = config::parse(&source, origin).map_err(|e| ReloadError::Invalid(e.0))?;
        let fresh = self
            .read_secrets(
                loaded.daemon.auth.clone(),
                Some(loaded.daemon.subscribers.clone()),
            )
            .await?;
        self.keeps_auth_on(&fresh.auth, origin)?;
        // The input carries the parsed config: the engine task applies it without parsing the
        // text again, and the journal records what it resolved to, for replay.
        let input = Input::reconfigure_journaled(&loaded, origin).map_err(|message| {
            ReloadError::Invalid(vec![ConfigError {
                file: origin.to_string(),
                line: None,
                column: None,
                field: String::new(),
                message,
            }])
        })?;
        Ok(Vetted {
            loaded,
            fresh,
            input,
        })
    }

    /// Refuse a change that would turn a protection off while the daemon runs: signed events
    /// (webhook secrets) or bearer tokens, required now and not by `fresh`. A config sent
    /// without its `[auth]` section (a routing-only `PUT`, an edit that lost the section) would
    /// otherwise open the API at once. Changing or rotating credentials stays live; turning a
    /// protection off takes a restart with the new config.
    fn keeps_auth_on(&self, fresh: &AuthKeys, origin: &str) -> Result<(), ReloadError> {
        let now = match self.auth.read() {
            Ok(cell) => Arc::clone(&cell),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let mut problems = Vec::new();
        let mut refuse = |field: &str, what: &str| {
            problems.push(ConfigError {
                file: origin.to_string(),
                line: None,
                column: None,
                field: field.to_string(),
                message: format!(
                    "names no {what}, so it would turn that check off while the daemon runs; a \
                     live change cannot do that: keep the [auth] setting, or restart the daemon \
                     with this config to turn the check off"
                ),
            });
        };
        if now.signatures_required() && !fresh.signatures_required() {
            refuse("auth.webhook_secrets", "webhook secret (signed events)");
        }
        if now.tokens_required() && !fresh.tokens_required() {
            let field = if now.has_admin_tokens() {
                "auth.admin_tokens"
            } else {
                "auth.read_tokens"
            };
            refuse(field, "bearer token (read or admin)");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            // Logged by whoever tried the change (SIGHUP, the file watch, `PUT`); a `validate`
            // changes nothing and logs nothing.
            Err(ReloadError::Invalid(problems))
        }
    }

    /// Put `fresh` in force; whether anything differs from before.
    async fn install(&self, auth: AuthKeys, subscribers: Vec<Secret>) -> bool {
        let auth = Arc::new(auth);
        let auth_changed = {
            // A panic elsewhere while holding the lock cannot leave the keys half-written (one
            // `Arc` store), so a poisoned lock is used as it is.
            let mut cell = self.auth.write().unwrap_or_else(PoisonError::into_inner);
            let differs = **cell != *auth;
            *cell = auth;
            differs
        };
        if auth_changed {
            self.auth_changed.send_modify(|generation| *generation += 1);
        }
        let mut changed = auth_changed;
        for (cell, secret) in self.subscribers.secrets().await.iter().zip(subscribers) {
            changed |= cell.replace(secret);
        }
        changed
    }

    /// Parse, validate and apply `source` (the TOML text); `origin` names it in errors.
    ///
    /// The change runs on a task of its own, to the end, even if the caller stops waiting (a
    /// `PUT` answered 408 by the request timeout, a client that hangs up): once the engine has
    /// the new config it applies it, and the secrets it names must then be put in force with it.
    /// A caller dropped between the two would leave the routing config (and the TOML served as
    /// in force) new and the credentials old.
    pub async fn apply_source(
        self: &Arc<Self>,
        source: String,
        origin: &str,
    ) -> Result<ReloadReport, ReloadError> {
        self.apply_source_if(source, origin, None).await
    }

    /// `apply_source`, only if the config in force matches `if_match` (an `If-Match` value,
    /// judged under the reload gate, so no other change slips in between the check and the
    /// apply); `Stale` otherwise, and nothing changes.
    pub async fn apply_source_if(
        self: &Arc<Self>,
        source: String,
        origin: &str,
        if_match: Option<String>,
    ) -> Result<ReloadReport, ReloadError> {
        let me = Arc::clone(self);
        let origin = origin.to_string();
        let change = tokio::spawn(async move {
            let result = me.apply_source_once(source, &origin, if_match).await;
            match &result {
                Ok(_) => me.metrics.config_reload(true),
                // Logged here, where every change ends (a `PUT` answered 408 included).
                Err(
                    e @ (ReloadError::Invalid(_)
                    | ReloadError::Read { .. }
                    | ReloadError::Secret(_)),
                ) => {
                    tracing::warn!(origin, error = %e, "config change refused");
                    me.metrics.config_reload(false)
                }
                // Not a verdict on the config: the engine was busy or stopping (the preview
                // errors never come from a change).
                Err(
                    ReloadError::Engine(_)
                    | ReloadError::PreviewBusy
                    | ReloadError::Preview(_)
                    | ReloadError::Stale { .. },
                ) => {}
            }
            result
        });
        match change.await {
            Ok(result) => result,
            Err(e) => Err(ReloadError::Read {
                path: "config change".into(),
                message: format!("the task applying it failed: {e}"),
            }),
        }
    }

    /// Everything `apply_source` would refuse `source` for, without changing anything: the
    /// file's problems, then its secrets, then what the live interactions forbid (a removed
    /// queue they wait in without `drain_to`, a channel no longer served). The parsed config
    /// when it would be applied (barring events that arrive in between).
    pub async fn check_source(
        &self,
        source: &str,
        origin: &str,
    ) -> Result<config::LoadedConfig, ReloadError> {
        self.vet_live(source, origin, |_| ())
            .await
            .map(|(loaded, _, ())| loaded)
    }

    /// `vet` `source`, then, on the engine task, check it against the live state and, if it
    /// passes, run `then` there: the config, its subscribers ready to run, and what `then`
    /// took. Problems the live state makes are located in `source` (line and column of their
    /// field).
    async fn vet_live<R: Send + 'static>(
        &self,
        source: &str,
        origin: &str,
        then: impl FnOnce(&ReadView<'_>) -> R + Send + 'static,
    ) -> Result<(config::LoadedConfig, Vec<Subscriber>, R), ReloadError> {
        let Vetted { loaded, fresh, .. } = self.vet(source.to_string(), origin).await?;
        let (routing, origin) = (loaded.routing.clone(), origin.to_string());
        let taken = self
            .engine
            .read_core_admin(move |v| {
                let problems = v.core.reconfigure_problems(&routing, &origin);
                if problems.is_empty() {
                    Ok(then(v))
                } else {
                    Err(problems)
                }
            })
            .await?
            .map_err(|mut problems| {
                config::locate_fields(source, &mut problems);
                ReloadError::Invalid(problems)
            })?;
        Ok((loaded, fresh.planned, taken))
    }

    /// The daemon settings `daemon` puts in force (the command line still overrides the file,
    /// as it did at start), and those of them that only a restart applies.
    fn settings_from(&self, daemon: &DaemonConfig) -> (DaemonConfig, Vec<String>) {
        let mut reloaded = daemon.clone();
        self.started_with.overrides.apply(&mut reloaded);
        let needed = restart_needed(&self.started_with, &reloaded);
        (reloaded, needed)
    }

    /// What `source` would do if it were applied now (`POST /v1/config/preview`): everything
    /// `check_source` refuses it for, else the change applied to a copy of the engine taken on
    /// the engine task and worked out on a blocking thread. Nothing live changes. One at a
    /// time (`PreviewBusy` meanwhile).
    pub async fn preview_source(
        &self,
        source: &str,
        origin: &str,
    ) -> Result<
        (
            config::LoadedConfig,
            Vec<String>,
            super::preview::PreviewReport,
            SubscriberChanges,
        ),
        ReloadError,
    > {
        let Ok(one) = Arc::clone(&self.preview_gate).try_lock_owned() else {
            return Err(ReloadError::PreviewBusy);
        };
        let (loaded, planned, (captured, roster, etag, now)) = self
            .vet_live(source, origin, |v| {
                // The engine keeps no roster: the one in force is the daemon's.
                let roster: Vec<String> = v
                    .core
                    .config()
                    .routing
                    .agents
                    .iter()
                    .map(|a| a.id.clone())
                    .collect();
                let etag = config_etag(&v.core.config().source);
                (v.core.engine().capture(), roster, etag, v.now)
            })
            .await?;
        let routing = loaded.routing.clone();
        // The guard goes with the work: a preview whose request is dropped (timeout, client
        // gone) still holds its copy until its blocking thread ends, and no other starts.
        let report = tokio::task::spawn_blocking(move || {
            let _one = one;
            super::preview::preview(captured, &roster, routing, now)
        })
        .await
        .map_err(|e| ReloadError::Preview(format!("the preview's task failed: {e}")))?
        .map_err(|e| ReloadError::Preview(e.to_string()))?;
        let report = super::preview::PreviewReport {
            config_etag: etag,
            ..report
        };
        let (_, restart_needed) = self.settings_from(&loaded.daemon);
        let subscribers = self
            .subscribers
            .plan(&loaded.daemon.subscribers, &planned)
            .await;
        Ok((loaded, restart_needed, report, subscribers))
    }

    async fn apply_source_once(
        &self,
        source: String,
        origin: &str,
        if_match: Option<String>,
    ) -> Result<ReloadReport, ReloadError> {
        let _gate = self.gate.lock().await;
        if let Some(expected) = if_match {
            let current = self
                .engine
                .read_core_admin(|v| config_etag(&v.core.config().source))
                .await?;
            if !if_match_allows(&expected, &current) {
                return Err(ReloadError::Stale { current, expected });
            }
        }
        let Vetted {
            loaded,
            fresh,
            input,
        } = self.vet(source, origin).await?;
        // A subscriber this change adds gets the decisions from here on, the change's own
        // included (those of events applied meanwhile too: more, never fewer); with a journal
        // that starting point is on disk before the change is.
        let start_after = self.engine.next_seq_watch().borrow().checked_sub(1);
        let prepared = self.subscribers.prepare(&fresh.planned, start_after).await;
        // Only a change the engine certainly did not apply takes its starting points back: one
        // that may be journaled (a journal failure, the engine stopping) leaves them, so a
        // replay's decisions of the change are still delivered (at-least-once).
        let outcome = match self.engine.apply_admin(vec![input]).await {
            Ok(mut outcomes) => outcomes.pop(),
            Err(e) => {
                if matches!(e, SubmitError::Busy { .. }) {
                    self.subscribers.forget(prepared).await;
                }
                return Err(e.into());
            }
        };
        let decisions = match outcome {
            Some(Outcome::Applied(decisions)) => decisions,
            Some(Outcome::ConfigRefused(mut problems)) => {
                self.subscribers.forget(prepared).await;
                config::locate_fields(&loaded.source, &mut problems);
                return Err(ReloadError::Invalid(problems));
            }
            _ => return Err(ReloadError::Engine(SubmitError::Stopped)),
        };
        let FreshSecrets {
            auth,
            subscribers,
            planned,
        } = fresh;
        let mut secrets_changed = self.install(auth, subscribers).await;
        match self.auth_config.lock() {
            Ok(mut a) => *a = loaded.daemon.auth.clone(),
            Err(poisoned) => *poisoned.into_inner() = loaded.daemon.auth.clone(),
        }
        let (reloaded, restart_needed) = self.settings_from(&loaded.daemon);
        for setting in &restart_needed {
            tracing::warn!(
                setting,
                "changed in the config but only takes effect after a restart"
            );
        }
        tracing::info!(
            origin,
            queues = loaded.routing.queues.len(),
            agents = loaded.routing.agents.len(),
            decisions = decisions.len(),
            "routing config applied"
        );
        let mut notes = log_notes(&loaded.routing, origin);
        let from_put = origin == PUT_ORIGIN;
        self.put_in_force
            .store(from_put, std::sync::atomic::Ordering::Relaxed);
        if let (true, Some(path)) = (from_put, &self.path) {
            notes.push(format!(
                "not written to {}: a reload of that file (SIGHUP, its watch, a restart) \
                 replaces this config; write it there to keep it",
                path.display()
            ));
        }
        let (subscribers, rotated) = self
            .subscribers
            .apply(&reloaded.subscribers, planned, start_after)
            .await;
        secrets_changed |= rotated;
        Ok(ReloadReport {
            applied: true,
            decisions,
            restart_needed,
            secrets_changed,
            notes,
            subscribers,
        })
    }
}

/// Log each setting of `routing` that has no effect (a warning: legal, but likely a mistake)
/// and return them.
pub fn log_notes(routing: &config::RoutingConfig, origin: &str) -> Vec<String> {
    let notes = config::summary::notes(routing);
    for note in &notes {
        tracing::warn!(origin, "{note}");
    }
    notes
}

/// Daemon settings read only at start that differ between `old` and `new`.
pub fn restart_needed(old: &DaemonConfig, new: &DaemonConfig) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            changed.push(name.to_string());
        }
    };
    check("server.listen", old.server.listen != new.server.listen);
    check(
        "server.tls_cert",
        old.server.tls_cert != new.server.tls_cert || old.server.tls_key != new.server.tls_key,
    );
    check(
        "server.body_limit_bytes",
        old.server.body_limit_bytes != new.server.body_limit_bytes,
    );
    check(
        "server.request_timeout_ms",
        old.server.request_timeout_ms != new.server.request_timeout_ms,
    );
    check(
        "server.idle_timeout_ms",
        old.server.idle_timeout_ms != new.server.idle_timeout_ms,
    );
    check(
        "server.event_queue_depth",
        old.server.event_queue_depth != new.server.event_queue_depth,
    );
    check("server.workers", old.server.workers != new.server.workers);
    check(
        "server.max_connections",
        old.server.max_connections != new.server.max_connections,
    );
    check(
        "server.max_feed_readers",
        old.server.max_feed_readers != new.server.max_feed_readers,
    );
    check(
        "server.decision_log",
        old.server.decision_log != new.server.decision_log,
    );
    check(
        "server.shutdown_grace_ms",
        old.server.shutdown_grace_ms != new.server.shutdown_grace_ms,
    );
    check("metrics", old.metrics != new.metrics);
    check("journal", old.journal != new.journal);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reload_says_every_problem_and_counts_past_twenty() {
        let problem = |n: usize| ConfigError {
            file: "tierline.toml".into(),
            line: Some(n),
            column: Some(1),
            field: format!("queue[{n}].strategy"),
            message: "unknown strategy".into(),
        };
        let three = ReloadError::Invalid((1..=3).map(problem).collect()).to_string();
        assert!(
            three.starts_with("config refused (3 problems), old config kept: "),
            "{three}"
        );
        for n in 1..=3 {
            assert!(three.contains(&format!("queue[{n}].strategy")), "{three}");
        }
        let many = ReloadError::Invalid((1..=25).map(problem).collect()).to_string();
        assert!(
            many.contains("queue[20].strategy") && !many.contains("queue[21]"),
            "{many}"
        );
        assert!(many.ends_with("; and 5 more (`tierline check-config FILE` lists them all)"));
    }

    #[test]
    fn if_match_compares_strongly_and_takes_a_list_or_a_star() {
        let tag = config_etag("[[queue]]\nid = \"q\"\n");
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 66);
        assert_ne!(tag, config_etag("[[queue]]\nid = \"r\"\n"));
        assert!(if_match_allows(&tag, &tag));
        assert!(if_match_allows("*", &tag));
        assert!(if_match_allows(&format!("\"x\" , {tag}"), &tag));
        assert!(!if_match_allows(&format!("W/{tag}"), &tag));
        assert!(!if_match_allows("\"x\"", &tag));
        assert!(!if_match_allows("", &tag));
    }

    #[test]
    fn a_listen_change_needs_a_restart_but_idempotency_and_subscribers_do_not() {
        let old = DaemonConfig::default();
        let mut new = old.clone();
        new.server.listen = "0.0.0.0:8080".into();
        new.server.idempotency_ids = 10;
        new.server.max_connections = 5;
        new.server.decision_log = 7;
        new.subscribers
            .push(crate::config::daemon::SubscriberConfig::new(
                "http://pbx/hook",
            ));
        assert_eq!(
            restart_needed(&old, &new),
            vec![
                "server.listen".to_string(),
                "server.max_connections".to_string(),
                "server.decision_log".to_string(),
            ]
        );
        assert!(restart_needed(&old, &old).is_empty());
    }
}
