//! Review: metrics after a journal restart (real daemon).

mod api_common;
mod metrics_support;

use serde_json::json;
use tierline::daemon::DaemonOptions;
use tierline::metrics;

use api_common::{accept, login, TestDaemon};
use metrics_support::sample;

const TOML: &str = r#"
[server]
listen = "127.0.0.1:0"

[metrics]
listen = "127.0.0.1:0"

[[queue]]
id = "support"
channels = ["voice"]

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }
"#;

async fn start(journal: &std::path::Path) -> (TestDaemon, String) {
    let config = tierline::config::parse(TOML, "test.toml").expect("valid");
    let m = metrics::install(&config.daemon.metrics, &config.routing).expect("listener");
    let url = format!("http://{}/metrics", m.local_addr().expect("served"));
    let mut options = DaemonOptions::new(config);
    options.metrics = Some(m);
    options.journal_dir = Some(journal.to_path_buf());
    (TestDaemon::start(options).await, url)
}

#[tokio::test]
async fn after_a_restart_metrics_and_agent_stats_match_the_recovered_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, _) = start(dir.path()).await;
    d.apply(login("e1", "a1")).await;
    d.apply(
        json!({"id": "e2", "type": "interaction.arrived", "interaction": "c1",
                   "channel": "voice", "queue": "support"}),
    )
    .await;
    d.apply(accept("e3", "c1", "a1")).await;
    d.apply(
        json!({"id": "e4", "type": "interaction.arrived", "interaction": "c2",
                   "channel": "voice", "queue": "support"}),
    )
    .await;
    d.stop().await;

    let (d, url) = start(dir.path()).await;
    // A wallboard scrape right after the restart, before any event.
    let text = d.http.get(&url).send().await.unwrap().text().await.unwrap();
    let (_, q) = d.get("/v1/queues/support").await;
    assert_eq!(q["waiting"], 1, "{q}");
    // (absent series read as 0)
    let waiting = if metrics_support::has_series(&text, "tierline_queue_waiting") {
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
