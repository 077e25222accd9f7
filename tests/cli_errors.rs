//! Bad arguments and a closed stdout get an error and a documented exit code from every command,
//! never a panic (exit 101).

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

fn tierline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tierline"))
}

/// Run with stdout a pipe whose reader has already gone (as `| head -0`). The reader is closed
/// before the child starts: closed after, a child that wrote first filled the pipe's buffer
/// without an error and exited 0 (seen once under load).
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which become owned right after.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are open descriptors that nothing else owns.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let child = tierline()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tierline");
    let out = child.wait_with_output().expect("wait for tierline");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run with stdout and stderr both pipes whose reader has already gone (`2>&1 | head -0`).
fn with_closed_output(args: &[&str]) -> Option<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which become owned right after.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are open descriptors that nothing else owns.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let err = writer.try_clone().expect("dup the pipe");
    tierline()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(err))
        .status()
        .expect("run tierline")
        .code()
}

/// A closed stderr loses the messages, not the exit code: `eprintln!` would panic (exit 101).
#[test]
fn with_stderr_closed_too_the_exit_codes_stay_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[queue]]\nid = \"q\"\nstrategy = \"nope\"\n").unwrap();
    let broken = broken.to_string_lossy().into_owned();
    assert_eq!(with_closed_output(&["check-config", &broken]), Some(2));
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/scenarios/support-ladder.toml"
    );
    assert_eq!(
        with_closed_output(&["simulate", "--config", &broken, "--scenario", scenario]),
        Some(2)
    );
    // `serve` logs to stdout: a config it refuses is still exit 2, and the log lines it cannot
    // write are dropped, not reported with a panicking `eprintln!` (exit 101).
    assert_eq!(
        with_closed_output(&[
            "serve",
            "--config",
            &broken,
            "--data",
            &dir.path().join("data").to_string_lossy()
        ]),
        Some(2)
    );
    let journal = dir.path().join("no-journal-here");
    let journal = journal.to_string_lossy().into_owned();
    let code = with_closed_output(&["journal", "verify", &journal]);
    assert!(matches!(code, Some(1) | Some(2)), "{code:?}");
}

#[test]
fn check_config_and_journal_verify_with_a_closed_stdout_exit_1_naming_it() {
    // Not 2, which says the config is invalid or the journal damaged: a script must not take a
    // valid config it could not print for an invalid one.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tierline.toml");
    let journal = tempfile::tempdir().unwrap();
    let journal = journal.path().to_string_lossy().into_owned();
    for args in [
        vec!["check-config", config],
        vec!["journal", "verify", journal.as_str()],
    ] {
        let (code, stderr) = with_closed_stdout(&args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to stdout"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn loadgen_durations_past_a_year_are_argument_errors() {
    for flag in ["--duration", "--timeout", "--drain", "--pace-quantum"] {
        let out = tierline()
            .args(["loadgen", "--url", "http://127.0.0.1:1", flag, "1e20"])
            .output()
            .expect("run tierline");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{flag} 1e20: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{flag} 1e20: {stderr}");
        assert!(stderr.contains("longer than a year"), "{flag}: {stderr}");
    }
}

/// Counts that 0 would make meaningless are refused as arguments; hours are a unit.
#[test]
fn loadgen_refuses_zero_counts_and_takes_hours() {
    for flag in ["--queues", "--agents", "--max-live", "--threads"] {
        let out = tierline()
            .args(["loadgen", "--url", "http://127.0.0.1:1", flag, "0"])
            .output()
            .expect("run tierline");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} 0: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '0' for '{flag}")),
            "{stderr}"
        );
    }
    // Parsed, then the run fails to connect (nothing on port 1): not an argument error.
    let out = tierline()
        .args(["loadgen", "--url", "http://127.0.0.1:1", "--duration", "2h"])
        .output()
        .expect("run tierline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn loadgen_refuses_a_rate_past_its_limit_and_an_unwritable_report_before_the_run() {
    let out = tierline()
        .args(["loadgen", "--url", "http://127.0.0.1:1", "--rate", "1e8"])
        .output()
        .expect("run tierline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at most 10000000"), "{stderr}");

    // Nothing listens on port 1: had the run started first, the error would be the connection.
    let out = tierline()
        .args([
            "loadgen",
            "--url",
            "http://127.0.0.1:1",
            "--out",
            "/nonexistent-dir/report.json",
        ])
        .output()
        .expect("run tierline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the report to /nonexistent-dir/report.json"),
        "{stderr}"
    );
}
