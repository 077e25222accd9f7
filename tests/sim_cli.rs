//! The `tierline simulate` binary: `--agents` with `--record-journal`, and a closed stdout.

use std::process::Command;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const ROUTING: &str = "[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n";
const SCENARIO: &str = r#"
duration_s = 3600
[[arrivals]]
queue = "support"
rate_per_hour = 60
handle = { dist = "fixed", s = 30 }
[[agents]]
count = 2
tiers = { support = 1 }
"#;

/// `--agents`: "add per-agent figures" — also when `--record-journal` is given.
#[test]
fn record_journal_keeps_the_agents_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "r.toml", ROUTING);
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["simulate", "--format", "json", "--agents", "--config"])
        .arg(&config)
        .arg("--scenario")
        .arg(&scenario)
        .arg("--record-journal")
        .arg(dir.path().join("rj"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json.get("agents").is_some(),
        "no per-agent figures with --record-journal"
    );
}

/// Exit status is 0, 1 or 2 (docs/SIMULATOR.md); a closed stdout must not panic (exit 101).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "r.toml", ROUTING);
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["simulate", "--config"])
        .arg(&config)
        .arg("--scenario")
        .arg(&scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0..=2)), "{:?}", out.status);
}

/// The usage names both ways to give traffic, and a replay-only flag with a scenario is refused
/// rather than ignored.
#[test]
fn the_usage_names_scenario_or_replay_and_a_replay_flag_needs_a_replay() {
    let out = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["simulate", "--config", "r.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("<--scenario <SCENARIO>|--replay <JOURNAL_DIR>>"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "r.toml", ROUTING);
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["simulate", "--add-roster-agents", "--config"])
        .arg(&config)
        .arg("--scenario")
        .arg(&scenario)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}
