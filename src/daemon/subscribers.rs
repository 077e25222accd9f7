//! The webhook subscribers that run, and how a config change changes them.
//!
//! Each `[[subscriber]]` is delivered to by a task of its own (`api::subscriber`). A config
//! change (SIGHUP, the file watch, `PUT /v1/config`) compares the new entries with the running
//! ones by name (the configured `name`, else the URL; it also names the ack file), once the
//! engine has applied the change:
//! - an entry that is gone is stopped before the change is answered (a POST in flight is
//!   abandoned, unacknowledged; the receiver may still have taken it) and its ack file deleted:
//!   added again later, it is a new subscriber;
//! - an entry whose settings changed (URL, secret source, types, retries, batch, timeout) is
//!   stopped and started again with the new settings, resuming after its last acknowledged
//!   decision (nothing it had not delivered is skipped), or from the change if the old task had
//!   already sent some of the change's own decisions (they go out again, with the new settings);
//! - a new entry starts with the decisions from the change on, those the change itself caused
//!   included (its starting point is recorded, with a journal, before the engine applies the
//!   change, as it is at start before the first decision);
//! - an unchanged entry keeps running, with its signing secret read again from its source.
//!
//! A task stops only between steps, never while it records an ack (`subscriber::Control`), so
//! when a stop returns nothing of the old task writes the ack file any more. A subscriber
//! renamed is one stopped and one started. The tasks end on shutdown as before.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::api::secret::RotatingSecret;
use crate::api::subscriber::{self, Control, Cursor, Subscriber};
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

impl SubscriberContext {
    /// `cursor` with this daemon's ack files.
    fn cursor(&self, sub: &Subscriber, start_after: Option<u64>) -> Cursor {
        cursor(self.acks_dir.as_deref(), self.sync_acks, sub, start_after)
    }
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
    acks: Option<AckFile>,
    control: Control,
    task: JoinHandle<()>,
}

impl Running {
    fn name(&self) -> &str {
        entry_name(&self.config)
    }

    /// Stop the task and wait for it; the cursor it had reached (see `Control::progress`).
    async fn stop(self) -> Option<u64> {
        self.control.stop.trigger();
        if let Err(e) = self.task.await {
            tracing::error!(subscriber = %self.label, error = %e, "subscriber task failed");
        }
        let reached = *self.control.progress.borrow();
        reached
    }
}

/// The name a `[[subscriber]]` entry is known by (as `Subscriber::name`).
fn entry_name(config: &SubscriberConfig) -> &str {
    config.name.as_deref().unwrap_or(&config.url)
}

/// Run blocking ack-file I/O off the runtime's worker threads; a failure is logged (it costs
/// at most a redelivery or a skipped record, never routing).
async fn ack_io(label: &str, what: &'static str, io: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(io).await {
        tracing::warn!(subscriber = %label, error = %e, "cannot {what}");
    }
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

    /// Start delivering to `sub` (configured as `config`) after `cursor`.
    pub async fn launch(&self, config: SubscriberConfig, sub: Subscriber, cursor: Cursor) {
        let running = self.spawn(config, sub, cursor, None);
        self.running.lock().await.push(running);
    }

    /// Start `sub`'s task; `previous`, the control of the task it replaces (an edited
    /// subscriber), makes its first POST wait for one the old task left on the wire.
    fn spawn(
        &self,
        config: SubscriberConfig,
        sub: Subscriber,
        cursor: Cursor,
        previous: Option<&Control>,
    ) -> Running {
        let control = match previous {
            Some(previous) => Control::after(previous, cursor.start_after),
            None => Control::new(cursor.start_after),
        };
        let c = &self.context;
        Running {
            config,
            label: sub.label.clone(),
            secret: sub.secret.clone(),
            acks: cursor.acks.clone(),
            control: control.clone(),
            task: subscriber::spawn(
                sub,
                c.engine.clone(),
                c.clock,
                c.shutdown.clone(),
                control,
                cursor,
                c.metrics.clone(),
            ),
        }
    }

    /// The signing secrets of the running subscribers that sign, in their order (a reload of an
    /// unchanged config file reads them again and puts them back with `RotatingSecret::replace`).
    pub async fn secrets(&self) -> Vec<RotatingSecret> {
        self.running
            .lock()
            .await
            .iter()
            .filter_map(|r| r.secret.clone())
            .collect()
    }

    /// Before a change is applied: record, for each entry of `planned` that is not running and
    /// has no ack record yet, that it starts after seq `start_after`, as `record_first_start`
    /// does at start (a crash before the change is answered must not make the next start skip
    /// the decisions the change caused). Returns the ack files written, for `forget` should the
    /// change be refused. Without a journal there is nothing to record.
    pub async fn prepare(&self, planned: &[Subscriber], start_after: Option<u64>) -> Vec<AckFile> {
        if self.context.acks_dir.is_none() {
            return Vec::new();
        }
        let running = self.running.lock().await;
        let new: Vec<(Subscriber, Cursor)> = planned
            .iter()
            .filter(|s| !running.iter().any(|r| r.name() == s.name))
            .map(|s| (s.clone(), self.context.cursor(s, start_after)))
            .collect();
        drop(running);
        match tokio::task::spawn_blocking(move || {
            new.into_iter()
                .filter(|(sub, cursor)| subscriber::record_first_start(sub, cursor))
                .filter_map(|(_, cursor)| cursor.acks)
                .collect::<Vec<_>>()
        })
        .await
        {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record new subscribers' starting points");
                Vec::new()
            }
        }
    }

    /// Undo `prepare` for a change that was refused.
    pub async fn forget(&self, written: Vec<AckFile>) {
        if written.is_empty() {
            return;
        }
        ack_io("(new subscribers)", "remove a starting point", move || {
            for acks in written {
                if let Err(e) = acks.remove() {
                    tracing::warn!(error = %e, "cannot remove a refused subscriber's starting point");
                }
            }
        })
        .await;
    }

    /// What `apply` would report for the `wanted` entries (`planned`: the same, built), changing
    /// nothing: the answer of `POST /v1/config/preview`.
    pub async fn plan(
        &self,
        wanted: &[SubscriberConfig],
        planned: &[Subscriber],
    ) -> SubscriberChanges {
        let running = self.running.lock().await;
        let mut changes = SubscriberChanges::default();
        for r in running.iter() {
            if !wanted.iter().any(|w| entry_name(w) == r.name()) {
                changes.stopped.push(r.label.clone());
            }
        }
        for (w, sub) in wanted.iter().zip(planned) {
            match running.iter().find(|r| r.name() == entry_name(w)) {
                Some(r) if r.config == *w => {}
                Some(_) => changes.restarted.push(sub.label.clone()),
                None => changes.started.push(sub.label.clone()),
            }
        }
        changes
    }

    /// Make the running subscribers those of `wanted`; `built` holds each entry of `wanted`
    /// made ready to run (its secret freshly read), in the same order. A new entry without an
    /// ack record starts after seq `start_after`. Once shutdown has begun nothing new is
    /// started. Also whether a kept or restarted subscriber's secret changed (rotated).
    pub async fn apply(
        &self,
        wanted: &[SubscriberConfig],
        built: Vec<Subscriber>,
        start_after: Option<u64>,
    ) -> (SubscriberChanges, bool) {
        let mut running = self.running.lock().await;
        let mut changes = SubscriberChanges::default();
        let mut rotated = false;
        let mut kept: Vec<Running> = Vec::with_capacity(wanted.len());
        // Stopped because their settings changed: name, label, where the old task had reached,
        // its control (its POST attempt may still be on the wire).
        let mut restarting: Vec<(String, String, Option<u64>, Control)> = Vec::new();
        for r in std::mem::take(&mut *running) {
            let found = wanted
                .iter()
                .zip(&built)
                .find(|(w, _)| entry_name(w) == r.name());
            match found {
                Some((w, fresh)) if *w == r.config => {
                    // The same source, just read: put it in force (a rotated secret file).
                    if let (Some(cell), Some(new)) = (&r.secret, &fresh.secret) {
                        rotated |= cell.replace(new.get());
                    }
                    kept.push(r);
                }
                Some((_, fresh)) => {
                    // A secret that differs from the stopped task's is a rotation too.
                    if let (Some(cell), Some(new)) = (&r.secret, &fresh.secret) {
                        rotated |= cell.get() != new.get();
                    }
                    let (name, label) = (r.name().to_string(), r.label.clone());
                    let control = r.control.clone();
                    let reached = r.stop().await;
                    restarting.push((name, label, reached, control));
                }
                None => {
                    tracing::info!(subscriber = %r.label, "subscriber removed from the config: stopped");
                    changes.stopped.push(r.label.clone());
                    let acks = r.acks.clone();
                    let label = r.label.clone();
                    r.stop().await;
                    // Its lag is no longer a lag: NaN, which no `>` alert matches.
                    self.context.metrics.subscriber_gone(&label);
                    if let Some(acks) = acks {
                        let shown = label.clone();
                        ack_io(&label, "remove the ack file", move || {
                            if let Err(e) = acks.remove() {
                                tracing::warn!(subscriber = %shown, error = %e, "cannot remove the removed subscriber's ack file");
                            }
                        })
                        .await;
                    }
                }
            }
        }
        let shutting_down = self.context.shutdown.is_triggered();
        for (config, sub) in wanted.iter().zip(built) {
            if let Some(pos) = kept.iter().position(|r| r.name() == entry_name(config)) {
                running.push(kept.swap_remove(pos));
                continue;
            }
            let restart = restarting
                .iter()
                .position(|(name, _, _, _)| name == entry_name(config))
                .map(|i| restarting.swap_remove(i));
            if shutting_down {
                if let Some((_, label, _, _)) = restart {
                    changes.stopped.push(label);
                }
                continue;
            }
            // A restart continues where the old task stopped (its ack file, with a journal,
            // says the same: the task stops only after recording), but no later than the
            // change: the decisions the change caused go out with the new settings, even those
            // the old task sent before it was stopped (at-least-once). `None` (from the oldest
            // held) orders first.
            let from = restart.as_ref().map_or(start_after, |(_, _, reached, _)| {
                (*reached).min(start_after)
            });
            let cursor = self.context.cursor(&sub, from);
            let first = (sub.clone(), cursor.clone(), restart.is_some());
            ack_io(
                &sub.label,
                "record the subscriber's starting point",
                move || {
                    let (sub, cursor, restart) = first;
                    match (&cursor.acks, restart) {
                        // The file may be ahead of `from` (the old task acknowledged some of
                        // the change's decisions): the restart starts from `from`.
                        (Some(acks), true) => {
                            if let Err(e) = acks.store(cursor.start_after.unwrap_or(0)) {
                                tracing::warn!(subscriber = %sub.label, error = %e, "cannot record where the restarted subscriber starts");
                            }
                        }
                        _ => {
                            subscriber::record_first_start(&sub, &cursor);
                        }
                    }
                },
            )
            .await;
            if restart.is_some() {
                tracing::info!(subscriber = %sub.label, "subscriber settings changed: started again with the new ones");
                changes.restarted.push(sub.label.clone());
            } else {
                tracing::info!(subscriber = %sub.label, "subscriber added by a config change: started");
                changes.started.push(sub.label.clone());
            }
            let previous = restart.as_ref().map(|(_, _, _, control)| control);
            running.push(self.spawn(config.clone(), sub, cursor, previous));
        }
        (changes, rotated)
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
