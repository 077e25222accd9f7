//! The journal plugged into the engine task: every batch of inputs is written to the journal
//! before any of it is applied, snapshots are taken on the journal's schedule, and a final one on
//! shutdown.
//!
//! It owns the open `Journal` (and so the journal directory's lock) for the daemon's lifetime.
//! It never decides anything about routing and never applies an input itself: the engine task
//! applies exactly what this accepted.
//!
//! The daemon's sink (`recover_with_sync_thread`, `sync = "batch"`) only writes (write(2)) on the
//! engine task and answers `Appended::Pending`: the `tierline-sync` thread (`commit`) fdatasyncs
//! and reports the durable index, and the engine task holds the batch's effects until then. With
//! `sync = "always"` each input is its own frame and is synced on the engine task before it is
//! applied (`Appended::Durable`); with `"none"` nothing is synced. Any fsync failure, on either
//! thread, is reported as `SyncReport::Failed`: fatal, never retried. A sink from plain `recover`
//! (the simulator's recorder, benchmarks) has no sync thread and syncs inline, as before. Inline
//! file work runs in `block_in_place` on a multi-thread runtime.
//!
//! A snapshot must cover only durable records: one captured while batches are unsynced is held
//! here until the sync reports reach its index, then handed to the snapshot thread.
//!
//! Snapshots must not stall routing. Only the capture runs on the engine task (it has to happen
//! at one journal position: a copy of the engine's primary state (`Engine::capture`, no indexes;
//! interactions and agents shared copy-on-write, not copied),
//! plus cheap reference-counted copies of the idempotency ids and decision log); the encoding
//! (streamed straight into the file, never held whole in memory), the write, the fsyncs and the
//! removal of old snapshots and segments run on one dedicated `tierline-snapshot` thread, fed
//! through a channel of depth 1. At most one snapshot is in flight (`Journal` schedules no other
//! until the result is back); results are collected after each batch and at stop.
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::Millis;
use crate::journal::{
    Journal, JournalError, JournalOptions, PendingSnapshot, RecoveryReport, WrittenSnapshot,
};

use crate::config::daemon::SyncMode;

use super::commit::{FileSync, SyncReports, SyncThread};
use super::core::Core;
use super::task::{Appended, InputSink, JournalEntry, SinkError};

/// Run blocking file work from inside the runtime: `block_in_place` on a multi-thread runtime
/// (other tasks keep running), directly on a current-thread one (where it is not allowed).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Open (or create) the journal in `dir` and rebuild the core from it; an empty directory starts
/// from `fresh()`.
pub fn recover(
    dir: &Path,
    opts: JournalOptions,
    now: Millis,
    fresh: impl FnOnce() -> Core,
) -> Result<(JournalSink, Core, RecoveryReport), JournalError> {
    let (journal, core, report) = blocking(|| Journal::recover(dir, opts, now, fresh))?;
    let writer = SnapshotWriter::start().map_err(|e| JournalError::Io {
        op: "start the snapshot thread for",
        path: dir.to_path_buf(),
        source: e,
    })?;
    Ok((
        JournalSink {
            journal,
            writer: Some(writer),
            sync: None,
            reports: None,
            held_snapshot: None,
            synced: 0,
        },
        core,
        report,
    ))
}

/// `recover`, with the daemon's commit path: unless `sync = "none"`, a `tierline-sync` thread
/// syncing through `syncer` (`commit::Fdatasync` in production) with the group-commit `window`
/// (`sync = "batch"`: `max_batch_delay_ms`). The sink must then run in an engine task, which
/// takes its sync reports.
pub fn recover_with_sync_thread(
    dir: &Path,
    opts: JournalOptions,
    now: Millis,
    fresh: impl FnOnce() -> Core,
    syncer: Box<dyn FileSync>,
    window: Option<std::time::Duration>,
) -> Result<(JournalSink, Core, RecoveryReport), JournalError> {
    let (mut sink, core, report) = recover(dir, opts, now, fresh)?;
    if opts.log.sync != SyncMode::None {
        let window = window.filter(|w| !w.is_zero());
        let (thread, reports) =
            SyncThread::start(syncer, window).map_err(|e| JournalError::Io {
                op: "start the sync thread for",
                path: dir.to_path_buf(),
                source: e,
            })?;
        sink.sync = Some(thread);
        sink.reports = Some(reports);
        sink.synced = sink.journal.last_index();
    }
    Ok((sink, core, report))
}

type Written = (u64, Result<WrittenSnapshot, JournalError>);

/// The dedicated thread that encodes, writes and prunes snapshots.
struct SnapshotWriter {
    jobs: mpsc::SyncSender<PendingSnapshot>,
    done: mpsc::Receiver<Written>,
    thread: JoinHandle<()>,
}

impl SnapshotWriter {
    fn start() -> std::io::Result<SnapshotWriter> {
        // Depth 1: the journal never prepares a second snapshot before the first is reported.
        let (jobs, inbox) = mpsc::sync_channel::<PendingSnapshot>(1);
        let (report, done) = mpsc::channel::<Written>();
        let thread = std::thread::Builder::new()
            .name("tierline-snapshot".into())
            .spawn(move || {
                if let Err(e) = run_only_when_idle() {
                    tracing::warn!(
                        error = %e,
                        "cannot give the snapshot thread the idle CPU policy; snapshots will \
                         compete with routing for CPU"
                    );
                }
                for pending in inbox {
                    let index = pending.index;
                    let started = Instant::now();
                    let written = pending.write();
                    match &written {
                        Ok(w) => tracing::info!(
                            index,
                            bytes = w.bytes,
                            removed_segments = w.removed_segments.len(),
                            took_ms = started.elapsed().as_millis() as u64,
                            "journal snapshot written"
                        ),
                        // Not fatal: the records stay on disk; the next interval tries again.
                        Err(e) => {
                            tracing::warn!(index, error = %e, "journal snapshot failed; will retry")
                        }
                    }
                    if report.send((index, written)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SnapshotWriter { jobs, done, thread })
    }
}

/// Put the calling thread in the kernel's idle scheduling class (Linux `SCHED_IDLE`): it runs on
/// CPU time no other thread wants. A snapshot is bulk work with no deadline (encoding the whole
/// state takes a core for a few hundred milliseconds), while the engine, sync and HTTP threads
/// answer calls. At 20,000 events/s on 2 cores a snapshot at normal priority pushed the p99
/// from ≈ 14 ms to 50–140 ms (docs/BENCHMARKS.md, "Snapshots yield the CPU"). Under full load the
/// snapshot still finishes, only later: the class keeps a small share, and until it finishes
/// the journal just keeps more segments. Elsewhere than Linux, nothing changes.
fn run_only_when_idle() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads `param`, a valid `sched_param` that outlives
        // the call; pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The `InputSink` that writes to the journal. See the module docs.
pub struct JournalSink {
    journal: Journal,
    /// `None` once stopped (or if the thread died: snapshots are then written inline).
    writer: Option<SnapshotWriter>,
    /// The `tierline-sync` thread (`recover_with_sync_thread`); `None`: sync inline.
    sync: Option<SyncThread>,
    /// Its reports, until the engine task takes them.
    reports: Option<SyncReports>,
    /// A captured snapshot waiting for the sync to reach its index.
    held_snapshot: Option<PendingSnapshot>,
    /// Every record up to here is durable (with a sync thread).
    synced: u64,
}

impl JournalSink {
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Note every snapshot the writer has finished.
    fn collect_written(&mut self) {
        let Some(writer) = &self.writer else { return };
        while let Ok((index, written)) = writer.done.try_recv() {
            self.journal.snapshot_written(index, &written);
        }
    }

    /// Stop the writer thread after the snapshot in flight (if any) and note its result.
    fn stop_writer(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let SnapshotWriter { jobs, done, thread } = writer;
        drop(jobs);
        if blocking(|| thread.join()).is_err() {
            tracing::error!("the snapshot thread panicked");
        }
        while let Ok((index, written)) = done.try_recv() {
            self.journal.snapshot_written(index, &written);
        }
    }

    /// Capture a snapshot on this (the engine) task and hand it to the writer thread. Returns
    /// how long the capture blocked the task.
    pub fn start_snapshot(&mut self, core: &Core, now: Millis) -> Option<std::time::Duration> {
        let started = Instant::now();
        let pending = match self.journal.prepare_snapshot(core, now) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot capture a journal snapshot; will retry");
                return None;
            }
        };
        let captured = started.elapsed();
        let index = pending.index;
        if self.deferred() && index > self.synced {
            // Records up to `index` are written but not yet durable: the snapshot waits for them.
            // (Only with `sync = "batch"`: with `always` every append was synced before it
            // returned, and no sync report would ever release a held snapshot.)
            self.held_snapshot = Some(pending);
        } else {
            self.dispatch_snapshot(pending);
        }
        tracing::debug!(
            index,
            capture_ms = captured.as_millis() as u64,
            "journal snapshot captured"
        );
        Some(captured)
    }

    /// Hand a captured snapshot to the writer thread (or write it here if the thread is gone).
    fn dispatch_snapshot(&mut self, pending: PendingSnapshot) {
        let index = pending.index;
        let unsent = match &self.writer {
            Some(writer) => match writer.jobs.try_send(pending) {
                Ok(()) => None,
                Err(mpsc::TrySendError::Full(p) | mpsc::TrySendError::Disconnected(p)) => Some(p),
            },
            None => Some(pending),
        };
        if let Some(pending) = unsent {
            // The writer is gone (it panicked) or busy, which the schedule rules out: write here.
            tracing::warn!(
                index,
                "snapshot thread unavailable; writing the snapshot inline"
            );
            let written = blocking(|| pending.write());
            self.journal.snapshot_written(index, &written);
        }
    }

    /// Wait for the snapshot in flight, if any (recordings, tests and benchmarks).
    pub fn wait_for_snapshot(&mut self) {
        if self.held_snapshot.is_some() {
            return;
        }
        while self.journal.snapshot_pending() {
            let Some(writer) = &self.writer else { return };
            match blocking(|| writer.done.recv()) {
                Ok((index, written)) => self.journal.snapshot_written(index, &written),
                Err(_) => return,
            }
        }
    }
}

impl JournalSink {
    /// Whether appends are synced later by the sync thread (`sync = "batch"`), not before
    /// `append` returns.
    fn deferred(&self) -> bool {
        self.sync.is_some() && self.journal.options().log.sync == SyncMode::Batch
    }
}

impl InputSink for JournalSink {
    fn append(&mut self, batch: &[JournalEntry<'_>]) -> Result<Appended, SinkError> {
        let deferred = self.deferred();
        let journal = &mut self.journal;
        let appended = if deferred {
            blocking(|| journal.write(batch)).map(|range| Appended::Pending(range.end - 1))
        } else {
            blocking(|| journal.append(batch)).map(|_| Appended::Durable)
        };
        match (appended, &self.sync) {
            (Ok(Appended::Pending(index)), Some(thread)) => {
                let (file, path) = self.journal.log().active_file();
                thread.submit(index, file, path.to_path_buf());
                Ok(Appended::Pending(index))
            }
            (Ok(appended), _) => Ok(appended),
            (Err(e), sync) => {
                // A failed sync on this thread (segment roll, rollback, `always`) is as fatal as
                // one on the sync thread; a failed write is not (503 and retry).
                if let (true, Some(thread)) = (e.is_sync_failure(), sync) {
                    thread.fail(e.to_string());
                }
                Err(SinkError(e.to_string()))
            }
        }
    }

    fn sync_reports(&mut self) -> Option<SyncReports> {
        self.reports.take()
    }

    fn gathers(&self) -> bool {
        self.sync.as_ref().is_some_and(SyncThread::gathers)
    }

    fn gathered(&mut self) {
        if let Some(thread) = &self.sync {
            thread.gathered();
        }
    }

    fn synced(&mut self, index: u64) {
        self.synced = self.synced.max(index);
        let synced = self.synced;
        if let Some(pending) = self.held_snapshot.take_if(|p| p.index <= synced) {
            self.dispatch_snapshot(pending);
        }
    }

    fn after_batch(&mut self, core: &Core, now: Millis) {
        self.collect_written();
        if self.journal.snapshot_due(now) {
            self.start_snapshot(core, now);
        }
    }

    fn on_stop(&mut self, core: &Core, now: Millis) {
        // The engine task has seen every batch reported durable; the thread has nothing left.
        if let Some(thread) = &mut self.sync {
            thread.stop();
        }
        if let Some(pending) = self.held_snapshot.take() {
            self.dispatch_snapshot(pending);
        }
        self.stop_writer();
        if self.journal.last_index() == self.journal.snapshot_index() {
            return;
        }
        let journal = &mut self.journal;
        match blocking(|| journal.snapshot(core, now)) {
            Ok(index) => tracing::info!(index, "final journal snapshot written"),
            Err(e) => {
                tracing::warn!(error = %e, "final journal snapshot failed; the journal replays on start")
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The scheduling policy of the calling thread.
    fn policy() -> libc::c_int {
        // SAFETY: no arguments to get wrong; pid 0 is the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn the_snapshot_threads_policy_leaves_the_cpu_to_routing() {
        let ours = policy();
        assert_ne!(
            ours,
            libc::SCHED_IDLE,
            "the test itself runs in the idle class"
        );
        let theirs = std::thread::spawn(|| run_only_when_idle().map(|()| policy()))
            .join()
            .ok()
            .and_then(Result::ok);
        assert_eq!(theirs, Some(libc::SCHED_IDLE));
        // Only that thread: the caller's class is untouched.
        assert_eq!(policy(), ours);
    }
}
