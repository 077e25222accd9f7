//! The webhook subscribers that run, and how a reload changes them.
//!
//! Each `[[subscriber]]` is delivered to by a task of its own (`api::subscriber`). A config
//! change (SIGHUP, the file watch, `PUT /v1/config`) compares the new entries with the running
//! ones by name (the configured `name`, else the URL; it also names the ack file):
//! - an entry that is gone stops its task (after its current POST attempt, which is not
//!   acknowledged: its decisions are sent again should the subscriber come back);
//! - an entry whose settings changed (URL, secret source, types, retries, batch, timeout) stops
//!   and starts again with the new settings, resuming after its last acknowledged decision (with
//!   a journal; without one, after the newest decision made before the change);
//! - a new entry starts with the decisions made from the change on (the decisions the change
//!   itself caused included), or, with a journal, after what its ack file records if a
//!   subscriber of that name ran before;
//! - an unchanged entry keeps running; its signing secret is read again (rotation).
//!
//! A subscriber renamed is one stopped and one started. The tasks end on shutdown as before.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::api::secret::RotatingSecret;
use crate::api::subscriber::{self, Cursor, Subscriber};
use crate::config::daemon::SubscriberConfig;
use crate::journal::AckFile;
use crate::metrics::Metrics;

use super::clock::Clock;
use super::shutdown::Shutdown;
use super::task::EngineHandle;

/// What a config change did to the subscribers, by label (the configured name, else the URL
/// without credentials).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SubscriberChanges {
    /// New entries now delivered to.
    pub started: Vec<String>,
    /// Entries that are gone, no longer delivered to.
    pub stopped: Vec<String>,
    /// Entries whose settings changed, started again with the new ones.
    pub restarted: Vec<String>,
}

impl SubscriberChanges {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.stopped.is_empty() && self.restarted.is_empty()
    }
}

/// What every subscriber task is started with.
#[derive(Clone)]
pub struct SubscriberContext {
    pub engine: EngineHandle,
    pub clock: Clock,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    /// The journal directory: ack files live under it (none: no durable cursors).
    pub acks_dir: Option<PathBuf>,
    /// Whether an ack file is fsynced after each write (the journal syncs).
    pub sync_acks: bool,
}

/// Where `sub` starts: after its ack file's record (under `acks_dir`, the journal directory), if
/// it has one, else after `start_after`.
pub fn cursor(
    acks_dir: Option<&Path>,
    sync_acks: bool,
    sub: &Subscriber,
    start_after: Option<u64>,
) -> Cursor {
    Cursor {
        start_after,
        acks: acks_dir.map(|dir| AckFile::for_subscriber(dir, &sub.name, &sub.label, sync_acks)),
    }
}

/// One running subscriber task.
struct Running {
    config: SubscriberConfig,
    label: String,
    secret: Option<RotatingSecret>,
    /// Sent (or dropped) to stop the task.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    fn name(&self) -> &str {
        entry_name(&self.config)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(subscriber = %self.label, error = %e, "subscriber task failed");
        }
    }
}

/// The name a `[[subscriber]]` entry is known by (as `Subscriber::name`).
fn entry_name(config: &SubscriberConfig) -> &str {
    config.name.as_deref().unwrap_or(&config.url)
}

/// The running subscribers.
pub struct Subscribers {
    context: SubscriberContext,
    running: Mutex<Vec<Running>>,
}

impl Subscribers {
    pub fn new(context: SubscriberContext) -> Subscribers {
        Subscribers {
            context,
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn context(&self) -> &SubscriberContext {
        &self.context
    }

    /// Start delivering to `sub` (configured as `config`) after `cursor`.
    pub async fn launch(&self, config: SubscriberConfig, sub: Subscriber, cursor: Cursor) {
        let running = self.spawn(config, sub, cursor);
        self.running.lock().await.push(running);
    }

    fn spawn(&self, config: SubscriberConfig, sub: Subscriber, cursor: Cursor) -> Running {
        let (stop, stopped) = oneshot::channel();
        let label = sub.label.clone();
        let secret = sub.secret.clone();
        let c = &self.context;
        let task = subscriber::spawn(
            sub,
            c.engine.clone(),
            c.clock,
            c.shutdown.clone(),
            stopped,
            cursor,
            c.metrics.clone(),
        );
        Running {
            config,
            label,
            secret,
            stop,
            task,
        }
    }

    /// The signing secrets of the running subscribers that sign, in their order (a reload reads them
    /// again and puts them back with `RotatingSecret::replace`).
    pub async fn secrets(&self) -> Vec<RotatingSecret> {
        self.running
            .lock()
            .await
            .iter()
            .filter_map(|r| r.secret.clone())
            .collect()
    }

    /// Make the running subscribers those of `wanted`; `built` holds each entry of `wanted`
    /// made ready to run (its secret read), in the same order. A new entry without an ack
    /// record starts after seq `start_after`. Once shutdown has begun nothing new is started.
    pub async fn apply(
        &self,
        wanted: &[SubscriberConfig],
        built: Vec<Subscriber>,
        start_after: Option<u64>,
    ) -> SubscriberChanges {
        let mut running = self.running.lock().await;
        let mut changes = SubscriberChanges::default();
        let mut kept: Vec<Running> = Vec::with_capacity(wanted.len());
        let mut restarting: Vec<String> = Vec::new();
        for r in std::mem::take(&mut *running) {
            match wanted.iter().find(|w| entry_name(w) == r.name()) {
                Some(w) if *w == r.config => kept.push(r),
                Some(_) => {
                    restarting.push(r.name().to_string());
                    r.stop().await;
                }
                None => {
                    changes.stopped.push(r.label.clone());
                    tracing::info!(subscriber = %r.label, "subscriber removed from the config: stopped");
                    r.stop().await;
                }
            }
        }
        let shutting_down = self.context.shutdown.is_triggered();
        for (config, sub) in wanted.iter().zip(built) {
            if let Some(pos) = kept.iter().position(|r| r.name() == entry_name(config)) {
                running.push(kept.swap_remove(pos));
                continue;
            }
            if shutting_down {
                continue;
            }
            let restart = restarting.iter().any(|n| n == entry_name(config));
            let c = &self.context;
            let cursor = cursor(c.acks_dir.as_deref(), c.sync_acks, &sub, start_after);
            let first = (sub.clone(), cursor.clone());
            // Blocking file I/O (the ack file), off the runtime's worker threads.
            if let Err(e) = tokio::task::spawn_blocking(move || {
                subscriber::record_first_start(&first.0, &first.1)
            })
            .await
            {
                tracing::warn!(subscriber = %sub.label, error = %e, "cannot record the subscriber's starting point");
            }
            if restart {
                tracing::info!(subscriber = %sub.label, "subscriber settings changed: started again with the new ones");
                changes.restarted.push(sub.label.clone());
            } else {
                tracing::info!(subscriber = %sub.label, "subscriber added by a config change: started");
                changes.started.push(sub.label.clone());
            }
            running.push(self.spawn(config.clone(), sub, cursor));
        }
        changes
    }

    /// Wait for every subscriber task to end (they end on shutdown).
    pub async fn join_all(&self) {
        let running = std::mem::take(&mut *self.running.lock().await);
        for r in running {
            if let Err(e) = r.task.await {
                tracing::error!(subscriber = %r.label, error = %e, "subscriber task failed");
            }
        }
    }
}
