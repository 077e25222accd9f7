//! A durable snapshot proves every record up to its index was synced (with `sync = "batch"` or
//! `"always"` it is written only once the sync covers that index). So damage at or before that
//! index is damage to acknowledged data, whatever it looks like, never a torn tail to cut. Before,
//! a zero-filled patch there passed for a torn tail: the segment was cut at it and then, being
//! "behind the snapshot", deleted, with the valid acknowledged records after the snapshot in it.
//!
//! Where the restored snapshot holds every record the damage can have hidden (a valid frame
//! follows it, starting no later than the record after the snapshot), recovery reads past it
//! and starts: nothing the state needs is lost, and it says so loudly. Anywhere else (damage
//! reaching past the snapshot's record, or below a newer snapshot that is unusable) it refuses,
//! naming the file and offset, and changes nothing on disk.
//!
//! With `sync = "none"` a snapshot proves nothing: a journal behind its snapshot (an OS crash
//! lost the unsynced end) starts afresh after it, and the old segments are set aside, not deleted.

use std::path::{Path, PathBuf};

use tierline::config::daemon::SyncMode;
use tierline::journal::{Journal, JournalError, JournalOptions, LogOptions, Replay};

/// Inputs are ~900-byte strings, so a frame is about a quarter of a page.
#[derive(Debug, Default, PartialEq)]
struct Strs(Vec<String>);

impl Replay for Strs {
    type Input = String;
    fn decode(payload: &[u8]) -> Result<String, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
    fn replay(&mut self, input: &String) {
        self.0.push(input.clone());
    }
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, &self.0).map_err(|e| e.to_string())
    }
    fn load(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map(Strs)
            .map_err(|e| e.to_string())
    }
}

fn options(sync: SyncMode) -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync,
            segment_bytes: 64 << 20,
        },
        snapshot_every_records: 0,
        snapshot_every_ms: 0,
        snapshot_journal_percent: 0,
        keep_snapshots: 2,
    }
}

fn input(n: u64) -> String {
    format!("{n:04}{}", "x".repeat(900))
}

/// 40 inputs, each appended (and with a sync mode, synced) on its own; a snapshot at 30.
fn write_forty(dir: &Path, sync: SyncMode) {
    write_forty_with_snapshots(dir, sync, &[30]);
}

/// 40 inputs, each appended on its own; a snapshot after each of `at`.
fn write_forty_with_snapshots(dir: &Path, sync: SyncMode, at: &[u64]) {
    let (mut journal, mut state, _) =
        Journal::recover(dir, options(sync), 0, Strs::default).unwrap();
    for n in 1..=40u64 {
        journal.append(&[input(n)]).unwrap();
        state.0.push(input(n));
        if at.contains(&n) {
            assert_eq!(journal.snapshot(&state, 0).unwrap(), n);
        }
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// Damage the restored snapshot covers: a bad block (zeros) or flipped bits among records the
/// snapshot at 30 holds, with valid frames after it. Recovery restores the snapshot, reads past
/// the damage and replays 31..=40; nothing is cut or set aside, the damage is reported, and the
/// journal goes on (a second start reads past it again). Before, the start was refused and the
/// documented way out (cutting the segment at the damage by hand) lost records 31..=40.
#[test]
fn damage_the_restored_snapshot_holds_is_read_past_and_nothing_is_lost() {
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 2] = [
        // The second page of the only segment: inside records ~5..=9.
        ("a zero-filled page", |b| b[4096..8192].fill(0)),
        ("flipped bits", |b| {
            for byte in &mut b[10_000..10_040] {
                *byte ^= 0x5A;
            }
        }),
    ];
    for sync in [SyncMode::Batch, SyncMode::Always, SyncMode::None] {
        for (what, damage) in damages {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            write_forty(dir, sync);
            let seg = dir.join(format!("{:020}.seg", 1));
            let mut bytes = std::fs::read(&seg).unwrap();
            damage(&mut bytes);
            std::fs::write(&seg, &bytes).unwrap();

            let (mut journal, state, report) =
                Journal::recover(dir, options(sync), 0, Strs::default)
                    .unwrap_or_else(|e| panic!("{sync:?}, {what}: refused: {e}"));
            assert_eq!(
                state.0,
                (1..=40).map(input).collect::<Vec<_>>(),
                "{sync:?}, {what}"
            );
            assert_eq!(report.snapshot.as_ref().map(|s| s.0), Some(30));
            assert_eq!(report.replayed, 10, "{sync:?}, {what}: {report}");
            assert_eq!(journal.last_index(), 40, "{sync:?}, {what}");
            let [skipped] = report.skipped_damage.as_slice() else {
                panic!("{sync:?}, {what}: the damage is not reported: {report}");
            };
            assert_eq!(skipped.path, seg);
            let (first, last) = skipped.records.expect("records lost in the damage");
            assert!(
                1 <= first && first <= last && last <= 30,
                "{sync:?}, {what}: {skipped}"
            );
            assert!(
                report
                    .to_string()
                    .contains("read past damage the snapshot holds"),
                "{report}"
            );
            // Nothing on disk changed: not cut, not set aside.
            assert!(std::fs::read(&seg).unwrap() == bytes, "{sync:?}, {what}");
            assert_eq!(files(dir, ".seg"), vec![seg.clone()], "{sync:?}, {what}");
            assert!(files(dir, ".orphaned").is_empty(), "{sync:?}, {what}");

            // The journal goes on after the damage, and the next start reads past it again.
            journal.append(&[input(41)]).unwrap();
            drop(journal);
            let (journal, state, report) =
                Journal::recover(dir, options(sync), 0, Strs::default).unwrap();
            assert_eq!(
                state.0,
                (1..=41).map(input).collect::<Vec<_>>(),
                "{sync:?}, {what}"
            );
            assert_eq!(journal.last_index(), 41);
            assert_eq!(report.skipped_damage.len(), 1, "{report}");
        }
    }
}

/// Damage that reaches past the snapshot's record may have held records the state needs (here
/// 31 and on): refused with `sync = "batch"` or `"always"`, and nothing on disk changes. (With
/// `"none"` the snapshot proves nothing and the zero-filled region is a torn tail, as before.)
#[test]
fn damage_reaching_past_the_snapshot_is_refused_and_nothing_on_disk_changes() {
    for sync in [SyncMode::Batch, SyncMode::Always] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_forty(dir, sync);
        let seg = dir.join(format!("{:020}.seg", 1));
        let mut bytes = std::fs::read(&seg).unwrap();
        // From inside record ~29 to inside record ~35 (frames of ≈ 930 bytes).
        let frame = bytes.len() / 40;
        bytes[28 * frame + 10..35 * frame - 10].fill(0);
        std::fs::write(&seg, &bytes).unwrap();

        match Journal::recover(dir, options(sync), 0, Strs::default) {
            Err(JournalError::Corrupt { path, damage, .. }) => {
                assert_eq!(path, seg);
                assert!(
                    damage.contains("proves was synced"),
                    "{sync:?}: the refusal does not say why: {damage}"
                );
            }
            Err(other) => panic!("{sync:?}: unexpected error {other}"),
            Ok((journal, state, report)) => panic!(
                "{sync:?}: recovery accepted damage to records the state needs: {} inputs, \
                 next index {}, report: {report}",
                state.0.len(),
                journal.last_index() + 1
            ),
        }
        assert!(
            std::fs::read(&seg).unwrap() == bytes,
            "{sync:?}: the segment changed"
        );
        assert_eq!(files(dir, ".seg"), vec![seg.clone()], "{sync:?}");
        assert!(files(dir, ".orphaned").is_empty(), "{sync:?}");
    }
}

/// The bound exactly, frame by frame (one record a frame here): damage is read past when the
/// first valid frame after it starts no later than the record after the snapshot (31), and
/// refused when it starts later, since record 31 may have been in the damage.
#[test]
fn the_frame_after_the_damage_must_start_no_later_than_the_record_after_the_snapshot() {
    let cases: [(&[u64], bool); 4] = [
        (&[30], true),
        (&[29, 30], true),
        (&[1], true),
        (&[30, 31], false),
    ];
    for (damaged, starts) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_forty(dir, SyncMode::Batch);
        let seg = dir.join(format!("{:020}.seg", 1));
        let mut bytes = std::fs::read(&seg).unwrap();
        // Each frame's offset and length, from the frame layout itself.
        let mut frames = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let info = tierline::journal::frame::check(&bytes[at..]).unwrap();
            frames.push((info.first_index, at, info.len));
            at += info.len;
        }
        assert_eq!(frames.len(), 40);
        for &record in damaged {
            let &(_, offset, len) = frames.iter().find(|f| f.0 == record).unwrap();
            bytes[offset + len / 2] ^= 0xFF;
        }
        std::fs::write(&seg, &bytes).unwrap();
        let recovered = Journal::recover(dir, options(SyncMode::Batch), 0, Strs::default);
        match (recovered, starts) {
            (Ok((_, state, report)), true) => {
                assert_eq!(state.0, (1..=40).map(input).collect::<Vec<_>>());
                let skipped = &report.skipped_damage;
                assert_eq!(skipped.len(), 1, "{damaged:?}: {report}");
                assert_eq!(
                    skipped[0].records,
                    Some((damaged[0], damaged[damaged.len() - 1])),
                    "{damaged:?}: {report}"
                );
            }
            (Err(JournalError::Corrupt { path, .. }), false) => assert_eq!(path, seg),
            (Ok((_, state, report)), false) => panic!(
                "{damaged:?}: started with {} inputs although record 31 was damaged: {report}",
                state.0.len()
            ),
            (Err(e), true) => panic!("{damaged:?}: refused: {e}"),
            (Err(e), false) => panic!("{damaged:?}: refused for another reason: {e}"),
        }
    }
}

/// Damage running to the end of an older segment whose next segment starts after the record
/// after the snapshot: refused, naming the damaged segment and offset (not "a hole" in the next
/// one), since records after the snapshot may have been in the damage.
#[test]
fn damage_to_the_end_of_an_older_segment_past_the_snapshot_is_refused_where_it_is() {
    let base = |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    // A segment size that puts records 30 and 31 in the same segment (the next one starting
    // after 31), whatever the exact frame size.
    let (tmp, opts, victim) = (3_000..20_000u64)
        .step_by(500)
        .find_map(|segment_bytes| {
            let tmp = tempfile::tempdir().unwrap();
            let mut opts = options(SyncMode::Batch);
            opts.log.segment_bytes = segment_bytes;
            {
                let (mut journal, mut state, _) =
                    Journal::recover(tmp.path(), opts, 0, Strs::default).unwrap();
                for n in 1..=40u64 {
                    journal.append(&[input(n)]).unwrap();
                    state.0.push(input(n));
                    if n == 30 {
                        assert_eq!(journal.snapshot(&state, 0).unwrap(), n);
                    }
                }
            }
            let victim = files(tmp.path(), ".seg")
                .windows(2)
                .find(|w| base(&w[0]) <= 30 && base(&w[1]) > 31)
                .map(|w| w[0].clone())?;
            Some((tmp, opts, victim))
        })
        .expect("a segment holding records 30 and 31");
    let dir = tmp.path();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.fill(0);
    std::fs::write(&victim, &bytes).unwrap();
    match Journal::recover(dir, opts, 0, Strs::default) {
        Err(JournalError::Corrupt {
            path,
            offset,
            damage,
        }) => {
            assert_eq!((path, offset), (victim, 0));
            assert!(
                damage.contains("the next segment starts at record"),
                "{damage}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok((_, state, report)) => panic!("started with {} inputs: {report}", state.0.len()),
    }
}

/// Damage running to the end of a segment that is not the newest, all of it held by the
/// snapshot: the next segment starts within what the snapshot holds, so recovery goes on there.
#[test]
fn damage_to_the_end_of_an_older_segment_the_snapshot_holds_is_read_past() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = write_forty_in_small_segments(dir);
    let segs = files(dir, ".seg");
    assert!(segs.len() >= 8, "{segs:?}");
    // Which segments are still there depends on pruning; take the first that ends at or below
    // record 30 and is followed by another.
    let victim = segs
        .windows(2)
        .find(|w| {
            let next: u64 = w[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
            next <= 31
        })
        .map(|w| w[0].clone())
        .expect("a segment wholly below the snapshot");
    let mut bytes = std::fs::read(&victim).unwrap();
    let half = bytes.len() / 2;
    bytes[half..].fill(0);
    std::fs::write(&victim, &bytes).unwrap();

    let (_, state, report) =
        Journal::recover(dir, opts, 0, Strs::default).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(state.0, (1..=40).map(input).collect::<Vec<_>>());
    let [skipped] = report.skipped_damage.as_slice() else {
        panic!("the damage is not reported: {report}");
    };
    assert_eq!(skipped.path, victim);
    assert!(
        skipped.records.is_some_and(|(_, last)| last <= 30),
        "{skipped}"
    );
}

#[test]
fn with_sync_none_a_journal_behind_its_snapshot_starts_after_it_and_keeps_the_old_segment_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_forty(dir, SyncMode::None);
    // An OS crash lost everything after the first page (nothing was synced).
    let seg = dir.join(format!("{:020}.seg", 1));
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &bytes[..4096]).unwrap();

    let (journal, state, _) =
        Journal::recover(dir, options(SyncMode::None), 0, Strs::default).unwrap();
    assert_eq!(state.0, (1..=30).map(input).collect::<Vec<_>>());
    assert_eq!(journal.last_index(), 30);
    assert_eq!(
        files(dir, ".seg"),
        vec![dir.join(format!("{:020}.seg", 31))]
    );
    let aside = dir.join(format!("{:020}.seg.orphaned", 1));
    assert_eq!(files(dir, ".orphaned"), vec![aside.clone()]);
    // What was left of it once its torn end was cut: its whole frames, as written.
    let kept = std::fs::read(&aside).unwrap();
    assert!(
        !kept.is_empty() && kept.len() <= 4096 && bytes.starts_with(&kept),
        "the set-aside segment is not the journal's surviving start ({} bytes)",
        kept.len()
    );
}

/// A snapshot that cannot be read still proves, by being there under its name, that every record
/// up to its index was synced: it is renamed into place only once the sync covers it. So when
/// recovery falls back past it to an older snapshot, damage between the two (or a journal that
/// ends before it) is damage to acknowledged data, not a torn tail. Before, only the restored
/// snapshot counted: the segment was cut at the damage and every acknowledged record after it
/// (here 14..=40) was dropped with a warning; and the damaged snapshot had already been set aside
/// as `*.snap.bad`, so even a refusal would not have survived a second start.
#[test]
fn damage_below_a_newer_unusable_snapshot_is_refused_too() {
    // (what is done to the only segment, in which records 14..=40 are acknowledged)
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 2] = [
        ("a zero-filled page", |b| b[12288..16384].fill(0)),
        ("cut at a frame boundary", |b| {
            let frame = b.len() / 40;
            b.truncate(20 * frame)
        }),
    ];
    for (what, damage) in damages {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_forty_with_snapshots(dir, SyncMode::Batch, &[10, 30]);
        let snap = dir.join(format!("{:020}.snap", 30));
        flip_last_byte(&snap);
        let seg = dir.join(format!("{:020}.seg", 1));
        let mut bytes = std::fs::read(&seg).unwrap();
        damage(&mut bytes);
        std::fs::write(&seg, &bytes).unwrap();

        for attempt in 1..=2 {
            match Journal::recover(dir, options(SyncMode::Batch), 0, Strs::default) {
                Err(JournalError::Corrupt { path, damage, .. }) => {
                    assert_eq!(path, seg, "{what}");
                    assert!(
                        damage.contains("proves") && damage.contains("30"),
                        "{what}: the refusal does not say why: {damage}"
                    );
                }
                Err(other) => panic!("{what}: unexpected error {other}"),
                Ok((_, state, report)) => panic!(
                    "{what} (start {attempt}): recovery dropped acknowledged records, kept {} of \
                     40: {report}",
                    state.0.len()
                ),
            }
            // Nothing changed on disk: the segment is whole, the snapshot not set aside.
            assert!(
                std::fs::read(&seg).unwrap() == bytes,
                "{what}: the segment changed"
            );
            assert!(snap.exists(), "{what}: the damaged snapshot was set aside");
            assert!(files(dir, ".bad").is_empty(), "{what}");
        }
    }
}

/// `tierline journal verify` answers what recovery would do: damage below a newer snapshot that
/// is unusable is a problem (exit 2), not a torn tail "cut off at the next start" as it reported
/// before, while recovery refused to start on it; damage the restored snapshot holds is read
/// past by recovery, and verify says so in a warning.
#[test]
fn verify_reports_damage_below_a_snapshot_like_recovery() {
    let checks = tierline::journal::inspect::Checks {
        record: &|_| Ok(()),
        snapshot: &|_| Ok(()),
    };
    for (snapshots, damage_snapshot) in [(&[30][..], false), (&[10, 30][..], true)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_forty_with_snapshots(dir, SyncMode::Batch, snapshots);
        if damage_snapshot {
            flip_last_byte(&dir.join(format!("{:020}.snap", 30)));
        }
        // A zero-filled page inside records ~14..=17, below the snapshot at 30.
        let seg = dir.join(format!("{:020}.seg", 1));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[12288..16384].fill(0);
        std::fs::write(&seg, &bytes).unwrap();

        let report = tierline::journal::verify(dir, &checks).unwrap();
        assert!(report.torn.is_none(), "{snapshots:?}: {report}");
        if damage_snapshot {
            assert!(
                Journal::recover(dir, options(SyncMode::Batch), 0, Strs::default).is_err(),
                "{snapshots:?}: recovery is expected to refuse"
            );
            assert!(
                !report.is_ok(),
                "{snapshots:?}: verify passes a journal recovery refuses:\n{report}"
            );
            assert!(
                report.problems.iter().any(|p| p.contains("proves")),
                "{snapshots:?}: {report}"
            );
        } else {
            assert!(
                report.is_ok(),
                "{snapshots:?}: verify refuses a journal recovery starts from:\n{report}"
            );
            assert!(
                report
                    .warnings
                    .iter()
                    .any(|w| w.contains("usable snapshot holds")),
                "{snapshots:?}: {report}"
            );
            let (_, state, _) =
                Journal::recover(dir, options(SyncMode::Batch), 0, Strs::default).unwrap();
            assert_eq!(state.0.len(), 40);
        }
    }
}

/// Damage a file's last byte (a snapshot then fails its checksum).
fn flip_last_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0xFF;
    }
    std::fs::write(path, &bytes).unwrap();
}

/// With `sync = "batch"` a journal that ends cleanly before its newest (usable) snapshot has lost
/// whole segments: the snapshot was renamed into place only once a sync covered its record, and
/// the records acknowledged after it were in the segments that are gone. Before, recovery set
/// the rest aside and started after the snapshot with a warning blaming `sync = "none"`: 31..=40
/// were dropped and their decision numbers given out again. Now it refuses, changes nothing on
/// disk, and says the ways out; moving the segments out of the directory is the one that accepts
/// the loss.
#[test]
fn with_sync_batch_a_journal_ending_before_its_snapshot_is_refused_and_nothing_is_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = write_forty_in_small_segments(dir);
    let base = |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    // Delete the segments from the one holding record 20 on: the journal now ends cleanly
    // before the snapshot, and 31..=40 are gone with them.
    let segs = files(dir, ".seg");
    let cut = segs
        .iter()
        .map(base)
        .filter(|&b| b <= 20)
        .max()
        .expect("a segment starting at or before record 20");
    let (kept, gone): (Vec<_>, Vec<_>) = segs.into_iter().partition(|p| base(p) < cut);
    assert!(!kept.is_empty() && !gone.is_empty(), "{kept:?} {gone:?}");
    for p in &gone {
        std::fs::remove_file(p).unwrap();
    }
    let snaps = files(dir, ".snap");

    match Journal::recover(dir, opts, 0, Strs::default) {
        Err(JournalError::Corrupt { path, damage, .. }) => {
            assert_eq!(Some(&path), kept.last(), "{damage}");
            assert!(
                damage.contains("the snapshot at record 30 proves")
                    && damage.contains("segments are missing")
                    && damage.contains("move the *.seg files out"),
                "{damage}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok((_, state, report)) => panic!("started with {} inputs: {report}", state.0.len()),
    }
    assert_eq!(
        files(dir, ".seg"),
        kept,
        "a refused start changed the segments"
    );
    assert!(files(dir, ".orphaned").is_empty());
    assert_eq!(
        files(dir, ".snap"),
        snaps,
        "a refused start touched the snapshots"
    );

    // The way out that accepts the loss: the segments moved away, the start is after the
    // snapshot (with the "snapshot but no segment" warning).
    let away = tmp.path().join("away");
    std::fs::create_dir(&away).unwrap();
    for p in &kept {
        std::fs::rename(p, away.join(p.file_name().unwrap())).unwrap();
    }
    let (journal, state, _) = Journal::recover(dir, opts, 0, Strs::default).unwrap();
    assert_eq!(state.0, (1..=30).map(input).collect::<Vec<_>>());
    assert_eq!(journal.last_index(), 30);
}

/// `journal verify` judges a journal ending before its snapshot as a `batch` daemon does: a
/// problem (exit 2), not "journal ok" with a warning a script checking the exit code misses.
#[test]
fn verify_reports_segments_missing_under_a_snapshot_as_a_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_forty_in_small_segments(dir);
    let base = |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    for p in files(dir, ".seg").iter().filter(|p| base(p) > 20) {
        std::fs::remove_file(p).unwrap();
    }
    let report = tierline::journal::verify(dir, &tierline::journal::inspect::Checks::generic())
        .expect("verify reads the directory");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("snapshot 30 is ahead") && p.contains("refuses to start")),
        "{report}"
    );
}

/// 40 inputs with `sync = "batch"` in segments of about four records each, a snapshot at 30;
/// the options used.
fn write_forty_in_small_segments(dir: &Path) -> JournalOptions {
    let mut opts = options(SyncMode::Batch);
    opts.log.segment_bytes = 3_000;
    let (mut journal, mut state, _) = Journal::recover(dir, opts, 0, Strs::default).unwrap();
    for n in 1..=40u64 {
        journal.append(&[input(n)]).unwrap();
        state.0.push(input(n));
        if n == 30 {
            assert_eq!(journal.snapshot(&state, 0).unwrap(), n);
        }
    }
    opts
}
