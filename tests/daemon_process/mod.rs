//! The real `tierline` binary for process-level tests (crash, restart): start it on a port and a
//! journal directory, wait until it answers.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Safety net so a broken test fails instead of hanging (never a timing assertion).
pub const GIVE_UP: Duration = Duration::from_secs(20);

/// `tierline serve` with `config`, journal in `data`; returns the child and the API's base URL.
/// Both listeners bind a port the OS picks (`:0`) and the API's is read from the "tierline
/// listening" log line: a free port picked first and passed on could be taken by anything else
/// on the machine meanwhile, and the daemon would then fail to start. Its other output is
/// discarded.
pub fn spawn(config: &Path, data: &Path) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["--log-format", "json", "serve", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn,tierline::daemon=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads until the child's output ends, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("tierline listening") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(GIVE_UP)
        .unwrap_or_else(|e| panic!("the daemon never said it was listening ({e})"));
    let logged: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let addr = logged["fields"]["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {logged}"));
    (child, format!("http://{addr}"))
}

/// Until `/healthz` answers 2xx (fails the test after `GIVE_UP`).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let give_up = tokio::time::Instant::now() + GIVE_UP;
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < give_up, "daemon never ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
