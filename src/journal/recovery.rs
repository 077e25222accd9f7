//! Recovery and the typed journal the daemon uses: restore the newest good snapshot, replay the
//! records after it through the same code, then keep appending inputs and taking snapshots.
//!
//! `Journal` knows nothing about routing: the state it rebuilds is any `Replay` (the daemon's
//! `Core`, or a bare engine in tests). Inputs are stored as JSON, one record each, so
//! `tierline journal dump` prints them exactly as stored. It never reads a clock: the snapshot
//! schedule runs on the times the caller passes in. Recovery reads and decodes on one scoped
//! helper thread while the caller's thread replays (and hands the spent inputs back to the helper
//! to be dropped there); nothing else here spawns.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::daemon::{JournalConfig, SyncMode};
use crate::config::Millis;

use super::log::{remove_covered_segments, Log, LogOptions};
use super::segment::{list_segments, SkippedDamage, TornTail};
use super::snapshot::{list_snapshots, prune_snapshots, read_snapshot, write_snapshot_streamed};
use super::JournalError;

/// State that can be rebuilt from a snapshot plus the inputs journaled after it.
///
/// `replay` must be the very code the live path runs for an input, and must be deterministic:
/// the same snapshot and the same inputs must give the same state (and so the same decisions).
pub trait Replay: Sized {
    /// One journaled input as replay takes it (including the time it was applied at).
    type Input: Send;
    /// Read one record's payload back. Runs on recovery's helper thread, so work done here
    /// (beyond decoding) is off the replaying thread. The error says why the record is unusable.
    fn decode(payload: &[u8]) -> Result<Self::Input, String>;
    /// Apply one input exactly as the live path did. Inputs the live path refused are journaled
    /// too (they are refused again, harmlessly), so this cannot fail. The input is borrowed so
    /// that recovery can drop it on the helper thread.
    fn replay(&mut self, input: &Self::Input);
    /// The whole state, in a format of the state's choosing.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Rebuild from `save` output.
    fn load(bytes: &[u8]) -> Result<Self, String>;
    /// Capture the state for a snapshot: this runs on the state owner's thread at one journal
    /// position (so it must see exactly the inputs applied so far); what it returns finishes the
    /// encoding wherever blocking is fine, and must produce `save`'s bytes. The default encodes
    /// everything here.
    fn capture(&self) -> Result<Capture, String> {
        let mut out = Vec::new();
        self.save(&mut out)?;
        Ok(Capture::encoded(out))
    }
    /// Every record after the snapshot has been replayed (e.g. finish work deferred during
    /// replay). Called once per recovery, before the state is used.
    fn replay_finished(&mut self) {}
}

type Encode = Box<dyn FnOnce(&mut dyn std::io::Write) -> Result<(), String> + Send>;

/// A state captured for a snapshot (see `Replay::capture`): the rest of its encoding, to run on
/// any thread, writing the payload straight into the snapshot file (so it is never held in
/// memory whole).
pub struct Capture(Encode);

impl Capture {
    /// Finish encoding later with `encode`, which writes the payload to the writer it is given.
    pub fn deferred(
        encode: impl FnOnce(&mut dyn std::io::Write) -> Result<(), String> + Send + 'static,
    ) -> Capture {
        Capture(Box::new(encode))
    }

    /// Already fully encoded.
    pub fn encoded(bytes: Vec<u8>) -> Capture {
        Capture(Box::new(move |out| {
            out.write_all(&bytes).map_err(|e| e.to_string())
        }))
    }

    /// Finish the encoding into `out`.
    pub fn write_to(self, out: &mut dyn std::io::Write) -> Result<(), String> {
        (self.0)(out)
    }

    /// Finish the encoding into memory (tests, tools).
    pub fn encode(self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture(..)")
    }
}

/// Journal settings (from `[journal]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    pub log: LogOptions,
    /// Snapshot after this many records since the last one (0: never by count)…
    pub snapshot_every_records: u64,
    /// …or once this much engine time has passed with new records (0: never by time).
    pub snapshot_every_ms: Millis,
    /// A count-triggered snapshot also waits until the journal appended since the last one
    /// holds at least this percentage of that snapshot's bytes (0: the count alone). Keeps the
    /// cost of re-writing a large state proportional to the journal written.
    pub snapshot_journal_percent: u64,
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
            snapshot_journal_percent: cfg.snapshot_journal_percent,
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
    /// Damaged records the restored snapshot holds, read past (see `Log::open`).
    pub skipped_damage: Vec<SkippedDamage>,
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
        for d in &self.skipped_damage {
            write!(f, "; read past damage the snapshot holds: {d}")?;
        }
        Ok(())
    }
}

/// A snapshot captured on the engine task, to be encoded, written and pruned wherever blocking
/// is fine (`write`). Report the result with `Journal::snapshot_written`.
#[derive(Debug)]
pub struct PendingSnapshot {
    pub dir: PathBuf,
    /// The last record the captured state includes.
    pub index: u64,
    capture: Capture,
    sync: SyncMode,
    keep: usize,
}

/// A snapshot that is durable, and what its pruning removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSnapshot {
    pub index: u64,
    pub path: PathBuf,
    /// Payload bytes.
    pub bytes: u64,
    /// Older snapshots deleted (all but the newest `keep_snapshots`).
    pub removed_snapshots: usize,
    /// First indexes of the segments deleted because the oldest kept snapshot covers them.
    pub removed_segments: Vec<u64>,
}

impl PendingSnapshot {
    /// Finish encoding, write durably (temp file, sync, rename, sync directory), then delete the
    /// snapshots beyond the newest `keep_snapshots` and the segments the oldest kept one covers.
    /// A crash at any point leaves the previous snapshots and every record they do not cover.
    pub fn write(self) -> Result<WrittenSnapshot, JournalError> {
        let capture = self.capture;
        let (path, bytes) =
            write_snapshot_streamed(&self.dir, self.index, self.sync != SyncMode::None, |out| {
                capture.write_to(out)
            })?;
        let before = list_snapshots(&self.dir)?.len();
        let oldest_kept = prune_snapshots(&self.dir, self.keep)?;
        let removed_segments = match oldest_kept {
            Some(covered) => remove_covered_segments(&self.dir, covered, self.sync)?,
            None => Vec::new(),
        };
        Ok(WrittenSnapshot {
            index: self.index,
            path,
            bytes,
            removed_snapshots: before.saturating_sub(self.keep.max(1)),
            removed_segments,
        })
    }
}

/// Records decoded per hand-over from the reading thread to the replaying one.
const REPLAY_CHUNK: usize = 1024;
/// Chunks in circulation between them: decoded and waiting, being replayed, or handed back to be
/// dropped and reused. Bounds recovery's extra memory to this many chunks of inputs.
const REPLAY_CHUNKS: usize = 8;

/// Open the log and replay every record from `resume_at` into `state`. Reading, checking and
/// decoding run on a scoped helper thread while this one replays, so a long journal costs about
/// max(decode, replay) rather than their sum. Replayed chunks go back to the helper, which drops
/// their inputs (freeing is part of decoding's cost, not replay's) and refills them. Recovery runs
/// before the daemon serves anything.
fn replay_after<S: Replay>(
    dir: &Path,
    lock: super::DirLock,
    opts: LogOptions,
    resume_at: u64,
    proven: u64,
    state: &mut S,
) -> Result<(Log, super::OpenReport), JournalError> {
    use std::sync::mpsc::sync_channel;
    // Both channels can hold every chunk in circulation, so neither side ever blocks on a send.
    let (full_tx, full_rx) = sync_channel::<Vec<S::Input>>(REPLAY_CHUNKS);
    let (spent_tx, spent_rx) = sync_channel::<Vec<S::Input>>(REPLAY_CHUNKS);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut made = 1;
            let mut chunk: Vec<S::Input> = Vec::with_capacity(REPLAY_CHUNK);
            let mut replayer_gone = false;
            // `resume_at - 1`: the snapshot `recover` restored (0 when it started fresh).
            let covered = resume_at.saturating_sub(1);
            let opened = Log::open_locked(
                dir,
                lock,
                opts,
                resume_at,
                proven,
                covered,
                |index, payload| {
                    if replayer_gone {
                        // The replayer panicked; the scope re-raises that. Just finish the scan.
                        return Ok(());
                    }
                    let input =
                        S::decode(payload).map_err(|reason| JournalError::decode(index, reason))?;
                    chunk.push(input);
                    if chunk.len() == REPLAY_CHUNK {
                        let next = if made < REPLAY_CHUNKS {
                            made += 1;
                            Ok(Vec::with_capacity(REPLAY_CHUNK))
                        } else {
                            // Every chunk is out: wait for a replayed one, drop its inputs, refill it.
                            spent_rx.recv().map(|mut spent| {
                                spent.clear();
                                spent
                            })
                        };
                        match next {
                            Ok(next) => {
                                let full = std::mem::replace(&mut chunk, next);
                                replayer_gone = full_tx.send(full).is_err();
                            }
                            Err(_) => replayer_gone = true,
                        }
                    }
                    Ok(())
                },
            );
            if !chunk.is_empty() && !replayer_gone {
                let _ = full_tx.send(chunk);
            }
            drop(full_tx);
            // Drop what the replayer hands back until it is done (it closes the channel).
            for spent in spent_rx {
                drop(spent);
            }
            opened
        });
        for chunk in full_rx {
            for input in &chunk {
                state.replay(input);
            }
            // The reader drains this channel until it closes; a failed send means the reader
            // panicked (the join below re-raises it), and the chunk is dropped here instead.
            let _ = spent_tx.send(chunk);
        }
        drop(spent_tx);
        match reader.join() {
            Ok(opened) => opened,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `Log::append_batch` or `Log::write_batch`.
type PutBatch = fn(&mut Log, &[&[u8]]) -> Result<Range<u64>, JournalError>;

/// The typed, snapshotting journal. See the module docs.
pub struct Journal {
    log: Log,
    opts: JournalOptions,
    /// Index covered by the newest durable snapshot.
    snapshot_index: u64,
    /// Where the snapshot schedule counts from: the last snapshot attempted, written or not (a
    /// failed one waits for a full interval again instead of retrying on every batch).
    scheduled_from: u64,
    /// `log.appended_bytes()` at the last snapshot attempt (0 at recovery).
    scheduled_bytes: u64,
    /// Payload bytes of the newest snapshot written or restored (0: none yet).
    snapshot_bytes: u64,
    /// Engine time of the newest snapshot attempt (or of recovery).
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
    ) -> Result<(Journal, S, RecoveryReport), JournalError> {
        if opts.log.sync == SyncMode::None {
            tracing::warn!(
                dir = %dir.display(),
                "journal.sync = \"none\": inputs are not synced to disk; an OS crash or power loss can lose acknowledged inputs (tests and simulations only)"
            );
        }
        if dir.exists() && !dir.is_dir() {
            // `create_dir_all` would say "File exists", which reads as if all were well.
            return Err(JournalError::io(
                "use",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "it is a file, not a directory: the journal is a directory of segments and \
                     snapshots",
                ),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        // The lock first: a second daemon pointed at a journal in use must be refused before it
        // reads a snapshot, sets one aside as `*.snap.bad` or removes a `*.tmp` being written.
        let lock = super::lock_dir(dir)?;
        let snapshots = list_snapshots(dir)?;
        let mut skipped = Vec::new();
        let mut skipped_paths: Vec<PathBuf> = Vec::new();
        let mut skipped_indexes: Vec<u64> = Vec::new();
        let mut restored: Option<(u64, PathBuf, S)> = None;
        let mut restored_bytes = 0;
        for snap in snapshots.iter().rev() {
            let loaded = read_snapshot(&snap.path).and_then(|(index, bytes)| {
                restored_bytes = bytes.len() as u64;
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
                Err(e) if !snapshot_damage(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "journal: skipping an unusable snapshot");
                    skipped.push(e.to_string());
                    skipped_paths.push(snap.path.clone());
                    skipped_indexes.push(snap.index);
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
        // An unusable snapshot was still renamed into place only once a sync covered its index:
        // damage up to it is damage to acknowledged data (`Log::open_locked`).
        let proven = skipped_indexes.iter().copied().max().unwrap_or(0);
        let (log, report) = replay_after(dir, lock, opts.log, resume_at, proven, &mut state)?;
        state.replay_finished();
        if !skipped_paths.is_empty() {
            // Set the unusable snapshots aside (kept for inspection as `*.snap.bad`), so the
            // next prune does not count them among the snapshots it keeps and delete the good
            // one recovery fell back to, with the segments after it. Only now that the journal
            // after that one checked out: a refused start leaves them, and the proof they
            // carry, for the next.
            for path in &skipped_paths {
                let mut bad = path.clone().into_os_string();
                bad.push(".bad");
                std::fs::rename(path, &bad).map_err(|e| JournalError::io("rename", path, e))?;
            }
            super::sync_dir(dir)?;
        }
        let mut journal = Journal {
            log,
            opts,
            snapshot_index: resume_at - 1,
            scheduled_from: resume_at - 1,
            scheduled_bytes: 0,
            snapshot_bytes: if fresh_start { 0 } else { restored_bytes },
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
            skipped_damage: report.skipped_damage,
        };
        Ok((journal, state, report))
    }

    /// Journal a batch of inputs (in the order they will be applied) and make it durable per the
    /// sync mode. Call it before applying any of them; on error apply none of them.
    pub fn append<T: Serialize>(&mut self, inputs: &[T]) -> Result<Range<u64>, JournalError> {
        self.encode_then(inputs, Log::append_batch)
    }

    /// Journal a batch like `append`, but write(2) only (`Log::write_batch`): durable once the
    /// caller syncs `log().active_file()`. Snapshots prepared meanwhile must not be written
    /// before that sync covers their index.
    pub fn write<T: Serialize>(&mut self, inputs: &[T]) -> Result<Range<u64>, JournalError> {
        self.encode_then(inputs, Log::write_batch)
    }

    fn encode_then<T: Serialize>(
        &mut self,
        inputs: &[T],
        put: PutBatch,
    ) -> Result<Range<u64>, JournalError> {
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
        put(&mut self.log, &payloads)
    }

    /// Whether a snapshot is due at engine time `now`.
    pub fn snapshot_due(&self, now: Millis) -> bool {
        if self.pending.is_some() {
            return false;
        }
        if self.last_index() == self.snapshot_index {
            return false;
        }
        let new_records = self.last_index().saturating_sub(self.scheduled_from);
        let by_count = self.opts.snapshot_every_records > 0
            && new_records >= self.opts.snapshot_every_records
            && self.journal_outweighs_snapshot();
        let by_time = self.opts.snapshot_every_ms > 0
            && now.saturating_sub(self.snapshot_at) >= self.opts.snapshot_every_ms;
        by_count || by_time
    }

    /// Whether the journal appended since the last snapshot attempt holds at least
    /// `snapshot_journal_percent` % of the last snapshot's bytes. Without it a large state
    /// (100,000 retained interactions, a million idempotency ids: ~88 MB) was re-encoded every
    /// 100,000 events, a quarter of a core at 20,000 events/s (docs/BENCHMARKS.md, "Three
    /// minutes at 20,000/s").
    fn journal_outweighs_snapshot(&self) -> bool {
        let appended = self
            .log
            .appended_bytes()
            .saturating_sub(self.scheduled_bytes);
        u128::from(appended) * 100
            >= u128::from(self.snapshot_bytes) * u128::from(self.opts.snapshot_journal_percent)
    }

    /// Capture `state` (which must include every record appended so far) for a snapshot that is
    /// encoded and written off the engine task (`PendingSnapshot::write`). Report the result with
    /// `snapshot_written`; until then no other snapshot is due.
    pub fn prepare_snapshot<S: Replay>(
        &mut self,
        state: &S,
        now: Millis,
    ) -> Result<PendingSnapshot, JournalError> {
        let capture = state
            .capture()
            .map_err(|reason| JournalError::SnapshotState { reason })?;
        let index = self.last_index();
        self.pending = Some(index);
        self.scheduled_from = index;
        self.scheduled_bytes = self.log.appended_bytes();
        self.snapshot_at = now;
        Ok(PendingSnapshot {
            dir: self.log.dir().to_path_buf(),
            index,
            capture,
            sync: self.opts.log.sync,
            keep: self.opts.keep_snapshots,
        })
    }

    /// The snapshot prepared at `index` was written (or failed): note it durable and forget the
    /// segments its pruning removed.
    pub fn snapshot_written(
        &mut self,
        index: u64,
        written: &Result<WrittenSnapshot, JournalError>,
    ) {
        if self.pending == Some(index) {
            self.pending = None;
        }
        if let Ok(w) = written {
            if w.index >= self.snapshot_index {
                self.snapshot_bytes = w.bytes;
            }
            self.snapshot_index = self.snapshot_index.max(w.index);
            self.log.forget_segments(&w.removed_segments);
        }
    }

    /// Whether a prepared snapshot has not been reported written yet.
    pub fn snapshot_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Take a snapshot now, on this thread (capture, encode, write, prune). Returns its index.
    pub fn snapshot<S: Replay>(&mut self, state: &S, now: Millis) -> Result<u64, JournalError> {
        let pending = self.prepare_snapshot(state, now)?;
        let index = pending.index;
        let written = pending.write();
        self.snapshot_written(index, &written);
        written.map(|w| w.index)
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

/// Whether a snapshot that failed to load is damaged (set aside as `.bad`, recovery falls back
/// to an older one) rather than unreadable for a reason outside the file: a permission, too
/// many open files. Those stop the start, naming the file, so a healthy snapshot and its proof
/// that every record up to it was synced are not thrown away over an operator's mistake. An
/// I/O error of the disk itself (EIO) is damage, as are bad checksums and failed decodes.
pub(crate) fn snapshot_damage(e: &JournalError) -> bool {
    match e {
        JournalError::Io { source, .. } => source.raw_os_error() == Some(libc::EIO),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::{snapshot_damage, JournalError};

    #[test]
    fn only_the_disk_failing_a_read_counts_as_a_damaged_snapshot() {
        let io = |errno| JournalError::Io {
            op: "read",
            path: "s.snap".into(),
            source: std::io::Error::from_raw_os_error(errno),
        };
        assert!(snapshot_damage(&io(libc::EIO)));
        assert!(!snapshot_damage(&io(libc::EACCES)));
        assert!(!snapshot_damage(&io(libc::EMFILE)));
        assert!(snapshot_damage(&JournalError::Snapshot {
            path: "s.snap".into(),
            reason: "checksum mismatch".into(),
        }));
    }
}
