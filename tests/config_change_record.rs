//! A config change as the journal records it: the TOML text with the routing config it resolved
//! to (replay applies that, whatever the replaying build's validation), or the text alone when
//! both would not fit in one record, so that a config accepted before the resolved config was
//! journaled is still accepted. Found by review: a 17 MB roster changed while the daemon was down
//! was no longer applied at start, and the daemon ran on the recovered config.

#[path = "api_common/mod.rs"]
mod api_common;
#[path = "metrics_support/mod.rs"]
mod metrics_support;

use api_common::TestDaemon;
use reqwest::StatusCode;
use tierline::config::{self, RoutingConfig};
use tierline::daemon::core::{Input, TimedInput};
use tierline::daemon::{Daemon, DaemonError, DaemonOptions};
use tierline::journal::frame::MAX_RECORD_BYTES;

fn roundtrip(c: &RoutingConfig) -> RoutingConfig {
    serde_json::from_str(&serde_json::to_string(c).unwrap()).unwrap()
}

/// Every config in the repository, and one with a bit of everything (extreme integers, odd time
/// zones, quotes and NUL in strings, every strategy and channel), reads back from the journal's
/// JSON exactly: replay applies what was applied live.
#[test]
fn every_config_round_trips_through_the_json_record() {
    for f in [
        "config/tierline.toml",
        "config/bench.toml",
        "config/scenarios/support-ladder.routing.toml",
        "config/scenarios/centre-1000.routing.toml",
        "integrations/kamailio/tierline-e2e.toml",
    ] {
        let text = std::fs::read_to_string(f).unwrap();
        let c = config::parse(&text, f).unwrap();
        assert_eq!(roundtrip(&c.routing), c.routing, "{f}");
    }
    let text = r#"
[routing]
seed = 9223372036854775807
default_queue = "q"

[channels.chat]
capacity = 7
exclusive = true

[limits]
max_agents = 9
max_history = 3

[[queue]]
id = "q"
channels = ["voice", "chat", "email", "callback"]
strategy = "random"
max_wait_s = 0.001
overflow = { target = "sip:\"weird\"\u0000@pbx" }
schedule = { tz = "America/Argentina/ComodRivadavia", sun = ["00:00-24:00"], mon = ["23:59-24:00"] }
closed_target = "é🙂"
count_declines = false
max_no_answer = 0
max_waiting = 0
escalation_priority_boost = -2147483648
drain_to = "r"
steps = [ { after_s = 0, tiers = [255, 1], priority_boost = 2147483647, skip_if_no_agents = true } ]

[[queue]]
id = "r"
channels = ["voice", "chat", "email", "callback"]
schedule = { tz = "Etc/GMT+12" }

[[agent]]
id = "a"
address = "x"
tiers = { q = 255, r = 1 }
skills = ["b", "a", "a"]
capacity = { callback = 4, voice = 1, email = 1 }

[[rule]]
when = { channel = "email", " " = "", "k\"ey" = "v\\al" }
queue = "r"
priority = -5
"#;
    let c = config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(roundtrip(&c.routing), c.routing);
}

/// A roster of `n` agents, each as an operator would write it.
fn roster_config(n: usize) -> String {
    let mut text =
        String::from("[server]\nlisten = \"127.0.0.1:0\"\n\n[[queue]]\nid = \"support\"\n\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[agent]]\nid = \"agent-{i:06}\"\naddress = \"sip:agent-{i:06}@pbx.example.com\"\n\
             tiers = {{ support = 1 }}\n\n"
        ));
    }
    text
}

fn record_bytes(input: Input) -> usize {
    serde_json::to_vec(&TimedInput {
        at: u64::MAX,
        input,
    })
    .unwrap()
    .len()
}

/// What `reconfigure_journaled` chose for `loaded`.
fn journaled(loaded: &config::LoadedConfig) -> Result<Input, String> {
    Input::reconfigure_journaled(loaded, "tierline.toml")
}

fn has_resolved(input: &Input) -> bool {
    matches!(
        input,
        Input::Reconfigure {
            resolved: Some(_),
            ..
        }
    )
}

/// A valid config whose text, journaled alone, takes exactly `bytes` bytes in a record: a small
/// roster and a comment of `"` (one byte in the TOML, two in the record's JSON string). Cheap to
/// parse at any size, and its resolved config is small: just over the limit with it, just under
/// without, is a matter of a few bytes.
fn with_text_of(bytes: usize) -> String {
    let base = roster_config(1) + "# \n";
    let base_len = record_bytes(text_only(&base));
    assert!(
        bytes >= base_len && (bytes - base_len) % 2 == 0,
        "{bytes} from {base_len}"
    );
    let text = format!(
        "{}# {}\n",
        roster_config(1),
        "\"".repeat((bytes - base_len) / 2)
    );
    assert_eq!(record_bytes(text_only(&text)), bytes);
    text
}

fn text_only(text: &str) -> Input {
    Input::Reconfigure {
        source: text.to_string(),
        origin: "tierline.toml".into(),
        resolved: None,
    }
}

/// Just under the limit as text (64 bytes or one more to spare), over it with the resolved
/// config.
fn nearly_full() -> String {
    let base_len = record_bytes(text_only(&(roster_config(1) + "# \n")));
    let target = MAX_RECORD_BYTES - 64;
    with_text_of(target - (target - base_len) % 2)
}

#[test]
fn a_config_change_is_journaled_with_its_resolved_config_when_that_fits_else_as_text() {
    // Small: text and resolved config.
    let small = config::parse(&roster_config(3), "tierline.toml").unwrap();
    let input = journaled(&small).unwrap();
    assert!(has_resolved(&input));
    assert!(record_bytes(input) <= MAX_RECORD_BYTES);

    // The text fits, the text with the resolved config does not (as for a roster of 170,000
    // agents, within the default max_agents: 18.5 MB as text, 38 MB with the resolved config):
    // journaled as text, as every config change was before the resolved config was added.
    let text = nearly_full();
    let big = config::parse(&text, "tierline.toml").unwrap();
    assert!(record_bytes(Input::reconfigure(&big, "tierline.toml")) > MAX_RECORD_BYTES);
    let input = journaled(&big).unwrap();
    assert!(!has_resolved(&input));
    assert!(record_bytes(input) <= MAX_RECORD_BYTES);

    // Not even the text fits: refused, naming both sizes.
    let mut huge = big;
    huge.source.push_str(&format!("# {}\n", "\"".repeat(64)));
    let err = journaled(&huge).expect_err("refused");
    assert!(
        err.contains("bytes once journaled") && err.contains(&MAX_RECORD_BYTES.to_string()),
        "{err}"
    );
}

/// The config file was edited while the daemon was down, to a roster whose record with the
/// resolved config would exceed one journal record: it is applied at start (journaled as its
/// text), and still in force after a restart that replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_config_file_changed_while_down_is_applied_at_start() {
    let small = roster_config(0);
    let big = nearly_full();
    let dir = tempfile::tempdir().unwrap();
    let start = |text: &str| {
        let mut options = DaemonOptions::new(config::parse(text, "tierline.toml").unwrap());
        options.journal_dir = Some(dir.path().to_path_buf());
        TestDaemon::start(options)
    };
    let served = |d: &TestDaemon| {
        let request = d.http.get(d.url("/v1/config"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let agents = |d: &TestDaemon| {
        let request = d.http.get(d.url("/v1/agents/agent-000000"));
        async move { request.send().await.unwrap().status() }
    };
    let first = start(&small).await;
    assert_eq!(agents(&first).await, StatusCode::NOT_FOUND);
    first.stop().await;

    let second = start(&big).await;
    assert!(
        served(&second).await == big,
        "the file's config is in force"
    );
    assert_eq!(agents(&second).await, StatusCode::OK);
    second.stop().await;

    // Restored on the next start (from the snapshot the clean stop wrote): still in force.
    let third = start(&big).await;
    assert!(served(&third).await == big);
    assert_eq!(agents(&third).await, StatusCode::OK);
    third.stop().await;
}

/// A config file changed while the daemon was down that cannot be journaled at all stops the
/// start with a config error (exit 2), instead of running on the recovered config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_too_large_to_journal_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = |loaded: config::LoadedConfig| {
        let mut options = DaemonOptions::new(loaded);
        options.journal_dir = Some(dir.path().to_path_buf());
        options
    };
    let first = TestDaemon::start(options(
        config::parse(&roster_config(1), "tierline.toml").unwrap(),
    ))
    .await;
    first.stop().await;
    let mut huge = config::parse(&nearly_full(), "tierline.toml").unwrap();
    huge.source.push_str(&format!("# {}\n", "\"".repeat(64)));
    let err = Daemon::start(options(huge)).await.err().expect("refused");
    assert!(
        matches!(&err, DaemonError::StartupConfig { problem, .. }
            if problem.contains("bytes once journaled")),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    // Nothing changed: the recovered config starts as before.
    let again = TestDaemon::start(options(
        config::parse(&roster_config(1), "tierline.toml").unwrap(),
    ))
    .await;
    again.stop().await;
}

/// A config file changed while the daemon was down counts in `tierline_config_reloads_total`
/// like any other change: `ok` when applied at start, `rejected` when the engine refuses it (a
/// removed queue a call still waits in), so an alert on rejected reloads sees a deploy that did
/// not take at a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_changed_while_down_is_counted_as_a_reload_applied_or_rejected() {
    let two = "[[queue]]\nid = \"a\"\n\n[[queue]]\nid = \"b\"\n";
    let dir = tempfile::tempdir().unwrap();
    let start = |text: &str| {
        let mut loaded = config::parse(text, "tierline.toml").unwrap();
        loaded.daemon.server.listen = "127.0.0.1:0".into();
        loaded.daemon.metrics.listen = "127.0.0.1:0".into();
        let metrics =
            tierline::metrics::install(&loaded.daemon.metrics, &loaded.routing).expect("listener");
        let url = format!("http://{}/metrics", metrics.local_addr().expect("served"));
        let mut options = DaemonOptions::new(loaded);
        options.metrics = Some(metrics);
        options.journal_dir = Some(dir.path().to_path_buf());
        async move { (TestDaemon::start(options).await, url) }
    };
    let reloads = |d: &TestDaemon, url: String| {
        let request = d.http.get(url);
        async move {
            let text = request.send().await.unwrap().text().await.unwrap();
            let n = |result| {
                metrics_support::sample(
                    &text,
                    "tierline_config_reloads_total",
                    &[("result", result)],
                )
            };
            (n("ok"), n("rejected"))
        }
    };
    let (first, _) = start(two).await;
    first
        .apply(
            serde_json::json!({"id": "e1", "type": "interaction.arrived",
            "interaction": "c1", "channel": "voice", "queue": "b"}),
        )
        .await;
    first.stop().await;
    // `b` removed with c1 waiting in it and no drain_to: refused at start.
    let (second, url) = start("[[queue]]\nid = \"a\"\n").await;
    assert_eq!(reloads(&second, url).await, (0.0, 1.0));
    second.stop().await;
    // A change the engine takes: applied at start.
    let (third, url) = start(&format!("{two}\n[[queue]]\nid = \"c\"\n")).await;
    assert_eq!(reloads(&third, url).await, (1.0, 0.0));
    third.stop().await;
}
