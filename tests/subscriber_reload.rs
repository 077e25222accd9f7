//! Webhook subscribers change live: a config change (here `PUT /v1/config`) starts a new
//! `[[subscriber]]` with the decisions from the change on (the change's own included), starts a
//! changed one again with its new settings where the old one stopped, and stops a removed one
//! before answering, while an unchanged one keeps delivering every decision once, in order,
//! across the changes. A real HTTP receiver (axum on 127.0.0.1) records what each path was sent
//! and with which signature.

mod api_common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use api_common::{call, login, TestDaemon, GIVE_UP};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::api::auth::AuthKeys;
use tierline::daemon::DaemonOptions;

/// One POST: the path it was sent to, its seqs, and its `Tierline-Signature` header.
#[derive(Debug, Clone)]
struct Batch {
    path: String,
    seqs: Vec<u64>,
    signature: Option<String>,
    body: Vec<u8>,
}

/// Every batch POSTed, in arrival order. `/down` answers 503 (its batches are attempts, never
/// acknowledged); `/held` holds each POST open until `release` (then answers 200); `/pause`
/// answers its first POST 429 with `Retry-After: 3`; every other path 200.
#[derive(Clone, Default)]
struct Receiver {
    batches: Arc<Mutex<Vec<Batch>>>,
    changed: Arc<tokio::sync::Notify>,
    /// POSTs being answered now, and the most there ever were at once.
    open: Arc<std::sync::atomic::AtomicUsize>,
    most_open: Arc<std::sync::atomic::AtomicUsize>,
    released: Arc<std::sync::atomic::AtomicBool>,
    release: Arc<tokio::sync::Notify>,
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

    fn batches(&self, path: &str) -> Vec<Batch> {
        let all = self.batches.lock().unwrap();
        all.iter().filter(|b| b.path == path).cloned().collect()
    }

    /// The seqs `path` was sent, in order.
    fn seqs(&self, path: &str) -> Vec<u64> {
        self.batches(path)
            .into_iter()
            .flat_map(|b| b.seqs)
            .collect()
    }

    /// Wait (without polling) until `path` has been sent seq `seq`.
    async fn wait_for(&self, path: &str, seq: u64) {
        self.wait_until(path, &format!("seq {seq}"), |seqs| seqs.contains(&seq))
            .await;
    }

    /// Wait (without polling) until what `path` has been sent satisfies `done`.
    async fn wait_until(&self, path: &str, what: &str, done: impl Fn(&[u64]) -> bool) {
        let waited = tokio::time::timeout(GIVE_UP, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if done(&self.seqs(path)) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        if waited.is_err() {
            let sent: Vec<(String, Vec<u64>)> = self
                .batches
                .lock()
                .map(|b| b.iter().map(|b| (b.path.clone(), b.seqs.clone())).collect())
                .unwrap_or_default();
            panic!("timed out waiting for {path} to get {what}; sent {sent:?}");
        }
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let batch: Value = serde_json::from_slice(&body).expect("a JSON batch");
    let seqs = batch["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["seq"].as_u64().expect("seq"))
        .collect();
    let signature = headers
        .get("tierline-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    r.batches.lock().unwrap().push(Batch {
        path: uri.path().to_string(),
        seqs,
        signature,
        body: body.to_vec(),
    });
    use std::sync::atomic::Ordering::SeqCst;
    let open = r.open.fetch_add(1, SeqCst) + 1;
    r.most_open.fetch_max(open, SeqCst);
    r.changed.notify_waiters();
    if uri.path() == "/held" {
        loop {
            let released = r.release.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if r.released.load(SeqCst) {
                break;
            }
            released.await;
        }
    }
    r.open.fetch_sub(1, SeqCst);
    let pauses = uri.path() == "/pause" && r.batches("/pause").len() == 1;
    if uri.path() == "/down" {
        AxumStatus::SERVICE_UNAVAILABLE.into_response()
    } else if pauses {
        // The first POST to `/pause` is told to come back in 3 s.
        (AxumStatus::TOO_MANY_REQUESTS, [("retry-after", "3")]).into_response()
    } else {
        AxumStatus::OK.into_response()
    }
}

/// The config: queue `support` (L1 only for 10 minutes), agent `a1` at L1 and `a2` at
/// `a2_tier`, then `subscribers` (TOML `[[subscriber]]` entries).
fn config(a2_tier: u8, subscribers: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
channels = ["voice"]
offer_timeout_s = 600
steps = [ {{ after_s = 0, tiers = [1] }}, {{ after_s = 600, tiers = [1, 2] }} ]

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = {{ support = 1 }}

[[agent]]
id = "a2"
address = "sip:a2@pbx"
tiers = {{ support = {a2_tier} }}
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

async fn start(text: &str, journal: Option<&Path>) -> TestDaemon {
    let loaded = tierline::config::parse(text, "test.toml").expect("valid test config");
    let mut options = DaemonOptions::new(loaded);
    options.journal_dir = journal.map(Path::to_path_buf);
    options.env = Arc::new(|name: &str| (name == "HOOK_SECRET").then(|| "env-secret".into()));
    TestDaemon::start(options).await
}

/// `PUT /v1/config`, which must apply: its answer.
/// `PUT` `text`, after checking that a preview of it announces the same subscriber changes the
/// `PUT` then makes.
async fn put_ok(t: &TestDaemon, text: &str) -> Value {
    let (status, preview) =
        api_common::send_toml(t, reqwest::Method::POST, "/v1/config/preview", text).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let (status, body) = api_common::put_config(t, text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        preview["subscribers"], body["subscribers"],
        "preview {preview} → PUT {body}"
    );
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

fn abandon(id: &str, interaction: &str) -> Value {
    json!({"id": id, "type": "interaction.abandoned", "interaction": interaction})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_start_restart_and_stop_with_a_config_change() {
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let witness = entry("witness", &format!("{base}/witness"), "");
    let t = start(&config(2, &witness), None).await;
    t.apply(login("login-a1", "a1")).await;
    t.apply(login("login-a2", "a2")).await;
    // c1 rings a1; c2 waits: a2 is L2, not eligible for ten minutes.
    let before = last_seq(&t, call("e1", "c1")).await;
    let waiting = last_seq(&t, call("e2", "c2")).await;

    // Added, by a change that makes a2 L1: the change offers c2 to a2 at once, and that offer
    // (the change's own decision) is the first thing "pbx" is sent.
    let pbx_a = entry("pbx", &format!("{base}/a"), "");
    let answer = put_ok(&t, &config(1, &format!("{witness}{pbx_a}"))).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": ["pbx"], "stopped": [], "restarted": []}),
        "{answer}"
    );
    assert_eq!(answer["restart_needed"], json!([]), "{answer}");
    let change_offer = answer["decisions"][0]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("the change offers c2 to a2: {answer}"));
    assert_eq!(answer["decisions"][0]["type"], "offer", "{answer}");
    receiver.wait_for("/a", change_offer).await;
    assert_eq!(
        receiver.seqs("/a")[0],
        change_offer,
        "a new subscriber starts with the change's own decisions, none from before it ({before}, {waiting})"
    );

    // Changed (another URL, `queued` only): started again with the new settings where the old
    // one stopped; the old URL is sent nothing more.
    let pbx_b = entry("pbx", &format!("{base}/b"), "types = [\"queued\"]");
    let answer = put_ok(&t, &config(1, &format!("{witness}{pbx_b}"))).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": [], "restarted": ["pbx"]}),
        "{answer}"
    );
    let sent_to_a = receiver.seqs("/a");
    // Both agents ringing: c3 is queued. Then a1's call abandons: c3 is offered to a1 (an
    // offer, which /b does not take), and c4 waits.
    let queued = last_seq(&t, call("e3", "c3")).await;
    let offered = last_seq(&t, abandon("e4", "c1")).await;
    let queued_again = last_seq(&t, call("e5", "c4")).await;
    receiver.wait_for("/b", queued_again).await;
    assert_eq!(
        receiver.seqs("/a"),
        sent_to_a,
        "the old URL is no longer sent to"
    );
    assert_eq!(
        receiver.seqs("/b"),
        vec![queued, queued_again],
        "the new types apply: queued only (the offer {offered} is filtered out)"
    );

    // Removed: stopped before the answer, so nothing reaches it afterwards (it would take this
    // queued decision).
    let answer = put_ok(&t, &config(1, &witness)).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": ["pbx"], "restarted": []}),
        "{answer}"
    );
    let last = last_seq(&t, call("e6", "c5")).await;
    receiver.wait_for("/witness", last).await;
    assert_eq!(
        receiver.seqs("/b"),
        vec![queued, queued_again],
        "a removed subscriber is sent nothing more"
    );
    // Its progress gauge says it is gone (NaN), not a lag growing for ever.
    let text = t.daemon.as_ref().unwrap().metrics().render();
    assert!(
        text.lines()
            .any(|l| l == "tierline_subscriber_acked_seq{subscriber=\"pbx\"} NaN"),
        "{text}"
    );

    // The unchanged witness ran throughout: every decision once, in order, no gap.
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(receiver.seqs("/witness"), expected);
    t.stop().await;
}

/// A subscriber moved to a refusing URL, then to a working one, gets everything after its last
/// acknowledged decision: with a journal from its ack file, without one from the old task's
/// cursor.
async fn a_changed_subscriber_resumes_after_its_last_acknowledged_decision(journal: Option<&Path>) {
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let t = start(&config(1, &entry("pbx", &format!("{base}/a"), "")), journal).await;
    t.apply(login("login-a1", "a1")).await;
    t.apply(login("login-a2", "a2")).await;
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/a", first).await;

    // Moved to a URL that refuses everything: the next decisions are tried, never acknowledged.
    let answer = put_ok(&t, &config(1, &entry("pbx", &format!("{base}/down"), ""))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    let second = last_seq(&t, call("e2", "c2")).await;
    // The refusing URL has been tried: with `second`, or with `first` again should the change
    // have stopped the old task before it took /a's answer as the acknowledgement (a POST
    // abandoned unacknowledged is sent again: at-least-once).
    receiver
        .wait_until("/down", "a batch", |seqs| !seqs.is_empty())
        .await;

    // Moved again: delivery resumes after the last acknowledged decision, so what the refusing
    // URL never took is sent to the new one.
    let answer = put_ok(&t, &config(1, &entry("pbx", &format!("{base}/b"), ""))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    let last = last_seq(&t, call("e3", "c3")).await;
    receiver.wait_for("/b", last).await;
    t.stop().await;

    // Nothing after the last acknowledged decision is skipped (`first`, unless /a's answer was
    // abandoned as above): from there, every decision once, in order, `second` included.
    let to_b = receiver.seqs("/b");
    let resumed = to_b.first().copied().unwrap_or(0);
    assert!(
        (1..=first + 1).contains(&resumed),
        "resumed after the last acknowledged decision ({first} or before), not after the \
         change: {to_b:?} ({second} was never acknowledged)"
    );
    let expected: Vec<u64> = (resumed..=last).collect();
    assert_eq!(to_b, expected, "every decision from there, once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_journal_a_changed_subscriber_resumes_after_its_ack_file() {
    let dir = tempfile::tempdir().unwrap();
    a_changed_subscriber_resumes_after_its_last_acknowledged_decision(Some(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_journal_a_changed_subscriber_resumes_where_the_old_task_stopped() {
    a_changed_subscriber_resumes_after_its_last_acknowledged_decision(None).await;
}

/// With a journal, a subscriber removed by a change forgets its ack record: added back later it
/// is a new subscriber, sent what is decided from then on, not the decisions made while it was
/// gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_removed_and_added_again_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let pbx = entry("pbx", &format!("{base}/a"), "");
    let t = start(&config(1, &pbx), Some(dir.path())).await;
    t.apply(login("login-a1", "a1")).await;
    t.apply(login("login-a2", "a2")).await;
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/a", first).await;

    let answer = put_ok(&t, &config(1, "")).await;
    assert_eq!(answer["subscribers"]["stopped"], json!(["pbx"]), "{answer}");
    let ack_file = tierline::journal::AckFile::for_subscriber(dir.path(), "pbx", "pbx", true);
    assert_eq!(ack_file.load().unwrap(), None, "its ack record is gone");
    let while_gone = last_seq(&t, call("e2", "c2")).await;

    let answer = put_ok(&t, &config(1, &pbx)).await;
    assert_eq!(answer["subscribers"]["started"], json!(["pbx"]), "{answer}");
    let after = last_seq(&t, call("e3", "c3")).await;
    receiver.wait_for("/a", after).await;
    t.stop().await;
    assert_eq!(
        receiver.seqs("/a"),
        vec![first, after],
        "nothing decided while it was gone ({while_gone})"
    );
}

/// A change that keeps a subscriber re-reads its secret from the same file (a rotation takes
/// effect), and one that removes a subscriber whose secret file is gone is not refused for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_subscriber_rotates_its_secret_and_a_removed_one_needs_none() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pbx-secret");
    std::fs::write(&secret_file, "first-secret\n").unwrap();
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let pbx = entry(
        "pbx",
        &format!("{base}/a"),
        &format!("secret_file = \"{}\"", secret_file.display()),
    );
    let signed = entry(
        "signed",
        &format!("{base}/s"),
        "secret_env = \"HOOK_SECRET\"",
    );
    let t = start(&config(2, &format!("{pbx}{signed}")), None).await;
    t.apply(login("login-a1", "a1")).await;
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/a", first).await;

    // Rotated, and a change elsewhere (a2 to L1): the subscriber is kept, the next POST is
    // signed with the new secret.
    std::fs::write(&secret_file, "second-secret\n").unwrap();
    let answer = put_ok(&t, &config(1, &format!("{pbx}{signed}"))).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": [], "restarted": []}),
        "{answer}"
    );
    t.apply(login("login-a2", "a2")).await;
    let second = last_seq(&t, call("e2", "c2")).await;
    receiver.wait_for("/a", second).await;
    let batches = receiver.batches("/a");
    let check = |secret: &str, b: &Batch| {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        AuthKeys::new(&[secret], &[], &[])
            .verify_signature(b.signature.as_deref(), &b.body, now_s)
            .is_ok()
    };
    let (old, new) = (&batches[0], &batches[batches.len() - 1]);
    assert!(check("first-secret", old), "{old:?}");
    assert!(
        check("second-secret", new),
        "signed with the rotated secret: {new:?}"
    );
    assert!(!check("first-secret", new), "{new:?}");

    // The secret file deleted and the subscriber removed in one change: accepted.
    std::fs::remove_file(&secret_file).unwrap();
    let answer = put_ok(&t, &config(1, &signed)).await;
    assert_eq!(
        answer["subscribers"],
        json!({"started": [], "stopped": ["pbx"], "restarted": []}),
        "{answer}"
    );
    t.stop().await;
}

/// With a journal, a new subscriber's starting point is recorded before the engine applies the
/// change; a change the engine refuses takes it back, so that subscriber, added later, is new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_leaves_no_starting_point_behind() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let t = start(&config(2, ""), Some(dir.path())).await;
    t.apply(call("e1", "c1")).await; // waits: nobody is logged in

    // Removing `support` while c1 waits in it (no `drain_to`): the engine refuses the change.
    let text = config(2, &entry("pbx", &format!("{base}/a"), ""))
        .replace("id = \"support\"", "id = \"other\"")
        .replace("support = ", "other = ");
    let (status, body) = api_common::put_config(&t, &text).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config", "{body}");
    let ack_file = tierline::journal::AckFile::for_subscriber(dir.path(), "pbx", "pbx", true);
    assert_eq!(
        ack_file.load().unwrap(),
        None,
        "no starting point left behind"
    );
    t.stop().await;
}

/// A subscriber started again with new settings and a new secret counts as a secret change in
/// the reload's report (`secrets_changed`), as a kept one's rotation does; started again with
/// the same secret, it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_subscriber_with_a_new_secret_is_a_secret_change() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pbx-secret");
    std::fs::write(&secret_file, "first-secret\n").unwrap();
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let pbx = |path: &str| {
        entry(
            "pbx",
            &format!("{base}/{path}"),
            &format!("secret_file = \"{}\"", secret_file.display()),
        )
    };
    let t = start(&config(1, &pbx("a")), None).await;
    let reloader = t.daemon().reloader().clone();
    // A new URL, the same secret.
    let report = reloader
        .apply_source(config(1, &pbx("b")), "test")
        .await
        .unwrap();
    assert_eq!(report.subscribers.restarted, vec!["pbx".to_string()]);
    assert!(!report.secrets_changed, "{report:?}");
    // A new URL and a new secret.
    std::fs::write(&secret_file, "second-secret\n").unwrap();
    let report = reloader
        .apply_source(config(1, &pbx("c")), "test")
        .await
        .unwrap();
    assert_eq!(report.subscribers.restarted, vec!["pbx".to_string()]);
    assert!(report.secrets_changed, "{report:?}");
    t.stop().await;
}

/// An edit stops the old task, which abandons a POST in flight; but the receiver is still working
/// on that POST, so the new task's first POST waits until it is answered (or times out). Before,
/// the new task sent at once: a receiver answering slowly had the stale batch and the new one
/// open together, and one handling requests in parallel could finish the stale one last. The
/// change itself does not wait for the slow receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_subscriber_never_has_two_posts_open_at_the_receiver() {
    use std::sync::atomic::Ordering::SeqCst;
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let url = format!("{base}/held");
    let t = start(&config(1, &entry("pbx", &url, "timeout_ms = 30000")), None).await;
    t.apply(login("login-a1", "a1")).await;
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/held", first).await;
    assert_eq!(receiver.open.load(SeqCst), 1, "the first POST is held open");

    let answer = put_ok(&t, &config(1, &entry("pbx", &url, "timeout_ms = 29000"))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    assert_eq!(
        receiver.open.load(SeqCst),
        1,
        "the change was answered while the old POST was still open"
    );
    let second = last_seq(&t, call("e2", "c2")).await;
    // Time for a second POST to go out if anything let it (it went out within milliseconds
    // before the mend); none may while the first is open.
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        receiver.wait_until("/held", "a second POST", |seqs| seqs.len() > 1),
    )
    .await;
    assert!(
        early.is_err(),
        "a second POST went out: {:?}",
        receiver.seqs("/held")
    );

    receiver.released.store(true, SeqCst);
    receiver.release.notify_waiters();
    receiver.wait_for("/held", second).await;
    t.stop().await;
    assert_eq!(
        receiver.most_open.load(SeqCst),
        1,
        "two POSTs were open at once: {:?}",
        receiver.seqs("/held")
    );
    // The abandoned batch is sent again (never acknowledged), then everything after it.
    let seqs = receiver.seqs("/held");
    assert_eq!(seqs.first(), Some(&first), "{seqs:?}");
    assert!(seqs[1..].starts_with(&[first]), "{seqs:?}");
    assert_eq!(seqs.last(), Some(&second), "{seqs:?}");
}

/// A pause the receiver asked for (`Retry-After`) outlives an edit of the subscriber that keeps
/// its URL: the new task waits out the rest of it. Before, the edit dropped the wait and the new
/// task posted at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_the_receiver_asked_for_outlives_an_edit_of_the_subscriber() {
    let receiver = Receiver::default();
    let base = receiver.serve().await;
    let url = format!("{base}/pause");
    // `entry`'s 50 ms retry cap would cap the pause too: this one allows 10 s (then 9 s).
    let subscriber = |max_ms: u32| {
        format!(
            "\n[[subscriber]]\nname = \"pbx\"\nurl = \"{url}\"\nretry_initial_ms = 10\n\
             retry_max_ms = {max_ms}\n"
        )
    };
    let t = start(&config(1, &subscriber(10_000)), None).await;
    t.apply(login("login-a1", "a1")).await;
    let first = last_seq(&t, call("e1", "c1")).await;
    receiver.wait_for("/pause", first).await;
    let told = std::time::Instant::now();

    let answer = put_ok(&t, &config(1, &subscriber(9_000))).await;
    assert_eq!(
        answer["subscribers"]["restarted"],
        json!(["pbx"]),
        "{answer}"
    );
    // Well inside the 3 s asked for, no second POST (it went out at once before the mend).
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(1_000),
        receiver.wait_until("/pause", "a second POST", |seqs| {
            seqs.iter().filter(|&&s| s == first).count() > 1
        }),
    )
    .await;
    assert!(
        early.is_err(),
        "posted again during the pause: {:?}",
        receiver.seqs("/pause")
    );
    receiver
        .wait_until("/pause", "the batch again", |seqs| {
            seqs.iter().filter(|&&s| s == first).count() > 1
        })
        .await;
    assert!(
        told.elapsed() >= std::time::Duration::from_millis(2_900),
        "the pause was cut short: {:?}",
        told.elapsed()
    );
    t.stop().await;
}
