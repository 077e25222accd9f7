//! Segment files: naming, listing, and the one scan that checks every frame of a segment.
//!
//! A segment is `DIR/<first index, 20 digits>.seg`, a run of frames. The scan here is shared by
//! the writer's open (which then truncates a torn tail), recovery (which replays records) and
//! `tierline journal verify` (which changes nothing). It never writes.

use std::path::{Path, PathBuf};

use super::frame::{self, Damage};
use super::JournalError;

/// Called with `(index, payload)` for each record a scan passes.
pub(crate) type OnRecord<'a> = dyn FnMut(u64, &[u8]) -> Result<(), JournalError> + 'a;

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Index of its first record (from the file name).
    pub base: u64,
    pub path: PathBuf,
}

pub(crate) const SEGMENT_EXT: &str = "seg";
pub(crate) const SNAPSHOT_EXT: &str = "snap";
/// Segments set aside because a snapshot is ahead of them (`Log::open`): `<base>.seg.orphaned`.
pub(crate) const ORPHANED_EXT: &str = "seg.orphaned";
pub(crate) const TEMP_EXT: &str = "tmp";

pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.{SEGMENT_EXT}"))
}

/// `<20 digits>.<ext>` → the number.
pub(crate) fn numbered(path: &Path, ext: &str) -> Option<u64> {
    if path.extension()? != ext {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Every file in `dir` named `<20 digits>.<ext>`, by number.
pub(crate) fn list_numbered(dir: &Path, ext: &str) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let path = entry.path();
        if let Some(n) = numbered(&path, ext) {
            // Read as a journal file, a directory (or a socket, or a link to nothing) would fail
            // later as something else: a hole in the journal, an I/O error while reading.
            let meta =
                std::fs::metadata(&path).map_err(|e| JournalError::io("inspect", &path, e))?;
            if !meta.is_file() {
                let kind = if meta.is_dir() {
                    "directory"
                } else {
                    "special file"
                };
                return Err(JournalError::NotAFile { path, kind });
            }
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The segments in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, JournalError> {
    Ok(list_numbered(dir, SEGMENT_EXT)?
        .into_iter()
        .map(|(base, path)| SegmentFile { base, path })
        .collect())
}

/// Damage at the end of the last segment that a crash mid-write explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the damage starts (the segment is cut back to here).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    pub damage: String,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {} ({} bytes after the last whole frame)",
            self.path.display(),
            self.offset,
            self.damage,
            self.bytes
        )
    }
}

/// Damaged bytes whose records the restored snapshot already holds: recovery reads past them
/// (to the next valid frame, or the next segment) instead of refusing to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDamage {
    pub path: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Damaged bytes read past (to the next valid frame or the end of the segment).
    pub bytes: u64,
    /// The records that were in them, `first..=last` (`None`: no whole record was lost).
    pub records: Option<(u64, u64)>,
    /// The snapshot's record, which holds them.
    pub covered_by: u64,
    pub damage: String,
}

impl std::fmt::Display for SkippedDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}; {} bytes read past",
            self.path.display(),
            self.offset,
            self.damage,
            self.bytes
        )?;
        match self.records {
            Some((first, last)) => write!(
                f,
                " (records {first}..={last}, held by the snapshot at record {})",
                self.covered_by
            ),
            None => write!(f, " (no record lost)"),
        }
    }
}

/// What a scan found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// One past the index of its last good record.
    pub next_index: u64,
    /// Bytes of good frames from the start of the file.
    pub valid_len: u64,
    pub frames: u64,
    pub torn: Option<TornTail>,
    /// Damage read past because the restored snapshot holds its records.
    pub skipped: Vec<SkippedDamage>,
    /// Damage from `skipped`'s last entry ran to the end of this segment: the next segment must
    /// start no later than the record after the snapshot (`scan_all` checks and completes it).
    pub skipped_to_end: bool,
}

/// Check every frame of `seg` and hand each record with index ≥ `from` to `on_record`.
///
/// Damage in a segment that is not the last one, or damage followed by any valid frame, is
/// `JournalError::Corrupt` (acknowledged data is damaged). Damage with nothing valid after it in the
/// last segment is a torn tail, reported in `Scanned::torn` for the caller to deal with.
///
/// One exception in the last segment: damage that is a zero-filled hole (`zero_hole`) is the
/// start of a torn tail even when valid frames follow it. With several batches written but not
/// yet synced, a power loss can persist a later extent of the file but not an earlier one; every
/// frame after the hole was written after it, so no sync covered it and it was never answered.
///
/// Neither exception holds for records up to `synced_through`, which something on disk proves
/// were synced (a snapshot is written only once the sync covers its index): damage there is
/// damage to acknowledged data, `Corrupt`, however it looks. 0 proves nothing.
///
/// Except where the restored snapshot holds every record the damage can have hidden
/// (`covered_through`, its record; 0: none): damage starting at or before it, followed by a
/// valid frame that starts no later than the record after the snapshot (or, running to the end
/// of a segment that is not the newest, by a segment that does), is read past and reported in
/// `Scanned::skipped`; nothing needed for the state is lost. Replay never reads those records,
/// and refusing to start on them would stop the router over data it does not need.
pub(crate) fn scan(
    seg: &SegmentFile,
    is_last: bool,
    from: u64,
    synced_through: u64,
    covered_through: u64,
    on_record: &mut OnRecord<'_>,
) -> Result<Scanned, JournalError> {
    let bytes = std::fs::read(&seg.path).map_err(|e| JournalError::io("read", &seg.path, e))?;
    let mut at = 0usize;
    let mut next_index = seg.base;
    let mut frames = 0u64;
    let mut skipped = Vec::new();
    let corrupt = |offset: usize, damage: String| JournalError::Corrupt {
        path: seg.path.clone(),
        offset: offset as u64,
        damage,
    };
    while at < bytes.len() {
        let rest = &bytes[at..];
        let info = match frame::check(rest) {
            Ok(info) => info,
            Err(damage) => {
                // Where the next valid frame starts: searched at most once, and only by the
                // paths that need it (the read-past and the torn-tail judgement below).
                let mut next = None;
                if next_index <= covered_through {
                    let next = *next.get_or_insert_with(|| frame::valid_frame_after(rest));
                    let resumes =
                        next.and_then(|n| frame::check(&rest[n..]).ok().map(|i| i.first_index));
                    let skip = |resume: Option<u64>, len: usize| SkippedDamage {
                        path: seg.path.clone(),
                        offset: at as u64,
                        bytes: len as u64,
                        records: resume
                            .filter(|&r| r > next_index)
                            .map(|r| (next_index, r - 1)),
                        covered_by: covered_through,
                        damage: damage.to_string(),
                    };
                    match (next, resumes) {
                        (Some(n), Some(first))
                            if first >= next_index && first <= covered_through + 1 =>
                        {
                            skipped.push(skip(Some(first), n));
                            next_index = first;
                            at += n;
                            continue;
                        }
                        (None, _) if !is_last => {
                            skipped.push(skip(None, rest.len()));
                            return Ok(Scanned {
                                next_index,
                                valid_len: at as u64,
                                frames,
                                torn: None,
                                skipped,
                                skipped_to_end: true,
                            });
                        }
                        // Records after the snapshot may have been in the damage: as below.
                        _ => {}
                    }
                }
                if let Damage::BadLayout(_) = damage {
                    return Err(corrupt(at, damage.to_string()));
                }
                if !is_last {
                    return Err(corrupt(
                        at,
                        format!("{damage} in a segment that is not the newest"),
                    ));
                }
                if next_index <= synced_through {
                    return Err(corrupt(
                        at,
                        format!(
                            "{damage} at record {next_index}, which the snapshot at record \
                             {synced_through} proves was synced: damage to acknowledged data, \
                             not a torn tail (if this journal was written with sync = \"none\", \
                             start once with sync = \"none\" to cut it)"
                        ),
                    ));
                }
                let damage = match *next.get_or_insert_with(|| frame::valid_frame_after(rest)) {
                    None => damage.to_string(),
                    Some(next) if zero_hole(&rest[..next], at as u64) => format!(
                        "{damage}: a zero-filled hole (unsynced pages lost), valid frames after it at byte {} were never synced",
                        at + next
                    ),
                    Some(next) => {
                        return Err(corrupt(
                            at,
                            format!(
                                "{damage} at record {next_index}, and a valid frame follows at \
                                 byte {}",
                                at + next
                            ),
                        ))
                    }
                };
                return Ok(Scanned {
                    next_index,
                    valid_len: at as u64,
                    frames,
                    torn: Some(TornTail {
                        path: seg.path.clone(),
                        offset: at as u64,
                        bytes: rest.len() as u64,
                        damage,
                    }),
                    skipped,
                    skipped_to_end: false,
                });
            }
        };
        if info.first_index != next_index {
            return Err(corrupt(
                at,
                format!(
                    "frame starts at record {} where record {next_index} was expected",
                    info.first_index
                ),
            ));
        }
        for record in frame::records(rest, info) {
            let (index, payload) = record.map_err(|d| corrupt(at, d.to_string()))?;
            if index >= from {
                on_record(index, payload).map_err(|e| e.at_frame(&seg.path, at as u64))?;
            }
        }
        next_index += u64::from(info.count);
        frames += 1;
        at += info.len;
    }
    Ok(Scanned {
        next_index,
        valid_len: at as u64,
        frames,
        torn: None,
        skipped,
        skipped_to_end: false,
    })
}

/// The page size holes are looked for at: the smallest unit a filesystem persists or loses.
pub(crate) const HOLE_PAGE_BYTES: u64 = 4096;

/// Whether the damaged bytes `region` (from file offset `offset` up to the next valid frame) hold
/// a hole left by pages that never reached the disk: a run of zero bytes, at least a frame header
/// long, that starts where the damaged frame starts or at a page boundary inside it and reaches
/// the next page boundary (or the end of the region). A writer never writes a zero header, and a
/// lost page reads back as zeros, so that is what an unsynced page looks like after a power loss;
/// bit rot or a bad checksum with non-zero bytes is not.
pub(crate) fn zero_hole(region: &[u8], offset: u64) -> bool {
    let len = region.len() as u64;
    let first_boundary = offset.next_multiple_of(HOLE_PAGE_BYTES) - offset;
    let mut starts = std::iter::once(0)
        .chain((first_boundary..len).step_by(HOLE_PAGE_BYTES as usize))
        .filter(|&s| s < len);
    starts.any(|start| {
        let page_end = (offset + start + 1).next_multiple_of(HOLE_PAGE_BYTES) - offset;
        let end = page_end.min(len);
        end - start >= frame::HEADER_BYTES as u64
            && region[start as usize..end as usize].iter().all(|&b| b == 0)
    })
}

/// What a scan of all segments found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanReport {
    pub segments: Vec<SegmentFile>,
    /// Index of the first record on disk (`None`: no segment).
    pub first_index: Option<u64>,
    /// One past the last good record.
    pub next_index: u64,
    pub frames: u64,
    /// Bytes of good frames in the newest segment.
    pub last_valid_len: u64,
    pub torn: Option<TornTail>,
    /// Damage read past because the restored snapshot holds its records (see `scan`).
    pub skipped: Vec<SkippedDamage>,
}

/// Scan every segment in order, checking that each starts where the previous ended.
/// `synced_through`, `covered_through`: see `scan`.
pub(crate) fn scan_all(
    dir: &Path,
    from: u64,
    synced_through: u64,
    covered_through: u64,
    on_record: &mut OnRecord<'_>,
) -> Result<ScanReport, JournalError> {
    let segments = list_segments(dir)?;
    let mut report = ScanReport {
        first_index: segments.first().map(|s| s.base),
        next_index: segments.first().map_or(0, |s| s.base),
        ..ScanReport::default()
    };
    let mut skipped_to_end = false;
    for (k, seg) in segments.iter().enumerate() {
        // After damage that ran to the end of the previous segment, this one may start later
        // than its last good record, as long as it starts within what the snapshot holds.
        let resumes = skipped_to_end
            && seg.base >= report.next_index
            && seg.base <= covered_through.saturating_add(1);
        if skipped_to_end && !resumes {
            // The records between the damage and this segment's start may include some after
            // the snapshot: the damage is the problem to report, where it is.
            if let Some(d) = report.skipped.pop() {
                return Err(JournalError::Corrupt {
                    path: d.path,
                    offset: d.offset,
                    damage: format!(
                        "{} at record {} in a segment that is not the newest, and the next \
                         segment starts at record {}, after the snapshot at record {}",
                        d.damage, report.next_index, seg.base, covered_through
                    ),
                });
            }
        }
        if seg.base != report.next_index && !resumes {
            return Err(JournalError::Gap {
                path: seg.path.clone(),
                expected: report.next_index,
                found: seg.base,
            });
        }
        if resumes {
            if let Some(last) = report.skipped.last_mut() {
                last.records =
                    (seg.base > report.next_index).then(|| (report.next_index, seg.base - 1));
            }
            report.next_index = seg.base;
        }
        let is_last = k + 1 == segments.len();
        let scanned = scan(
            seg,
            is_last,
            from,
            synced_through,
            covered_through,
            on_record,
        )?;
        report.next_index = scanned.next_index;
        report.frames += scanned.frames;
        report.last_valid_len = scanned.valid_len;
        report.torn = scanned.torn;
        report.skipped.extend(scanned.skipped);
        skipped_to_end = scanned.skipped_to_end;
    }
    report.segments = segments;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_directory_named_like_a_journal_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{:020}.{SEGMENT_EXT}", 1)), b"").unwrap();
        let stray = dir.path().join(format!("{:020}.{SEGMENT_EXT}", 2));
        std::fs::create_dir(&stray).unwrap();
        match list_segments(dir.path()) {
            Err(JournalError::NotAFile { path, kind }) => {
                assert_eq!((path, kind), (stray.clone(), "directory"));
            }
            other => panic!("expected NotAFile, got {other:?}"),
        }
        let message = list_segments(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("is named like a journal file but is a directory"),
            "{message}"
        );
        // Other names are none of the journal's business.
        std::fs::remove_dir(&stray).unwrap();
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    /// Frames of one record each, numbered from `base`: the bytes and each frame's offset.
    fn frames(base: u64, payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for (k, p) in payloads.iter().enumerate() {
            offsets.push(bytes.len());
            frame::encode(&mut bytes, base + k as u64, &[p.as_slice()]);
        }
        (bytes, offsets)
    }

    fn payloads(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|k| vec![b'a' + (k % 26) as u8; len]).collect()
    }

    fn scan_file(
        dir: &Path,
        base: u64,
        bytes: &[u8],
        is_last: bool,
    ) -> Result<Scanned, JournalError> {
        let seg = SegmentFile {
            base,
            path: segment_path(dir, base),
        };
        std::fs::write(&seg.path, bytes).unwrap();
        scan(&seg, is_last, base, 0, 0, &mut |_, _| Ok(()))
    }

    #[test]
    fn a_zero_hole_with_valid_frames_after_it_is_a_torn_tail_in_the_newest_segment_only() {
        let dir = tempfile::tempdir().unwrap();
        // 40 frames of ~1 KiB (not page-aligned): the third page is lost, later pages made it.
        let (mut bytes, offsets) = frames(1, &payloads(40, 900));
        let hole = 2 * HOLE_PAGE_BYTES as usize..3 * HOLE_PAGE_BYTES as usize;
        bytes[hole.clone()].fill(0);
        let frame_len = frame::frame_len([900]);
        let damaged = offsets
            .iter()
            .position(|&o| o + frame_len > hole.start)
            .unwrap();
        assert!(
            offsets[damaged] < hole.start,
            "the damaged frame starts before the hole"
        );

        let scanned = scan_file(dir.path(), 1, &bytes, true).unwrap();
        let torn = scanned.torn.expect("a torn tail");
        assert_eq!(
            torn.offset, offsets[damaged] as u64,
            "cut where the damaged frame starts"
        );
        assert_eq!(scanned.valid_len, offsets[damaged] as u64);
        assert_eq!(scanned.next_index, 1 + damaged as u64);
        assert!(torn.damage.contains("zero-filled hole"), "{}", torn.damage);

        // The same hole in an older segment is damage to synced data: refuse, naming the offset.
        match scan_file(dir.path(), 1, &bytes, false) {
            Err(JournalError::Corrupt { offset, .. }) => {
                assert_eq!(offset, offsets[damaged] as u64)
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_checksum_without_zeros_before_a_valid_frame_still_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, offsets) = frames(1, &payloads(10, 300));
        // Scribble (not zeros) over the middle of frame 3.
        for b in &mut bytes[offsets[3] + 20..offsets[3] + 120] {
            *b = 0x5A;
        }
        match scan_file(dir.path(), 1, &bytes, true) {
            Err(JournalError::Corrupt { offset, damage, .. }) => {
                assert_eq!(offset, offsets[3] as u64);
                assert!(damage.contains("valid frame follows"), "{damage}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn zero_hole_needs_a_zero_run_at_the_frame_start_or_a_page_boundary() {
        // A zero header at the damaged frame's start.
        assert!(zero_hole(&[0u8; 8], 100));
        // Too short to be a header.
        assert!(!zero_hole(&[0u8; 7], 100));
        // Zeros in the middle of a page, not at the frame start: not a lost page.
        let mut region = vec![1u8; 200];
        region[50..150].fill(0);
        assert!(!zero_hole(&region, 0));
        // Zeros from a page boundary (file offset 4096) to the end of the region.
        let mut region = vec![1u8; 200];
        region[96..].fill(0);
        assert!(zero_hole(&region, 4000));
    }

    proptest! {
        /// Losing any run of whole pages of the newest segment never refuses to start: the scan
        /// keeps exactly the frames before the first one the hole touches.
        #[test]
        fn a_lost_page_run_in_the_newest_segment_keeps_the_frames_before_it(
            n in 2usize..60,
            len in 1usize..1500,
            first_page in 0u64..20,
            pages in 1u64..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut bytes, offsets) = frames(7, &payloads(n, len));
            // A page the file has (drawn without rejecting, so any number of cases runs).
            let pages_in_file = bytes.len().div_ceil(HOLE_PAGE_BYTES as usize) as u64;
            let start = ((first_page % pages_in_file) * HOLE_PAGE_BYTES) as usize;
            let end = (start + (pages * HOLE_PAGE_BYTES) as usize).min(bytes.len());
            bytes[start..end].fill(0);
            let scanned = scan_file(dir.path(), 7, &bytes, true).unwrap();
            let kept = offsets.iter().filter(|&&o| o + frame::frame_len([len]) <= start).count();
            prop_assert_eq!(scanned.next_index, 7 + kept as u64);
            prop_assert_eq!(scanned.valid_len, offsets.get(kept).map_or(bytes.len(), |&o| o) as u64);
            prop_assert!(scanned.torn.is_some());
        }
    }
}
