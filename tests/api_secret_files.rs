//! Secrets from files, over real HTTP: bearer tokens read from a file, a wrong one refused with a
//! 401 JSON error, the file rotated and re-read on SIGHUP and on `PUT /v1/config` (the new token
//! works, the old one is refused), a reload that cannot read the file keeps the old tokens, a
//! subscriber's signing secret rotated the same way, and the binary's startup error and
//! file-permission warning.

mod api_common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use api_common::*;
use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tierline::api::auth::AuthKeys;
use tierline::api::secret::SecretError;
use tierline::daemon::reload::ReloadError;
use tierline::daemon::DaemonOptions;

const ROUTING: &str = r#"
[server]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
offer_timeout_s = 3600

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }
"#;

/// Write `content` the way secret platforms rotate a file: a new file renamed over the old one
/// (readers never see half a secret), owner-only.
fn rotate(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A config file naming `tokens` as the admin token file, loaded and started with SIGHUP support.
async fn daemon_with_token_file(dir: &Path, tokens: &Path) -> (TestDaemon, PathBuf) {
    let config_path = dir.join("tierline.toml");
    let text = format!(
        "[auth]\nadmin_tokens_file = {:?}\n{ROUTING}",
        tokens.display().to_string()
    );
    std::fs::write(&config_path, text).unwrap();
    let config = tierline::config::load(&config_path).expect("valid config");
    let mut options = DaemonOptions::new(config);
    options.config_path = Some(config_path.clone());
    options.env = Arc::new(|_: &str| None);
    (TestDaemon::start(options).await, config_path)
}

async fn get_with(t: &TestDaemon, token: &str) -> (StatusCode, Value) {
    let r = t
        .http
        .get(t.url("/v1/queues"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// `tierline_config_reloads_total{result}` as rendered for Prometheus.
fn reloads(t: &TestDaemon, result: &str) -> f64 {
    let text = t.daemon().metrics().render();
    let series = format!("tierline_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_token_file_rotated_on_sighup_lets_the_new_token_in_and_keeps_the_old_out() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;

    let (status, _) = get_with(&t, "token-one").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get_with(&t, "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        body["error"]["message"],
        "the bearer token is not recognised"
    );

    // Rotation with an overlap: both tokens, then only the new one.
    rotate(&tokens, "token-one,token-two\n");
    let report = t.daemon().sighup().await.expect("reloaded");
    assert!(!report.applied, "the config file did not change");
    assert!(report.secrets_changed);
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::OK);
    assert_eq!(get_with(&t, "token-two").await.0, StatusCode::OK);

    rotate(&tokens, "token-two\n");
    let report = t.daemon().sighup().await.expect("reloaded");
    assert!(report.secrets_changed);
    assert_eq!(get_with(&t, "token-two").await.0, StatusCode::OK);
    let (status, body) = get_with(&t, "token-one").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    // Nothing rotated: not a reload.
    let report = t.daemon().sighup().await.expect("reloaded");
    assert!(!report.secrets_changed);
    assert_eq!(reloads(&t, "ok"), 2.0);
    assert_eq!(reloads(&t, "rejected"), 0.0);
    t.stop().await;
}

#[tokio::test]
async fn a_reload_that_cannot_read_the_token_file_keeps_the_old_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;

    std::fs::remove_file(&tokens).unwrap();
    let err = t.daemon().sighup().await.unwrap_err();
    match &err {
        ReloadError::Secret(SecretError::Unreadable {
            field,
            path,
            reason,
        }) => {
            assert_eq!(field, "auth.admin_tokens_file");
            assert_eq!(path, &tokens.display().to_string());
            assert!(reason.contains("No such file"), "{reason}");
        }
        other => panic!("expected an unreadable secret file, got {other:?}"),
    }
    assert!(
        err.to_string()
            .ends_with("the old config and secrets stay in force"),
        "{err}"
    );
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::OK);

    // Empty (a half-finished write by hand): refused the same way.
    std::fs::write(&tokens, "\n").unwrap();
    let err = t.daemon().sighup().await.unwrap_err();
    assert!(
        matches!(err, ReloadError::Secret(SecretError::EmptyFile { .. })),
        "{err}"
    );
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::OK);
    assert_eq!(reloads(&t, "rejected"), 2.0);

    // Fixed: the next SIGHUP puts the new token in force.
    rotate(&tokens, "token-two\n");
    assert!(t.daemon().sighup().await.unwrap().secrets_changed);
    assert_eq!(get_with(&t, "token-two").await.0, StatusCode::OK);
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn put_config_reads_secret_files_again_and_refuses_one_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;
    let put = |token: &'static str, body: String| {
        t.http
            .put(t.url("/v1/config"))
            .bearer_auth(token)
            .header("content-type", "application/toml")
            .body(body)
            .send()
    };

    // Same [auth], rotated file: the PUT re-reads it.
    rotate(&tokens, "token-two\n");
    let with_tokens = |path: &Path| {
        format!(
            "[auth]\nadmin_tokens_file = {:?}\n{ROUTING}\n[[queue]]\nid = \"sales\"\n",
            path.display().to_string()
        )
    };
    let r = put("token-one", with_tokens(&tokens)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get_with(&t, "token-two").await.0, StatusCode::OK);
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::UNAUTHORIZED);

    // A config naming a file that is not there: 422, nothing changes.
    let missing = dir.path().join("no-such-file");
    let before = t.http.get(t.url("/v1/config")).bearer_auth("token-two");
    let before = before.send().await.unwrap().text().await.unwrap();
    let r = put("token-two", with_tokens(&missing)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "secret_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "auth.admin_tokens_file: cannot read secret file {}: ",
            missing.display()
        )),
        "{message}"
    );
    assert!(!message.contains("token-two"), "{message}");
    // validate says so before anyone applies it.
    let r = t
        .http
        .post(t.url("/v1/config/validate"))
        .bearer_auth("token-two")
        .header("content-type", "application/toml")
        .body(with_tokens(&missing))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "secret_unavailable", "{body}");
    let after = t.http.get(t.url("/v1/config")).bearer_auth("token-two");
    let after = after.send().await.unwrap().text().await.unwrap();
    assert_eq!(before, after, "the old config stays in force");
    assert_eq!(get_with(&t, "token-two").await.0, StatusCode::OK);

    // A new subscriber whose signing secret cannot be read: it could not be started (nor could
    // the next start), so the change is refused now, before anything changes.
    let with_subscriber = format!(
        "{}\n[[subscriber]]\nurl = \"http://127.0.0.1:1/hook\"\nsecret_env = \"NOT_SET_ANYWHERE\"\n",
        with_tokens(&tokens)
    );
    for (method, path) in [("POST", "/v1/config/validate"), ("PUT", "/v1/config")] {
        let r = t
            .http
            .request(method.parse().unwrap(), t.url(path))
            .bearer_auth("token-two")
            .header("content-type", "application/toml")
            .body(with_subscriber.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{method}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "secret_unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("subscriber[0].secret_env"), "{message}");
        assert!(message.contains("NOT_SET_ANYWHERE"), "{message}");
        // Only a change says what stays in force; a check changes nothing.
        assert_eq!(
            message.ends_with("the old config and secrets stay in force"),
            method == "PUT",
            "{method}: {message}"
        );
    }
    let after = t.http.get(t.url("/v1/config")).bearer_auth("token-two");
    let after = after.send().await.unwrap().text().await.unwrap();
    assert_eq!(before, after, "the old config stays in force");
    t.stop().await;
}

/// What the test's webhook receiver saw: for each POST, whether its signature verified with the
/// secret the test expects at that moment.
#[derive(Clone, Default)]
struct Receiver {
    expected_secret: Arc<Mutex<String>>,
    verdicts: Arc<Mutex<Vec<bool>>>,
    got: Arc<tokio::sync::Notify>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let secret = r.expected_secret.lock().unwrap().clone();
    let keys = AuthKeys::new(&[&secret], &[], &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = headers
        .get("tierline-signature")
        .and_then(|v| v.to_str().ok());
    let ok = keys.verify_signature(header, &body, now).is_ok();
    r.verdicts.lock().unwrap().push(ok);
    r.got.notify_one();
    StatusCode::OK
}

impl Receiver {
    async fn wait_for(&self, n: usize) -> Vec<bool> {
        tokio::time::timeout(GIVE_UP, async {
            loop {
                let notified = self.got.notified();
                if self.verdicts.lock().unwrap().len() >= n {
                    return self.verdicts.lock().unwrap().clone();
                }
                notified.await;
            }
        })
        .await
        .expect("deliveries arrive")
    }
}

#[tokio::test]
async fn a_subscriber_signs_with_the_rotated_secret_file_after_sighup() {
    let receiver = Receiver::default();
    *receiver.expected_secret.lock().unwrap() = "hook-one".into();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pbx-secret");
    rotate(&secret, "hook-one\n");
    let config_path = dir.path().join("tierline.toml");
    let text = format!(
        "{ROUTING}\n[[subscriber]]\nurl = \"http://{hook}/hook\"\nsecret_file = {:?}\n",
        secret.display().to_string()
    );
    std::fs::write(&config_path, text).unwrap();
    let mut options = DaemonOptions::new(tierline::config::load(&config_path).unwrap());
    options.config_path = Some(config_path);
    let t = TestDaemon::start(options).await;

    t.apply(login("e1", "a1")).await;
    // An offer, delivered signed with the first secret.
    assert_eq!(t.apply(call("c1", "call-1")).await.len(), 1);
    assert_eq!(receiver.wait_for(1).await, [true]);

    rotate(&secret, "hook-two\n");
    *receiver.expected_secret.lock().unwrap() = "hook-two".into();
    assert!(t.daemon().sighup().await.unwrap().secrets_changed);
    // `queued` (a1 is busy), delivered signed with the rotated secret.
    assert_eq!(t.apply(call("c2", "call-2")).await.len(), 1);
    assert_eq!(receiver.wait_for(2).await, [true, true]);
    t.stop().await;
}

/// `tierline serve` on `config`, JSON logs on stdout, stderr captured.
fn serve(config: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tierline"))
        .args(["--log-format", "json", "serve", "--config"])
        .arg(config)
        .arg("--data")
        .arg(config.with_file_name("data"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

#[test]
fn the_binary_refuses_to_start_without_its_secret_file_and_warns_about_a_shared_one() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("read-tokens");
    let config = dir.path().join("tierline.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nread_tokens_file = {:?}\n{ROUTING}",
            tokens.display().to_string()
        ),
    )
    .unwrap();

    // Missing: exit 1, and stderr says which field, which file and why.
    let out = serve(&config).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "auth.read_tokens_file: cannot read secret file {}: No such file or directory",
            tokens.display()
        )),
        "{stderr}"
    );

    // Readable by everyone: it starts, warns with the field, the file and the mode, never the
    // token.
    std::fs::write(&tokens, "wallboard-token\n").unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = serve(&config);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut warning = None;
    for line in stdout.lines().map_while(Result::ok) {
        assert!(
            !line.contains("wallboard-token"),
            "a secret was logged: {line}"
        );
        if line.contains("secret file is accessible by group or others") {
            warning = Some(serde_json::from_str::<Value>(&line).unwrap());
        }
        if line.contains("tierline listening") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a warning about the file's mode");
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["fields"]["field"], "auth.read_tokens_file");
    assert_eq!(
        warning["fields"]["file"],
        tokens.display().to_string().as_str()
    );
    assert_eq!(warning["fields"]["mode"], "644");
}

/// A token taken out by a rotation stops working at once, also for the readers it already let
/// in: an SSE stream opened with it gets no decision made after the reload (it ends with an
/// `unauthorized` error event), and a long-poll waiting with it answers 401 instead of the
/// decisions. Without this a leaked token, once revoked, kept its stream (which no timeout
/// cuts) for as long as the daemon ran.
#[tokio::test]
async fn a_revoked_token_ends_the_sse_stream_and_the_long_poll_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one,token-two\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;
    t.apply(login("e1", "a1")).await;
    let r = t.http.get(t.url("/v1/decisions")).bearer_auth("token-one");
    let next: Value = r.send().await.unwrap().json().await.unwrap();
    let next = next["next"].as_u64().unwrap();

    let stream = open_stream(&t, "token-one").await;
    let poll = t
        .http
        .get(t.url(&format!("/v1/decisions?after={next}&wait_ms=50000")))
        .bearer_auth("token-one")
        .send();
    let poll = tokio::spawn(poll);
    // Let the poll reach its wait (no decision exists yet). Should it arrive only after the
    // rotation, it is refused at the door: the same answer, so the test never flakes.
    tokio::task::yield_now().await;
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::OK);

    rotate(&tokens, "token-two\n");
    assert!(t.daemon().sighup().await.unwrap().secrets_changed);
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::UNAUTHORIZED);
    // A decision made after the revocation: an offer of the call to a1.
    assert_eq!(t.apply(call("e2", "after-revocation")).await.len(), 1);

    let poll = tokio::time::timeout(GIVE_UP, poll)
        .await
        .expect("the long-poll is answered")
        .unwrap()
        .unwrap();
    assert_eq!(poll.status(), StatusCode::UNAUTHORIZED);
    let body: Value = poll.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");

    let text = read_until_it_ends(stream).await;
    assert!(!text.contains("after-revocation"), "{text}");
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("\"unauthorized\""), "{text}");
    t.stop().await;
}

/// A stream with nothing to send still ends when the reload takes its token out: it wakes on
/// the reload itself, not on the next decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_an_idle_sse_stream_without_waiting_for_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one,token-two\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;
    let stream = open_stream(&t, "token-one").await;
    rotate(&tokens, "token-two\n");
    assert!(t.daemon().sighup().await.unwrap().secrets_changed);
    let text = read_until_it_ends(stream).await;
    assert!(text.contains("\"unauthorized\""), "{text}");
    t.stop().await;
}

/// A long-poll with nothing to return answers 401 as soon as the reload takes its token out,
/// not when its `wait_ms` runs out (before, it held the connection for the whole wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_an_idle_long_poll_without_waiting_out_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    rotate(&tokens, "token-one,token-two\n");
    let (t, _) = daemon_with_token_file(dir.path(), &tokens).await;
    let poll = t
        .http
        .get(t.url("/v1/decisions?wait_ms=50000"))
        .bearer_auth("token-one")
        .send();
    let poll = tokio::spawn(poll);
    // Let the poll reach its wait; one that arrives after the rotation is refused at the door:
    // the same answer, so the test never flakes.
    assert_eq!(get_with(&t, "token-one").await.0, StatusCode::OK);
    rotate(&tokens, "token-two\n");
    assert!(t.daemon().sighup().await.unwrap().secrets_changed);
    let poll = tokio::time::timeout(GIVE_UP, poll)
        .await
        .expect("the long-poll is answered before its wait runs out")
        .unwrap()
        .unwrap();
    assert_eq!(poll.status(), StatusCode::UNAUTHORIZED);
    t.stop().await;
}

/// `GET /v1/decisions/stream` with `token`, answered 200 (its body not read yet).
async fn open_stream(t: &TestDaemon, token: &str) -> reqwest::Response {
    let stream = t
        .http
        .get(t.url("/v1/decisions/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    stream
}

/// Everything an SSE response sends until it ends; fails the test if it has not ended within
/// `GIVE_UP`.
async fn read_until_it_ends(stream: reqwest::Response) -> String {
    use futures::StreamExt;

    let mut text = String::new();
    let mut chunks = stream.bytes_stream();
    let ended = tokio::time::timeout(GIVE_UP, async {
        while let Some(chunk) = chunks.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end; got {text:?}");
    text
}
