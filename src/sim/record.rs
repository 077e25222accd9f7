//! Write a simulated run as a daemon journal: the inputs the simulator gives the engine go through
//! the daemon's own durable path (`daemon::durable`: journal the batch, then apply it to a `Core`,
//! then snapshot when due), so the directory is exactly what `tierline serve` would have left
//! after that traffic. It feeds `--replay` demos and tests with realistic recorded traffic.
//!
//! It only ever writes into a directory that holds no journal yet; it never touches one that a
//! daemon wrote.

use std::path::Path;

use crate::config::{LoadedConfig, Millis};
use crate::daemon::core::{Core, Input, TimedInput};
use crate::daemon::durable::{self, JournalSink};
use crate::daemon::task::{InputSink, JournalEntry, MAX_BATCH};
use crate::engine::Event;
use crate::journal::{JournalError, JournalOptions};
use crate::sim::run::{self, Observer, RunOptions};
use crate::sim::scenario::Plan;
use crate::sim::{Report, SimError, Synthetic};

/// Why recording stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{} already holds a journal; record into a new or empty directory", .0.display())]
    NotEmpty(std::path::PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot journal the run: {0}")]
    Append(String),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Journals what the runner sends, in daemon-sized batches, and applies it to a `Core`.
struct Recorder {
    sink: JournalSink,
    core: Core,
    batch: Vec<TimedInput>,
    next_id: u64,
    /// The first append failure; later inputs are dropped and the run reports it.
    failed: Option<String>,
}

impl Recorder {
    fn push(&mut self, at: Millis, input: Input) {
        self.batch.push(TimedInput { at, input });
        if self.batch.len() >= MAX_BATCH {
            self.flush();
        }
    }

    /// Persist, then apply, then snapshot if due: the engine task's order.
    fn flush(&mut self) {
        if self.batch.is_empty() || self.failed.is_some() {
            self.batch.clear();
            return;
        }
        let entries: Vec<JournalEntry<'_>> = self.batch.iter().map(JournalEntry::from).collect();
        if let Err(e) = self.sink.append(&entries) {
            self.failed = Some(e.to_string());
            self.batch.clear();
            return;
        }
        let mut now = 0;
        for input in self.batch.drain(..) {
            self.core.apply(&input.input, input.at);
            now = input.at;
        }
        self.sink.after_batch(&self.core, now);
        // A snapshot in flight blocks the next one (`snapshot_due`), so where the next one
        // falls would depend on how fast the writer thread was. Waiting for it here places
        // every snapshot by the records alone: the same run records the same directory.
        self.sink.wait_for_snapshot();
    }
}

impl Observer for Recorder {
    fn advance(&mut self, at: Millis) {
        self.push(at, Input::Advance);
    }

    fn event(&mut self, at: Millis, event: &Event) {
        self.next_id += 1;
        let id = format!("sim-{}", self.next_id);
        self.push(
            at,
            Input::Event {
                id,
                event: event.clone(),
            },
        );
    }
}

/// Run `plan` (synthetic traffic, `seed`) against `config` and journal every input into `dir`,
/// which must not hold a journal yet. Returns the simulator's own report of the run.
pub fn record(
    config: LoadedConfig,
    plan: &Plan,
    seed: u64,
    agents: bool,
    dir: &Path,
    options: JournalOptions,
) -> Result<Report, RecordError> {
    if dir.is_dir() {
        let has_journal = std::fs::read_dir(dir)
            .map_err(|e| JournalError::Io {
                op: "list",
                path: dir.to_path_buf(),
                source: e,
            })?
            .filter_map(Result::ok)
            .any(|e| {
                let p = e.path();
                matches!(p.extension().and_then(|x| x.to_str()), Some("seg" | "snap"))
            });
        if has_journal {
            return Err(RecordError::NotEmpty(dir.to_path_buf()));
        }
    }
    let start = plan.start_ms;
    let routing = config.routing.clone();
    let fresh = config.clone();
    let (sink, mut core, _) = durable::recover(dir, options, start, || Core::new(fresh, start))?;
    core.engine_mut().set_record_facts(false);
    let mut recorder = Recorder {
        sink,
        core,
        batch: Vec::new(),
        next_id: 0,
        failed: None,
    };
    let traffic = Synthetic::new(plan, seed);
    let outcome = run::run_with(
        routing,
        plan,
        traffic,
        RunOptions {
            seed,
            agents,
            observer: Some(&mut recorder),
        },
    )?;
    recorder.flush();
    if let Some(e) = recorder.failed {
        return Err(RecordError::Append(e));
    }
    let now = recorder.core.engine().now();
    recorder.sink.on_stop(&recorder.core, now);
    Ok(outcome.report)
}
