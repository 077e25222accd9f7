//! Reading a daemon's journal directory offline for `--replay`: where the replay can start, and
//! the journaled inputs after that point, in order.
//!
//! Read-only: no lock is taken, nothing is truncated, removed or written, so it is safe beside a
//! running daemon (which may then be writing the tail; a torn tail ends the replay early and is
//! reported). Damage anywhere else stops with the journal's own error, which names the file and
//! the byte offset. It never decides anything about routing: it hands out a `Core` to start from
//! and the `TimedInput`s to feed it.

use std::path::{Path, PathBuf};

use crate::config::LoadedConfig;
use crate::daemon::core::{Core, TimedInput};
use crate::journal::segment::{list_segments, scan_all, ScanReport};
use crate::journal::snapshot::{list_snapshots, read_snapshot};
use crate::journal::JournalError;

/// Why a journal cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot replay {}: {}", .0.display(), if .0.exists() { "not a directory" } else { "no such directory" })]
    NotADirectory(PathBuf),
    #[error("cannot replay {}: it holds no journal records", .0.display())]
    Empty(PathBuf),
    #[error("cannot replay {}: no usable starting point: {why}", .dir.display())]
    NoStart { dir: PathBuf, why: String },
    #[error(
        "cannot replay {}: snapshot {snapshot} was taken after record {snapshot}, but the records \
         on disk end {}: journal segments are missing, so the history is not all there",
        .dir.display(),
        if *.reached <= 1 { "before record 1".to_string() } else { format!("at record {}", .reached - 1) }
    )]
    MissingRecords {
        dir: PathBuf,
        snapshot: u64,
        /// One past the last record replayed.
        reached: u64,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The state a replay starts from.
pub enum Begin {
    /// A snapshot's state (exact).
    Snapshot(Box<Core>),
    /// A fresh core with this config, created at the first record's time: the state a new
    /// journal starts from. Used when every record from 1 is on disk but snapshot 0 is gone.
    Fresh(Box<LoadedConfig>),
}

/// One way to start the replay.
pub struct Candidate {
    pub begin: Begin,
    /// The first record replayed.
    pub from: u64,
    /// For `Begin::Fresh`: the oldest usable snapshot, which the replayed state must match at its
    /// index (decision seq and interaction counts), and no reload may come before it.
    pub check: Option<(u64, Box<Core>)>,
    /// Records older than `from` exist (or existed) but are not replayed.
    pub skipped_before: bool,
    /// How the start was chosen, for the report.
    pub describe: String,
}

/// What is on disk.
pub struct Layout {
    pub dir: PathBuf,
    /// Index of the first record on disk and one past the last (from segment names; the scan
    /// checks them).
    pub first_record: Option<u64>,
    pub snapshots: Vec<(u64, PathBuf)>,
}

/// List the journal files of `dir` (read-only).
pub fn layout(dir: &Path) -> Result<Layout, RecordingError> {
    if !dir.is_dir() {
        return Err(RecordingError::NotADirectory(dir.to_path_buf()));
    }
    let segments = list_segments(dir)?;
    let snapshots = list_snapshots(dir)?
        .into_iter()
        .map(|s| (s.index, s.path))
        .collect::<Vec<_>>();
    if segments.is_empty() && snapshots.is_empty() {
        return Err(RecordingError::Empty(dir.to_path_buf()));
    }
    Ok(Layout {
        dir: dir.to_path_buf(),
        first_record: segments.first().map(|s| s.base),
        snapshots,
    })
}

/// Load one snapshot as the daemon's state.
pub fn load_snapshot(path: &Path) -> Result<Core, JournalError> {
    let (_, bytes) = read_snapshot(path)?;
    Core::load(&bytes).map_err(|reason| JournalError::Snapshot {
        path: path.to_path_buf(),
        reason,
    })
}

/// The ways to start, best first:
///
/// 1. the snapshot just before the first record on disk (snapshot 0 of a journal that was never
///    compacted): the whole recorded history, exactly;
/// 2. every record from 1 is on disk but snapshot 0 was pruned: a fresh state with the config of
///    the oldest usable snapshot, valid only if no reload came before that snapshot and the
///    replayed state matches it there (checked while replaying);
/// 3. the oldest usable snapshot whose following records are all on disk: what came before it was
///    compacted away and is not replayed (said so in the report).
///
/// Unusable snapshots are skipped (their reasons end up in the error if nothing is usable).
pub fn candidates(layout: &Layout) -> Result<Vec<Candidate>, RecordingError> {
    let mut out = Vec::new();
    let mut why_not = Vec::new();
    let first = layout.first_record;
    // The oldest snapshot that loads and whose following records are on disk.
    let mut oldest: Option<(u64, &Path, Core)> = None;
    for (index, path) in &layout.snapshots {
        if let Some(f) = first {
            if index + 1 < f {
                why_not.push(format!(
                    "snapshot {index} is older than the first record on disk ({f})"
                ));
                continue;
            }
        }
        match load_snapshot(path) {
            Ok(core) => {
                oldest = Some((*index, path, core));
                break;
            }
            Err(e) => why_not.push(e.to_string()),
        }
    }
    let Some((index, path, core)) = oldest else {
        return Err(RecordingError::NoStart {
            dir: layout.dir.clone(),
            why: if why_not.is_empty() {
                "there is no snapshot (a daemon writes snapshot 0 before its first record)".into()
            } else {
                why_not.join("; ")
            },
        });
    };
    let from_snapshot = |core: Core, compacted: bool| Candidate {
        begin: Begin::Snapshot(Box::new(core)),
        from: index + 1,
        check: None,
        skipped_before: compacted,
        describe: if compacted {
            format!(
                "snapshot {index}: the records before {} were compacted away (or lie before the oldest usable snapshot) and are not replayed",
                index + 1
            )
        } else {
            format!("snapshot {index}: the whole recorded history")
        },
    };
    if index == 0 {
        out.push(from_snapshot(core, false));
        return Ok(out);
    }
    if first == Some(1) {
        // Snapshot 0 is gone but record 1 is still here: rebuild from a fresh state.
        let fresh = core.config().clone();
        let describe = format!(
            "a fresh state with the config of snapshot {index} (snapshot 0 was pruned; records from 1 are on disk)"
        );
        let check = load_snapshot(path)?;
        out.push(Candidate {
            begin: Begin::Fresh(Box::new(fresh)),
            from: 1,
            check: Some((index, Box::new(check))),
            skipped_before: false,
            describe,
        });
    }
    out.push(from_snapshot(core, true));
    Ok(out)
}

/// Hand every record with index ≥ `from` to `on_input`, decoded, oldest first. Stops at damage
/// with the journal's error (file and byte offset); a torn tail ends the records early and is
/// returned in the report. As `journal verify` and recovery judge it, a cut at or below the
/// newest snapshot's record is damage (that snapshot proves those records were synced), not a
/// torn tail: before, it ended the records early and the replay blamed missing segments.
pub fn scan(
    dir: &Path,
    from: u64,
    mut on_input: impl FnMut(u64, TimedInput),
) -> Result<ScanReport, JournalError> {
    let proven = crate::journal::snapshot::newest_snapshot_index(dir)?;
    // Records before `from` are not replayed: damage among them is read past, as recovery does.
    scan_all(
        dir,
        from,
        proven,
        from.saturating_sub(1),
        &mut |index, payload| {
            let input: TimedInput = serde_json::from_slice(payload)
                .map_err(|e| JournalError::decode(index, e.to_string()))?;
            on_input(index, input);
            Ok(())
        },
    )
}
