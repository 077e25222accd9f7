//! Live config changes: the config file (SIGHUP or the file watch) and `PUT /v1/config` all go
//! through `Reloader`, which parses and validates first and then applies the new routing config
//! atomically on the engine task (`Input::Reconfigure`). A bad config never replaces a good one:
//! every problem is reported and the old config stays in force.
//!
//! After a routing change the auth keys are re-read from the env vars the new `[auth]` names.
//! SIGHUP also reloads the TLS certificate. Settings that only take effect at start (listen
//! addresses, body limit, queue depth, subscribers, journal) are reported as "restart needed".
//!
//! Every attempt to change the config counts in `tierline_config_reloads_total{result}`: `ok`
//! when the new config is in force, `rejected` when the file could not be read or the config was
//! refused. An unchanged file is not a reload; `POST /v1/config/validate` is not either.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::api::auth::{AuthCell, AuthKeys};
use crate::api::tls::TlsCell;
use crate::config::{self, ConfigError, DaemonConfig};
use crate::engine::Decision;
use crate::metrics::Metrics;

use super::core::{Input, Outcome};
use super::task::{EngineHandle, SubmitError};
use super::EnvFn;

/// Why a reload did not happen.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ReloadError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config refused ({} problems), old config kept: {}", .0.len(), first_problem(.0))]
    Invalid(Vec<ConfigError>),
    #[error(transparent)]
    Engine(#[from] SubmitError),
}

fn first_problem(problems: &[ConfigError]) -> String {
    problems.first().map(|p| p.to_string()).unwrap_or_default()
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
}

/// Applies config changes; shared by the signal handler, the file watch and the admin API.
pub struct Reloader {
    engine: EngineHandle,
    path: Option<PathBuf>,
    auth: AuthCell,
    tls: Option<TlsCell>,
    started_with: DaemonConfig,
    env: EnvFn,
    metrics: Metrics,
    /// Serializes reloads so two never interleave their check-then-apply.
    gate: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        engine: EngineHandle,
        path: Option<PathBuf>,
        auth: AuthCell,
        tls: Option<TlsCell>,
        started_with: DaemonConfig,
        env: EnvFn,
        metrics: Metrics,
    ) -> Reloader {
        Reloader {
            engine,
            path,
            auth,
            tls,
            started_with,
            env,
            metrics,
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The config file this daemon was started from, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// SIGHUP: reload the TLS certificate, then the config file if it changed.
    pub async fn on_sighup(&self) -> Result<ReloadReport, ReloadError> {
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one")
                }
            }
        }
        self.reload_file().await
    }

    /// Re-read the config file and apply it if its text changed.
    pub async fn reload_file(&self) -> Result<ReloadReport, ReloadError> {
        let Some(path) = &self.path else {
            return Ok(ReloadReport::default());
        };
        let origin = path.display().to_string();
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            Err(e) => {
                self.metrics.config_reload(false);
                return Err(ReloadError::Read {
                    path: origin.clone(),
                    message: e.to_string(),
                });
            }
        };
        let current = self.engine.read(|v| v.core.config().source.clone()).await?;
        if current == text {
            tracing::debug!(file = %origin, "config file unchanged");
            return Ok(ReloadReport::default());
        }
        self.apply_source(text, &origin).await
    }

    /// Parse, validate and apply `source` (the TOML text); `origin` names it in errors.
    pub async fn apply_source(
        &self,
        source: String,
        origin: &str,
    ) -> Result<ReloadReport, ReloadError> {
        let result = self.apply_source_once(source, origin).await;
        match &result {
            Ok(_) => self.metrics.config_reload(true),
            Err(ReloadError::Invalid(_) | ReloadError::Read { .. }) => {
                self.metrics.config_reload(false)
            }
            // Not a verdict on the config: the engine was busy or stopping.
            Err(ReloadError::Engine(_)) => {}
        }
        result
    }

    async fn apply_source_once(
        &self,
        source: String,
        origin: &str,
    ) -> Result<ReloadReport, ReloadError> {
        let _gate = self.gate.lock().await;
        let loaded = config::parse(&source, origin).map_err(|e| ReloadError::Invalid(e.0))?;
        let outcome = self
            .engine
            .apply(vec![Input::Reconfigure {
                source,
                origin: origin.to_string(),
            }])
            .await?
            .pop();
        let decisions = match outcome {
            Some(Outcome::Applied(decisions)) => decisions,
            Some(Outcome::ConfigRefused(problems)) => {
                tracing::warn!(origin, problems = problems.len(), "config change refused");
                return Err(ReloadError::Invalid(problems));
            }
            _ => return Err(ReloadError::Engine(SubmitError::Stopped)),
        };
        match AuthKeys::from_config(&loaded.daemon.auth, |var| (self.env)(var)) {
            Ok(keys) => match self.auth.write() {
                Ok(mut cell) => *cell = Arc::new(keys),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
            },
            Err(e) => tracing::error!(error = %e, "auth keys not reloaded; keeping the old ones"),
        }
        let restart_needed = restart_needed(&self.started_with, &loaded.daemon);
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
        Ok(ReloadReport {
            applied: true,
            decisions,
            restart_needed,
        })
    }
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
        "server.event_queue_depth",
        old.server.event_queue_depth != new.server.event_queue_depth,
    );
    check(
        "server.shutdown_grace_ms",
        old.server.shutdown_grace_ms != new.server.shutdown_grace_ms,
    );
    check("metrics", old.metrics != new.metrics);
    check("journal", old.journal != new.journal);
    check("subscriber", old.subscribers != new.subscribers);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_and_subscriber_changes_need_a_restart_but_idempotency_does_not() {
        let old = DaemonConfig::default();
        let mut new = old.clone();
        new.server.listen = "0.0.0.0:8080".into();
        new.server.idempotency_ids = 10;
        new.subscribers
            .push(crate::config::daemon::SubscriberConfig::new(
                "http://pbx/hook",
            ));
        assert_eq!(
            restart_needed(&old, &new),
            vec!["server.listen".to_string(), "subscriber".to_string()]
        );
        assert!(restart_needed(&old, &old).is_empty());
    }
}
