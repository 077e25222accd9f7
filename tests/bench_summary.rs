//! The arithmetic of `scripts/bench.sh summary` and of the `ab` table, run on result files
//! written here (the Python inside the script, taken from it as it is; no server, no port).
//! Skipped where there is no `python3`, which the script needs anyway.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The Python program of the shell function `function` in scripts/bench.sh.
fn python_of(function: &str) -> String {
    let script =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench.sh"))
            .unwrap();
    let body = &script[script.find(&format!("\n{function}() {{")).unwrap()..];
    let from = body.find("<<'PY'\n").unwrap() + "<<'PY'\n".len();
    let to = body[from..].find("\nPY\n").unwrap() + from;
    body[from..to].to_string()
}

/// Run `program` with `args`; `None` without python3.
fn python(program: &str, args: &[&str]) -> Option<String> {
    let mut child = match Command::new("python3")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: no python3 ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn result(
    answered: u64,
    p50: f64,
    p99: f64,
    server_cpu_us: Option<f64>,
    sustained: bool,
) -> String {
    serde_json::json!({
        "answered": answered,
        "scheduled": answered,
        "setup_events": 100,
        "achieved_rate": 1000,
        "server_errors": 0,
        "statuses": {"200": answered},
        "latency_ms": {"p50": p50, "p99": p99, "p99_9": p99, "max": p99},
        "server_cpu_us_per_event": server_cpu_us,
        "generator_cpu_us_per_event": 20.0,
        "timer_lateness": null,
        "sustained": sustained,
    })
    .to_string()
}

#[test]
fn the_summary_pairs_runs_by_number_reads_the_measured_phase_cpu_and_keeps_the_search_rule() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    // Baseline run 1 left no result (its .cpu file is there: bench.sh writes it regardless).
    put("fixed-baseline-1.json.cpu", "500 100");
    put(
        "fixed-baseline-2.json",
        &result(1000, 1.0, 2.0, Some(30.0), true),
    );
    put("fixed-baseline-2.json.cpu", "400 100");
    // Tierline run 1 from an older generator (no server_cpu_us_per_event): ticks over
    // answered + setup, 11 s / 1,100 = 10,000 µs.
    put(
        "fixed-tierline-batch-1.json",
        &result(1000, 5.0, 10.0, None, true),
    );
    put("fixed-tierline-batch-1.json.cpu", "1100 100");
    put(
        "fixed-tierline-batch-2.json",
        &result(1000, 2.0, 4.0, Some(90.0), true),
    );
    put("fixed-tierline-batch-2.json.cpu", "990 100");
    // Search 1 stopped at 10,000; the 15,000 file is an earlier search's.
    put(
        "search-baseline-1-5000.json",
        &result(10, 1.0, 1.0, None, true),
    );
    put(
        "search-baseline-1-10000.json",
        &result(10, 1.0, 99.0, None, false),
    );
    put(
        "search-baseline-1-15000.json",
        &result(10, 1.0, 1.0, None, true),
    );
    put(
        "search-baseline-2-5000.json",
        &result(10, 1.0, 1.0, None, true),
    );
    put(
        "search-baseline-2-10000.json",
        &result(10, 1.0, 1.0, None, true),
    );
    put(
        "search-baseline-2-15000.json",
        &result(10, 1.0, 99.0, None, false),
    );

    let Some(out) = python(
        &python_of("summarize"),
        &[
            dir.path().to_str().unwrap(),
            "2",
            "5000 10000 15000",
            "batch",
        ],
    ) else {
        return;
    };
    // Run 2 against run 2 only: p99 4 / 2, p50 2 / 1, CPU 90 / 30 µs (the measured phase).
    assert!(
        out.contains("- tierline-batch: p50 ×2.00, p99 ×2.00, server CPU per event ×3.00"),
        "{out}"
    );
    // The baseline's CPU is its one run's 30 µs, not run 1's ticks.
    assert!(out.contains("| baseline | 1000 | 1.000 | 2.000 |"), "{out}");
    assert!(out.contains("| 30.0 | 20.0 |"), "{out}");
    // Highest step of each search up to its first failure.
    assert!(out.contains("| baseline | 5000, 10000 | 7500 |"), "{out}");
}

#[test]
fn the_ab_table_reads_the_measured_phase_cpu_and_says_which_way_its_ratio_goes() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    put(
        "ab-baseline-1.json",
        &result(1000, 1.0, 2.0, Some(30.0), true),
    );
    put("ab-baseline-1.json.cpu", "400 100");
    put("ab-main-1.json", &result(1000, 2.0, 4.0, Some(90.0), true));
    put("ab-main-1.json.cpu", "990 100");
    let Some(out) = python(
        &python_of("ab_summary"),
        &[dir.path().to_str().unwrap(), "1", "baseline", "main"],
    ) else {
        return;
    };
    assert!(out.contains("| baseline CPU ÷ this |"), "{out}");
    assert!(out.contains("| **90.0** (90.0) | 0.33 |"), "{out}");
}
