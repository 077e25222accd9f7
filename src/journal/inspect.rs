//! Offline inspection: `tierline journal verify DIR` and `tierline journal dump DIR`.
//!
//! Both only read: no lock is taken, nothing is truncated or removed, so they are safe to run
//! beside a live daemon (they may then see a tail that is still being written). `verify` judges
//! as recovery does with `sync = "batch"` or `"always"`: damage at or below a snapshot's record is
//! a problem, not a torn tail (the error says what to do for a journal written with `"none"`).

use std::io::Write;
use std::path::Path;

use super::segment::{scan_all, SkippedDamage, TornTail};
use super::snapshot::{list_snapshots, read_snapshot};
use super::JournalError;

/// Extra checks the caller knows how to make (the daemon decodes its own input and state types).
pub struct Checks<'a> {
    /// Check that one record decodes as an input.
    pub record: &'a dyn Fn(&[u8]) -> Result<(), String>,
    /// Check that a snapshot payload loads.
    pub snapshot: &'a dyn Fn(&[u8]) -> Result<(), String>,
}

impl Checks<'static> {
    /// Records must be JSON objects; snapshot payloads are only checksummed.
    pub fn generic() -> Checks<'static> {
        Checks {
            record: &|bytes| json_object(bytes).map(|_| ()),
            snapshot: &|_| Ok(()),
        }
    }
}

/// What `verify` found. Problems make it fail (exit 2); warnings do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: usize,
    pub frames: u64,
    pub records: u64,
    /// Index range of the records on disk.
    pub first_index: Option<u64>,
    pub next_index: u64,
    /// `(index, ok or why not)` per snapshot file, oldest first.
    pub snapshots: Vec<(u64, Result<(), String>)>,
    pub torn: Option<TornTail>,
    /// The scan stopped at damage: the range is what was read before it, not the journal.
    pub stopped_at_damage: bool,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.first_index {
            Some(first) if self.stopped_at_damage && self.next_index > first => writeln!(
                f,
                "records {first}..={} read before the damage ({} records)",
                self.next_index - 1,
                self.records
            )?,
            None if self.stopped_at_damage => writeln!(f, "no record read before the damage")?,
            Some(first) if self.next_index > first => writeln!(
                f,
                "records {first}..={} ({} records in {} frames, {} segments)",
                self.next_index - 1,
                self.records,
                self.frames,
                self.segments
            )?,
            _ => writeln!(f, "no records ({} segments)", self.segments)?,
        }
        for (index, state) in &self.snapshots {
            match state {
                Ok(()) => writeln!(f, "snapshot {index}: ok")?,
                Err(why) => writeln!(f, "snapshot {index}: UNUSABLE: {why}")?,
            }
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for p in &self.problems {
            writeln!(f, "error: {p}")?;
        }
        if self.is_ok() {
            write!(f, "journal ok")
        } else {
            let n = self.problems.len();
            write!(
                f,
                "journal DAMAGED ({n} problem{})",
                if n == 1 { "" } else { "s" }
            )
        }
    }
}

/// At most this many undecodable records are listed one by one.
const LISTED_BAD_RECORDS: usize = 10;

/// Check a journal directory without changing it.
pub fn verify(dir: &Path, checks: &Checks<'_>) -> Result<VerifyReport, JournalError> {
    if !dir.is_dir() {
        return Err(JournalError::io(
            "open",
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                if dir.exists() {
                    "not a directory"
                } else {
                    "no such directory"
                },
            ),
        ));
    }
    let mut report = VerifyReport::default();
    let mut bad_records = 0usize;
    let mut records = 0u64;
    let mut problems = Vec::new();
    // As recovery with `sync = "batch"` or `"always"` judges it: a snapshot file, usable or not,
    // proves every record up to its index was synced, so damage there is not a torn tail; and
    // the newest usable one holds every record up to its own, so damage there that can be
    // read past does not stop a start.
    let snapshots = list_snapshots(dir)?;
    let proven = snapshots.last().map_or(0, |s| s.index);
    for snap in snapshots {
        let state = read_snapshot(&snap.path).and_then(|(_, bytes)| {
            (checks.snapshot)(&bytes).map_err(|reason| JournalError::Snapshot {
                path: snap.path.clone(),
                reason,
            })
        });
        if let Err(e) = &state {
            if !super::recovery::snapshot_damage(e) {
                // Recovery stops on it rather than falling back (a permission, not damage).
                problems.push(format!(
                    "{e}: the daemon refuses to start until it can read it (fix its owner or \
                     mode; it is not damaged)"
                ));
            }
        }
        report
            .snapshots
            .push((snap.index, state.map_err(|e| e.to_string())));
    }
    let newest_good = report
        .snapshots
        .iter()
        .rev()
        .find(|(_, s)| s.is_ok())
        .map(|(i, _)| *i);
    let mut read = None::<(u64, u64)>;
    let covered = newest_good.unwrap_or(0);
    let scanned = scan_all(dir, 0, proven, covered, &mut |index, payload| {
        records += 1;
        read = Some(read.map_or((index, index), |(first, _)| (first, index)));
        if let Err(why) = (checks.record)(payload) {
            bad_records += 1;
            if bad_records <= LISTED_BAD_RECORDS {
                problems.push(format!("record {index} does not decode: {why}"));
            }
        }
        Ok(())
    });
    report.records = records;
    report.problems = problems;
    if bad_records > LISTED_BAD_RECORDS {
        report.problems.push(format!(
            "… and {} more records that do not decode",
            bad_records - LISTED_BAD_RECORDS
        ));
    }
    match scanned {
        Ok(scan) => {
            report.segments = scan.segments.len();
            report.frames = scan.frames;
            report.first_index = scan.first_index;
            report.next_index = scan.next_index;
            if let Some(t) = &scan.torn {
                report.warnings.push(format!(
                    "torn tail (a crash mid-write; cut off at the next start): {t}"
                ));
            }
            for d in &scan.skipped {
                report.warnings.push(format!(
                    "damaged records a usable snapshot holds (the daemon reads past them and \
                     starts; acknowledged data was damaged on disk: check the disk): {d}"
                ));
            }
            report.torn = scan.torn;
        }
        Err(e @ (JournalError::Corrupt { .. } | JournalError::Gap { .. })) => {
            report.problems.push(e.to_string());
            report.stopped_at_damage = true;
            if let Some((first, last)) = read {
                report.first_index = Some(first);
                report.next_index = last + 1;
            }
        }
        Err(e) => return Err(e),
    }
    if let Some((index, Err(_))) = report.snapshots.last() {
        report.warnings.push(if newest_good.is_some() {
            format!(
                "the newest snapshot ({index}) is unusable; recovery falls back to an older one"
            )
        } else {
            format!("the newest snapshot ({index}) is unusable, and no older one is usable")
        });
        if newest_good.is_some() && report.problems.is_empty() && report.next_index <= *index {
            report.problems.push(format!(
                "the journal ends at record {}, but the unusable snapshot at record {index} \
                 proves every record up to it was synced: acknowledged records are missing",
                report.next_index.saturating_sub(1)
            ));
        }
    }
    if report.segments == 0 && !report.stopped_at_damage && newest_good.is_some_and(|i| i > 0) {
        report.warnings.push(
            "a snapshot but no segment: any records written after the snapshot are gone \
             (segments deleted, or not copied with a backup?); the daemon starts after the \
             snapshot"
                .into(),
        );
    }
    let has_records = report.records > 0;
    // After damage the range read is not the journal's: nothing more is derived from it.
    let range = report.first_index.filter(|_| !report.stopped_at_damage);
    match (newest_good, range) {
        (None, _) if has_records && !report.stopped_at_damage => report
            .problems
            .push("records on disk but no usable snapshot to replay them onto".into()),
        (Some(index), Some(first)) if index + 1 < first => report.problems.push(format!(
            "snapshot {index} is followed by records from {first}: records {}..={} are missing",
            index + 1,
            first - 1
        )),
        (Some(index), Some(_)) if index >= report.next_index && has_records => {
            report.problems.push(format!(
                "snapshot {index} is ahead of the journal's last record {}: segments are \
                 missing (deleted, or not copied with a backup), with any records acknowledged \
                 after the snapshot, and a daemon with sync = \"batch\" or \"always\" refuses \
                 to start (with sync = \"none\", after an OS crash lost the unsynced end, it \
                 starts after the snapshot; docs/DURABILITY.md)",
                report.next_index.saturating_sub(1)
            ))
        }
        _ => {}
    }
    Ok(report)
}

/// What `dump` printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpReport {
    pub records: u64,
    pub torn: Option<TornTail>,
    /// Damaged records a readable snapshot holds, read past (not printed).
    pub skipped: Vec<SkippedDamage>,
}

/// Print every record as one JSON line, `{"index":N, …the input as stored…}`, oldest first.
/// Stops with an error at damage in the middle; a torn tail ends the dump (reported, not printed).
pub fn dump(dir: &Path, out: &mut dyn Write) -> Result<DumpReport, DumpError> {
    let mut records = 0u64;
    // Where the output failed: the dump stops there, and it is not the journal's fault.
    let mut output: Option<std::io::Error> = None;
    // As `verify` and recovery judge it: damage at or below the newest snapshot's record is
    // damage to synced records, never a torn tail to skip.
    let snapshots = list_snapshots(dir)?;
    let proven = snapshots.last().map_or(0, |s| s.index);
    // And as recovery would read past damage the newest readable snapshot holds, so does the
    // dump (saying so): the records after it are printed.
    let covered = snapshots
        .iter()
        .rev()
        .find(|snap| read_snapshot(&snap.path).is_ok())
        .map_or(0, |snap| snap.index);
    let scan = scan_all(dir, 0, proven, covered, &mut |index, payload| {
        let body = json_object(payload).map_err(|reason| JournalError::decode(index, reason))?;
        let written = if body.is_empty() {
            writeln!(out, "{{\"index\":{index}}}")
        } else {
            out.write_all(format!("{{\"index\":{index},").as_bytes())
                .and_then(|()| out.write_all(body))
                .and_then(|()| out.write_all(b"}\n"))
        };
        if let Err(e) = written {
            let stop =
                JournalError::io("write", Path::new("stdout"), std::io::Error::other("stop"));
            output = Some(e);
            return Err(stop);
        }
        records += 1;
        Ok(())
    });
    if let Some(e) = output {
        return Err(DumpError::Output(e));
    }
    let scan = scan?;
    Ok(DumpReport {
        records,
        torn: scan.torn,
        skipped: scan.skipped,
    })
}

/// Why `dump` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The journal cannot be read, or is damaged.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The records could not be written out (a closed pipe, a full disk): the journal is not
    /// at fault.
    #[error("cannot write the dump: {0}")]
    Output(std::io::Error),
}

/// Check that `bytes` is one JSON object and return what is between its braces.
fn json_object(bytes: &[u8]) -> Result<&[u8], String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| e.to_string())?;
    let text = bytes.trim_ascii();
    match (text.first(), text.last()) {
        (Some(b'{'), Some(b'}')) => Ok(text[1..text.len() - 1].trim_ascii()),
        _ => Err("not a JSON object".into()),
    }
}
