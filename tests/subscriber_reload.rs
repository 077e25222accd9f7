//! Webhook subscribers change live: a config change (here `PUT /v1/config`) starts a new
//! `[[subscriber]]`, starts a changed one again with its new settings, and stops a removed one,
//! while an unchanged one keeps delivering every decision once, in order, across the changes.
//! A real HTTP receiver (axum on 127.0.0.1) records what each URL was sent.

mod api_common;

use std::sync::{Arc, Mutex};

use api_common::{call, login, TestDaemon, GIVE_UP};
use axum::extract::State;
use axum::http::{StatusCode as AxumStatus, Uri};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::daemon::DaemonOptions;

/// Every batch POSTed, with the path it was sent to, in arrival order. `/down` answers 503 (its
/// batches are attempts, never acknowledged); every other path 200.
/// A batch: the path it was POSTed to and its seqs.
type Batch = (String, Vec<u64>);

#[derive(Clone, Default)]
struct Receiver {
    batches: Arc<Mutex<Vec<Batch>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Serve `POST /{any}` on an ephemeral port; returns the base URL.
    async fn serve(&self) -> String {
        let app = axum::Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// The seqs `path` was sent, in order.
    fn seqs(&self, path: &str) -> Vec<u64> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    /// Wait (without polling) until `path` has been sent seq `seq`.
    async fn wait_for(&self, path: &str, seq: u64) {
        let waited = tokio::time::timeout(GIVE_UP, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.seqs(path).contains(&seq) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {path} to get seq {seq}; got {:?}",
            self.batches.lock().unwrap()
        );
    }
}

async fn receive(State(r): State<Receiver>, uri: Uri, body: axum::body::Bytes) -> AxumStatus {
    let batch: Value = serde_json::from_slice(&body).expect("a JSON batch");
    let seqs = batch["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["seq"].as_u64().expect("seq"))
        .collect();
    r.batches
        .lock()
        .unwrap()
        .push((uri.path().to_string(), seqs));
    r.changed.notify_waiters();
    if uri.path() == "/down" {
        AxumStatus::SERVICE_UNAVAILABLE
    } else {
        AxumStatus::OK
    }
}

/// The config with `subscribers` (TOML `[[subscriber]]` entries) appended.
fn config(subscribers: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
channels = ["voice"]
offer_timeout_s = 600

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = {{ support = 1 }}

[[agent]]
id = "a2"
address = "sip:a2@pbx"
tiers = {{ support = 1 }}

[[agent]]
id = "a3"
address = "sip:a3@pbx"
tiers = {{ support = 1 }}
{subscribers}
"#
    )
}

/// A `[[subscriber]]` entry named `name` POSTing to `url`, with quick retries.
fn entry(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[[subscriber]]\nname = \"{name}\"\nurl = \"{url}\"\nretry_initial_ms = 10\nretry_max_ms = 50\n{extra}\n"
    )
}

async fn put_config(t: &TestDaemon, text: &str) -> Value {
    let r = t
        .http
        .put(t.url("/v1/config"))
        .header("content-type", "application/toml")
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Apply `event` and return the seq of the last decision it made.
async fn last_seq(t: &TestDaemon, event: Value) -> u64 {
    let decisions = t.apply(event).await;
    decisions
        .last()
        .and_then(|d| d["seq"].as_u64())
        .expect("the event made a decision")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_start_restart_and_stop_with_a_config_change() {
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let witness = entry("witness", &format!("{base}/witness"), "");
    let text = config(&witness);
    let loaded = tierline::config::parse(&text, "test.toml").expect("valid test config");
    let t = TestDaemon::start(DaemonOptions::new(loaded)).await;

    for a in ["a1", "a2", "a3"] {
        t.apply(login(&format!("login-{a}"), a)).await;
    }
    // Before the change: only the witness exists.
    let before = last_seq(&t, call("e1", "c1")).await;

    // Added: "pbx" gets the decisions from the change on, none from before it.
    let pbx_a = entry("pbx", &format!("{base}/a"), "");
    let answer = put_config(&t, &config(&format!("{witness}{pbx_a}"))).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": ["pbx"], "stopped": [], "restarted": []}),
        "{answer}"
    );
    assert_eq!(answer["restart_needed"], json!([]), "{answer}");
    let offered = last_seq(&t, call("e2", "c2")).await;
    receiver.wait_for("/a", offered).await;
    let to_a = receiver.seqs("/a");
    assert!(
        to_a.iter().all(|&s| s > before),
        "the new subscriber was sent decisions made before it was added: {to_a:?} (added after {before})"
    );

    // Changed (another URL, offers only): started again with the new settings, from the
    // decisions after the change; the old URL is sent nothing more.
    let pbx_b = entry("pbx", &format!("{base}/b"), "types = [\"offer\"]");
    let answer = put_config(&t, &config(&format!("{witness}{pbx_b}"))).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": [], "restarted": ["pbx"]}),
        "{answer}"
    );
    let sent_to_a = receiver.seqs("/a");
    let third = last_seq(&t, call("e3", "c3")).await;
    receiver.wait_for("/b", third).await;
    receiver.wait_for("/witness", third).await;
    assert_eq!(
        receiver.seqs("/a"),
        sent_to_a,
        "the old URL is no longer sent to"
    );
    assert!(
        receiver.seqs("/b").iter().all(|&s| s > offered),
        "the restarted subscriber began before the change: {:?}",
        receiver.seqs("/b")
    );

    // Removed: stopped before the answer, so nothing reaches it afterwards.
    let answer = put_config(&t, &config(&witness)).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": ["pbx"], "restarted": []}),
        "{answer}"
    );
    let sent_to_b = receiver.seqs("/b");
    let last = last_seq(&t, call("e4", "c4")).await;
    receiver.wait_for("/witness", last).await;
    assert_eq!(
        receiver.seqs("/b"),
        sent_to_b,
        "a removed subscriber is not sent to"
    );

    // The unchanged witness ran throughout: every decision once, in order, no gap.
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(receiver.seqs("/witness"), expected);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_subscriber_resumes_after_its_last_acknowledged_decision() {
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&entry("pbx", &format!("{base}/a"), ""));
    let loaded = tierline::config::parse(&text, "test.toml").expect("valid test config");
    let mut options = DaemonOptions::new(loaded);
    options.journal_dir = Some(dir.path().to_path_buf());
    let t = TestDaemon::start(options).await;
    for a in ["a1", "a2", "a3"] {
        t.apply(login(&format!("login-{a}"), a)).await;
    }
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/a", first).await;

    // Moved to a URL that refuses everything: the next decision is tried, never acknowledged.
    let answer = put_config(&t, &config(&entry("pbx", &format!("{base}/down"), ""))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    let second = last_seq(&t, call("e2", "c2")).await;
    receiver.wait_for("/down", second).await;

    // Moved again: delivery resumes after the last acknowledged decision, so the one the
    // refusing URL never took is sent to the new one.
    let answer = put_config(&t, &config(&entry("pbx", &format!("{base}/b"), ""))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    let last = last_seq(&t, call("e3", "c3")).await;
    receiver.wait_for("/b", last).await;
    t.stop().await;

    let expected: Vec<u64> = (first + 1..=last).collect();
    assert_eq!(
        receiver.seqs("/b"),
        expected,
        "everything after the last acknowledged decision ({first}), once, in order"
    );
}
