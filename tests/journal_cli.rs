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
