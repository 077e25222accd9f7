//! When a snapshot is due: after `snapshot_every_records` records, but only once the journal
//! appended since the last snapshot holds `snapshot_journal_percent` % of that snapshot's bytes
//! (so a large state is not re-written every few records); or after `snapshot_every_ms` of engine
//! time, whatever the sizes.

use std::path::Path;

use tierline::config::daemon::SyncMode;
use tierline::journal::{Journal, JournalOptions, LogOptions, Replay};

mod replayable;
use replayable::Seen;

/// The inputs seen, saved with 4,000 bytes of ballast: a state much larger than its journal
/// records.
type Heavy = Seen<4_000>;

fn saved_len(state: &Heavy) -> u64 {
    let mut out = Vec::new();
    state.save(&mut out).unwrap();
    out.len() as u64
}

fn options(every_records: u64, every_ms: u64, percent: u64) -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 1 << 20,
        },
        snapshot_every_records: every_records,
        snapshot_every_ms: every_ms,
        snapshot_journal_percent: percent,
        keep_snapshots: 2,
    }
}

fn recover(dir: &Path, opts: JournalOptions) -> (Journal, Heavy) {
    let (journal, state, _) = Journal::recover(dir, opts, 0, Heavy::default).unwrap();
    (journal, state)
}

/// Bytes of the journal's segment files on disk.
fn segment_bytes(journal: &Journal) -> u64 {
    journal
        .log()
        .segments()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum()
}

/// Append one input at a time until a snapshot is due (at most `limit` inputs); returns how many
/// were appended, checking at every step that "due" is exactly what the policy says.
fn append_until_due(
    journal: &mut Journal,
    state: &mut Heavy,
    every_records: u64,
    percent: u64,
    snapshot_bytes: u64,
    limit: u64,
) -> u64 {
    let bytes_from = journal.log().appended_bytes();
    let on_disk_from = segment_bytes(journal);
    for appended in 1..=limit {
        let n = state.0.len() as u64;
        journal.append(&[n]).unwrap();
        state.0.push(n);
        let journal_bytes = journal.log().appended_bytes() - bytes_from;
        assert_eq!(
            journal_bytes,
            segment_bytes(journal) - on_disk_from,
            "the journal's byte count and its segments on disk disagree"
        );
        let expected = appended >= every_records && journal_bytes * 100 >= snapshot_bytes * percent;
        assert_eq!(
            journal.snapshot_due(0),
            expected,
            "after {appended} records and {journal_bytes} journal bytes, with a \
             {snapshot_bytes}-byte snapshot, every {every_records} records, {percent} %"
        );
        if expected {
            return appended;
        }
    }
    panic!("no snapshot due after {limit} records");
}

#[test]
fn a_large_state_waits_for_as_much_journal_as_its_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut state) = recover(tmp.path(), options(10, 0, 100));
    let mut snapshot_bytes = saved_len(&state);
    for round in 0..3 {
        let appended = append_until_due(&mut journal, &mut state, 10, 100, snapshot_bytes, 10_000);
        assert!(
            appended > 10,
            "round {round}: due after {appended} records, the count alone"
        );
        journal.snapshot(&state, 0).unwrap();
        assert!(!journal.snapshot_due(0), "round {round}: due again at once");
        snapshot_bytes = saved_len(&state);
    }
}

#[test]
fn half_the_snapshots_size_when_the_percentage_is_50() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut state) = recover(tmp.path(), options(10, 0, 50));
    let full = {
        let tmp = tempfile::tempdir().unwrap();
        let (mut journal, mut state) = recover(tmp.path(), options(10, 0, 100));
        let bytes = saved_len(&state);
        append_until_due(&mut journal, &mut state, 10, 100, bytes, 10_000)
    };
    let bytes = saved_len(&state);
    let half = append_until_due(&mut journal, &mut state, 10, 50, bytes, 10_000);
    assert!(
        half < full && half > 10,
        "50 %: due after {half} records, 100 %: after {full}"
    );
}

#[test]
fn zero_percent_is_the_count_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut state) = recover(tmp.path(), options(10, 0, 0));
    let bytes = saved_len(&state);
    let appended = append_until_due(&mut journal, &mut state, 10, 0, bytes, 10_000);
    assert_eq!(appended, 10);
}

#[test]
fn after_a_restart_the_restored_snapshots_size_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut state) = recover(tmp.path(), options(10, 0, 100));
    let first = saved_len(&state);
    append_until_due(&mut journal, &mut state, 10, 100, first, 10_000);
    journal.snapshot(&state, 0).unwrap();
    let restored_bytes = saved_len(&state);
    drop(journal);

    let (mut journal, mut restored) = recover(tmp.path(), options(10, 0, 100));
    assert_eq!(restored, state, "recovery brought the state back");
    let appended = append_until_due(&mut journal, &mut restored, 10, 100, restored_bytes, 10_000);
    assert!(
        appended > 10,
        "due after {appended} records, the count alone"
    );
}

#[test]
fn the_time_trigger_does_not_wait_for_the_journal_to_grow() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, _) = recover(tmp.path(), options(10, 1_000, 100));
    journal.append(&[0u64]).unwrap();
    assert!(!journal.snapshot_due(999), "before the interval");
    assert!(
        journal.snapshot_due(1_000),
        "one record, a snapshot hundreds of times larger, and the interval passed"
    );
}

/// The `[journal]` key reaches the journal's options (default 100).
#[test]
fn the_config_file_sets_the_percentage() {
    let percent = |text: &str| match tierline::config::parse(text, "test.toml") {
        Ok(loaded) => JournalOptions::from_config(&loaded.daemon.journal).snapshot_journal_percent,
        Err(e) => panic!("{text}: {e}"),
    };
    assert_eq!(percent("[journal]\nsnapshot_journal_percent = 37\n"), 37);
    assert_eq!(percent("[journal]\nsnapshot_journal_percent = 0\n"), 0);
    assert_eq!(percent("[journal]\nsync = \"batch\"\n"), 100);
}
