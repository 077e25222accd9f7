//! The writer: appends batches of records to the newest segment, one frame and one sync per batch
//! (`append_batch`), or writes them without the sync (`write_batch`) for a caller that syncs the
//! active segment on another thread (`active_file`; the daemon's `tierline-sync` thread).
//!
//! It owns the open segment and the directory lock. After any write or sync error it rolls the
//! segment back to the last good frame before accepting anything else, so a failed batch never
//! leaves bytes that a later batch would be written after (the torn-tail rule depends on that).
//! It never interprets payloads and never reads a clock.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::daemon::SyncMode;

use super::frame::{self, MAX_BODY_BYTES, MAX_RECORD_BYTES};
use super::segment::{
    scan_all, segment_path, SegmentFile, SkippedDamage, TornTail, ORPHANED_EXT, TEMP_EXT,
};
use super::{lock_dir, sync_dir, JournalError};

/// How the writer behaves; see `[journal]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    pub sync: SyncMode,
    /// Roll to a new segment once the current one holds at least this many bytes.
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 64 << 20,
        }
    }
}

/// What opening the journal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Index of the oldest record on disk, if any.
    pub first_index: Option<u64>,
    /// The index the next appended record gets.
    pub next_index: u64,
    pub segments: usize,
    /// Records handed to the replay callback.
    pub replayed: u64,
    /// A torn tail that was cut off (a crash mid-write; those records were never acknowledged).
    pub truncated: Option<TornTail>,
    /// Damage read past because the restored snapshot holds its records (bit rot or a bad
    /// block in data the state no longer needs: logged as an error, the disk should be checked).
    pub skipped_damage: Vec<SkippedDamage>,
}

/// Where the writer stood before a batch, to roll back to if the batch fails.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Base index of the segment that was being appended to. Not a count of segments: the
    /// snapshot thread may remove old ones (`forget_segments`) before a rollback that had to be
    /// retried runs, and a count would then keep segments the failed batch created and cut the
    /// wrong file.
    active_base: u64,
    len: u64,
    next_index: u64,
}

/// The append side of the journal. See the module docs.
pub struct Log {
    dir: PathBuf,
    opts: LogOptions,
    segments: Vec<SegmentFile>,
    /// Shared with whoever syncs it off this thread (`active_file`).
    active: Arc<File>,
    /// Bytes of whole, written frames in the active segment.
    active_len: u64,
    next_index: u64,
    /// Bytes of the frames appended since this `Log` was opened (a failed batch's are taken
    /// back): what the snapshot schedule weighs against the last snapshot's size.
    appended_bytes: u64,
    /// A failed batch still to be cut off before the next append.
    rollback: Option<Mark>,
    buf: Vec<u8>,
    _lock: super::DirLock,
}

impl Log {
    /// Open (or create) the journal in `dir`, check every segment, cut off a torn tail, and hand
    /// each record with index ≥ `resume_at` to `on_record` in order. `resume_at` is one past the
    /// snapshot the caller restored (1 with no snapshot); it is also where an empty journal starts.
    pub fn open(
        dir: &Path,
        opts: LogOptions,
        resume_at: u64,
        on_record: impl FnMut(u64, &[u8]) -> Result<(), JournalError>,
    ) -> Result<(Log, OpenReport), JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let lock = lock_dir(dir)?;
        Log::open_locked(dir, lock, opts, resume_at, 0, 0, on_record)
    }

    /// `open` for a caller that already holds the directory's `LOCK` (`lock`, from `lock_dir`):
    /// recovery takes it before it reads or sets aside any snapshot. `proven` is the newest
    /// index a snapshot file proves was synced even though it could not be restored (0: none):
    /// it is renamed into place only once the sync covers its index. `covered` is the record of
    /// the snapshot the caller restored, which holds every record up to it (0: none restored):
    /// damage there that the scan can read past does not stop the open (`segment::scan`).
    pub(crate) fn open_locked(
        dir: &Path,
        lock: super::DirLock,
        opts: LogOptions,
        resume_at: u64,
        proven: u64,
        covered: u64,
        mut on_record: impl FnMut(u64, &[u8]) -> Result<(), JournalError>,
    ) -> Result<(Log, OpenReport), JournalError> {
        remove_temp_files(dir)?;
        let mut replayed = 0u64;
        // With a sync mode, the restored snapshot, and any newer one that is on disk but
        // unusable, prove every record up to them was synced.
        let synced_through = match opts.sync {
            SyncMode::None => 0,
            _ => resume_at.saturating_sub(1).max(proven),
        };
        // The restored snapshot holds every record up to its own, whatever the sync mode:
        // damage there that the scan can read past loses nothing the state needs.
        let covered_through = covered.min(resume_at.saturating_sub(1));
        let scan = scan_all(
            dir,
            resume_at,
            synced_through,
            covered_through,
            &mut |index, payload| {
                replayed += 1;
                on_record(index, payload)
            },
        )?;
        for skipped in &scan.skipped {
            tracing::error!(
                damage = %skipped,
                "journal: damaged records the restored snapshot holds were read past; nothing \
                 the state needs is lost, but acknowledged data was damaged on disk: check the \
                 disk and back up the journal directory"
            );
        }
        if let Some(first) = scan.first_index {
            if first > resume_at {
                return Err(JournalError::Gap {
                    path: scan.segments[0].path.clone(),
                    expected: resume_at,
                    found: first,
                });
            }
        }
        if synced_through >= resume_at && scan.next_index <= synced_through {
            // An unusable snapshot newer than the restored one proves records the journal no
            // longer holds were synced: acknowledged inputs are missing, not a crash artifact.
            let (path, offset) = match scan.segments.last() {
                Some(seg) => (seg.path.clone(), scan.last_valid_len),
                None => (dir.to_path_buf(), 0),
            };
            return Err(JournalError::Corrupt {
                path,
                offset,
                damage: format!(
                    "the journal ends at record {}, but the snapshot at record {synced_through} \
                     (unusable) proves every record up to it was synced: acknowledged records \
                     are missing (if this journal was written with sync = \"none\", start once \
                     with sync = \"none\")",
                    scan.next_index.saturating_sub(1)
                ),
            });
        }
        if scan.segments.is_empty() && resume_at > 1 {
            // A running daemon always leaves a segment (the one it appends to, created with the
            // journal): none at all beside a snapshot means they were deleted or never copied.
            tracing::warn!(
                dir = %dir.display(),
                snapshot = resume_at - 1,
                "journal: a snapshot but no segment; any records written after the snapshot are \
                 gone (segments deleted, or not copied with a backup?); starting after the snapshot"
            );
        }
        let mut segments = scan.segments;
        let mut next_index = scan.next_index;
        let mut active_len = scan.last_valid_len;
        if let Some(torn) = &scan.torn {
            tracing::warn!(tail = %torn, "journal: cutting off a torn tail left by a crash mid-write");
            let path = &segments[segments.len() - 1].path;
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(active_len).and_then(|()| f.sync_all()))
                .map_err(|e| JournalError::io("truncate", path, e))?;
        }
        if next_index < resume_at && !segments.is_empty() && opts.sync != SyncMode::None {
            // With sync = "batch" or "always" the snapshot was renamed into place only once a
            // sync covered its record: a journal ending cleanly before it has lost whole
            // segments (deleted, or a backup that missed them), and with them whatever was
            // acknowledged after the snapshot, whose decision numbers a start would reuse.
            let last = &segments[segments.len() - 1];
            return Err(JournalError::Corrupt {
                path: last.path.clone(),
                offset: active_len,
                damage: format!(
                    "the journal ends at record {}, but the snapshot at record {} proves every \
                     record up to it was synced: segments are missing (deleted, or not copied \
                     with a backup), and with them any records acknowledged after the \
                     snapshot. Restore the missing segments; or, if this journal was written \
                     with sync = \"none\", start once with sync = \"none\"; or, to start from \
                     the snapshot accepting that loss (decisions after it get their numbers \
                     again), move the *.seg files out of the directory",
                    next_index.saturating_sub(1),
                    resume_at - 1
                ),
            });
        }
        if next_index < resume_at && !segments.is_empty() {
            // The snapshot is newer than the journal's end, with sync = "none" (an OS crash lost
            // the unsynced end): everything on disk is covered by it, so start afresh after it.
            // The old segments are set aside (`.orphaned`), not deleted, for whoever wants to
            // look.
            tracing::warn!(
                journal_last = next_index.saturating_sub(1),
                snapshot = resume_at - 1,
                "journal: the snapshot is ahead of the journal; setting its segments aside \
                 (*.orphaned) and starting a new segment after the snapshot"
            );
            for seg in segments.drain(..) {
                let aside = seg.path.with_extension(ORPHANED_EXT);
                std::fs::rename(&seg.path, &aside)
                    .map_err(|e| JournalError::io("rename", &seg.path, e))?;
            }
            if opts.sync != SyncMode::None {
                super::sync_dir(dir)?;
            }
        }
        if segments.is_empty() {
            next_index = resume_at;
            segments.push(SegmentFile {
                base: resume_at,
                path: segment_path(dir, resume_at),
            });
            create_segment(dir, resume_at, opts.sync)?;
            active_len = 0;
        }
        let active_path = &segments[segments.len() - 1].path;
        let active = OpenOptions::new()
            .read(true)
            .write(true)
            .open(active_path)
            .map_err(|e| JournalError::io("open", active_path, e))?;
        if opts.sync != SyncMode::None {
            // A crashed process may have left written but unsynced records that were just
            // replayed: make them durable before anything built on them is answered.
            active
                .sync_data()
                .map_err(|e| JournalError::io("sync", active_path, e))?;
        }
        let log = Log {
            dir: dir.to_path_buf(),
            opts,
            segments,
            active: Arc::new(active),
            active_len,
            next_index,
            appended_bytes: 0,
            rollback: None,
            buf: Vec::new(),
            _lock: lock,
        };
        let report = OpenReport {
            first_index: log.segments.first().map(|s| s.base),
            next_index: log.next_index,
            segments: log.segments.len(),
            replayed,
            truncated: scan.torn,
            skipped_damage: scan.skipped,
        };
        Ok((log, report))
    }

    /// The index the next appended record gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Bytes of the frames appended since this `Log` was opened (records replayed at open not
    /// included; a failed batch's bytes taken back).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> LogOptions {
        self.opts
    }

    /// The segments on disk, oldest first (the last one is being appended to).
    pub fn segments(&self) -> &[SegmentFile] {
        &self.segments
    }

    /// Append `payloads` as consecutive records and make them durable per `SyncMode` before
    /// returning their index range. On error nothing of the batch counts: the bytes are cut off
    /// (now, or before the next append if even that fails) and the indexes are handed out again.
    pub fn append_batch(&mut self, payloads: &[&[u8]]) -> Result<Range<u64>, JournalError> {
        let sync = self.opts.sync != SyncMode::None;
        self.put_batch(payloads, sync)
    }

    /// Like `append_batch`, but write(2) only: the records are on disk once the caller syncs
    /// `active_file` (every byte written before that sync is covered by it). A roll to a new
    /// segment still syncs the old one here first, so syncing the newest segment always covers
    /// every record written so far. A write error rolls back exactly like `append_batch`.
    pub fn write_batch(&mut self, payloads: &[&[u8]]) -> Result<Range<u64>, JournalError> {
        self.put_batch(payloads, false)
    }

    /// The segment being appended to, for a sync on another thread, and its path.
    pub fn active_file(&self) -> (Arc<File>, &Path) {
        (
            Arc::clone(&self.active),
            &self.segments[self.segments.len() - 1].path,
        )
    }

    fn put_batch(&mut self, payloads: &[&[u8]], sync: bool) -> Result<Range<u64>, JournalError> {
        for p in payloads {
            if p.is_empty() {
                return Err(JournalError::EmptyRecord);
            }
            if p.len() > MAX_RECORD_BYTES {
                return Err(JournalError::RecordTooLarge {
                    bytes: p.len(),
                    max: MAX_RECORD_BYTES,
                });
            }
        }
        self.finish_rollback()?;
        let mark = self.mark();
        let start = self.next_index;
        let appended_before = self.appended_bytes;
        match self.write_frames(payloads, sync) {
            Ok(()) => Ok(start..self.next_index),
            Err(e) => {
                self.appended_bytes = appended_before;
                self.rollback = Some(mark);
                match self.finish_rollback() {
                    // A failed sync is fatal wherever it happens (DURABILITY.md): the pages it
                    // covered, including batches still waiting on the sync thread, may be gone,
                    // and a later sync of the same file could succeed without them.
                    Err(again) if again.is_sync_failure() => Err(again),
                    Err(again) => {
                        tracing::error!(error = %again, "journal: cannot cut off a failed batch yet; will retry before the next append");
                        Err(e)
                    }
                    Ok(()) => Err(e),
                }
            }
        }
    }

    fn write_frames(&mut self, payloads: &[&[u8]], sync: bool) -> Result<(), JournalError> {
        let mut rest = payloads;
        while !rest.is_empty() {
            let take = match self.opts.sync {
                SyncMode::Always => 1,
                SyncMode::Batch | SyncMode::None => frame_fits(rest),
            };
            let (now, later) = rest.split_at(take);
            rest = later;
            let len = frame::frame_len(now.iter().map(|p| p.len())) as u64;
            if self.active_len > 0 && self.active_len + len > self.opts.segment_bytes {
                self.roll()?;
            }
            self.buf.clear();
            frame::encode(&mut self.buf, self.next_index, now);
            let path = &self.segments[self.segments.len() - 1].path;
            self.active
                .write_all_at(&self.buf, self.active_len)
                .map_err(|e| JournalError::io("append to", path, e))?;
            if sync {
                super::sync_journal_file(&self.active)
                    .map_err(|e| JournalError::io("sync", path, e))?;
            }
            self.active_len += len;
            self.appended_bytes += len;
            self.next_index += now.len() as u64;
        }
        Ok(())
    }

    /// Make every appended record durable now (for `SyncMode::None` at shutdown; the other modes
    /// already sync each batch).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let path = &self.segments[self.segments.len() - 1].path;
        super::sync_journal_file(&self.active).map_err(|e| JournalError::io("sync", path, e))
    }

    /// Start a new segment at `next_index`. The old one is synced first (a no-op unless the mode
    /// is `none`), so only the newest segment can ever end in a torn frame.
    fn roll(&mut self) -> Result<(), JournalError> {
        self.sync()?;
        let base = self.next_index;
        let file = create_segment(&self.dir, base, self.opts.sync)?;
        self.segments.push(SegmentFile {
            base,
            path: segment_path(&self.dir, base),
        });
        self.active = Arc::new(file);
        self.active_len = 0;
        Ok(())
    }

    /// Cut the journal back to where a failed batch started.
    fn finish_rollback(&mut self) -> Result<(), JournalError> {
        let Some(mark) = self.rollback else {
            return Ok(());
        };
        // Segments the failed batch started (bases increase along the list).
        while let Some(seg) = self.segments.last().filter(|s| s.base > mark.active_base) {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::io("remove", &seg.path, e)),
            }
            self.segments.pop();
        }
        let file = match self.segments.last() {
            Some(seg) if seg.base == mark.active_base => {
                let path = seg.path.clone();
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| JournalError::io("open", &path, e))?;
                file.set_len(mark.len)
                    .map_err(|e| JournalError::io("truncate", &path, e))?;
                if self.opts.sync != SyncMode::None {
                    file.sync_all()
                        .map_err(|e| JournalError::io("sync", &path, e))?;
                }
                file
            }
            // `forget_segments` never removes the segment being appended to, so this is only
            // reached if the mark's segment was removed as covered after the failed batch had
            // rolled past it: continue in a new segment where the journal ends.
            _ => {
                let file = create_segment(&self.dir, mark.next_index, self.opts.sync)?;
                self.segments.push(SegmentFile {
                    base: mark.next_index,
                    path: segment_path(&self.dir, mark.next_index),
                });
                file
            }
        };
        self.active = Arc::new(file);
        self.active_len = mark.len;
        self.next_index = mark.next_index;
        self.rollback = None;
        Ok(())
    }

    /// Where the writer stands now, to roll back to if the next batch fails.
    fn mark(&self) -> Mark {
        Mark {
            active_base: self.segments[self.segments.len() - 1].base,
            len: self.active_len,
            next_index: self.next_index,
        }
    }

    /// Forget segments another thread removed (`remove_covered_segments`). The segment being
    /// appended to is never among them.
    pub fn forget_segments(&mut self, removed: &[u64]) {
        let active = self.segments.len() - 1;
        let active_base = self.segments[active].base;
        self.segments
            .retain(|s| s.base == active_base || !removed.contains(&s.base));
    }
}

/// Delete the segments in `dir` whose every record is at or below `covered` (a durable snapshot
/// holds them); the newest segment always stays. Returns the first indexes of those removed.
///
/// Safe beside a `Log` appending in another thread: `covered` is at most the index of a snapshot
/// taken earlier, so the segment being appended to, and any the writer creates or rolls back
/// later, start after it and are never candidates. The writer then calls `forget_segments`.
pub fn remove_covered_segments(
    dir: &Path,
    covered: u64,
    sync: SyncMode,
) -> Result<Vec<u64>, JournalError> {
    let segments = super::segment::list_segments(dir)?;
    let mut removed = Vec::new();
    for pair in segments.windows(2) {
        if pair[1].base > covered + 1 {
            break;
        }
        std::fs::remove_file(&pair[0].path)
            .map_err(|e| JournalError::io("remove", &pair[0].path, e))?;
        removed.push(pair[0].base);
    }
    if !removed.is_empty() && sync != SyncMode::None {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// How many of `payloads` (at least one) fit in one frame.
fn frame_fits(payloads: &[&[u8]]) -> usize {
    let mut body = frame::BODY_PREFIX_BYTES;
    let mut n = 0;
    for p in payloads {
        let next = body + frame::RECORD_PREFIX_BYTES + p.len();
        if n > 0 && next > MAX_BODY_BYTES {
            break;
        }
        body = next;
        n += 1;
    }
    n
}

fn create_segment(dir: &Path, base: u64, sync: SyncMode) -> Result<File, JournalError> {
    let path = segment_path(dir, base);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| JournalError::io("create", &path, e))?;
    if sync != SyncMode::None {
        sync_dir(dir)?;
    }
    Ok(file)
}

fn remove_temp_files(dir: &Path) -> Result<(), JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == TEMP_EXT) {
            std::fs::remove_file(&path).map_err(|e| JournalError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rollback retried after the snapshot thread removed an old segment cuts the journal
    /// back to the failed batch's start: the segment that batch rolled into is removed, and the
    /// segment it started in is cut to its old length (before, a count of segments was kept:
    /// one segment fewer at the front kept the new segment and truncated it instead).
    #[test]
    fn a_retried_rollback_after_old_segments_were_removed_cuts_the_right_files() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 300,
        };
        let (mut log, _) = Log::open(tmp.path(), opts, 1, |_, _| Ok(())).unwrap();
        let record = [b'r'; 100];
        while log.segments().len() < 3 {
            log.append_batch(&[&record]).unwrap();
        }
        let mark = log.mark();
        let marked_base = log.segments()[2].base;
        // The "failed" batch: written, and it rolled into a fourth segment.
        while log.segments().len() < 4 {
            log.append_batch(&[&record]).unwrap();
        }
        let rolled = log.segments()[3].path.clone();
        log.rollback = Some(mark);
        // Meanwhile the snapshot thread removed the oldest segment as covered.
        let oldest = log.segments()[0].clone();
        std::fs::remove_file(&oldest.path).unwrap();
        log.forget_segments(&[oldest.base]);

        log.finish_rollback().unwrap();
        assert!(
            !rolled.exists(),
            "the segment the failed batch rolled into is still there"
        );
        let bases: Vec<u64> = log.segments().iter().map(|s| s.base).collect();
        assert_eq!(bases.last(), Some(&marked_base), "{bases:?}");
        assert_eq!(log.next_index(), mark.next_index);
        let len = std::fs::metadata(&log.segments()[1].path).unwrap().len();
        assert_eq!(
            len, mark.len,
            "the marked segment is cut back to where the batch started"
        );
        // Appending continues right after the mark.
        assert_eq!(
            log.append_batch(&[&record]).unwrap(),
            mark.next_index..mark.next_index + 1
        );
    }
}
