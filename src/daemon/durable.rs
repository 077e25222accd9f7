//! The journal plugged into the engine task: every batch of inputs is made durable before any of
//! it is applied, snapshots are taken on the journal's schedule, and a final one on shutdown.
//!
//! It owns the open `Journal` (and so the journal directory's lock) for the daemon's lifetime.
//! It never decides anything about routing and never applies an input itself: the engine task
//! applies exactly what this accepted. The fsync blocks the engine task (that is the point: no
//! reply before the data is durable), so on a multi-thread runtime it runs in `block_in_place`.

use std::path::Path;

use crate::config::Millis;
use crate::journal::{Journal, JournalError, JournalOptions, RecoveryReport};

use super::core::{Core, TimedInput};
use super::task::{InputSink, SinkError};

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
    Ok((JournalSink { journal }, core, report))
}

/// The `InputSink` that writes to the journal. See the module docs.
pub struct JournalSink {
    journal: Journal,
}

impl JournalSink {
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

impl InputSink for JournalSink {
    fn append(&mut self, batch: &[TimedInput]) -> Result<(), SinkError> {
        let journal = &mut self.journal;
        blocking(|| journal.append(batch))
            .map(|_| ())
            .map_err(|e| SinkError(e.to_string()))
    }

    fn after_batch(&mut self, core: &Core, now: Millis) {
        if !self.journal.snapshot_due(now) {
            return;
        }
        let journal = &mut self.journal;
        match blocking(|| journal.snapshot(core, now)) {
            Ok(index) => tracing::info!(index, "journal snapshot written"),
            // Not fatal: the records stay on disk and the next batch tries again.
            Err(e) => tracing::warn!(error = %e, "journal snapshot failed; will retry"),
        }
    }

    fn on_stop(&mut self, core: &Core, now: Millis) {
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
