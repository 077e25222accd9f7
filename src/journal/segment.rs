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

/// What a scan found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// One past the index of its last good record.
    pub next_index: u64,
    /// Bytes of good frames from the start of the file.
    pub valid_len: u64,
    pub frames: u64,
    pub torn: Option<TornTail>,
}

/// Check every frame of `seg` and hand each record with index ≥ `from` to `on_record`.
///
/// Damage in a segment that is not the last one, or damage followed by any valid frame, is
/// `JournalError::Corrupt` (acknowledged data is damaged). Damage with nothing valid after it in the
/// last segment is a torn tail, reported in `Scanned::torn` for the caller to deal with.
pub(crate) fn scan(
    seg: &SegmentFile,
    is_last: bool,
    from: u64,
    on_record: &mut OnRecord<'_>,
) -> Result<Scanned, JournalError> {
    let bytes = std::fs::read(&seg.path).map_err(|e| JournalError::io("read", &seg.path, e))?;
    let mut at = 0usize;
    let mut next_index = seg.base;
    let mut frames = 0u64;
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
                if let Damage::BadLayout(_) = damage {
                    return Err(corrupt(at, damage.to_string()));
                }
                if !is_last {
                    return Err(corrupt(
                        at,
                        format!("{damage} in a segment that is not the newest"),
                    ));
                }
                if let Some(next) = frame::valid_frame_after(rest) {
                    return Err(corrupt(
                        at,
                        format!("{damage}, and a valid frame follows at byte {}", at + next),
                    ));
                }
                return Ok(Scanned {
                    next_index,
                    valid_len: at as u64,
                    frames,
                    torn: Some(TornTail {
                        path: seg.path.clone(),
                        offset: at as u64,
                        bytes: rest.len() as u64,
                        damage: damage.to_string(),
                    }),
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
                on_record(index, payload)?;
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
}

/// Scan every segment in order, checking that each starts where the previous ended.
pub(crate) fn scan_all(
    dir: &Path,
    from: u64,
    on_record: &mut OnRecord<'_>,
) -> Result<ScanReport, JournalError> {
    let segments = list_segments(dir)?;
    let mut report = ScanReport {
        first_index: segments.first().map(|s| s.base),
        next_index: segments.first().map_or(0, |s| s.base),
        ..ScanReport::default()
    };
    for (k, seg) in segments.iter().enumerate() {
        if seg.base != report.next_index {
            return Err(JournalError::Gap {
                path: seg.path.clone(),
                expected: report.next_index,
                found: seg.base,
            });
        }
        let is_last = k + 1 == segments.len();
        let scanned = scan(seg, is_last, from, on_record)?;
        report.next_index = scanned.next_index;
        report.frames += scanned.frames;
        report.last_valid_len = scanned.valid_len;
        report.torn = scanned.torn;
    }
    report.segments = segments;
    Ok(report)
}
