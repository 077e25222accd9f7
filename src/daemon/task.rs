//! The engine task: the one task that owns the `Core` (and so the engine). The daemon runs it on
//! a thread of its own (`daemon::spawn_engine_thread`), so its timers never wait behind HTTP
//! connection tasks; tests may run it on any runtime.
//!
//! HTTP handlers, subscribers and the reloader talk to it only through `EngineHandle`: a bounded
//! command channel (depth `[server] event_queue_depth`; full ⇒ `SubmitError::Busy`, which the API
//! answers with 503 + `Retry-After`) and a oneshot reply per command. Each wake-up drains up to
//! `MAX_BATCH` commands (rumqttd's router does the same), hands the journalable inputs to the
//! `InputSink` *before* applying any of them, applies them at one clock reading, and feeds the
//! batch's facts to the metrics `Telemetry` it owns and to the observers.
//!
//! Durability is reported, not waited for: the daemon's sink only writes the batch and answers
//! `Appended::Pending(index)`; the `tierline-sync` thread (`commit`) fdatasyncs and sends
//! `SyncReport::Synced(index)` on a channel this task `select!`s on beside its commands and
//! timers. Until a report covers a batch, everything through which its effects could be seen is
//! held in `held` (in batch order): the replies, the answers of reads that ran after it (a read
//! runs at its place in the command order but answers once the newest batch before it is
//! synced), and the decision seq published on the watch channel (which is what wakes long-polls,
//! SSE and subscribers). With a group-commit window (`InputSink::gathers`) the task takes no
//! commands while a batch is held: they wait in the channel until the sync thread, at the end of
//! its window, asks for them (`SyncReport::Gather`, answered by `InputSink::gathered` once they
//! are written), so under load it wakes once per window, not once per request; timers still fire
//! at their deadlines. At most `MAX_IN_FLIGHT` batches are held; at that bound the task takes
//! no commands and fires no timers until a report arrives. A `SyncReport::Failed` fails every
//! held reply with 503 and ends `run` with `JournalSyncFailed` (the daemon then exits 1).
//! Between wake-ups it sleeps on the channel, the sync reports and the engine's next timer
//! deadline: nothing polls. It never blocks on the network, nor on the disk except for the
//! write(2) (and a segment roll's sync).
//!
//! Facts reach `Telemetry` after every batch, and so do its gauges (waiting per queue, oldest
//! wait, agents per tier and activity): the engine keeps the per-queue agent census
//! incrementally and lists the queues whose load changed, so a refresh costs O(queues the batch
//! changed), about 2 µs after one arrival at 15,000 agents / 5,000 queues (`benches/
//! telemetry_refresh.rs`; the walk over every queue's agents it replaces cost ≈ 11 ms, which is
//! why gauges used to be refreshed at most every 100 ms). So the agent-seconds per state are
//! credited to the new state from the batch that changed it. Reads that only look at the core
//! (decision pages) use `read_core`.
//!
//! It also records its own health: engine time per input (`tierline_decision_seconds`), how late
//! a timer wake-up came (`tierline_timer_lateness_seconds`) and the commands still queued after
//! each drain (`tierline_event_queue_depth`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Millis, RoutingConfig};
use crate::engine::{Engine, Fact};
use crate::metrics::{Metrics, Telemetry};

use super::clock::Clock;
use super::commit::{SyncReport, SyncReports};
use super::core::{Applied, Core, Input, Outcome, TimedInput};

/// Commands drained per wake-up.
pub const MAX_BATCH: usize = 500;

/// Batches written but not yet reported durable, at most. At the bound the engine task takes no
/// new commands and fires no timers until a sync report arrives (the command channel then fills
/// and the API answers 503 `overloaded`): a disk that cannot keep up pushes back instead of
/// letting held replies and memory grow without limit.
pub const MAX_IN_FLIGHT: usize = 1024;

/// What `InputSink::append` did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Durable already (or durability is off): its effects may be released at once.
    Durable,
    /// Written, durable once a `SyncReport::Synced` at or past this journal index arrives.
    Pending(u64),
}

/// Where inputs go before they are applied (the durability journal plugs in here).
pub trait InputSink: Send {
    /// Record a batch of inputs, in the order they will be applied: every input of the batch
    /// (refused or duplicate ones too, they replay harmlessly) plus the `Advance` when timers
    /// are due. Called *before* any of them is applied. An error applies none of them and fails
    /// every reply of the batch with 503 `journal_unavailable`. `Appended::Pending` applies the
    /// batch now and holds its replies (and everything else that shows its effects) until the
    /// sink's sync reports cover it.
    fn append(&mut self, batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError>;
    /// Where this sink reports which journal index is durable; taken once by the engine task.
    /// Required by any sink that answers `Appended::Pending`.
    fn sync_reports(&mut self) -> Option<SyncReports> {
        None
    }
    /// Every record up to `index` is durable (e.g. a held snapshot may now be written).
    fn synced(&mut self, _index: u64) {}
    /// Whether this sink's sync reports include `SyncReport::Gather`. If so, the engine task
    /// takes no commands while a written batch awaits its sync, until the sink asks it to gather
    /// (see `commit`).
    fn gathers(&self) -> bool {
        false
    }
    /// The engine task has written the commands it took for a `SyncReport::Gather`.
    fn gathered(&mut self) {}
    /// The batch has been applied (e.g. take a snapshot when one is due).
    fn after_batch(&mut self, _core: &Core, _now: Millis) {}
    /// The engine task is stopping with this final state (e.g. a final snapshot).
    fn on_stop(&mut self, _core: &Core, _now: Millis) {}
}

/// One input as the journal records it, borrowed from the command that carries it, so a batch
/// is journaled without copying its events. Serializes exactly like [`TimedInput`] (the form
/// replay reads back).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct JournalEntry<'a> {
    pub at: Millis,
    #[serde(flatten)]
    pub input: &'a Input,
}

impl JournalEntry<'_> {
    /// An owned copy (tests and sinks that keep what they were given).
    pub fn to_timed(&self) -> TimedInput {
        TimedInput {
            at: self.at,
            input: self.input.clone(),
        }
    }
}

impl<'a> From<&'a TimedInput> for JournalEntry<'a> {
    fn from(timed: &'a TimedInput) -> JournalEntry<'a> {
        JournalEntry {
            at: timed.at,
            input: &timed.input,
        }
    }
}

/// How long the engine task waits before retrying due timers after a failed journal append.
pub const JOURNAL_RETRY_MS: Millis = 200;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("journal append failed: {0}")]
pub struct SinkError(pub String);

/// The sink used until durability lands: records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoJournal;

impl InputSink for NoJournal {
    fn append(&mut self, _batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
        Ok(Appended::Durable)
    }
}

/// Sees every batch's facts (metrics' `Telemetry` plugs in here). Runs inside the engine task:
/// it must be quick and must not block.
pub trait FactObserver: Send {
    fn on_batch(&mut self, facts: &[Fact], engine: &Engine, now: Millis);
    /// A new routing config is in force.
    fn on_config(&mut self, _config: &RoutingConfig) {}
}

/// What a read closure sees: the core, the telemetry (series, KPI windows, figures since start)
/// and the batch's clock reading.
pub struct ReadView<'a> {
    pub core: &'a Core,
    /// Series, KPI windows and figures since start, up to date with every fact before this read.
    pub telemetry: &'a Telemetry,
    pub now: Millis,
    /// Why the journal's last append failed, while it is failing: set by a failed append,
    /// cleared by the next one that succeeds (reads alone do not clear it). `/readyz` answers
    /// 503 `journal_unavailable` meanwhile, since every event would be.
    pub journal_failure: Option<&'a str>,
}

/// A read: runs on the engine task against the state at its place in the command order and
/// returns how to send its answer, which the task calls once everything it saw is durable.
type ReadFn = Box<dyn FnOnce(&ReadView<'_>) -> Release + Send>;
/// Sends a read's answer.
type Release = Box<dyn FnOnce() + Send>;
type Reply = oneshot::Sender<Result<Vec<Outcome>, SubmitError>>;

/// Effects of applied batches waiting for the journal to report them durable.
struct Held {
    /// Journal index the sync must reach.
    index: u64,
    replies: Vec<(Reply, Vec<Outcome>)>,
    reads: Vec<Release>,
    /// The decision seq to publish once durable.
    next_seq: u64,
}

/// The journal could not be made durable: the engine task stopped (see `commit`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("journal sync failed: {0}")]
pub struct JournalSyncFailed(pub String);

/// A request to the engine task.
enum Command {
    Apply {
        inputs: Vec<Input>,
        reply: Reply,
    },
    /// A read that may look at the telemetry: it is brought up to date first.
    Read(ReadFn),
    /// A read of the core alone (`ReadView::core`, `now`): the telemetry may lag.
    ReadCore(ReadFn),
}

/// Why a command did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    /// The command channel is full (`[server] event_queue_depth`).
    #[error(
        "the engine is busy: its command queue is full ([server] event_queue_depth = {depth}); \
         this request was not taken, so nothing of it was applied: retry after Retry-After"
    )]
    Busy { depth: usize },
    /// The engine task has stopped (shutting down).
    #[error("the engine is stopping")]
    Stopped,
    #[error(transparent)]
    Journal(#[from] SinkError),
}

/// How long an administrator's command waits for room in a full command channel before it is
/// refused `Busy` (`EngineHandle::apply_admin`).
pub const ADMIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a read does when the command channel is full.
#[derive(Debug, Clone, Copy)]
enum Room {
    /// `Busy` at once (reads for clients, who retry).
    Refuse,
    /// Wait up to `ADMIN_WAIT` for room (an administrator's change).
    Wait,
}

/// The cheap, cloneable way to talk to the engine task.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    next_seq: watch::Receiver<u64>,
    depth: usize,
}

impl EngineHandle {
    /// Apply inputs in order; one outcome per input.
    pub async fn apply(&self, inputs: Vec<Input>) -> Result<Vec<Outcome>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Command::Apply { inputs, reply })?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    /// `apply` for an administrator's change (a config change, a forced agent state): when the
    /// command channel is full it waits for room, up to `ADMIN_WAIT`, instead of answering
    /// `Busy` at once. A freed slot goes to a waiting sender before any event's `try_send`
    /// (tokio's channel serves waiters first), so under an event flood an admin's change gets
    /// the next slot: the config change that would relieve an overload is not refused by it.
    /// (Kept apart from `apply`, the events' path, whose future need not carry a timer.)
    pub async fn apply_admin(&self, inputs: Vec<Input>) -> Result<Vec<Outcome>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.submit_waiting(Command::Apply { inputs, reply })
            .await?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    /// Run `f` on the engine task against the current state and return its result. The
    /// telemetry it sees is up to date with every fact before it.
    pub async fn read<R, F>(&self, f: F) -> Result<R, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadView<'_>) -> R + Send + 'static,
    {
        self.ask(Command::Read, f, Room::Refuse).await
    }

    /// Like `read`, for a closure that looks only at `view.core` and `view.now` (decision pages,
    /// readiness): the telemetry's view-derived gauges are not refreshed for it, so frequent
    /// readers such as long-polls cost no more than the read itself.
    pub async fn read_core<R, F>(&self, f: F) -> Result<R, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadView<'_>) -> R + Send + 'static,
    {
        self.ask(Command::ReadCore, f, Room::Refuse).await
    }

    /// `read_core` that waits for room like `apply_admin` (the checks of an admin's change).
    pub async fn read_core_admin<R, F>(&self, f: F) -> Result<R, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadView<'_>) -> R + Send + 'static,
    {
        self.ask(Command::ReadCore, f, Room::Wait).await
    }

    /// Send `f` as the read command `kind` and wait for its result.
    async fn ask<R, F>(
        &self,
        kind: fn(ReadFn) -> Command,
        f: F,
        room: Room,
    ) -> Result<R, SubmitError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadView<'_>) -> R + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let command = kind(Box::new(move |view| {
            let answer = f(view);
            Box::new(move || {
                let _ = reply.send(answer);
            })
        }));
        match room {
            Room::Refuse => self.submit(command)?,
            Room::Wait => self.submit_waiting(command).await?,
        }
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Queue `command` for the engine task; `Busy` at once with the channel full.
    fn submit(&self, command: Command) -> Result<(), SubmitError> {
        self.tx.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Busy { depth: self.depth },
            mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
        })
    }

    /// `submit`, waiting up to `ADMIN_WAIT` for room in a full channel.
    async fn submit_waiting(&self, command: Command) -> Result<(), SubmitError> {
        match tokio::time::timeout(ADMIN_WAIT, self.tx.send(command)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SubmitError::Stopped),
            Err(_) => Err(SubmitError::Busy { depth: self.depth }),
        }
    }

    /// The seq the next decision will carry, updated after every batch. Wait on it (`changed`,
    /// `wait_for`) to learn that new decisions exist without asking the engine.
    pub fn next_seq_watch(&self) -> watch::Receiver<u64> {
        self.next_seq.clone()
    }

    /// Commands waiting in the channel now.
    pub fn queued(&self) -> usize {
        self.depth - self.tx.capacity()
    }
}

/// The engine task, before it runs.
pub struct EngineTask {
    core: Core,
    clock: Clock,
    rx: mpsc::Receiver<Command>,
    next_seq: watch::Sender<u64>,
    sink: Box<dyn InputSink>,
    observer: Option<Box<dyn FactObserver>>,
    telemetry: Telemetry,
    /// While journal appends fail: the last one's error (`ReadView::journal_failure`) and the
    /// engine time of the next try (no timer work before it). Every wake-up meanwhile appends
    /// something (a probe if nothing else), so the next append sets or clears this.
    journal_failure: Option<(String, Millis)>,
    /// Applied batches whose effects wait for durability, oldest first.
    held: VecDeque<Held>,
    /// At most this many batches held (`MAX_IN_FLIGHT`).
    max_in_flight: usize,
}

impl EngineTask {
    /// The task and its handle; `depth` bounds the command channel. `telemetry` (started at the
    /// core's time with its routing config) is owned by the task from now on.
    pub fn new(
        mut core: Core,
        clock: Clock,
        depth: usize,
        sink: Box<dyn InputSink>,
        observer: Option<Box<dyn FactObserver>>,
        telemetry: Telemetry,
    ) -> (EngineTask, EngineHandle) {
        let depth = depth.max(1);
        let (tx, rx) = mpsc::channel(depth);
        let (seq_tx, seq_rx) = watch::channel(core.next_seq());
        core.engine_mut().set_record_facts(true);
        let mut telemetry = telemetry;
        telemetry.start(core.engine_mut(), clock.now_ms());
        // After a restart the seq continues from the journal: say so before the first batch.
        telemetry.newest_decision(core.engine().next_seq());
        let task = EngineTask {
            core,
            clock,
            rx,
            next_seq: seq_tx,
            sink,
            observer,
            telemetry,
            journal_failure: None,
            held: VecDeque::new(),
            max_in_flight: MAX_IN_FLIGHT,
        };
        let handle = EngineHandle {
            tx,
            next_seq: seq_rx,
            depth,
        };
        (task, handle)
    }

    /// Hold at most `limit` batches unsynced instead of `MAX_IN_FLIGHT` (tests).
    pub fn with_in_flight_limit(mut self, limit: usize) -> EngineTask {
        self.max_in_flight = limit.max(1);
        self
    }

    /// Run until `stop` resolves (then finish the commands already queued and wait for their
    /// sync) or every handle is dropped. Returns the core, e.g. for a final snapshot; or the
    /// sync failure that stopped it, after failing every held reply (no final snapshot then).
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<Core, JournalSyncFailed> {
        let mut stop = std::pin::pin!(stop);
        let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
        let mut reports = self.sink.sync_reports();
        let gathers = reports.is_some() && self.sink.gathers();
        loop {
            // After a failed journal append, timer work waits for the retry time; with no timer
            // pending, the task still wakes then to try the journal again (`process` appends a
            // probe), so `/readyz` recovers when space returns even if no event comes.
            let deadline = match (self.core.next_deadline(), &self.journal_failure) {
                (Some(deadline), Some((_, retry))) => Some(deadline.max(*retry)),
                (None, Some((_, retry))) => Some(*retry),
                (deadline, None) => deadline,
            };
            let timer = self.sleep_until(deadline);
            // At the in-flight bound, nothing new is taken until a sync report arrives.
            let intake = self.held.len() < self.max_in_flight;
            // With a gathering sink, commands wait in the channel while a batch awaits its sync:
            // the sync thread asks for them just before it syncs (`SyncReport::Gather`).
            let take = intake && (!gathers || self.held.is_empty());
            tokio::select! {
                report = next_report(&mut reports) => {
                    match report {
                        SyncReport::Gather => self.gather(&mut batch),
                        report => self.on_report(report)?,
                    }
                    continue;
                }
                n = self.rx.recv_many(&mut batch, MAX_BATCH), if take => {
                    if n == 0 {
                        break;
                    }
                }
                // Timers fire in `process`, which records their lateness.
                () = timer, if intake => {}
                () = &mut stop => {
                    self.rx.close();
                    while self.rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                        while self.held.len() >= self.max_in_flight {
                            self.await_report(&mut reports).await?;
                        }
                        let now = self.clock.now_ms();
                        self.process(&mut batch, now);
                    }
                    break;
                }
            }
            let now = self.clock.now_ms();
            self.process(&mut batch, now);
        }
        while !self.held.is_empty() {
            self.await_report(&mut reports).await?;
        }
        let now = self.clock.now_ms();
        self.sink.on_stop(&self.core, now);
        Ok(self.core)
    }

    /// Wait for one sync report and act on it. Without a report source (a sink that never
    /// answers `Pending`), whatever is held is released.
    async fn await_report(
        &mut self,
        reports: &mut Option<SyncReports>,
    ) -> Result<(), JournalSyncFailed> {
        if reports.is_none() {
            self.release_through(u64::MAX);
            return Ok(());
        }
        let report = next_report(reports).await;
        self.on_report(report)
    }

    /// Take the commands queued now (not those that arrive meanwhile: the gather must end), up
    /// to the in-flight bound, apply and write them, and tell the sink they are written.
    fn gather(&mut self, batch: &mut Vec<Command>) {
        let mut left = self.rx.len();
        while left > 0 && self.held.len() < self.max_in_flight {
            while batch.len() < MAX_BATCH.min(left) {
                match self.rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            left -= batch.len();
            let now = self.clock.now_ms();
            self.process(batch, now);
        }
        self.sink.gathered();
    }

    /// Release what a sync made durable, or fail everything held on a sync failure. A `Gather`
    /// here (the task is stopping and drains the channel itself) is answered at once.
    fn on_report(&mut self, report: SyncReport) -> Result<(), JournalSyncFailed> {
        match report {
            SyncReport::Gather => {
                self.sink.gathered();
                Ok(())
            }
            SyncReport::Synced(index) => {
                self.sink.synced(index);
                self.release_through(index);
                Ok(())
            }
            SyncReport::Failed(message) => {
                tracing::error!(
                    error = %message,
                    held_batches = self.held.len(),
                    "journal sync failed; failing the unsynced replies and stopping (the kernel may have dropped the unwritten data, so a retry cannot be trusted)"
                );
                let error = SubmitError::Journal(SinkError(message.clone()));
                for held in self.held.drain(..) {
                    for (reply, _) in held.replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                    // Reads are dropped unanswered: their callers see the engine stopping.
                }
                Err(JournalSyncFailed(message))
            }
        }
    }

    /// Send the replies and read answers, and publish the decision seq, of every held batch
    /// durable up to `index`, oldest first.
    fn release_through(&mut self, index: u64) {
        while self.held.front().is_some_and(|h| h.index <= index) {
            if let Some(held) = self.held.pop_front() {
                self.release(held.replies, held.reads, held.next_seq);
            }
        }
    }

    fn release(&self, replies: Vec<(Reply, Vec<Outcome>)>, reads: Vec<Release>, next: u64) {
        // The newest seq first: a client that got its answer and then asks anything of the feed
        // (a config change adding a subscriber starts it after that seq) must find it already
        // counted, or it would be taken for a decision still to come.
        self.next_seq.send_if_modified(|seq| {
            let changed = *seq != next;
            *seq = next;
            changed
        });
        for (reply, outcomes) in replies {
            let _ = reply.send(Ok(outcomes));
        }
        for read in reads {
            read();
        }
    }

    fn sleep_until(&self, deadline: Option<Millis>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        match deadline {
            Some(deadline) => Box::pin(tokio::time::sleep_until(self.clock.instant_at(deadline))),
            None => Box::pin(std::future::pending()),
        }
    }

    fn process(&mut self, batch: &mut Vec<Command>, now: Millis) {
        // Persist, then apply, then reply: the journal gets every input of the batch first.
        let due = self.core.next_deadline().filter(|d| *d <= now);
        let timers_due = due.is_some();
        let mut journal: Vec<JournalEntry<'_>> = Vec::new();
        if timers_due {
            journal.push(JournalEntry {
                at: now,
                input: &Input::Advance,
            });
        }
        for command in batch.iter() {
            if let Command::Apply { inputs, .. } = command {
                journal.extend(inputs.iter().map(|input| JournalEntry { at: now, input }));
            }
        }
        // While appends fail, a wake-up with nothing to journal tries with an `Advance` (it
        // fires nothing that is not due, and replays the same way).
        let probe = journal.is_empty() && self.journal_failure.is_some();
        if probe {
            journal.push(JournalEntry {
                at: now,
                input: &Input::Advance,
            });
        }
        let appended = if journal.is_empty() {
            Ok(Appended::Durable)
        } else {
            self.sink.append(&journal)
        };
        let journaled = appended.as_ref().map(|_| ()).map_err(Clone::clone);
        let journal_len = journal.len();
        drop(journal);
        if let Err(e) = &journaled {
            if probe {
                // The retry of an idle daemon, every JOURNAL_RETRY_MS: the failure it repeats was
                // logged and counted already.
                tracing::debug!(error = %e, "journal still cannot be written");
            } else {
                tracing::error!(error = %e, inputs = journal_len, "journal append failed; nothing of the batch applied");
                self.metrics().journal_append_failed();
            }
            self.journal_failure = Some((e.0.clone(), now.saturating_add(JOURNAL_RETRY_MS)));
        } else {
            self.journal_failure = None;
        }
        let mut replies = Vec::new();
        let mut reads: Vec<Release> = Vec::new();
        let mut reconfigured = false;
        if let (Some(deadline), true) = (due, journaled.is_ok()) {
            // However the task woke (its timer, or a command that arrived as the deadline
            // passed), the lateness of the earliest timer due, from its own deadline.
            let late = tokio::time::Instant::now()
                .saturating_duration_since(self.clock.instant_at(deadline));
            self.metrics().timer_lateness(late);
            let _ = self.timed_apply(&Input::Advance, now);
        } else if probe && journaled.is_ok() {
            // Applied as journaled, so the live engine and a replay stand at the same time.
            let _ = self.timed_apply(&Input::Advance, now);
        }
        for command in batch.drain(..) {
            match command {
                Command::Apply { inputs, reply } => {
                    if let Err(e) = &journaled {
                        let _ = reply.send(Err(SubmitError::Journal(e.clone())));
                        continue;
                    }
                    let mut outcomes = Vec::with_capacity(inputs.len());
                    for input in inputs {
                        if matches!(input, Input::Reconfigure { .. }) {
                            // Facts so far are recorded under the config they happened in (an
                            // answer is judged by the SLA in force when it was answered).
                            self.observe(now, &mut reconfigured);
                        }
                        let applied = self.timed_apply(&input, now);
                        if applied.outcome.is_applied() {
                            reconfigured |= matches!(input, Input::Reconfigure { .. });
                        }
                        outcomes.push(applied.outcome);
                    }
                    replies.push((reply, outcomes));
                }
                Command::Read(f) => {
                    // Facts so far must reach the telemetry before a read sees them.
                    self.observe(now, &mut reconfigured);
                    reads.push(f(&ReadView {
                        core: &self.core,
                        telemetry: &self.telemetry,
                        now,
                        journal_failure: self.journal_failure.as_ref().map(|(e, _)| e.as_str()),
                    }));
                }
                Command::ReadCore(f) => reads.push(f(&ReadView {
                    core: &self.core,
                    telemetry: &self.telemetry,
                    now,
                    journal_failure: self.journal_failure.as_ref().map(|(e, _)| e.as_str()),
                })),
            }
        }
        self.observe(now, &mut reconfigured);
        self.metrics().event_queue_depth(self.rx.len());
        if journaled.is_ok() && journal_len > 0 {
            self.sink.after_batch(&self.core, now);
        }
        // Release now only what nothing unsynced precedes; otherwise hold it, in order.
        let next = self.core.next_seq();
        match (appended, self.held.back_mut()) {
            (Ok(Appended::Pending(index)), _) => self.held.push_back(Held {
                index,
                replies,
                reads,
                next_seq: next,
            }),
            (_, Some(last)) => {
                last.replies.extend(replies);
                last.reads.extend(reads);
                last.next_seq = next;
            }
            (_, None) => self.release(replies, reads, next),
        }
    }

    fn metrics(&self) -> &Metrics {
        self.telemetry.metrics()
    }

    /// Apply one input, recording the engine time it took (timers due first included).
    fn timed_apply(&mut self, input: &Input, now: Millis) -> Applied {
        let started = Instant::now();
        let applied = self.core.apply(input, now);
        self.metrics().decision_time(started.elapsed());
        applied
    }

    fn observe(&mut self, now: Millis, reconfigured: &mut bool) {
        let reconfigured = std::mem::take(reconfigured);
        if reconfigured {
            let routing = &self.core.config().routing;
            self.telemetry.on_config(routing);
            if let Some(observer) = &mut self.observer {
                observer.on_config(routing);
            }
        }
        let facts = self.core.engine_mut().take_facts();
        // Facts (exact moments), then the gauges of the queues the batch changed (cheap: no walk).
        self.telemetry.on_facts(&facts);
        self.telemetry.refresh(self.core.engine_mut(), now);
        self.telemetry
            .newest_decision(self.core.engine().next_seq());
        if let Some(observer) = &mut self.observer {
            if !facts.is_empty() {
                observer.on_batch(&facts, self.core.engine(), now);
            }
        }
    }
}

/// The next sync report; never, without a report source (or once every sender is gone).
async fn next_report(reports: &mut Option<SyncReports>) -> SyncReport {
    match reports {
        Some(rx) => match rx.recv().await {
            Some(report) => report,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::config::{AgentConfig, DaemonConfig, LoadedConfig, QueueConfig};
    use crate::engine::{DecisionKind, Event, RevokeReason};

    const T0: Millis = 1_800_000_000_000;

    fn core() -> Core {
        core_with(|_| {})
    }

    /// `core()` with its `support` queue changed by `edit`.
    fn core_with(edit: impl FnOnce(&mut QueueConfig)) -> Core {
        let mut routing = RoutingConfig::empty();
        let mut q = QueueConfig::with_defaults("support");
        q.offer_timeout_ms = 15_000;
        edit(&mut q);
        routing.queues.push(q);
        routing.agents.push(AgentConfig {
            id: "a1".into(),
            address: "sip:a1@pbx".into(),
            tiers: [("support".to_string(), 1)].into(),
            skills: vec![],
            capacity: Default::default(),
        });
        Core::new(
            LoadedConfig {
                routing,
                daemon: DaemonConfig::default(),
                source: String::new(),
            },
            T0,
        )
    }

    fn telemetry(core: &Core) -> Telemetry {
        let routing = &core.config().routing;
        let metrics = Metrics::unserved(&Default::default(), routing).unwrap();
        Telemetry::new(metrics, routing, T0)
    }

    /// A task running `core` from `T0` with a recording journal, until `stop`.
    struct Started {
        handle: EngineHandle,
        metrics: Metrics,
        stop: tokio::sync::oneshot::Sender<()>,
        running: tokio::task::JoinHandle<Result<Core, JournalSyncFailed>>,
    }

    fn start(core: Core) -> Started {
        let telemetry = telemetry(&core);
        let metrics = telemetry.metrics().clone();
        let (task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            16,
            Box::new(Recorder::default()),
            None,
            telemetry,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(task.run(async move {
            let _ = stopped.await;
        }));
        Started {
            handle,
            metrics,
            stop,
            running,
        }
    }

    impl Started {
        async fn stop(self) -> Core {
            self.stop.send(()).unwrap();
            self.running.await.unwrap().unwrap()
        }
    }

    /// Agent a1 logs in (`e1`), then call c1 arrives.
    fn events() -> Vec<Input> {
        let mut inputs = vec![Input::Event {
            id: "e1".into(),
            event: Event::AgentLogin {
                agent: "a1".into(),
                address: None,
                tiers: None,
                skills: None,
                capacity: None,
            },
        }];
        inputs.extend(arrival("c1"));
        inputs
    }

    #[test]
    fn a_journal_entry_is_written_exactly_like_the_timed_input_replay_reads() {
        let mut inputs = events();
        inputs.push(Input::Advance);
        inputs.push(Input::AgentState {
            agent: "a1".into(),
            state: crate::engine::RequestedState::NotReady,
            reason: Some("lunch".into()),
        });
        for input in inputs {
            let timed = TimedInput { at: T0, input };
            let entry = JournalEntry::from(&timed);
            assert_eq!(
                serde_json::to_string(&entry).unwrap(),
                serde_json::to_string(&timed).unwrap()
            );
            assert_eq!(entry.to_timed(), timed);
        }
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<TimedInput>>>);

    impl InputSink for Recorder {
        fn append(&mut self, batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
            self.0
                .lock()
                .unwrap()
                .extend(batch.iter().map(JournalEntry::to_timed));
            Ok(Appended::Durable)
        }
    }

    fn arrival(id: &str) -> Vec<Input> {
        vec![Input::Event {
            id: format!("e-{id}"),
            event: Event::voice_call(id, "support"),
        }]
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_sleeps_until_the_offer_expires_and_fires_it_at_its_deadline() {
        let clock = Clock::starting_at(T0);
        let journal = Recorder::default();
        let core = core();
        let telemetry = telemetry(&core);
        let (task, handle) =
            EngineTask::new(core, clock, 16, Box::new(journal.clone()), None, telemetry);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(task.run(async move {
            let _ = stopped.await;
        }));
        let outcomes = handle.apply(events()).await.unwrap();
        assert!(outcomes.iter().all(Outcome::is_applied));
        let mut seq = handle.next_seq_watch();
        assert_eq!(*seq.borrow_and_update(), 2, "the offer was seq 1");

        // Nothing happens until the deadline; then the task wakes by itself.
        tokio::time::advance(Duration::from_millis(14_999)).await;
        assert_eq!(*seq.borrow(), 2);
        // The expiry: `offer_revoked`, then `queued` (nobody else to take the call).
        seq.wait_for(|next| *next == 4).await.unwrap();
        let page = handle
            .read(|v| v.core.decisions_after(Some(1), 10))
            .await
            .unwrap()
            .unwrap();
        let revoked: crate::engine::Decision =
            serde_json::from_str(&page.decisions[0].json).unwrap();
        assert_eq!(revoked.at, T0 + 15_000);
        assert!(matches!(
            revoked.kind,
            DecisionKind::OfferRevoked {
                reason: RevokeReason::Expired,
                ..
            }
        ));
        // The journal saw both events and the timer advance, in order, at their times.
        let recorded = journal.0.lock().unwrap().clone();
        assert_eq!(recorded.len(), 3);
        assert_eq!(recorded[0].at, T0);
        assert_eq!(recorded[2].input, Input::Advance);
        assert_eq!(recorded[2].at, T0 + 15_000);

        stop.send(()).unwrap();
        let core = running.await.unwrap().unwrap();
        assert_eq!(core.next_seq(), 4);
    }

    /// An answer and a config change in one batch: the answer is judged by the SLA in force
    /// when it happened (20 s), not by the one the change brings (30 s).
    #[tokio::test(start_paused = true)]
    async fn facts_before_a_reload_in_the_same_batch_are_recorded_under_the_old_config() {
        let task = start(core_with(|q| q.sla_ms = 20_000));
        let handle = &task.handle;
        assert!(handle.apply(arrival("c1")).await.unwrap()[0].is_applied());
        tokio::time::advance(Duration::from_secs(25)).await;
        let login = events().remove(0);
        assert!(handle.apply(vec![login]).await.unwrap()[0].is_applied());
        let source = "[[queue]]\nid = \"support\"\noffer_timeout_s = 15\nsla_s = 30\n\n\
                      [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\n\
                      tiers = { support = 1 }\n";
        let batch = vec![
            Input::Event {
                id: "e-accept".into(),
                event: Event::OfferAccepted {
                    interaction: "c1".into(),
                    agent: "a1".into(),
                    offer: None,
                },
            },
            Input::Reconfigure {
                source: source.into(),
                origin: "test".into(),
                resolved: None,
            },
        ];
        let outcomes = handle.apply(batch).await.unwrap();
        assert!(outcomes.iter().all(Outcome::is_applied), "{outcomes:?}");
        let tally = handle
            .read(|v| v.telemetry.queue_tally("support"))
            .await
            .unwrap();
        assert_eq!(tally.answered, 1);
        assert_eq!(
            tally.answered_within_sla, 0,
            "answered after 25 s; sla_s was 20"
        );
        task.stop().await;
    }

    /// A timer that falls due as a command arrives is fired on the command's wake-up: its
    /// lateness is recorded all the same (it used to be only when the timer itself woke the
    /// task, so under load nearly every timer went unmeasured).
    #[tokio::test(start_paused = true)]
    async fn every_wake_that_fires_timers_records_their_lateness() {
        for racing in [false, true] {
            let task = start(core());
            let handle = &task.handle;
            handle.apply(events()).await.unwrap();
            let mut seq = handle.next_seq_watch();
            assert_eq!(*seq.borrow_and_update(), 2);
            if racing {
                // A PBX event queued just as the offer (due at +15 s) expires.
                let h2 = handle.clone();
                let queued = tokio::spawn(async move { h2.apply(arrival("c2")).await });
                tokio::time::advance(Duration::from_millis(15_000)).await;
                queued.await.unwrap().unwrap();
            } else {
                tokio::time::advance(Duration::from_millis(15_000)).await;
            }
            seq.wait_for(|next| *next >= 3).await.unwrap();
            let count: Option<f64> = task
                .metrics
                .render()
                .lines()
                .find(|l| l.starts_with("tierline_timer_lateness_seconds_count"))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok());
            assert_eq!(count, Some(1.0), "racing = {racing}");
            task.stop().await;
        }
    }

    #[tokio::test]
    async fn a_full_command_channel_is_busy_not_blocking() {
        let core = core();
        let telemetry = telemetry(&core);
        let (_task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            1,
            Box::new(NoJournal),
            None,
            telemetry,
        );
        // The task is not running: the first command fills the channel.
        let first = {
            let h = handle.clone();
            tokio::spawn(async move { h.apply(vec![Input::Advance]).await })
        };
        tokio::task::yield_now().await;
        while handle.queued() < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            handle.apply(vec![Input::Advance]).await,
            Err(SubmitError::Busy { depth: 1 })
        );
        drop(_task);
        assert_eq!(first.await.unwrap(), Err(SubmitError::Stopped));
    }

    struct FailingJournal;

    impl InputSink for FailingJournal {
        fn append(&mut self, _batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
            Err(SinkError("disk full".into()))
        }
    }

    #[tokio::test]
    async fn a_journal_failure_fails_the_replies_of_its_batch() {
        let core = core();
        let telemetry = telemetry(&core);
        let (task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            4,
            Box::new(FailingJournal),
            None,
            telemetry,
        );
        tokio::spawn(task.run(std::future::pending()));
        let result = handle.apply(events()).await;
        assert_eq!(
            result,
            Err(SubmitError::Journal(SinkError("disk full".into())))
        );
        // Persist before apply: nothing of the refused batch took effect.
        let (arrived, next_seq) = handle
            .read(|v| (v.core.engine().counts().arrived, v.core.next_seq()))
            .await
            .unwrap();
        assert_eq!((arrived, next_seq), (0, 1));
    }

    /// Fails until told otherwise; counts the batches offered.
    #[derive(Clone, Default)]
    struct FlakyJournal {
        failing: Arc<Mutex<bool>>,
        attempts: Arc<Mutex<Vec<(Millis, usize)>>>,
    }

    impl InputSink for FlakyJournal {
        fn append(&mut self, batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
            self.attempts
                .lock()
                .unwrap()
                .push((batch[0].at, batch.len()));
            if *self.failing.lock().unwrap() {
                Err(SinkError("disk full".into()))
            } else {
                Ok(Appended::Durable)
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_timer_whose_journal_append_fails_is_retried_after_a_back_off() {
        let clock = Clock::starting_at(T0);
        let journal = FlakyJournal::default();
        let core = core();
        let telemetry = telemetry(&core);
        let (task, handle) =
            EngineTask::new(core, clock, 16, Box::new(journal.clone()), None, telemetry);
        tokio::spawn(task.run(std::future::pending()));
        handle.apply(events()).await.unwrap();
        *journal.failing.lock().unwrap() = true;
        // The offer expires at +15 s; its Advance cannot be journaled, so it does not fire…
        tokio::time::advance(Duration::from_millis(15_000)).await;
        tokio::task::yield_now().await;
        let (next, failure) = handle
            .read(|v| (v.core.next_seq(), v.journal_failure.map(str::to_string)))
            .await
            .unwrap();
        assert_eq!(next, 2, "the expiry must not apply unjournaled");
        assert_eq!(
            failure.as_deref(),
            Some("disk full"),
            "reads see the failure"
        );
        // …and is retried after the back-off, not in a busy loop.
        let tries = journal.attempts.lock().unwrap().len();
        assert!(tries <= 3, "{tries} attempts without time passing");
        *journal.failing.lock().unwrap() = false;
        tokio::time::advance(Duration::from_millis(JOURNAL_RETRY_MS)).await;
        let mut seq = handle.next_seq_watch();
        // The expiry: `offer_revoked`, then `queued` (nobody else to take the call).
        seq.wait_for(|next| *next == 4).await.unwrap();
        let page = handle
            .read(|v| v.core.decisions_after(Some(1), 10))
            .await
            .unwrap()
            .unwrap();
        let revoked: crate::engine::Decision =
            serde_json::from_str(&page.decisions[0].json).unwrap();
        assert_eq!(revoked.at, T0 + 15_000, "it fires at its own deadline");
        let failure = handle
            .read(|v| v.journal_failure.map(str::to_string))
            .await
            .unwrap();
        assert_eq!(failure, None, "a successful append clears it");
    }

    /// With no timer pending, a failed append is still retried (a probe), so the failure
    /// clears when space returns although no event comes (`/readyz` would stay 503 otherwise).
    #[tokio::test(start_paused = true)]
    async fn a_failed_append_is_retried_with_no_timer_pending_and_clears_when_it_succeeds() {
        let journal = FlakyJournal::default();
        let core = core();
        let telemetry = telemetry(&core);
        let metrics = telemetry.metrics().clone();
        let failures = move || {
            metrics.render().lines().find_map(|line| {
                line.strip_prefix("tierline_journal_append_failures_total ")?
                    .parse::<f64>()
                    .ok()
            })
        };
        let (task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            16,
            Box::new(journal.clone()),
            None,
            telemetry,
        );
        tokio::spawn(task.run(std::future::pending()));
        *journal.failing.lock().unwrap() = true;
        let login = events().remove(0);
        assert!(handle.apply(vec![login.clone()]).await.is_err());
        let failure = |h: &EngineHandle| {
            let h = h.clone();
            async move {
                h.read(|v| v.journal_failure.map(str::to_string))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(failure(&handle).await.as_deref(), Some("disk full"));
        // Idle retries that fail again are neither counted nor logged as new failures.
        let tries = journal.attempts.lock().unwrap().len();
        tokio::time::advance(Duration::from_millis(3 * JOURNAL_RETRY_MS)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(journal.attempts.lock().unwrap().len() > tries, "no retry");
        assert_eq!(failures(), Some(1.0), "one refused request, one failure");
        *journal.failing.lock().unwrap() = false;
        let tries = journal.attempts.lock().unwrap().len();
        tokio::time::advance(Duration::from_millis(JOURNAL_RETRY_MS)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(journal.attempts.lock().unwrap().len() > tries, "no retry");
        assert_eq!(failure(&handle).await, None, "cleared with no event");
        // Nothing was applied but the probe: the refused login did not log a1 in.
        let status = handle
            .read(|v| v.core.engine().agent("a1").map(|a| a.status))
            .await
            .unwrap();
        assert_eq!(status, Some(crate::engine::AgentStatus::Offline));
    }

    /// The `tierline_queue_waiting` sample for `support`/`voice` in a rendered page.
    fn waiting_on_support(metrics: &Metrics) -> Option<f64> {
        metrics.render().lines().find_map(|line| {
            let rest = line.strip_prefix("tierline_queue_waiting{")?;
            (rest.contains("queue=\"support\"") && rest.contains("channel=\"voice\""))
                .then(|| line.rsplit_once(' ')?.1.parse().ok())?
        })
    }

    #[tokio::test(start_paused = true)]
    async fn gauges_follow_the_engine_after_every_batch() {
        let core = core();
        let telemetry = telemetry(&core);
        let metrics = telemetry.metrics().clone();
        let (task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            16,
            Box::new(NoJournal),
            None,
            telemetry,
        );
        tokio::spawn(task.run(std::future::pending()));
        assert_eq!(waiting_on_support(&metrics), Some(0.0));
        // Nobody is logged in: the call waits, and the reply comes after the gauges moved.
        let arrival = events().pop().unwrap();
        assert!(handle.apply(vec![arrival]).await.unwrap()[0].is_applied());
        assert_eq!(waiting_on_support(&metrics), Some(1.0));
        let abandon = Input::Event {
            id: "e3".into(),
            event: Event::InteractionAbandoned {
                interaction: "c1".into(),
            },
        };
        assert!(handle.apply(vec![abandon]).await.unwrap()[0].is_applied());
        assert_eq!(waiting_on_support(&metrics), Some(0.0));
    }

    /// Answers `Pending` for every batch (journal index = batches so far) and records them; the
    /// test decides when (and whether) they become durable by sending `SyncReport`s.
    struct Gated {
        appended: Arc<Mutex<Vec<Vec<TimedInput>>>>,
        reports: Option<SyncReports>,
        synced: Arc<Mutex<Vec<u64>>>,
        /// Whether it plays a sync thread with a window (`SyncReport::Gather`).
        gathers: bool,
        /// Batches written when each `gathered` came.
        gathered: Arc<Mutex<Vec<usize>>>,
    }

    struct Gate {
        appended: Arc<Mutex<Vec<Vec<TimedInput>>>>,
        synced: Arc<Mutex<Vec<u64>>>,
        gathered: Arc<Mutex<Vec<usize>>>,
        sync: tokio::sync::mpsc::UnboundedSender<SyncReport>,
    }

    impl Gate {
        fn batches(&self) -> usize {
            self.appended.lock().unwrap().len()
        }
        fn sync_through(&self, index: u64) {
            self.sync.send(SyncReport::Synced(index)).unwrap();
        }
    }

    impl InputSink for Gated {
        fn append(&mut self, batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
            let mut appended = self.appended.lock().unwrap();
            appended.push(batch.iter().map(JournalEntry::to_timed).collect());
            Ok(Appended::Pending(appended.len() as u64))
        }
        fn sync_reports(&mut self) -> Option<SyncReports> {
            self.reports.take()
        }
        fn synced(&mut self, index: u64) {
            self.synced.lock().unwrap().push(index);
        }
        fn gathers(&self) -> bool {
            self.gathers
        }
        fn gathered(&mut self) {
            let written = self.appended.lock().unwrap().len();
            self.gathered.lock().unwrap().push(written);
        }
    }

    type Running = tokio::task::JoinHandle<Result<Core, JournalSyncFailed>>;

    fn gated(limit: usize) -> (EngineHandle, Gate, Running) {
        gated_sink(limit, false)
    }

    fn gated_sink(limit: usize, gathers: bool) -> (EngineHandle, Gate, Running) {
        let (sync, reports) = tokio::sync::mpsc::unbounded_channel();
        let appended = Arc::default();
        let synced = Arc::default();
        let gathered = Arc::default();
        let sink = Gated {
            appended: Arc::clone(&appended),
            reports: Some(reports),
            synced: Arc::clone(&synced),
            gathers,
            gathered: Arc::clone(&gathered),
        };
        let core = core();
        let telemetry = telemetry(&core);
        let (task, handle) = EngineTask::new(
            core,
            Clock::starting_at(T0),
            64,
            Box::new(sink),
            None,
            telemetry,
        );
        let running = tokio::spawn(task.with_in_flight_limit(limit).run(std::future::pending()));
        (
            handle,
            Gate {
                appended,
                synced,
                gathered,
                sync,
            },
            running,
        )
    }

    /// Let every spawned task run until it waits on something only the test can provide.
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    fn spawn_apply(
        handle: &EngineHandle,
        inputs: Vec<Input>,
    ) -> tokio::task::JoinHandle<Result<Vec<Outcome>, SubmitError>> {
        let handle = handle.clone();
        tokio::spawn(async move { handle.apply(inputs).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_a_read_and_the_decision_seq_wait_until_their_batch_is_synced() {
        let (handle, gate, _running) = gated(MAX_IN_FLIGHT);
        let seq = handle.next_seq_watch();
        let reply = spawn_apply(&handle, events());
        settle().await;
        assert_eq!(gate.batches(), 1, "written and applied at once");
        let read = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.read_core(|v| v.core.next_seq()).await })
        };
        settle().await;
        tokio::time::advance(Duration::from_millis(5)).await;
        settle().await;
        assert!(!reply.is_finished(), "no reply before the sync");
        assert!(!read.is_finished(), "a read could see the unsynced offer");
        assert_eq!(
            *seq.borrow(),
            1,
            "the offer's seq is not published before the sync"
        );

        gate.sync_through(1);
        let outcomes = reply.await.unwrap().unwrap();
        assert!(outcomes.iter().all(Outcome::is_applied));
        assert_eq!(
            read.await.unwrap().unwrap(),
            2,
            "the read saw the applied batch"
        );
        assert_eq!(*seq.borrow(), 2);
        assert_eq!(
            *gate.synced.lock().unwrap(),
            vec![1],
            "the sink heard of it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn replies_are_released_in_batch_order_as_syncs_cover_them() {
        let (handle, gate, _running) = gated(MAX_IN_FLIGHT);
        let first = spawn_apply(&handle, arrival("c1"));
        settle().await;
        let second = spawn_apply(&handle, arrival("c2"));
        settle().await;
        let third = spawn_apply(&handle, arrival("c3"));
        settle().await;
        assert_eq!(gate.batches(), 3);
        gate.sync_through(1);
        settle().await;
        assert!(first.is_finished());
        assert!(!second.is_finished() && !third.is_finished());
        // One sync covering everything written releases the rest together.
        gate.sync_through(3);
        assert!(second.await.unwrap().unwrap()[0].is_applied());
        assert!(third.await.unwrap().unwrap()[0].is_applied());
        assert!(first.await.unwrap().unwrap()[0].is_applied());
    }

    #[tokio::test(start_paused = true)]
    async fn timers_keep_firing_on_time_while_a_sync_is_blocked() {
        let (handle, gate, _running) = gated(MAX_IN_FLIGHT);
        let reply = spawn_apply(&handle, events());
        settle().await;
        // The offer to a1 expires at +15 s; its batch is never synced here.
        tokio::time::advance(Duration::from_millis(15_000)).await;
        settle().await;
        let appended = gate.appended.lock().unwrap().clone();
        assert_eq!(
            appended.len(),
            2,
            "the expiry was journaled and applied: {appended:?}"
        );
        assert_eq!(appended[1][0].input, Input::Advance);
        assert_eq!(
            appended[1][0].at,
            T0 + 15_000,
            "at its deadline, not after the sync"
        );
        // New requests keep being applied too.
        let more = spawn_apply(&handle, arrival("c2"));
        settle().await;
        assert_eq!(gate.batches(), 3);
        assert!(!reply.is_finished() && !more.is_finished());
        gate.sync_through(3);
        assert!(reply.await.unwrap().is_ok());
        assert!(more.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_in_flight_bound_the_engine_takes_nothing_until_a_sync_reports() {
        let (handle, gate, _running) = gated(2);
        let first = spawn_apply(&handle, arrival("c1"));
        settle().await;
        let second = spawn_apply(&handle, arrival("c2"));
        settle().await;
        assert_eq!(gate.batches(), 2);
        let third = spawn_apply(&handle, arrival("c3"));
        settle().await;
        tokio::time::advance(Duration::from_millis(100)).await;
        settle().await;
        assert_eq!(gate.batches(), 2, "the third command waits in the channel");
        assert_eq!(handle.queued(), 1);
        gate.sync_through(1);
        settle().await;
        assert_eq!(gate.batches(), 3, "one slot freed: the third is taken");
        assert!(first.is_finished() && !second.is_finished() && !third.is_finished());
        gate.sync_through(3);
        assert!(second.await.unwrap().is_ok());
        assert!(third.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_failure_fails_every_held_reply_and_stops_the_task() {
        let (handle, gate, running) = gated(MAX_IN_FLIGHT);
        let first = spawn_apply(&handle, arrival("c1"));
        settle().await;
        let second = spawn_apply(&handle, arrival("c2"));
        settle().await;
        gate.sync_through(1);
        gate.sync
            .send(SyncReport::Failed("cannot sync 1.seg: EIO".into()))
            .unwrap();
        assert!(first.await.unwrap().is_ok(), "synced before the failure");
        assert_eq!(
            second.await.unwrap(),
            Err(SubmitError::Journal(SinkError(
                "cannot sync 1.seg: EIO".into()
            )))
        );
        let ended = running.await.unwrap();
        assert_eq!(
            ended.err(),
            Some(JournalSyncFailed("cannot sync 1.seg: EIO".into()))
        );
        assert_eq!(handle.apply(arrival("c3")).await, Err(SubmitError::Stopped));
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_window_commands_wait_for_the_gather_while_a_batch_awaits_its_sync() {
        let (handle, gate, _running) = gated_sink(MAX_IN_FLIGHT, true);
        // Nothing unsynced: the first command is taken and written at once.
        let first = spawn_apply(&handle, events());
        settle().await;
        assert_eq!(gate.batches(), 1);
        // Its batch awaits the sync: the next ones stay in the channel, the engine untouched.
        let second = spawn_apply(&handle, arrival("c2"));
        let third = spawn_apply(&handle, arrival("c3"));
        let read = {
            let handle = handle.clone();
            tokio::spawn(
                async move { handle.read_core(|v| v.core.engine().counts().arrived).await },
            )
        };
        settle().await;
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(gate.batches(), 1, "taken before the gather");
        assert_eq!(handle.queued(), 3, "two applies and a read wait in line");
        assert!(!read.is_finished());

        // Timers do not wait for the gather: the offer to a1 expires at +15 s on the dot.
        tokio::time::advance(Duration::from_millis(14_999)).await;
        settle().await;
        {
            let appended = gate.appended.lock().unwrap();
            assert_eq!(appended.len(), 2, "{appended:?}");
            assert_eq!(appended[1][0].input, Input::Advance);
            assert_eq!(appended[1][0].at, T0 + 15_000);
        }
        assert_eq!(handle.queued(), 3, "still waiting for the gather");

        // The gather takes both queued commands in one batch, then says so.
        gate.sync.send(SyncReport::Gather).unwrap();
        settle().await;
        assert_eq!(handle.queued(), 0);
        let appended = gate.appended.lock().unwrap().clone();
        assert_eq!(appended.len(), 3, "{appended:?}");
        assert_eq!(
            appended[2].len(),
            2,
            "one batch for the gather: {appended:?}"
        );
        assert_eq!(
            *gate.gathered.lock().unwrap(),
            vec![3],
            "`gathered` comes after the gather's batch is written"
        );
        assert!(!first.is_finished() && !second.is_finished());

        // The sync covering all of it releases every reply; nothing is held, so the next
        // command is taken at once again.
        gate.sync_through(3);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().unwrap()[0].is_applied());
        assert!(third.await.unwrap().unwrap()[0].is_applied());
        assert_eq!(
            read.await.unwrap().unwrap(),
            3,
            "the read ran after c2 and c3"
        );
        let fourth = spawn_apply(&handle, arrival("c4"));
        settle().await;
        assert_eq!(gate.batches(), 4);
        gate.sync_through(4);
        assert!(fourth.await.unwrap().unwrap()[0].is_applied());
    }

    #[tokio::test(start_paused = true)]
    async fn a_gather_with_nothing_queued_is_answered_at_once() {
        let (handle, gate, _running) = gated_sink(MAX_IN_FLIGHT, true);
        let first = spawn_apply(&handle, arrival("c1"));
        settle().await;
        gate.sync.send(SyncReport::Gather).unwrap();
        settle().await;
        assert_eq!(*gate.gathered.lock().unwrap(), vec![1]);
        assert_eq!(gate.batches(), 1, "nothing new written");
        gate.sync_through(1);
        assert!(first.await.unwrap().unwrap()[0].is_applied());
    }
}
