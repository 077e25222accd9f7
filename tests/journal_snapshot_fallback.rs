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
    let (mut journal, mut seen) = recover(dir).unwrap();
    run(&mut journal, &mut seen, 1, 11);
    run(&mut journal, &mut seen, 11, 21);
    drop(journal);
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
    let (mut journal, mut seen) = recover(dir).unwrap();
    run(&mut journal, &mut seen, 1, 11);
    run(&mut journal, &mut seen, 11, 21);
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
