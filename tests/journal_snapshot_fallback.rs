//! After recovery falls back past a damaged snapshot, that snapshot is set aside
//! (`*.snap.bad`), so the next prune keeps the good one it fell back to (and the segments after
//! it) instead of counting the damaged file among the snapshots kept.

use std::path::{Path, PathBuf};

use tierline::config::daemon::SyncMode;
use tierline::journal::{Journal, JournalError, JournalOptions, LogOptions};

mod replayable;
use replayable::Seen;

fn options() -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 64,
        },
        snapshot_every_records: 0,
        snapshot_every_ms: 0,
        snapshot_journal_percent: 0,
        keep_snapshots: 2,
    }
}

fn recover(dir: &Path) -> Result<(Journal, Seen), JournalError> {
    Journal::recover(dir, options(), 0, Seen::default).map(|(j, s, _)| (j, s))
}

/// Append inputs `from..to`, then take a snapshot.
fn run(journal: &mut Journal, seen: &mut Seen, from: u64, to: u64) {
    for n in from..to {
        journal.append(&[n]).unwrap();
        seen.0.push(n);
    }
    journal.snapshot(seen, 0).unwrap();
}

/// A new journal in `dir` with inputs 1..=20 and snapshots at 10 and 20; still open.
fn snapshots_at_10_and_20(dir: &Path) -> Journal {
    let (mut journal, mut seen) = recover(dir).unwrap();
    run(&mut journal, &mut seen, 1, 11);
    run(&mut journal, &mut seen, 11, 21);
    journal
}

fn snapshot(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.snap"))
}

fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn pruning_after_a_fallback_keeps_the_snapshot_recovery_fell_back_to() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    drop(snapshots_at_10_and_20(dir));
    damage(&snapshot(dir, 20));

    let (mut journal, mut seen) = recover(dir).unwrap();
    assert_eq!(seen.0, (1..21).collect::<Vec<_>>(), "fell back to 10");
    assert!(
        dir.join(format!("{:020}.snap.bad", 20)).exists(),
        "set aside"
    );
    run(&mut journal, &mut seen, 21, 31);
    drop(journal);
    damage(&snapshot(dir, 30));

    match recover(dir) {
        Ok((_, seen)) => assert_eq!(seen.0, (1..31).collect::<Vec<_>>()),
        Err(e) => panic!("no usable snapshot left to fall back to: {e}"),
    }
}

/// A second recovery on a journal another process (here: another `Journal`) has open is refused
/// before it touches anything: it neither sets a damaged snapshot aside nor removes a `*.tmp`
/// the owner may be writing. Before, recovery read and renamed snapshots first and only met
/// `LOCK` when it opened the segments.
#[test]
fn a_journal_in_use_is_refused_before_any_snapshot_is_read_or_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let journal = snapshots_at_10_and_20(dir);
    // Damage the newest snapshot while the owner still has the journal open, and leave a
    // temporary file such as a snapshot being written.
    damage(&snapshot(dir, 20));
    let writing = dir.join(format!("{:020}.snap.tmp", 30));
    std::fs::write(&writing, b"half a snapshot").unwrap();

    match recover(dir) {
        Err(JournalError::Locked { .. }) => {}
        Err(other) => panic!("expected the lock error, got {other}"),
        Ok(_) => panic!("a second recovery opened a journal in use"),
    }
    assert!(
        snapshot(dir, 20).exists(),
        "the refused recovery renamed the owner's snapshot"
    );
    assert!(
        !dir.join(format!("{:020}.snap.bad", 20)).exists(),
        "the refused recovery set a snapshot aside"
    );
    assert!(
        writing.exists(),
        "the refused recovery removed a temporary file"
    );
    drop(journal);
}

/// The directory itself is locked besides `LOCK`: a `LOCK` deleted (or replaced) while a daemon
/// has the journal open no longer lets a second one in to write the same segment. Before, the
/// second locked a new `LOCK` and started, and the two overwrote each other's records.
#[test]
fn a_journal_in_use_stays_refused_when_its_lock_file_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut journal, mut seen) = recover(dir).unwrap();
    run(&mut journal, &mut seen, 1, 11);
    std::fs::remove_file(dir.join("LOCK")).unwrap();

    match recover(dir) {
        Err(e @ JournalError::Locked { .. }) => {
            assert!(
                e.to_string().contains("is in use by another process"),
                "{e}"
            );
        }
        Err(other) => panic!("expected the lock error, got {other}"),
        Ok(_) => panic!("a second recovery opened a journal in use"),
    }
    drop(journal);
    // Once the owner is gone the journal opens again (with a new `LOCK`).
    let (_, seen) = recover(dir).unwrap();
    assert_eq!(seen.0, (1..11).collect::<Vec<_>>());
    assert!(dir.join("LOCK").exists());
}

/// A snapshot the process cannot read for a reason outside the file (in the field a file
/// another user owns, or too many open files; here, as the tests run as root, a link to a
/// procfs file whose read fails with EINVAL) is not damage: recovery refuses to start naming
/// it, and leaves it under its name. Before, it was set aside as `*.snap.bad` with a warning,
/// and recovery fell back to an older snapshot: a healthy snapshot, and its proof that every
/// record up to it was synced, thrown away over a permission. A read the disk fails (EIO; here
/// `/proc/self/mem` at offset 0) is damage, and recovery falls back past it as before.
#[test]
fn a_snapshot_that_cannot_be_read_stops_the_start_unless_the_disk_failed_the_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    drop(snapshots_at_10_and_20(dir));
    let newest = snapshot(dir, 20);
    std::fs::remove_file(&newest).unwrap();
    std::os::unix::fs::symlink("/proc/self/clear_refs", &newest).unwrap();

    match recover(dir) {
        Err(JournalError::Io { op, path, source }) => {
            assert_eq!((op, &path), ("read", &newest));
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok((_, seen)) => panic!("started with {} inputs", seen.0.len()),
    }
    assert!(newest.symlink_metadata().is_ok(), "it is still there");
    assert!(!dir.join(format!("{:020}.snap.bad", 20)).exists());

    std::fs::remove_file(&newest).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", &newest).unwrap();
    let (_, seen) = recover(dir).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(seen.0, (1..21).collect::<Vec<_>>(), "fell back to 10");
    assert!(
        dir.join(format!("{:020}.snap.bad", 20)).exists(),
        "set aside"
    );
}
