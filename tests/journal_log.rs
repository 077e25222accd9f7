//! The journal log against a model: whatever was synced survives any crash, and nothing that
//! comes back was never written.
//!
//! A crash is modelled the way a power cut treats a file: the bytes written since the last sync
//! may be kept in part, cut at any byte, or replaced by zeros (an extent allocated but never
//! filled). Bytes before the last sync are never touched.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tierline::config::daemon::SyncMode;
use tierline::journal::{JournalError, Log, LogOptions};

#[derive(Debug, Clone)]
enum Op {
    /// Append a batch of records (each a few bytes, tagged so garbage is recognisable).
    Append(Vec<u8>),
    Sync,
    /// Lose unsynced bytes: keep this fraction (per mille) of them, then pad with zeros.
    Crash {
        keep_per_mille: u16,
        zeros: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(1u8..40, 1..6).prop_map(Op::Append),
        2 => Just(Op::Sync),
        1 => (0u16..=1000, prop_oneof![Just(0u8), 1u8..64])
            .prop_map(|(keep_per_mille, zeros)| Crash { keep_per_mille, zeros }),
    ]
}

use Op::Crash;

fn payload(index: u64, len: u8) -> Vec<u8> {
    let mut p = format!("record {index}:").into_bytes();
    p.extend((0..len).map(|k| b'a' + (k % 26)));
    p
}

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions {
        sync: SyncMode::None,
        segment_bytes,
    }
}

fn reopen(dir: &Path, segment_bytes: u64) -> (Log, Vec<(u64, Vec<u8>)>) {
    let mut seen = Vec::new();
    let (log, _) = Log::open(dir, options(segment_bytes), 1, |i, p| {
        seen.push((i, p.to_vec()));
        Ok(())
    })
    .expect("a crash-damaged journal reopens");
    (log, seen)
}

fn newest_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

proptest! {
    #[test]
    fn synced_records_survive_every_crash_and_nothing_else_appears(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in prop_oneof![Just(64u64), Just(300), Just(1 << 20)],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mut log, seen) = reopen(dir, segment_bytes);
        prop_assert!(seen.is_empty());
        // The model: every record appended since the last reopen, and how many are durable.
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut durable = 0usize;
        // (segment, its length) at the last sync: nothing before this can be lost.
        let mut synced_at: Option<(PathBuf, u64)> = None;
        for op in ops {
            match op {
                Op::Append(lens) => {
                    let first = log.next_index();
                    let batch: Vec<Vec<u8>> = lens
                        .iter()
                        .enumerate()
                        .map(|(k, &l)| payload(first + k as u64, l))
                        .collect();
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    let segments_before = log.segments().len();
                    let range = log.append_batch(&refs).unwrap();
                    prop_assert_eq!(range, first..first + batch.len() as u64);
                    written.extend(batch);
                    if log.segments().len() > segments_before {
                        // A roll syncs the segment it leaves.
                        durable = durable.max(written.len() - lens.len());
                        synced_at = None;
                    }
                }
                Op::Sync => {
                    log.sync().unwrap();
                    durable = written.len();
                    let seg = newest_segment(dir);
                    let len = std::fs::metadata(&seg).unwrap().len();
                    synced_at = Some((seg, len));
                }
                Crash { keep_per_mille, zeros } => {
                    drop(log);
                    let seg = newest_segment(dir);
                    let len = std::fs::metadata(&seg).unwrap().len();
                    let floor = match &synced_at {
                        Some((s, l)) if *s == seg => *l,
                        _ => 0,
                    };
                    let keep = floor + (len - floor) * u64::from(keep_per_mille) / 1000;
                    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
                    f.set_len(keep + u64::from(zeros)).unwrap();
                    drop(f);
                    let (reopened, seen) = reopen(dir, segment_bytes);
                    log = reopened;
                    prop_assert!(
                        seen.len() >= durable,
                        "lost synced records: {} came back, {} were synced", seen.len(), durable
                    );
                    prop_assert!(seen.len() <= written.len());
                    for (k, (index, bytes)) in seen.iter().enumerate() {
                        prop_assert_eq!(*index, k as u64 + 1);
                        prop_assert_eq!(bytes, &written[k], "record {} came back altered", index);
                    }
                    written.truncate(seen.len());
                    durable = written.len();
                    // Reopening cut off the torn tail and synced it: it is the new durable floor.
                    let seg = newest_segment(dir);
                    let len = std::fs::metadata(&seg).unwrap().len();
                    synced_at = Some((seg, len));
                    prop_assert_eq!(log.next_index(), written.len() as u64 + 1);
                }
            }
        }
        drop(log);
        let (_, seen) = reopen(dir, segment_bytes);
        prop_assert_eq!(seen.len(), written.len(), "a clean reopen returns every record");
    }
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_first, _) = Log::open(tmp.path(), options(1 << 20), 1, |_, _| Ok(())).unwrap();
    let second = Log::open(tmp.path(), options(1 << 20), 1, |_, _| Ok(()));
    assert!(matches!(second, Err(JournalError::Locked { .. })));
}

#[test]
fn oversized_and_empty_records_are_refused_without_touching_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(tmp.path(), options(1 << 20), 1, |_, _| Ok(())).unwrap();
    let huge = vec![b'x'; tierline::journal::frame::MAX_RECORD_BYTES + 1];
    assert!(matches!(
        log.append_batch(&[b"ok", &huge]),
        Err(JournalError::RecordTooLarge { .. })
    ));
    assert!(matches!(
        log.append_batch(&[b"ok", b""]),
        Err(JournalError::EmptyRecord)
    ));
    assert_eq!(log.append_batch(&[b"first"]).unwrap(), 1..2);
}
