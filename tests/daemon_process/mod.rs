//! The real `tierline` binary for process-level tests (crash, restart): start it on a port and a
//! journal directory, wait until it answers.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Safety net so a broken test fails instead of hanging (never a timing assertion).
pub const GIVE_UP: Duration = Duration::from_secs(20);

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tierline serve` with `config`, journal in `data`, API on `port`, output discarded.
pub fn spawn(config: &Path, data: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port())])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts")
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
