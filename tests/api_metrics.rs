//! Metrics and KPI reports of the real daemon: events over HTTP, then the daemon's own `/metrics`
//! listener (served by `tierline::metrics::install` on an ephemeral port) and the two stats
//! endpoints must tell the same story, with exact values.
//!
//! Waits are made deterministic by the routing, not by timing: `support` has a 60 s SLA (an
//! answer within it is certain), `billing` has a 100 ms SLA and only offers to its L2 agent from
//! its 200 ms ladder step (an answer outside it is certain). The ladder timer is awaited with a
//! long-poll, never a sleep.

mod api_common;
mod metrics_support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tierline::config::{Channel, RoutingConfig, Step};
use tierline::config::{Millis, QueueConfig};
use tierline::daemon::DaemonOptions;
use tierline::engine::decision::rfc3339_ms;
use tierline::metrics::{self, wall_clock_ms};

use api_common::{accept, agent, loaded, login, TestDaemon};
use metrics_support::{has_series, sample};

/// `support` (voice + chat, SLA 60 s, long wrap-up and busy back-off so a declined call keeps
/// waiting) with agent a1 at L1; `billing` (voice, SLA 100 ms) with only b2, at L2, reachable
/// from the 200 ms step.
fn routing() -> RoutingConfig {
    let mut support = QueueConfig::with_defaults("support");
    support.channels = vec![Channel::Voice, Channel::Chat];
    support.sla_ms = 60_000;
    support.wrap_up_ms = 60_000;
    support.offer_timeout_ms = 60_000;
    support.busy_delay_ms = 60_000;

    let mut billing = QueueConfig::with_defaults("billing");
    billing.sla_ms = 100;
    billing.offer_timeout_ms = 60_000;
    billing.steps = vec![Step::new(0, &[1]), Step::new(200, &[1, 2])];

    let mut r = RoutingConfig::empty();
    r.queues = vec![support, billing];
    r.agents = vec![
        agent("a1", &[("support", 1)]),
        agent("b2", &[("billing", 2)]),
    ];
    r
}

/// A daemon whose `/metrics` is served on its own ephemeral port; returns it and the scrape URL.
async fn daemon_with_metrics() -> (TestDaemon, String) {
    daemon_with_metrics_and_journal(None).await
}

/// The same, journaling to `journal` when given.
async fn daemon_with_metrics_and_journal(
    journal: Option<std::path::PathBuf>,
) -> (TestDaemon, String) {
    serve_with_metrics(loaded(routing()), journal).await
}

/// A daemon on `config` whose `/metrics` is served on its own ephemeral port, journaling to
/// `journal` when given; returns it and the scrape URL.
async fn serve_with_metrics(
    mut config: tierline::config::LoadedConfig,
    journal: Option<std::path::PathBuf>,
) -> (TestDaemon, String) {
    config.daemon.metrics.listen = "127.0.0.1:0".into();
    let metrics = metrics::install(&config.daemon.metrics, &config.routing).expect("listener");
    let url = format!("http://{}/metrics", metrics.local_addr().expect("served"));
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    options.journal_dir = journal;
    (TestDaemon::start(options).await, url)
}

async fn scrape(d: &TestDaemon, url: &str) -> String {
    let r = d.http.get(url).send().await.expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.expect("text")
}

fn arrive(id: &str, interaction: &str, queue: &str) -> Value {
    json!({"id": id, "type": "interaction.arrived", "interaction": interaction,
           "channel": "voice", "queue": queue})
}

/// The short day both tests drive; returns how many `POST /v1/events` were answered 200.
async fn drive(d: &TestDaemon) -> u64 {
    let events = [
        login("e1", "a1"),
        login("e2", "b2"),
        arrive("e3", "c1", "support"),
        accept("e4", "c1", "a1"),
        json!({"id": "e5", "type": "interaction.ended", "interaction": "c1", "resolved": true}),
        json!({"id": "e6", "type": "interaction.rated", "interaction": "c1", "score": 5}),
        json!({"id": "e7", "type": "agent.wrapup_done", "agent": "a1"}),
        arrive("e8", "c2", "support"),
        json!({"id": "e9", "type": "offer.declined", "interaction": "c2", "agent": "a1",
               "reason": "busy"}),
        arrive("e10", "k1", "billing"),
    ];
    for e in &events {
        d.apply(e.clone()).await;
    }
    // billing's 200 ms step offers k1 to b2: wait for it in the server, not with a sleep.
    let mut after = 0;
    let seen = d
        .wait_for(&mut after, |x| {
            x["type"] == "offer" && x["interaction"] == "k1" && x["agent"] == "b2"
        })
        .await;
    assert!(!seen.is_empty());
    d.apply(accept("e11", "k1", "b2")).await;
    events.len() as u64 + 1
}

#[tokio::test]
async fn the_daemons_metrics_show_waiting_answers_sla_and_its_own_requests() {
    let (d, url) = daemon_with_metrics().await;
    let before = scrape(&d, &url).await;
    // Every configured queue's series exist at 0 before the first event.
    let answered = |q| [("queue", q), ("channel", "voice")];
    assert_eq!(
        sample(
            &before,
            "tierline_interactions_answered_total",
            &answered("support")
        ),
        0.0
    );
    assert_eq!(
        sample(
            &before,
            "tierline_interactions_answered_total",
            &answered("billing")
        ),
        0.0
    );

    let applied = drive(&d).await;
    let (status, _) = d.events(accept("e12", "no-such-call", "a1")).await;
    assert!(status.is_client_error(), "a refused event: {status}");

    let text = scrape(&d, &url).await;
    let voice = |q| [("queue", q), ("channel", "voice")];
    assert_eq!(
        sample(&text, "tierline_queue_waiting", &voice("support")),
        1.0
    );
    assert_eq!(
        sample(&text, "tierline_queue_waiting", &voice("billing")),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_queue_waiting",
            &[("queue", "support"), ("channel", "chat")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_arrived_total",
            &voice("support")
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_answered_total",
            &voice("support")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_answered_total",
            &voice("billing")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_answered_within_sla_total",
            &voice("support")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_answered_within_sla_total",
            &voice("billing")
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_offers_total",
            &[("queue", "support"), ("result", "busy")]
        ),
        1.0
    );
    // A busy phone is not the agent's refusal.
    assert_eq!(
        sample(
            &text,
            "tierline_offers_total",
            &[("queue", "support"), ("result", "declined")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_resolved_total",
            &[("queue", "support")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_ratings_total",
            &[("queue", "support"), ("score", "5")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_escalations_total",
            &[("queue", "billing"), ("step", "1")]
        ),
        1.0
    );
    // b2 is busy with k1 in billing; a1 is in back-off but available in support.
    assert_eq!(
        sample(
            &text,
            "tierline_agents",
            &[("queue", "billing"), ("tier", "2"), ("state", "busy")]
        ),
        1.0
    );
    // The billing wait (≥ 200 ms) is above its 0.1 s bucket; the support wait is within 60 s.
    assert_eq!(
        sample(
            &text,
            "tierline_wait_seconds_bucket",
            &[("queue", "billing"), ("outcome", "answered"), ("le", "0.1")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_wait_seconds_count",
            &[("queue", "billing"), ("outcome", "answered")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_wait_seconds_bucket",
            &[("queue", "support"), ("outcome", "answered"), ("le", "60")]
        ),
        1.0
    );

    // HTTP requests by route template and status, counted by the daemon's own middleware.
    let events_ok = [("route", "/v1/events"), ("status", "200")];
    assert_eq!(
        sample(&text, "tierline_http_requests_total", &events_ok),
        applied as f64
    );
    let refused: f64 = ["409", "422"]
        .iter()
        .filter(|s| text.contains(&format!("route=\"/v1/events\",status=\"{s}\"")))
        .map(|s| {
            sample(
                &text,
                "tierline_http_requests_total",
                &[("route", "/v1/events"), ("status", s)],
            )
        })
        .sum();
    assert_eq!(refused, 1.0, "one refused event");
    assert_eq!(
        sample(
            &text,
            "tierline_http_request_seconds_count",
            &[("route", "/v1/events")]
        ),
        applied as f64 + 1.0
    );
    assert!(
        sample(
            &text,
            "tierline_http_requests_total",
            &[("route", "/v1/decisions"), ("status", "200")]
        ) >= 1.0
    );

    // The engine task's own health.
    assert_eq!(sample(&text, "tierline_event_queue_depth", &[]), 0.0);
    assert!(
        sample(&text, "tierline_decision_seconds_count", &[]) >= applied as f64,
        "one engine timing per applied event at least"
    );
    assert!(
        sample(&text, "tierline_timer_lateness_seconds_count", &[]) >= 1.0,
        "billing's ladder step woke the engine task"
    );
    // No journal here: nothing was synced, and the series says so rather than being absent.
    assert_eq!(
        sample(&text, "tierline_journal_sync_seconds_count", &[]),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    d.stop().await;
}

#[tokio::test]
async fn with_a_journal_every_answered_event_was_behind_a_timed_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, url) = daemon_with_metrics_and_journal(Some(dir.path().to_path_buf())).await;
    for k in 0..3 {
        let (status, body) = d
            .events(json!([arrive(
                &format!("e{k}"),
                &format!("c{k}"),
                "support"
            )]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let text = scrape(&d, &url).await;
    // `sync = batch` (the default) answers only after a sync covers the event: at least one
    // sync, at most one per answered request (group commit may cover several).
    let syncs = sample(&text, "tierline_journal_sync_seconds_count", &[]);
    assert!((1.0..=3.0).contains(&syncs), "{syncs} syncs");
    assert!(sample(&text, "tierline_journal_sync_seconds_sum", &[]) > 0.0);
    d.stop().await;
}

#[tokio::test]
async fn stats_requests_are_counted_under_their_route_template_never_the_raw_path() {
    let (d, url) = daemon_with_metrics().await;
    for q in ["support", "billing", "nope"] {
        d.get(&format!("/v1/queues/{q}/stats")).await;
    }
    d.get("/v1/agents/a1/stats").await;
    d.get("/no/such/endpoint").await;
    let text = scrape(&d, &url).await;
    let queue_stats = |status| [("route", "/v1/queues/{id}/stats"), ("status", status)];
    assert_eq!(
        sample(&text, "tierline_http_requests_total", &queue_stats("200")),
        2.0
    );
    assert_eq!(
        sample(&text, "tierline_http_requests_total", &queue_stats("404")),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_http_requests_total",
            &[("route", "/v1/agents/{id}/stats"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    for raw in ["/v1/queues/support", "/v1/queues/nope", "/no/such"] {
        assert!(
            !text.contains(&format!("route=\"{raw}")),
            "raw path {raw} in a label"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn the_queue_stats_report_the_windows_kpis() {
    let (d, _) = daemon_with_metrics().await;
    drive(&d).await;
    // c1's rating delivered again under another event id, then a different score: each
    // interaction counts once, so neither changes the figures below.
    let (status, body) = d
        .events(
            json!({"id": "e6-again", "type": "interaction.rated", "interaction": "c1",
                       "score": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = d
        .events(
            json!({"id": "e6-other", "type": "interaction.rated", "interaction": "c1",
                       "score": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_rated");

    let (status, s) = d.get("/v1/queues/support/stats?window=15m").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["queue"], "support");
    assert_eq!(s["window_s"], 900);
    assert_eq!(s["sla_s"], 60.0);
    assert_eq!(s["arrived"], 2);
    assert_eq!(s["offered"], 2);
    assert_eq!(s["answered"], 1);
    assert_eq!(s["answered_within_sla"], 1);
    assert_eq!(s["abandoned"], 0);
    assert_eq!(s["service_level"], 1.0);
    assert_eq!(s["abandon_rate"], 0.0);
    assert_eq!(s["waiting"], 1);
    assert_eq!(s["ended"], 1);
    assert_eq!(s["resolved"], 1);
    assert_eq!(s["resolution_rate"], 1.0);
    assert_eq!(s["ratings"], 1);
    assert_eq!(s["satisfaction"], 1.0);
    assert_eq!(s["complaints"], 0);
    assert_eq!(s["complaint_share"], 0.0);
    assert!(s["longest_wait_s"].as_f64().expect("number") >= 0.0);
    // RFC 3339 like every time in the API. The window reaches 15 minutes back, but the daemon
    // started moments ago: `from` is its start, the period the figures cover.
    let time = |field: &str| {
        let text = s[field].as_str().unwrap_or_else(|| panic!("{field}: {s}"));
        rfc3339_ms::parse(text).unwrap_or_else(|e| panic!("{field}: {e}"))
    };
    let (from, to) = (time("from"), time("to"));
    assert!(from <= to && to - from < 60_000, "{s}");

    // No window: the last 15 minutes.
    let (status, billing) = d.get("/v1/queues/billing/stats").await;
    assert_eq!(status, StatusCode::OK, "{billing}");
    assert_eq!(billing["window_s"], 900);
    assert_eq!(billing["answered"], 1);
    assert_eq!(billing["answered_within_sla"], 0);
    assert_eq!(billing["service_level"], 0.0);
    assert!(
        billing["asa_s"].as_f64().expect("asa") >= 0.2,
        "k1 waited for the 200 ms step: {billing}"
    );
    // Nothing ended or rated in billing: those rates are null, not 0.
    assert_eq!(billing["resolution_rate"], Value::Null);
    assert_eq!(billing["satisfaction"], Value::Null);
    d.stop().await;
}

#[tokio::test]
async fn the_agent_stats_report_attendance_and_outcomes_since_a_time() {
    let before: Millis = wall_clock_ms();
    let (d, _) = daemon_with_metrics().await;
    drive(&d).await;

    let since = rfc3339_ms::format(before);
    let (status, a) = d.get(&format!("/v1/agents/a1/stats?since={since}")).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["agent"], "a1");
    let time = |field: &str| {
        let text = a[field].as_str().unwrap_or_else(|| panic!("{field}: {a}"));
        rfc3339_ms::parse(text).unwrap_or_else(|e| panic!("{field}: {e}"))
    };
    let (from, to) = (time("from"), time("to"));
    assert!(from >= before && from <= to, "{a}");
    assert_eq!(a["offers"], 2);
    assert_eq!(a["answered"], 1);
    assert_eq!(a["declines"], 1);
    assert_eq!(a["no_answers"], 0);
    assert_eq!(a["handled"], json!({"voice": 1}));
    assert_eq!(a["handled_total"], 1);
    assert_eq!(a["ended"], 1);
    assert_eq!(a["resolved"], 1);
    assert_eq!(a["resolution_rate"], 1.0);
    assert_eq!(a["ratings"], 1);
    assert_eq!(a["average_rating"], 5.0);
    assert!(
        a["logged_in_s"].as_f64().expect("logged_in_s") >= 0.2,
        "a1 was logged in while k1 waited for the 200 ms step: {a}"
    );
    assert!(a["aht_s"].as_f64().is_some(), "{a}");

    // No `since`: as far back as the record goes (the daemon's start).
    let (status, b) = d.get("/v1/agents/b2/stats").await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["offers"], 1);
    assert_eq!(b["answered"], 1);
    assert_eq!(b["handled_total"], 0, "k1 is still connected");
    d.stop().await;
}

/// After a restart over a journal with a call waiting and a1 busy, the first scrape (before any
/// event) shows them, and a1's stats since the restart say busy, as `GET /v1/agents/a1` does.
#[tokio::test]
async fn after_a_restart_metrics_and_agent_stats_match_the_recovered_engine() {
    // From a file's text, as `serve` starts: a restart re-applies the file over the journal's
    // config, so it must be the same config.
    const TOML: &str = "[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n\n\
                        [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\n\
                        tiers = { support = 1 }\n";
    let start = |dir: &std::path::Path| {
        let mut config = tierline::config::parse(TOML, "test.toml").expect("valid");
        config.daemon.server.listen = "127.0.0.1:0".into();
        serve_with_metrics(config, Some(dir.to_path_buf()))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, _) = start(dir.path()).await;
    d.apply(login("e1", "a1")).await;
    d.apply(arrive("e2", "c1", "support")).await;
    d.apply(accept("e3", "c1", "a1")).await;
    d.apply(arrive("e4", "c2", "support")).await;
    d.stop().await;

    let (d, url) = start(dir.path()).await;
    let text = scrape(&d, &url).await;
    let (_, q) = d.get("/v1/queues/support").await;
    assert_eq!(q["waiting"], 1, "{q}");
    // (absent series read as 0)
    let waiting = if has_series(&text, "tierline_queue_waiting") {
        sample(
            &text,
            "tierline_queue_waiting",
            &[("queue", "support"), ("channel", "voice")],
        )
    } else {
        0.0
    };
    let busy = sample(
        &text,
        "tierline_agents",
        &[("queue", "support"), ("tier", "1"), ("state", "busy")],
    );
    // The agent's attendance since the restart.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, a) = d.get("/v1/agents/a1").await;
    assert_eq!(a["activity"], "busy", "{a}");
    let (_, s) = d.get("/v1/agents/a1/stats").await;
    d.stop().await;
    let mut wrong = Vec::new();
    if (waiting, busy) != (1.0, 1.0) {
        wrong.push(format!(
            "scrape after restart: waiting {waiting} (engine 1), busy {busy} (engine 1)"
        ));
    }
    if !(s["activity_s"]["busy"].as_f64().unwrap() > 0.2
        && s["logged_in_s"].as_f64().unwrap() > 0.2)
    {
        wrong.push(format!(
            "a1 has been busy since the restart (GET /v1/agents/a1: busy); stats say: {s}"
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn bad_stats_parameters_get_clear_errors() {
    let (d, _) = daemon_with_metrics().await;
    let cases = [
        ("/v1/queues/support/stats?window=90s", 422, "invalid_window"),
        ("/v1/queues/support/stats?window=25h", 422, "invalid_window"),
        ("/v1/queues/support/stats?window=15", 422, "invalid_window"),
        ("/v1/queues/support/stats?windw=15m", 400, "invalid_query"),
        ("/v1/queues/nope/stats", 404, "unknown_queue"),
        // The unknown queue is the bigger mistake: said before the bad window.
        ("/v1/queues/nope/stats?window=bad", 404, "unknown_queue"),
        ("/v1/agents/zed/stats", 404, "unknown_agent"),
        ("/v1/agents/zed/stats?since=yesterday", 404, "unknown_agent"),
        ("/v1/agents/a1/stats?since=yesterday", 422, "invalid_since"),
        (
            "/v1/agents/a1/stats?since=2999-01-01T00:00:00Z",
            422,
            "invalid_since",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = d.get(path).await;
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{path}: {body}"
        );
    }
    // Times in messages are RFC 3339, like everywhere in the API.
    let (_, body) = d
        .get("/v1/agents/a1/stats?since=2999-01-01T00:00:00Z")
        .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("(2999-01-01T00:00:00.000Z) is after now (20"),
        "{message}"
    );
    d.stop().await;
}

#[tokio::test]
async fn each_daemon_in_a_process_serves_only_its_own_metrics() {
    let (busy, busy_url) = daemon_with_metrics().await;
    let (idle, idle_url) = daemon_with_metrics().await;
    assert_ne!(busy_url, idle_url);
    busy.apply(login("e1", "a1")).await;
    busy.apply(arrive("e2", "c1", "support")).await;

    let busy_text = scrape(&busy, &busy_url).await;
    let idle_text = scrape(&idle, &idle_url).await;
    let support = [("queue", "support"), ("channel", "voice")];
    assert_eq!(
        sample(&busy_text, "tierline_interactions_arrived_total", &support),
        1.0
    );
    assert_eq!(
        sample(&idle_text, "tierline_interactions_arrived_total", &support),
        0.0
    );
    assert!(has_series(&busy_text, "tierline_http_requests_total"));
    assert!(
        !idle_text.contains("route=\"/v1/events\""),
        "the idle daemon saw no events"
    );
    busy.stop().await;
    idle.stop().await;
}

#[tokio::test]
async fn config_reloads_count_as_ok_or_rejected() {
    let (d, url) = daemon_with_metrics().await;
    let put = |body: &'static str| {
        d.http
            .put(d.url("/v1/config"))
            .header("content-type", "application/toml")
            .body(body)
            .send()
    };
    let refused = put("[[queue]]\nid = \"q\"\nsla_s = \"soon\"\n")
        .await
        .expect("PUT");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let accepted = put("[[queue]]\nid = \"q\"\n").await.expect("PUT");
    assert_eq!(
        accepted.status(),
        StatusCode::OK,
        "{:?}",
        accepted.text().await
    );

    let text = scrape(&d, &url).await;
    let reloads = |r| sample(&text, "tierline_config_reloads_total", &[("result", r)]);
    assert_eq!(reloads("ok"), 1.0);
    assert_eq!(reloads("rejected"), 1.0);
    // The new queue has its series at once; the removed ones keep theirs, at 0.
    assert_eq!(
        sample(
            &text,
            "tierline_interactions_arrived_total",
            &[("queue", "q"), ("channel", "voice")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "tierline_queue_waiting",
            &[("queue", "support"), ("channel", "voice")]
        ),
        0.0
    );
    d.stop().await;
}

#[tokio::test]
async fn subscriber_deliveries_count_each_failed_attempt_and_the_delivery() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    // A PBX endpoint that fails twice, then accepts.
    let attempts = Arc::new(AtomicU32::new(0));
    let hook = {
        let attempts = attempts.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if attempt <= 2 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let mut config = loaded(routing());
    config.daemon.metrics.listen = "127.0.0.1:0".into();
    let mut sub =
        tierline::config::daemon::SubscriberConfig::new(&format!("http://{hook_addr}/hook"));
    sub.name = Some("pbx".into());
    sub.retry_initial_ms = 20;
    sub.retry_max_ms = 100;
    config.daemon.subscribers.push(sub);
    let metrics = metrics::install(&config.daemon.metrics, &config.routing).unwrap();
    let url = format!("http://{}/metrics", metrics.local_addr().unwrap());
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    let d = TestDaemon::start(options).await;

    // One request, one engine batch: its decisions go out as one delivery.
    let (status, body) = d
        .events(json!([login("e1", "a1"), arrive("e2", "c1", "support")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let delivered = |text: &str, result| {
        if text.contains(&format!("subscriber=\"pbx\",result=\"{result}\"")) {
            sample(
                text,
                "tierline_subscriber_deliveries_total",
                &[("subscriber", "pbx"), ("result", result)],
            )
        } else {
            0.0
        }
    };
    // Wait (bounded) until the delivery has been answered; the counts are then exact.
    let text = tokio::time::timeout(api_common::GIVE_UP, async {
        loop {
            let text = scrape(&d, &url).await;
            if delivered(&text, "ok") >= 1.0 {
                break text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the subscriber is eventually answered 200");
    assert_eq!(delivered(&text, "ok"), 1.0);
    assert_eq!(delivered(&text, "failed"), 2.0);
    assert_eq!(delivered(&text, "dropped"), 0.0);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    d.stop().await;
}

/// Engine time may run ahead of the wall clock: a restart over a journal whose last engine time
/// is later than the wall clock resumes from the journal (`Clock::not_before`), and NTP may step
/// the wall clock back while the daemon runs. A scrape must measure the longest wait on the
/// engine's clock, the one the waits were stamped with: on the wall clock a call that has
/// waited a second reads as having waited 0 s (or, the other way round, an hour).
#[tokio::test]
async fn the_longest_wait_on_metrics_is_measured_on_engine_time_not_the_wall_clock() {
    let mut q = QueueConfig::with_defaults("support");
    // No agent: the call waits; its 1 s ladder step tells (a decision) when a second has passed.
    q.steps = vec![Step::new(0, &[1]), Step::new(1_000, &[1, 2])];
    let mut r = RoutingConfig::empty();
    r.queues = vec![q];
    let mut config = loaded(r);
    config.daemon.metrics.listen = "127.0.0.1:0".into();
    let metrics = metrics::install(&config.daemon.metrics, &config.routing).expect("listener");
    let url = format!("http://{}/metrics", metrics.local_addr().expect("served"));
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(metrics);
    // Engine time an hour ahead of the wall clock, as after such a restart.
    options.clock = Some(tierline::daemon::clock::Clock::starting_at(
        wall_clock_ms() + 3_600_000,
    ));
    let d = TestDaemon::start(options).await;
    d.apply(arrive("e1", "c1", "support")).await;
    let mut after = 0;
    d.wait_for(&mut after, |x| {
        x["type"] == "escalated" && x["interaction"] == "c1"
    })
    .await;
    let text = scrape(&d, &url).await;
    let (_, queue) = d.get("/v1/queues/support").await;
    d.stop().await;
    let oldest = sample(
        &text,
        "tierline_queue_oldest_wait_seconds",
        &[("queue", "support")],
    );
    assert!(
        (1.0..600.0).contains(&oldest),
        "c1 has waited past its 1 s step (GET /v1/queues/support: {queue}); the scrape says \
         the longest wait is {oldest} s"
    );
}

/// The metrics listener answers what it does not serve in the API's JSON error shape: an unknown
/// path 404 `not_found`, another method on `/metrics` 405 `method_not_allowed` with `Allow`.
#[tokio::test]
async fn the_metrics_listener_answers_a_wrong_path_or_method_with_a_json_error() {
    let config = loaded(routing());
    let mut settings = config.daemon.metrics.clone();
    settings.listen = "127.0.0.1:0".into();
    let metrics = metrics::install(&settings, &config.routing).expect("listener");
    let base = format!("http://{}", metrics.local_addr().unwrap());
    let http = reqwest::Client::new();
    let r = http.post(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let r = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Refused events are counted by code, a batch's refused elements too (the batch itself is a
/// 200, so no HTTP series shows them).
#[tokio::test]
async fn refused_events_are_counted_by_code_batch_elements_included() {
    let t = TestDaemon::with_routing(routing()).await;
    t.apply(login("e1", "a1")).await;
    let refused =
        |text: &str, code: &str| sample(text, "tierline_events_refused_total", &[("code", code)]);
    assert!(!has_series(
        &t.daemon().metrics().render(),
        "tierline_events_refused_total"
    ));
    // A single accept for an offer that does not exist: a 409, counted.
    let (status, _) = t.events(accept("e2", "nobody-call", "a1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // In a batch: one applied, one refused by the engine, one refused by its own fields.
    let (status, body) = t
        .events(json!([
            {"id": "b1", "type": "interaction.arrived", "interaction": "c1",
             "channel": "voice", "queue": "support"},
            {"id": "b2", "type": "offer.declined", "interaction": "c1", "agent": "ghost",
             "reason": "busy"},
            {"id": "b3", "type": "agent.logout", "agent": "a1", "colour": "red"},
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A single event with a field of its own refused.
    let (status, _) = t
        .events(json!({"id": "e3", "type": "agent.logout", "agent": "a1", "colour": "red"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = t.daemon().metrics().render();
    assert_eq!(refused(&text, "unknown_interaction"), 1.0, "{text}");
    assert_eq!(refused(&text, "unknown_agent"), 1.0, "{text}");
    assert_eq!(refused(&text, "unknown_field"), 2.0, "{text}");
    t.stop().await;
}
