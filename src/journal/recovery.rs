//! Recovery and the typed journal the daemon uses: restore the newest good snapshot, replay the
//! records after it through the same code, then keep appending inputs and taking snapshots.
//!
//! `Journal` knows nothing about routing: the state it rebuilds is any `Replay` (the daemon's
//! `Core`, or a bare engine in tests). Inputs are stored as JSON, one record each, so
//! `tierline journal dump` prints them exactly as stored. It never reads a clock: the snapshot
//! schedule runs on the times the caller passes in. Recovery decodes on one scoped helper thread
//! while the caller's thread replays; nothing else here spawns.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::daemon::{JournalConfig, SyncMode};
use crate::config::Millis;

use super::log::{Log, LogOptions};
use super::segment::{list_segments, TornTail};
use super::snapshot::{list_snapshots, prune_snapshots, read_snapshot, write_snapshot};
use super::JournalError;

/// State that can be rebuilt from a snapshot plus the inputs journaled after it.
///
/// `replay` must be the very code the live path runs for an input, and must be deterministic:
/// the same snapshot and the same inputs must give the same state (and so the same decisions).
pub trait Replay: Sized {
    /// One journaled input, including the time it was applied at.
    type Input: Serialize + DeserializeOwned;
    /// Apply one input exactly as the live path did. Inputs the live path refused are journaled
    /// too (they are refused again, harmlessly), so this cannot fail.
    fn replay(&mut self, input: Self::Input);
    /// The whole state, in a format of the state's choosing.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Rebuild from `save` output.
    fn load(bytes: &[u8]) -> Result<Self, String>;
}

/// Journal settings (from `[journal]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    pub log: LogOptions,
    /// Snapshot after this many records since the last one (0: never by count)…
    pub snapshot_every_records: u64,
    /// …or once this much engine time has passed with new records (0: never by time).
    pub snapshot_every_ms: Millis,
    /// Snapshots kept (at least 1). With 2, a damaged newest snapshot falls back to the one before
    /// it, whose records are still on disk.
    pub keep_snapshots: usize,
}

impl JournalOptions {
    pub fn from_config(cfg: &JournalConfig) -> JournalOptions {
        JournalOptions {
            log: LogOptions {
                sync: cfg.sync,
                segment_bytes: cfg.segment_bytes,
            },
            snapshot_every_records: cfg.snapshot_every_events,
            snapshot_every_ms: cfg.snapshot_every_s.saturating_mul(1_000),
            keep_snapshots: 2,
        }
    }
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions::from_config(&JournalConfig::default())
    }
}

/// What recovery did, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held nothing: the state is the caller's fresh one (snapshot 0 written).
    pub fresh: bool,
    /// The snapshot restored (`None` when fresh).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Records replayed after it.
    pub replayed: u64,
    /// The index the next input will get.
    pub next_index: u64,
    /// A torn tail cut off (a crash mid-write; its inputs were never acknowledged).
    pub truncated: Option<TornTail>,
    /// Newer snapshots that could not be used, and why (recovery fell back past them).
    pub skipped_snapshots: Vec<String>,
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fresh {
            return write!(f, "new journal, first record {}", self.next_index);
        }
        if let Some((index, path)) = &self.snapshot {
            write!(f, "restored snapshot {index} ({})", path.display())?;
        }
        write!(
            f,
            ", replayed {} records, next record {}",
            self.replayed, self.next_index
        )?;
        if let Some(t) = &self.truncated {
            write!(f, "; cut off torn tail: {t}")?;
        }
        for s in &self.skipped_snapshots {
            write!(f, "; skipped {s}")?;
        }
        Ok(())
    }
}

/// A snapshot serialized on the engine task, to be written wherever blocking is fine.
#[derive(Debug)]
pub struct PendingSnapshot {
    pub dir: PathBuf,
    pub index: u64,
    pub bytes: Vec<u8>,
    pub sync: bool,
}

impl PendingSnapshot {
    /// Write it durably (temp file, sync, rename, sync directory).
    pub fn write(&self) -> Result<PathBuf, JournalError> {
        write_snapshot(&self.dir, self.index, &self.bytes, self.sync)
    }
}

/// Records decoded per hand-over from the reading thread to the replaying one.
const REPLAY_CHUNK: usize = 1024;
/// Chunks in flight between them (bounds recovery's extra memory).
const REPLAY_CHUNKS_IN_FLIGHT: usize = 8;

/// Open the log and replay every record from `resume_at` into `state`. Reading, checking and
/// decoding run on a scoped helper thread while this one replays, so a long journal costs about
/// max(decode, replay) rather than their sum. Recovery runs before the daemon serves anything.
fn replay_after<S: Replay>(
    dir: &Path,
    opts: LogOptions,
    resume_at: u64,
    state: &mut S,
) -> Result<(Log, super::OpenReport), JournalError>
where
    S::Input: Send,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<S::Input>>(REPLAY_CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
            let opened = Log::open(dir, opts, resume_at, |index, payload| {
                let input = serde_json::from_slice::<S::Input>(payload).map_err(|e| {
                    JournalError::Decode {
                        index,
                        reason: e.to_string(),
                    }
                })?;
                chunk.push(input);
                if chunk.len() == REPLAY_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK));
                    // A closed channel means the replayer is gone (it panicked); stop reading.
                    let _ = tx.send(full);
                }
                Ok(())
            });
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            opened
        });
        for chunk in rx {
            for input in chunk {
                state.replay(input);
            }
        }
        match reader.join() {
            Ok(opened) => opened,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The typed, snapshotting journal. See the module docs.
pub struct Journal {
    log: Log,
    opts: JournalOptions,
    /// Index covered by the newest durable snapshot.
    snapshot_index: u64,
    /// Engine time of the newest snapshot (or of recovery).
    snapshot_at: Millis,
    /// A snapshot handed out by `prepare_snapshot` and not yet reported written.
    pending: Option<u64>,
    encoded: Vec<Vec<u8>>,
}

impl Journal {
    /// Open the journal in `dir` and rebuild the state: the newest good snapshot plus every record
    /// after it. An empty directory starts from `fresh()` and writes it as snapshot 0, so the
    /// starting config and time are on disk before any input is.
    pub fn recover<S: Replay>(
        dir: &Path,
        opts: JournalOptions,
        now: Millis,
        fresh: impl FnOnce() -> S,
    ) -> Result<(Journal, S, RecoveryReport), JournalError>
    where
        S::Input: Send,
    {
        if opts.log.sync == SyncMode::None {
            tracing::warn!(
                dir = %dir.display(),
                "journal.sync = \"none\": inputs are not synced to disk; an OS crash or power loss can lose acknowledged inputs (tests and simulations only)"
            );
        }
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let snapshots = list_snapshots(dir)?;
        let mut skipped = Vec::new();
        let mut restored: Option<(u64, PathBuf, S)> = None;
        for snap in snapshots.iter().rev() {
            let loaded = read_snapshot(&snap.path).and_then(|(index, bytes)| {
                S::load(&bytes)
                    .map(|s| (index, s))
                    .map_err(|reason| JournalError::Snapshot {
                        path: snap.path.clone(),
                        reason,
                    })
            });
            match loaded {
                Ok((index, state)) => {
                    restored = Some((index, snap.path.clone(), state));
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "journal: skipping an unusable snapshot");
                    skipped.push(e.to_string());
                }
            }
        }
        let (fresh_start, snapshot, mut state) = match restored {
            Some((index, path, state)) => (false, Some((index, path)), state),
            None => {
                let has_records = list_segments(dir)?.iter().any(|s| {
                    std::fs::metadata(&s.path)
                        .map(|m| m.len() > 0)
                        .unwrap_or(true)
                });
                if has_records || !skipped.is_empty() {
                    return Err(JournalError::NoSnapshot {
                        dir: dir.to_path_buf(),
                        why: if skipped.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", skipped.join("; "))
                        },
                    });
                }
                (true, None, fresh())
            }
        };
        let resume_at = snapshot.as_ref().map_or(1, |(index, _)| index + 1);
        let (log, report) = replay_after(dir, opts.log, resume_at, &mut state)?;
        let mut journal = Journal {
            log,
            opts,
            snapshot_index: resume_at - 1,
            snapshot_at: now,
            pending: None,
            encoded: Vec::new(),
        };
        if fresh_start {
            journal.snapshot(&state, now)?;
        }
        let report = RecoveryReport {
            fresh: fresh_start,
            snapshot,
            replayed: report.replayed,
            next_index: journal.log.next_index(),
            truncated: report.truncated,
            skipped_snapshots: skipped,
        };
        Ok((journal, state, report))
    }

    /// Journal a batch of inputs (in the order they will be applied) and make it durable per the
    /// sync mode. Call it before applying any of them; on error apply none of them.
    pub fn append<T: Serialize>(&mut self, inputs: &[T]) -> Result<Range<u64>, JournalError> {
        self.encoded
            .resize_with(inputs.len().max(self.encoded.len()), Vec::new);
        for (position, (input, buf)) in inputs.iter().zip(self.encoded.iter_mut()).enumerate() {
            buf.clear();
            serde_json::to_writer(&mut *buf, input).map_err(|e| JournalError::Encode {
                position,
                reason: e.to_string(),
            })?;
        }
        let payloads: Vec<&[u8]> = self.encoded[..inputs.len()]
            .iter()
            .map(Vec::as_slice)
            .collect();
        self.log.append_batch(&payloads)
    }

    /// Whether a snapshot is due at engine time `now`.
    pub fn snapshot_due(&self, now: Millis) -> bool {
        if self.pending.is_some() {
            return false;
        }
        let new_records = self.last_index().saturating_sub(self.snapshot_index);
        if new_records == 0 {
            return false;
        }
        let by_count =
            self.opts.snapshot_every_records > 0 && new_records >= self.opts.snapshot_every_records;
        let by_time = self.opts.snapshot_every_ms > 0
            && now.saturating_sub(self.snapshot_at) >= self.opts.snapshot_every_ms;
        by_count || by_time
    }

    /// Serialize `state` (which must include every record appended so far) for a snapshot that
    /// can be written off the engine task. Report it with `snapshot_written`.
    pub fn prepare_snapshot<S: Replay>(
        &mut self,
        state: &S,
        now: Millis,
    ) -> Result<PendingSnapshot, JournalError> {
        let mut bytes = Vec::new();
        state
            .save(&mut bytes)
            .map_err(|reason| JournalError::SnapshotState { reason })?;
        let index = self.last_index();
        self.pending = Some(index);
        self.snapshot_at = now;
        Ok(PendingSnapshot {
            dir: self.log.dir().to_path_buf(),
            index,
            bytes,
            sync: self.opts.log.sync != SyncMode::None,
        })
    }

    /// A prepared snapshot is durable (or failed): prune older snapshots and the segments that
    /// the oldest kept snapshot covers. Returns how many segments were removed.
    pub fn snapshot_written(
        &mut self,
        index: u64,
        written: Result<(), JournalError>,
    ) -> Result<usize, JournalError> {
        if self.pending == Some(index) {
            self.pending = None;
        }
        written?;
        self.snapshot_index = self.snapshot_index.max(index);
        let oldest_kept = prune_snapshots(self.log.dir(), self.opts.keep_snapshots)?;
        match oldest_kept {
            Some(covered) => self.log.remove_covered(covered),
            None => Ok(0),
        }
    }

    /// Take a snapshot now, on this thread (prepare, write, prune).
    pub fn snapshot<S: Replay>(&mut self, state: &S, now: Millis) -> Result<u64, JournalError> {
        let pending = self.prepare_snapshot(state, now)?;
        let written = pending.write().map(|_| ());
        self.snapshot_written(pending.index, written)?;
        Ok(pending.index)
    }

    /// Index of the last record appended (0 if none yet).
    pub fn last_index(&self) -> u64 {
        self.log.next_index() - 1
    }

    /// Index covered by the newest durable snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn options(&self) -> JournalOptions {
        self.opts
    }
}
