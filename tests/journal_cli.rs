//! `tierline journal verify DIR` and `tierline journal dump DIR`, run as the real binary.

use std::path::Path;
use std::process::Command;

use tierline::config::daemon::SyncMode;
use tierline::journal::{Log, LogOptions};

fn tierline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A journal with a snapshot at 0 and three batches of inputs.
fn journal(dir: &Path) {
    let opts = LogOptions {
        sync: SyncMode::Batch,
        segment_bytes: 1 << 20,
    };
    tierline::journal::snapshot::write_snapshot(dir, 0, b"state", true).unwrap();
    let (mut log, _) = Log::open(dir, opts, 1, |_, _| Ok(())).unwrap();
    log.append_batch(&[br#"{"at":5,"input":"advance"}"#])
        .unwrap();
    log.append_batch(&[
        br#"{"at":6,"input":"event","id":"e1","event":{"type":"agent.logout","agent":"a1"}}"#,
        br#"{"at":6,"input":"advance"}"#,
    ])
    .unwrap();
    log.append_batch(&[br#"{}"#]).unwrap();
}

#[test]
fn verify_passes_a_good_journal_and_dump_prints_each_input_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = tierline(&["journal", "verify", dir]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("records 1..=4"), "{out}");
    assert!(out.contains("snapshot 0: ok"), "{out}");
    assert!(out.ends_with("journal ok\n"), "{out}");

    let (code, out, err) = tierline(&["journal", "dump", dir]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            r#"{"index":1,"at":5,"input":"advance"}"#,
            r#"{"index":2,"at":6,"input":"event","id":"e1","event":{"type":"agent.logout","agent":"a1"}}"#,
            r#"{"index":3,"at":6,"input":"advance"}"#,
            r#"{"index":4}"#,
        ]
    );
    assert!(err.contains("4 records"), "{err}");
}

#[test]
fn verify_fails_with_exit_2_naming_the_damaged_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let seg = tmp.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[12] ^= 0x01; // inside the first frame; whole frames follow it
    std::fs::write(&seg, &bytes).unwrap();
    let (code, out, _) = tierline(&["journal", "verify", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("{} at byte 0", seg.display())),
        "{out}"
    );
    assert!(out.contains("journal DAMAGED"), "{out}");
    // Not "no records (0 segments)": the scan stopped at the damage, before any record.
    assert!(
        out.starts_with("no record read before the damage\n"),
        "{out}"
    );
    let (code, _, err) = tierline(&["journal", "dump", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("at byte 0"), "{err}");
}

#[test]
fn verify_of_a_missing_directory_says_so() {
    let (code, _, err) = tierline(&["journal", "verify", "/nonexistent/tierline-journal"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/tierline-journal"), "{err}");
}

/// Damage at or below the newest snapshot's record is damage to synced records: `dump` says so
/// and exits 2, as `verify` does, instead of printing the rest and calling it a torn tail.
/// `verify` gives the range it read before the damage.
#[test]
fn dump_treats_damage_below_a_snapshot_as_damage_like_verify() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    tierline::journal::snapshot::write_snapshot(tmp.path(), 4, b"state", true).unwrap();
    let seg = tmp.path().join("00000000000000000001.seg");
    let len = std::fs::metadata(&seg).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(len - 3).unwrap(); // the last frame, record 4, cut short
    let dir = tmp.path().to_str().unwrap();
    let (code, out, _) = tierline(&["journal", "verify", dir]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("proves"), "{out}");
    assert!(
        out.starts_with("records 1..=3 read before the damage (3 records)\n"),
        "{out}"
    );
    let (code, out, err) = tierline(&["journal", "dump", dir]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("proves"), "{err}");
    assert!(!err.contains("warning: torn tail"), "{err}");
    assert_eq!(
        out.lines().count(),
        3,
        "the records before the damage are printed: {out}"
    );
}

/// A dump that cannot be written (`| head` closed the pipe, a full disk) exits 1, not 2: the
/// journal is fine, and 2 would tell a script it is damaged.
#[test]
fn a_dump_that_cannot_be_written_exits_1_not_2() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["journal", "dump", tmp.path().to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the dump to stdout"), "{err}");
}

/// Damage among records a snapshot holds, with a valid frame after it: `verify` passes the
/// journal with a warning naming the damage (the daemon reads past it and starts), and `dump`
/// prints every record it can read, the ones after the damage included, and names what it
/// skipped.
#[test]
fn damage_a_snapshot_holds_is_a_warning_and_the_dump_goes_on_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    tierline::journal::snapshot::write_snapshot(tmp.path(), 3, b"state", true).unwrap();
    let seg = tmp.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[12] ^= 0x01; // inside the first frame (record 1); whole frames follow it
    std::fs::write(&seg, &bytes).unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = tierline(&["journal", "verify", dir]);
    assert!(out.contains("snapshot 3: ok"), "{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "warning: damaged records a usable snapshot holds (the daemon reads past them and \
             starts; acknowledged data was damaged on disk: check the disk): {} at byte 0",
            seg.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("(records 1..=1, held by the snapshot at record 3)"),
        "{out}"
    );
    assert!(out.ends_with("journal ok\n"), "{out}");

    let (code, out, err) = tierline(&["journal", "dump", dir]);
    assert_eq!(code, 0, "{err}");
    let indexes: Vec<&str> = out.lines().filter_map(|l| l.split(',').next()).collect();
    assert_eq!(
        indexes,
        vec![r#"{"index":2"#, r#"{"index":3"#, r#"{"index":4}"#],
        "{out}"
    );
    assert!(
        err.contains("warning: damaged records a snapshot holds, not printed:"),
        "{err}"
    );
    assert!(err.contains("3 records"), "{err}");
}

/// A snapshot with no segment beside it (a running daemon always leaves one): the records
/// written after the snapshot, if any, are gone, and `verify` says so instead of passing it
/// silently.
#[test]
fn verify_warns_about_a_snapshot_with_no_segment() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    tierline::journal::snapshot::write_snapshot(tmp.path(), 3, b"state", true).unwrap();
    std::fs::remove_file(tmp.path().join("00000000000000000001.seg")).unwrap();
    let (code, out, err) = tierline(&["journal", "verify", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "warning: a snapshot but no segment: any records written after the snapshot are gone"
        ),
        "{out}"
    );
}
