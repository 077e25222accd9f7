//! Shared helpers for the API integration tests: a real daemon on an ephemeral port, a real HTTP
//! client, and a long-poll helper that waits for a decision (no sleeps: it blocks in the server).

#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::config::{
    AgentConfig, Channel, DaemonConfig, LoadedConfig, QueueConfig, RoutingConfig, Step,
};
use tierline::daemon::{Daemon, DaemonOptions};

/// Safety net so a broken test fails instead of hanging (never a timing assertion).
pub const GIVE_UP: Duration = Duration::from_secs(20);

pub fn agent(id: &str, tiers: &[(&str, u8)]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        address: format!("sip:{id}@pbx"),
        tiers: tiers.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        skills: vec![],
        capacity: Default::default(),
    }
}

/// `support` (voice + chat): L1 at 0, L1+L2 after 300 ms, offers expire after 300 ms, no wrap-up
/// back-off surprises; `sales` (voice): L1 only. Agents a1, a2 (support L1), b1 (support L2),
/// s1 (sales L1).
pub fn routing() -> RoutingConfig {
    let mut r = RoutingConfig::empty();
    let mut support = QueueConfig::with_defaults("support");
    support.channels = vec![Channel::Voice, Channel::Chat];
    support.offer_timeout_ms = 300;
    support.wrap_up_ms = 60_000;
    support.no_answer_delay_ms = 50;
    support.max_no_answer = 2;
    support.steps = vec![Step::new(0, &[1]), Step::new(300, &[1, 2])];
    r.queues.push(support);
    r.queues.push(QueueConfig::with_defaults("sales"));
    r.agents = vec![
        agent("a1", &[("support", 1)]),
        agent("a2", &[("support", 1)]),
        agent("b1", &[("support", 2)]),
        agent("s1", &[("sales", 1)]),
    ];
    r
}

/// One `support` queue whose offers never expire during a test, and one L1 agent `a1`: after the
/// login, every call makes exactly one decision (an offer for the first, `queued` for the rest).
pub fn one_agent_desk() -> RoutingConfig {
    let mut r = RoutingConfig::empty();
    let mut support = QueueConfig::with_defaults("support");
    support.offer_timeout_ms = 3_600_000;
    r.queues.push(support);
    r.agents = vec![agent("a1", &[("support", 1)])];
    r
}

pub fn loaded(routing: RoutingConfig) -> LoadedConfig {
    let mut daemon = DaemonConfig::default();
    daemon.server.listen = "127.0.0.1:0".into();
    LoadedConfig {
        routing,
        daemon,
        source: String::new(),
    }
}

pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub base: String,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` on reads, when set.
    pub token: Option<String>,
}

impl TestDaemon {
    pub async fn start(options: DaemonOptions) -> TestDaemon {
        let daemon = Daemon::start(options).await.expect("daemon starts");
        let scheme = if daemon.is_tls() { "https" } else { "http" };
        TestDaemon {
            base: format!("{scheme}://{}", daemon.addr()),
            daemon: Some(daemon),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub async fn with_routing(routing: RoutingConfig) -> TestDaemon {
        TestDaemon::start(DaemonOptions::new(loaded(routing))).await
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST /v1/events with a JSON body; returns status and parsed body.
    pub async fn events(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/v1/events"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }

    /// POST one event and insist it was applied; returns its decisions.
    pub async fn apply(&self, event: Value) -> Vec<Value> {
        let (status, body) = self.events(event.clone()).await;
        assert_eq!(status, StatusCode::OK, "{event} → {body}");
        let result = &body["results"][0];
        assert_eq!(result["status"], "applied", "{event} → {body}");
        result["decisions"].as_array().cloned().unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }

    /// One long-poll: decisions after `after`, waiting up to `wait_ms`.
    pub async fn poll(&self, after: u64, wait_ms: u64) -> (Vec<Value>, u64) {
        let (status, body) = self
            .get(&format!("/v1/decisions?after={after}&wait_ms={wait_ms}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["decisions"].as_array().cloned().unwrap_or_default(),
            body["next"].as_u64().expect("next"),
        )
    }

    /// Long-poll from `*after` until a decision matching `pred` arrives; returns every decision
    /// seen up to and including it, and moves `*after` past them.
    pub async fn wait_for(&self, after: &mut u64, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let give_up = tokio::time::Instant::now() + GIVE_UP;
        let mut seen = Vec::new();
        loop {
            assert!(
                tokio::time::Instant::now() < give_up,
                "no matching decision; saw {seen:#?}"
            );
            let (decisions, _) = self.poll(*after, 5_000).await;
            for d in decisions {
                *after = d["seq"].as_u64().expect("seq");
                let hit = pred(&d);
                seen.push(d);
                if hit {
                    return seen;
                }
            }
        }
    }

    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await.expect("clean stop");
        }
    }
}

pub fn login(id: &str, agent: &str) -> Value {
    json!({"id": id, "type": "agent.login", "agent": agent})
}

pub fn call(id: &str, interaction: &str) -> Value {
    json!({"id": id, "type": "interaction.arrived", "interaction": interaction,
           "channel": "voice", "queue": "support"})
}

pub fn accept(id: &str, interaction: &str, agent: &str) -> Value {
    json!({"id": id, "type": "offer.accepted", "interaction": interaction, "agent": agent})
}

/// Engine time of a decision (`at`) in Unix ms.
pub fn at_ms(d: &Value) -> u64 {
    let s = d["at"].as_str().expect("at");
    tierline::engine::decision::rfc3339_ms::parse(s).expect("RFC 3339")
}

pub fn ms(d: &Value, field: &str) -> u64 {
    tierline::engine::decision::rfc3339_ms::parse(d[field].as_str().expect(field))
        .expect("RFC 3339")
}

pub fn is(d: &Value, kind: &str) -> bool {
    d["type"] == kind
}

/// Load that fills a small command queue: `workers` clients each post `per` calls (`w{w}-{i}`)
/// as fast as they are answered (503 `overloaded` included, as a PBX would retry). Await the
/// handles to wait for them; a transport error fails the test.
pub fn flood_calls(t: &TestDaemon, workers: usize, per: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (http, base) = (reqwest::Client::new(), t.base.clone());
            tokio::spawn(async move {
                for i in 0..per {
                    http.post(format!("{base}/v1/events"))
                        .json(&call(&format!("w{w}-{i}"), &format!("c{w}-{i}")))
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect()
}

/// A journal sync that waits while its gate is closed (a disk that has stalled): give
/// `gate.sync()` to `DaemonOptions::journal_sync`, then `gate.set(true)` / `gate.set(false)`.
/// `gate.stalled().await` waits until a sync is held at the closed gate (so the batch it syncs
/// has been written and its requests are waiting for their answers).
#[derive(Clone)]
#[allow(dead_code)]
pub struct Gate(std::sync::Arc<GateState>);

pub struct GateState {
    closed: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Syncs waiting at the closed gate now.
    stalled: tokio::sync::watch::Sender<usize>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate(std::sync::Arc::new(GateState {
            closed: std::sync::Mutex::new(false),
            opened: std::sync::Condvar::new(),
            stalled: tokio::sync::watch::channel(0).0,
        }))
    }
}

#[allow(dead_code)]
impl Gate {
    pub fn set(&self, closed: bool) {
        *self.0.closed.lock().unwrap_or_else(|p| p.into_inner()) = closed;
        self.0.opened.notify_all();
    }

    pub fn sync(&self) -> Box<dyn tierline::daemon::commit::FileSync> {
        Box::new(self.clone())
    }

    /// Wait until a sync is held at the closed gate.
    pub async fn stalled(&self) {
        let mut stalled = self.0.stalled.subscribe();
        tokio::time::timeout(GIVE_UP, stalled.wait_for(|n| *n > 0))
            .await
            .expect("a sync reached the closed gate")
            .expect("the gate lives");
    }
}

impl tierline::daemon::commit::FileSync for Gate {
    fn sync(&mut self, file: &std::fs::File) -> std::io::Result<()> {
        let state = &*self.0;
        let mut closed = state.closed.lock().unwrap_or_else(|p| p.into_inner());
        if *closed {
            state.stalled.send_modify(|n| *n += 1);
            while *closed {
                closed = state.opened.wait(closed).unwrap_or_else(|p| p.into_inner());
            }
            state.stalled.send_modify(|n| *n -= 1);
        }
        file.sync_data()
    }
}

/// `PUT /v1/config` with `text` as TOML: the status and the JSON answer.
pub async fn put_config(t: &TestDaemon, text: &str) -> (StatusCode, Value) {
    send_toml(t, reqwest::Method::PUT, "/v1/config", text).await
}

/// `method path` with `text` as a TOML body: the status and the JSON answer.
pub async fn send_toml(
    t: &TestDaemon,
    method: reqwest::Method,
    path: &str,
    text: &str,
) -> (StatusCode, Value) {
    let r = t
        .http
        .request(method, t.url(path))
        .header("content-type", "application/toml")
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}
