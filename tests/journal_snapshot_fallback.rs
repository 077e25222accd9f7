//! After recovery falls back past a damaged snapshot, that snapshot is set aside
//! (`*.snap.bad`), so the next prune keeps the good one it fell back to (and the segments after
//! it) instead of counting the damaged file among the snapshots kept.

use std::path::{Path, PathBuf};

use tierline::config::daemon::SyncMode;
use tierline::journal::{Journal, JournalError, JournalOptions, LogOptions, Replay};

/// The smallest replayable state: the inputs seen, in order.
#[derive(Debug, Default, PartialEq)]
struct Seen(Vec<u64>);

impl Replay for Seen {
    type Input = u64;
    fn decode(payload: &[u8]) -> Result<u64, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
    fn replay(&mut self, input: &u64) {
        self.0.push(*input);
    }
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, &self.0).map_err(|e| e.to_string())
    }
    fn load(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map(Seen)
            .map_err(|e| e.to_string())
    }
}

fn options() -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 64,
        },
        snapshot_every_records: 0,
        snapshot_every_ms: 0,
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
