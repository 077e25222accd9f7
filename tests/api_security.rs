//! Auth and transport security over real HTTP: webhook signatures (accepted, wrong, stale,
//! rotated, missing), bearer token roles (401 vs 403), and HTTPS with a certificate generated in
//! the test (rcgen), including a certificate reload on SIGHUP.

mod api_common;

use std::sync::Arc;

use api_common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::api::auth::sign;
use tierline::daemon::{DaemonOptions, EnvFn};

fn env(pairs: &[(&'static str, &'static str)]) -> EnvFn {
    let pairs = pairs.to_vec();
    Arc::new(move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn signed_daemon() -> TestDaemon {
    let mut config = loaded(routing());
    config.daemon.auth.webhook_secrets_env = Some("HOOK_SECRETS".into());
    let mut options = DaemonOptions::new(config);
    // Two secrets at once: the old one and the one being rotated in.
    options.env = env(&[("HOOK_SECRETS", "old-secret,new-secret")]);
    TestDaemon::start(options).await
}

async fn post_signed(t: &TestDaemon, body: &str, signature: Option<String>) -> (StatusCode, Value) {
    let mut req = t
        .http
        .post(t.url("/v1/events"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("Tierline-Signature", s);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_correctly_signed_event_is_accepted_with_either_rotated_secret() {
    let t = signed_daemon().await;
    let body = r#"{"id":"e1","type":"agent.login","agent":"a1"}"#;
    let (status, reply) = post_signed(
        &t,
        body,
        Some(sign(b"old-secret", now_s(), body.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["results"][0]["status"], "applied");
    let body = r#"{"id":"e2","type":"agent.login","agent":"a2"}"#;
    let (status, _) = post_signed(
        &t,
        body,
        Some(sign(b"new-secret", now_s(), body.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Several v1= values: one wrong, one right.
    let body = r#"{"id":"e3","type":"agent.logout","agent":"a2"}"#;
    let t_now = now_s();
    let good = sign(b"new-secret", t_now, body.as_bytes());
    let good_hex = good.split("v1=").nth(1).unwrap();
    let header = format!("t={t_now},v1={},v1={good_hex}", "0".repeat(64));
    let (status, _) = post_signed(&t, body, Some(header)).await;
    assert_eq!(status, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn wrong_stale_missing_and_malformed_signatures_are_401_without_leaking() {
    let t = signed_daemon().await;
    let body = r#"{"id":"e1","type":"agent.login","agent":"a1"}"#;
    let cases = [
        (
            Some(sign(b"guessed", now_s(), body.as_bytes())),
            "signature_mismatch",
        ),
        (
            Some(sign(b"old-secret", now_s() - 301, body.as_bytes())),
            "signature_stale",
        ),
        (None, "signature_missing"),
        (Some("t=now,v1=xyz".to_string()), "signature_malformed"),
    ];
    for (signature, expected) in cases {
        let (status, reply) = post_signed(&t, body, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{expected}");
        assert_eq!(reply["error"]["code"], expected);
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("secret,")
                && !message.contains("old-secret")
                && !message.contains("new-secret")
        );
    }
    // Two Tierline-Signature headers, a good one first: neither counts (a proxy or a reader may
    // take either one).
    let good = sign(b"old-secret", now_s(), body.as_bytes());
    for pair in [[good.as_str(), "garbage"], ["garbage", good.as_str()]] {
        let r = t
            .http
            .post(t.url("/v1/events"))
            .header("content-type", "application/json")
            .header("Tierline-Signature", pair[0])
            .header("Tierline-Signature", pair[1])
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let reply: Value = r.json().await.unwrap();
        assert_eq!(reply["error"]["code"], "signature_malformed", "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("more than once"),
            "{reply}"
        );
    }
    // A body changed after signing does not pass.
    let signature = sign(b"old-secret", now_s(), body.as_bytes());
    let tampered = body.replace("a1", "a2");
    let (status, _) = post_signed(&t, &tampered, Some(signature)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // None of it reached the engine.
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(a1["status"], "offline");
    t.stop().await;
}

#[tokio::test]
async fn read_and_admin_tokens_401_without_403_with_the_wrong_role() {
    let mut config = loaded(routing());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[("READ", "wallboard-token"), ("ADMIN", "admin-token")]);
    let t = TestDaemon::start(options).await;
    let get = |token: Option<&'static str>, path: &'static str| {
        let mut req = t.http.get(t.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            (status, challenge, body)
        }
    };
    let (status, challenge, body) = get(None, "/v1/queues").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"tierline\""));
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _, _) = get(Some("nope"), "/v1/queues").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(Some("wallboard-token"), "/v1/queues").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(Some("admin-token"), "/v1/agents").await;
    assert_eq!(status, StatusCode::OK);
    // The config text (subscriber URLs may carry credentials) is the admin's.
    let (status, _, body) = get(Some("wallboard-token"), "/v1/config").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let r = t
        .http
        .get(t.url("/v1/config"))
        .bearer_auth("admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Health checks stay open.
    let (status, _, _) = get(None, "/healthz").await;
    assert_eq!(status, StatusCode::OK);

    let force = |token: &'static str| {
        t.http
            .put(t.url("/v1/agents/a1/state"))
            .bearer_auth(token)
            .json(&json!({"state": "not_ready", "reason": "meeting"}))
            .send()
    };
    let r = force("wallboard-token").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let r = force("admin-token").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["agent"]["status"], "not_ready");
    assert_eq!(body["agent"]["reason"], "meeting");
    // A config preview shows the live state's future: the admin's, like the change itself.
    let preview = |token: Option<&'static str>| {
        let request = t
            .http
            .post(t.url("/v1/config/preview"))
            .header("content-type", "application/toml")
            .body("[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n");
        match token {
            Some(token) => request.bearer_auth(token).send(),
            None => request.send(),
        }
    };
    let r = preview(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = preview(Some("wallboard-token")).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Past the role check: what the body itself is worth (here refused, as a PUT would be, for
    // leaving out [auth]).
    let r = preview(Some("admin-token")).await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(
        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
        "{status}: {body}"
    );
    t.stop().await;
}

#[tokio::test]
async fn an_admin_can_force_an_agent_state_and_bad_requests_are_explained() {
    let t = TestDaemon::with_routing(routing()).await;
    let put = |agent: &str, body: Value| {
        t.http
            .put(t.url(&format!("/v1/agents/{agent}/state")))
            .json(&body)
            .send()
    };
    let r = put("a1", json!({"state": "available"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = put("a1", json!({"state": "asleep"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = put("a1", json!({"state": "offline", "why": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_field");
    let r = put("ghost", json!({"state": "offline"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The agent is available and takes a call.
    let offer = t.apply(call("e1", "c1")).await;
    assert_eq!(offer[0]["agent"], "a1");
    t.stop().await;
}

struct TestCert {
    cert_pem: String,
    key_pem: String,
}

fn make_cert() -> TestCert {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TestCert {
        cert_pem: cert.cert.pem(),
        key_pem: cert.key_pair.serialize_pem(),
    }
}

fn client_trusting(cert: &TestCert) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_serves_with_a_generated_certificate_and_sighup_reloads_it() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let first = make_cert();
    std::fs::write(&cert_path, &first.cert_pem).unwrap();
    std::fs::write(&key_path, &first.key_pem).unwrap();
    let mut config = loaded(routing());
    config.daemon.server.tls_cert = Some(cert_path.clone());
    config.daemon.server.tls_key = Some(key_path.clone());
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    assert!(t.daemon().is_tls());
    let port = t.daemon().addr().port();
    let url = format!("https://localhost:{port}/healthz");

    let r = client_trusting(&first).get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    // Plain HTTP to the TLS port is not served: it is told to use HTTPS.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tls_required", "{body}");

    // Rotate the certificate on disk; SIGHUP makes new connections use it.
    let second = make_cert();
    std::fs::write(&cert_path, &second.cert_pem).unwrap();
    std::fs::write(&key_path, &second.key_pem).unwrap();
    assert!(
        client_trusting(&second).get(&url).send().await.is_err(),
        "still the old cert"
    );
    t.daemon().sighup().await.unwrap();
    let r = client_trusting(&second).get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        client_trusting(&first).get(&url).send().await.is_err(),
        "the old cert is gone"
    );
    t.stop().await;
}

/// RFC 7235 §2.1: the auth scheme is case-insensitive, and any whitespace may follow it.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let mut config = loaded(routing());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[("READ", "wallboard-token")]);
    let t = TestDaemon::start(options).await;
    for header in [
        "Bearer wallboard-token",
        "BEARER wallboard-token",
        "Bearer\twallboard-token",
    ] {
        let r = t
            .http
            .get(t.url("/v1/queues"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{header:?}: {}",
            r.text().await.unwrap()
        );
    }
    t.stop().await;
}

/// With webhook secrets configured, every way to inject events needs a credential: the Kamailio
/// adapter turns its body into `interaction.abandoned` etc., so an unsigned, tokenless request
/// must not end a caller's call. (integrations.md only asks for a token "when admin tokens are
/// set"; with signatures only, the adapter is an open side door around them.)
#[tokio::test]
async fn the_kamailio_adapter_is_not_a_way_around_webhook_signatures() {
    let t = signed_daemon().await;
    let t_s = now_s();
    let body = call("e1", "c1").to_string();
    let (status, _) = post_signed(&t, &body, Some(sign(b"new-secret", t_s, body.as_bytes()))).await;
    assert_eq!(status, StatusCode::OK);
    let r = t
        .http
        .post(t.url("/v1/adapters/kamailio/report"))
        .json(&json!({"call_id": "c1", "event": "abandoned"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (_, c1) = t.get("/v1/interactions/c1").await;
    assert_eq!(c1["state"], "waiting", "{c1}");
    t.stop().await;
}

/// integrations.md: the adapter endpoints are admin endpoints; once any token is configured
/// they need an admin token, so with read tokens only (a wallboard) they are closed like every
/// admin endpoint: 401 without a token, 403 with a read token, and the call is not touched.
#[tokio::test]
async fn with_read_tokens_only_the_kamailio_adapter_is_closed_like_every_admin_endpoint() {
    let mut config = loaded(one_agent_desk());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[("READ", "wallboard-token")]);
    let t = TestDaemon::start(options).await;
    let report = json!({"call_id": "nobody@pbx", "event": "ended"});
    let url = t.url("/v1/adapters/kamailio/report");
    let r = t.http.post(&url).json(&report).send().await.unwrap();
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let r = t
        .http
        .post(&url)
        .header("authorization", "Bearer wallboard-token")
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    t.stop().await;
}

/// Two `Authorization` headers are refused on every authenticated path, the Kamailio adapter's
/// included, whatever they hold: only one may count, and a proxy in front could have read the
/// other. 401 `unauthorized` saying the header was given more than once, and nothing applied.
#[tokio::test]
async fn a_repeated_authorization_header_is_refused_everywhere() {
    let mut config = loaded(one_agent_desk());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[("READ", "wallboard-token"), ("ADMIN", "admin-token")]);
    let mut t = TestDaemon::start(options).await;
    t.token = Some("admin-token".into());
    let basic = |password: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("kamailio:{password}"))
        )
    };
    let requests = [
        ("GET", "/v1/queues", None),
        ("GET", "/v1/decisions?after=0&wait_ms=0", None),
        (
            "PUT",
            "/v1/agents/a1/state",
            Some(json!({"state": "available"})),
        ),
        (
            "POST",
            "/v1/adapters/kamailio/report",
            Some(json!({"call_id": "nobody@pbx", "event": "ended"})),
        ),
    ];
    let pairs = [
        ("Bearer admin-token".to_string(), "Bearer bad".to_string()),
        (
            "Bearer admin-token".to_string(),
            "Bearer admin-token".to_string(),
        ),
        (basic("admin-token"), "Bearer bad".to_string()),
    ];
    for (method, path, body) in &requests {
        for (first, second) in &pairs {
            let mut req = t
                .http
                .request(method.parse().unwrap(), t.url(path))
                .header("authorization", first)
                .header("authorization", second);
            if let Some(body) = body {
                req = req.json(body);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let answer: Value = r.json().await.unwrap();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {answer}"
            );
            assert_eq!(answer["error"]["code"], "unauthorized", "{answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("given more than once"),
                "{answer}"
            );
        }
    }
    let (_, a1) = t.get("/v1/agents/a1").await;
    assert_eq!(
        a1["status"], "offline",
        "nothing applied by the refused PUTs: {a1}"
    );
    // One header with the good token passes.
    for (method, path, body) in &requests {
        let mut req = t
            .http
            .request(method.parse().unwrap(), t.url(path))
            .header("authorization", "Bearer admin-token");
        if let Some(body) = body {
            req = req.json(body);
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    t.stop().await;
}

/// The Kamailio adapter takes the token as a bearer token or as the password of Basic
/// credentials (how Kamailio sends it): its 401s say so, and a wrong Basic password is not
/// called a bearer token. Other endpoints take Bearer only and say that.
#[tokio::test]
async fn the_kamailio_adapter_names_both_forms_of_credentials_in_its_401s() {
    let mut config = loaded(one_agent_desk());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[("ADMIN", "admin-token")]);
    let t = TestDaemon::start(options).await;
    let route = t.url("/v1/adapters/kamailio/route");
    let body = json!({"call_id": "c1@pbx", "queue": "support"});
    // The adapter's challenge names both schemes, so a client that answers one finds Basic.
    let both = "Bearer realm=\"tierline\", Basic realm=\"tierline\"";
    let refused = |r: reqwest::Response, expected: &'static str| async move {
        let status = r.status();
        let challenge = r.headers().get("www-authenticate").cloned();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["error"]["code"], "unauthorized", "{answer}");
        assert_eq!(
            challenge.as_ref().and_then(|v| v.to_str().ok()),
            Some(expected),
            "{answer}"
        );
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let send = || t.http.post(&route).json(&body);
    // `curl -u kamailio:bad`
    let message = refused(
        send()
            .basic_auth("kamailio", Some("bad"))
            .send()
            .await
            .unwrap(),
        both,
    )
    .await;
    assert_eq!(message, "the Basic password is not a recognised token");
    let message = refused(send().bearer_auth("bad").send().await.unwrap(), both).await;
    assert_eq!(message, "the bearer token is not recognised");
    let message = refused(send().send().await.unwrap(), both).await;
    assert!(
        message.contains("`Authorization: Bearer <token>`")
            && message.contains("Basic credentials with the token as the password"),
        "{message}"
    );
    let message = refused(
        send()
            .header("authorization", "Token admin-token")
            .send()
            .await
            .unwrap(),
        both,
    )
    .await;
    assert!(
        message.contains("neither `Bearer <token>` nor Basic credentials"),
        "{message}"
    );
    // The good token as the Basic password passes (`/report`: a `/route` would hold the call).
    let r = t
        .http
        .post(t.url("/v1/adapters/kamailio/report"))
        .json(&json!({"call_id": "nobody@pbx", "event": "ended"}))
        .basic_auth("kamailio", Some("admin-token"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::UNAUTHORIZED);
    // An endpoint that takes Bearer only says only that.
    let r = t.http.get(t.url("/v1/config")).send().await.unwrap();
    assert_eq!(
        refused(r, "Bearer realm=\"tierline\"").await,
        "this endpoint needs `Authorization: Bearer <token>`"
    );
    t.stop().await;
}

/// A config change made while the daemon runs cannot turn authentication off: a `PUT` whose TOML
/// names no tokens (or no webhook secrets) while the daemon requires them is refused, nothing of
/// it applies, and the old credentials stay in force. Turning auth off takes a restart. Changing
/// or rotating credentials live still works.
#[tokio::test]
async fn a_live_config_change_cannot_turn_authentication_off() {
    let mut config = loaded(routing());
    config.daemon.auth.read_tokens_env = Some("READ".into());
    config.daemon.auth.admin_tokens_env = Some("ADMIN".into());
    config.daemon.auth.webhook_secrets_env = Some("HOOKS".into());
    let mut options = DaemonOptions::new(config);
    options.env = env(&[
        ("READ", "wallboard-token"),
        ("ADMIN", "admin-token"),
        ("HOOKS", "hook-secret"),
        ("ADMIN_NEXT", "admin-token-2"),
    ]);
    let t = TestDaemon::start(options).await;
    let put = |toml: &'static str, token: &'static str| {
        t.http
            .put(t.url("/v1/config"))
            .bearer_auth(token)
            .header("content-type", "application/toml")
            .body(toml)
            .send()
    };
    let queues_unauthenticated = || t.http.get(t.url("/v1/queues")).send();
    let routing_only = "[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n";
    let tokens_only = "[auth]\nadmin_tokens_env = \"ADMIN\"\n\
                       [[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n";
    for (toml, lost) in [
        (routing_only, "auth.admin_tokens"),
        (tokens_only, "auth.webhook_secrets"),
    ] {
        let r = put(toml, "admin-token").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_config", "{body}");
        let problems = body["error"]["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            problems
                .iter()
                .any(|p| p["field"].as_str().is_some_and(|f| f.starts_with(lost))
                    && p["message"].as_str().is_some_and(|m| m.contains("restart"))),
            "no problem naming {lost} and the restart it takes: {body}"
        );
        // Nothing applied: still closed, the queue `sales` still there, the same tokens.
        let r = queues_unauthenticated().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = t
            .http
            .get(t.url("/v1/queues/sales"))
            .bearer_auth("wallboard-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The same check answers `validate`, which changes nothing either way.
    let r = t
        .http
        .post(t.url("/v1/config/validate"))
        .bearer_auth("admin-token")
        .header("content-type", "application/toml")
        .body(routing_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Keeping every protection while changing its credentials applies: the admin token rotates.
    let rotated = "[auth]\nread_tokens_env = \"READ\"\nadmin_tokens_env = \"ADMIN_NEXT\"\n\
                   webhook_secrets_env = \"HOOKS\"\n\
                   [[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n";
    let r = put(rotated, "admin-token").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let r = put(rotated, "admin-token").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old admin token still works"
    );
    let r = queues_unauthenticated().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.stop().await;
}

/// The certificate's expiry is a metric, at start and after each SIGHUP, so an alert can fire
/// before clients start refusing the daemon (an expired one still loads: the log says so).
#[tokio::test]
async fn the_certificate_expiry_is_exported_and_follows_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 2);
    params.not_after = rcgen::date_time_ymd(2021, 3, 4);
    let key = rcgen::KeyPair::generate().unwrap();
    let expired = params.self_signed(&key).unwrap();
    std::fs::write(&cert_path, expired.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut config = loaded(routing());
    config.daemon.server.tls_cert = Some(cert_path.clone());
    config.daemon.server.tls_key = Some(key_path.clone());
    let t = TestDaemon::start(DaemonOptions::new(config)).await;
    let not_after = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("tierline_tls_certificate_not_after_seconds "))
            .unwrap_or_else(|| panic!("no expiry series in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(not_after(&t.daemon().metrics().render()), 1_614_816_000.0);

    let fresh = make_cert();
    std::fs::write(&cert_path, &fresh.cert_pem).unwrap();
    std::fs::write(&key_path, &fresh.key_pem).unwrap();
    t.daemon().sighup().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // rcgen's default validity runs to 4096.
    let reloaded = not_after(&t.daemon().metrics().render());
    assert!(reloaded > now + 365.0 * 86_400.0);
    // A key that does not match the certificate: the old pair stays, the expiry series with it,
    // and the failed reload counts as rejected.
    let rejected = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("tierline_config_reloads_total{result=\"rejected\"} "))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let before = rejected(&t.daemon().metrics().render());
    std::fs::write(&key_path, make_cert().key_pem).unwrap();
    let _ = t.daemon().sighup().await;
    let text = t.daemon().metrics().render();
    assert_eq!(rejected(&text), before + 1.0, "{text}");
    assert_eq!(not_after(&text), reloaded);
    t.stop().await;
}
