//! Random requests against a running daemon: any method, any route (known ones with odd ids and
//! query strings, unknown ones), any content type, bodies from valid events to garbage. Every
//! answer is JSON (but `GET /v1/config`, the config file as TOML); every error (4xx, 5xx) is `{"error":{"code":"…","message":"…"}}` with both
//! non-empty; none is a 5xx other than the documented 503; and the daemon still answers
//! normally afterwards, with the state the valid requests made.

mod api_common;

use std::sync::Arc;

use api_common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tierline::daemon::{DaemonOptions, EnvFn};

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Paths: every route (streams and long waits excepted), with ids and queries good and bad, and
/// the method each route answers (a request uses another one time in four).
const PATHS: &[(&str, &str)] = &[
    ("POST", "/v1/events"),
    ("POST", "/v1/events?x=1"),
    ("GET", "/v1/decisions"),
    ("GET", "/v1/decisions?after=0&limit=5"),
    ("GET", "/v1/decisions?after=-1"),
    ("GET", "/v1/decisions?after=99999999999999999999999"),
    ("GET", "/v1/decisions?limit=0"),
    ("GET", "/v1/decisions?limit=abc"),
    ("GET", "/v1/decisions?wait_ms=1"),
    ("GET", "/v1/decisions/stream?after=abc"),
    ("GET", "/v1/decisions/stream?after=99999999999"),
    ("GET", "/v1/queues"),
    ("GET", "/v1/queues/support"),
    ("GET", "/v1/queues/nowhere"),
    ("GET", "/v1/queues/%ff%fe"),
    ("GET", "/v1/queues/support/stats"),
    ("GET", "/v1/queues/support/stats?window=x"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/a1"),
    ("GET", "/v1/agents/nobody"),
    ("GET", "/v1/agents/a1/stats"),
    ("PUT", "/v1/agents/a1/state"),
    ("PUT", "/v1/agents/nobody/state"),
    ("GET", "/v1/interactions/c1"),
    ("GET", "/v1/interactions/"),
    ("GET", "/v1/interactions/%00"),
    ("GET", "/v1/config"),
    ("POST", "/v1/config/validate"),
    ("POST", "/v1/config/preview"),
    // The adapter holds a call that waits up to `hold_ms` (20 s by default): keep it short.
    ("POST", "/v1/adapters/kamailio/route?hold_ms=50"),
    ("POST", "/v1/adapters/kamailio/route?hold_ms=abc"),
    ("POST", "/v1/adapters/kamailio/report"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/"),
    ("POST", "//v1//events"),
    ("POST", "/v1/events/"),
    ("GET", "/v2/events"),
    ("PUT", "/v1/config"),
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some("application/toml"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=latin-1"),
];

/// Bodies: valid events of several kinds, admin bodies, and what a broken peer sends.
const BODIES: &[&str] = &[
    "",
    "{",
    "null",
    "[]",
    "{}",
    "\u{feff}{}",
    "[1,2,3]",
    r#"{"id":"r1","type":"agent.login","agent":"a1"}"#,
    r#"{"id":"r2","type":"interaction.arrived","interaction":"c1","channel":"voice","queue":"support"}"#,
    r#"{"id":"r3","type":"offer.accepted","interaction":"c1","agent":"a1"}"#,
    r#"{"id":"r4","type":"interaction.ended","interaction":"c1"}"#,
    r#"{"id":"r5","type":"agent.logout","agent":"a1"}"#,
    r#"{"id":"r6","type":"interaction.arrived","interaction":"c1","channel":"fax"}"#,
    r#"[{"id":"r7","type":"agent.login","agent":"a1"},{"id":"r8"},"x"]"#,
    r#"{"state":"available"}"#,
    r#"{"state":"not_ready","reason":"lunch"}"#,
    r#"{"state":"offline","reason":""}"#,
    "[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n",
    "[[queue]]\nid = ",
    "call_id=abc&queue=support",
    r#"{"call_id":"k1","queue":"support"}"#,
    r#"{"call_id":"k1","event":"answered","agent":"a1"}"#,
    "\u{0}\u{1}\u{2}",
    "\u{fffd}\u{fffd}",
];

#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: usize,
    content_type: usize,
    body: usize,
    auth: usize,
}

/// Credentials: none, the locked-down daemon's read and admin tokens, wrong ones, a signature
/// that cannot be right.
const AUTH: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("Bearer wallboard-token"), None),
    (Some("Bearer admin-token"), None),
    (Some("Bearer nope"), None),
    (Some("Basic YTpi"), None),
    (None, Some("t=1,v1=00")),
    (Some("Bearer admin-token"), Some("garbage")),
];

fn request() -> impl Strategy<Value = Request> {
    (
        prop::option::weighted(0.25, 0..METHODS.len()),
        0..PATHS.len(),
        0..CONTENT_TYPES.len(),
        0..BODIES.len(),
        0..AUTH.len(),
    )
        .prop_map(|(other, path, content_type, body, auth)| Request {
            method: other.map_or(PATHS[path].0, |m| METHODS[m]),
            path,
            content_type,
            body,
            auth,
        })
}

/// Send one request; check the answer's shape. Returns the status for the tally.
async fn check_one(t: &TestDaemon, r: &Request) -> Result<StatusCode, String> {
    let method = Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
    let path = PATHS[r.path].1;
    // A request that got a stream instead of an answer would hang the run: give up on it.
    let mut req = t
        .http
        .request(method, t.url(path))
        .timeout(std::time::Duration::from_secs(10))
        .body(BODIES[r.body]);
    if let Some(ct) = CONTENT_TYPES[r.content_type] {
        req = req.header("content-type", ct);
    }
    let (authorization, signature) = AUTH[r.auth];
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(s) = signature {
        req = req.header("tierline-signature", s);
    }
    let what = format!(
        "{} {path} {:?} {:?} {:?}",
        r.method, CONTENT_TYPES[r.content_type], BODIES[r.body], AUTH[r.auth]
    );
    let answer = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = answer.status();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = answer.text().await.map_err(|e| format!("{what}: {e}"))?;
    // The one answer that is not JSON: the config file itself, as TOML.
    let config_file = path == "/v1/config" && r.method == "GET" && status.is_success();
    if config_file {
        return if content_type.starts_with("application/toml") {
            Ok(status)
        } else {
            Err(format!("{what}: the config file as `{content_type}`"))
        };
    }
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "{what}: {status} with content type `{content_type}`: {text}"
        ));
    }
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{what}: {status}, not JSON ({e}): {text}"))?;
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        return Err(format!("{what}: {status}: {text}"));
    }
    if status.is_client_error() || status.is_server_error() {
        let code = body["error"]["code"].as_str().unwrap_or("");
        let message = body["error"]["message"].as_str().unwrap_or("");
        if code.is_empty() || message.is_empty() {
            return Err(format!(
                "{what}: {status} without an error code and message: {text}"
            ));
        }
    }
    Ok(status)
}

/// Run the property against `t`; `refusals`: the error statuses the mix must have reached.
fn every_answer_has_its_shape(runtime: &tokio::runtime::Runtime, t: &TestDaemon, refusals: &[u16]) {
    let mut runner = TestRunner::new(Config {
        // Enough requests to reach every status `refusals` names, whatever PROPTEST_CASES says.
        cases: Config::default().cases.max(64),
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    let outcome = runner.run(&prop::collection::vec(request(), 1..6), |requests| {
        for r in &requests {
            let status = runtime
                .block_on(check_one(t, r))
                .map_err(TestCaseError::fail)?;
            *tally.borrow_mut().entry(status.as_u16()).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // The mix reached answers and the refusals expected of this daemon.
    let tally = tally.into_inner();
    assert!(
        tally.keys().any(|s| *s < 300),
        "no request succeeded: {tally:?}"
    );
    for status in refusals {
        assert!(tally.contains_key(status), "no {status} in {tally:?}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("no runtime: {e}"),
    }
}

#[test]
fn any_request_gets_json_and_every_error_has_a_code_and_a_message() {
    let runtime = runtime();
    let t = runtime.block_on(TestDaemon::with_routing(one_agent_desk()));
    every_answer_has_its_shape(&runtime, &t, &[400, 404, 405, 415, 422]);
    // Still answering, with what the valid requests did.
    let (status, body) = runtime.block_on(t.get("/v1/queues"));
    assert_eq!(status, StatusCode::OK, "{body}");
    runtime.block_on(t.stop());
}

#[test]
fn with_tokens_and_signatures_required_every_refusal_is_json_too() {
    let runtime = runtime();
    let mut config = loaded(one_agent_desk());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    config.daemon.auth.webhook_secrets_env = Some("HOOKS".into());
    let mut options = DaemonOptions::new(config);
    let env: EnvFn = Arc::new(|name: &str| match name {
        "READ" => Some("wallboard-token".into()),
        "ADMIN" => Some("admin-token".into()),
        "HOOKS" => Some("hook-secret".into()),
        _ => None,
    });
    options.env = env;
    let t = runtime.block_on(TestDaemon::start(options));
    every_answer_has_its_shape(&runtime, &t, &[401, 403, 404, 405]);
    runtime.block_on(t.stop());
}
