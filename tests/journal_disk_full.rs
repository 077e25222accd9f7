//! A full disk: appends fail with an I/O error, leave nothing behind that a later append would be
//! written after, and succeed again once space returns.
//!
//! The disk is "full" through `RLIMIT_FSIZE` (no privileges needed). This is its own test binary
//! because the limit applies to the whole process.

use tierline::config::daemon::SyncMode;
use tierline::journal::{JournalError, Log, LogOptions};

fn set_file_size_limit(bytes: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

#[test]
fn a_full_disk_fails_the_batch_cleanly_and_appends_resume_when_space_returns() {
    // Writing past the limit must be an error (EFBIG), not a fatal signal.
    // SAFETY: setting a signal disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        sync: SyncMode::Batch,
        segment_bytes: 1 << 20,
    };
    let (mut log, _) = Log::open(tmp.path(), opts, 1, |_, _| Ok(())).unwrap();
    let record = vec![b'r'; 100];
    let batch: Vec<&[u8]> = vec![&record; 3];

    set_file_size_limit(1_000);
    let mut accepted = 0u64;
    let failure = loop {
        match log.append_batch(&batch) {
            Ok(range) => {
                assert_eq!(range.start, accepted + 1);
                accepted = range.end - 1;
            }
            Err(e) => break e,
        }
        assert!(accepted < 100, "the limit never bit");
    };
    assert!(failure.is_unavailable(), "{failure}");
    assert!(
        matches!(&failure, JournalError::Io { source, .. } if source.raw_os_error() == Some(libc::EFBIG)),
        "{failure}"
    );
    // The failed batch took no index and left no bytes behind.
    assert_eq!(log.next_index(), accepted + 1);
    let seg = &log.segments()[0].path;
    let len = std::fs::metadata(seg).unwrap().len();
    assert_eq!(len % 332, 0, "only whole frames remain ({len} bytes)");
    // Still full: still refused, still clean.
    assert!(log.append_batch(&batch).is_err());
    assert_eq!(log.next_index(), accepted + 1);

    set_file_size_limit(libc::RLIM_INFINITY);
    let range = log.append_batch(&batch).unwrap();
    assert_eq!(range, accepted + 1..accepted + 4);
    drop(log);

    let mut seen = Vec::new();
    let (_, report) = Log::open(tmp.path(), opts, 1, |i, p| {
        seen.push((i, p.len()));
        Ok(())
    })
    .unwrap();
    assert!(report.truncated.is_none(), "{report:?}");
    assert_eq!(seen.len() as u64, accepted + 3);
    assert!(seen
        .iter()
        .enumerate()
        .all(|(k, &(i, n))| i == k as u64 + 1 && n == 100));
}
