//! `simulate --replay` as a what-if: a new config that removed a queue, per-agent figures in
//! both columns, and a journal whose records are not all there.

use std::path::Path;

use tierline::config::daemon::SyncMode;
use tierline::journal::{JournalOptions, LogOptions};
use tierline::sim::record;
use tierline::sim::replay::{replay, ReplayOptions};
use tierline::sim::scenario;

const TWO_QUEUES: &str = r#"
[defaults]
wrap_up_s = 10
sla_s = 30

[[queue]]
id = "support"
channels = ["voice"]

[[queue]]
id = "sales"
channels = ["voice"]
"#;

const SUPPORT_ONLY: &str = r#"
[defaults]
wrap_up_s = 10
sla_s = 30

[[queue]]
id = "support"
channels = ["voice"]
"#;

fn record_into(dir: &Path, config: &str, scenario_text: &str) {
    let loaded = tierline::config::parse(config, "rec.toml").expect("config");
    let plan = scenario::parse(scenario_text, "s.toml", &loaded.routing).expect("scenario");
    let options = JournalOptions {
        log: LogOptions {
            sync: SyncMode::None,
            segment_bytes: 64 << 20,
        },
        ..JournalOptions::default()
    };
    record::record(loaded, &plan, 3, false, dir, options).expect("recorded");
}

fn opts(agents: bool) -> ReplayOptions {
    ReplayOptions {
        seed: 1,
        agents,
        add_roster_agents: false,
    }
}

/// An hour of calls, 60 s each: `(queue, per hour)` per stream, 3 agents with `tiers`.
fn traffic(streams: &[(&str, u32)], tiers: &str) -> String {
    let mut text = String::from("duration_s = 3600\n");
    for (queue, rate) in streams {
        text += &format!(
            "[[arrivals]]\nqueue = \"{queue}\"\nrate_per_hour = {rate}\nhandle = {{ dist = \"fixed\", s = 60 }}\n"
        );
    }
    text + &format!("[[agents]]\ncount = 3\ntiers = {tiers}\n")
}

/// One voice queue overflowing to voicemail after `max_wait_s`.
fn overflowing(max_wait_s: u32) -> String {
    format!(
        "[defaults]\nwrap_up_s = 0\nsla_s = 30\n\n[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n\
         max_wait_s = {max_wait_s}\noverflow = {{ target = \"sip:voicemail@pbx\" }}\n"
    )
}

/// docs/SIMULATOR.md: "A queue only one side has shows `(no such queue)` in the other column."
#[test]
fn replay_with_a_config_that_removed_a_queue_runs() {
    let dir = tempfile::tempdir().unwrap();
    record_into(
        dir.path(),
        TWO_QUEUES,
        &traffic(
            &[("support", 60), ("sales", 20)],
            "{ support = 1, sales = 1 }",
        ),
    );
    let new = tierline::config::parse(SUPPORT_ONLY, "new.toml")
        .unwrap()
        .routing;
    let r = replay(dir.path(), new, &opts(false));
    let r = match r {
        Ok(r) => r,
        Err(e) => panic!("replay failed: {e}"),
    };
    assert!(r.new.overall.answered > 0);
    // The `sales` arrivals named a queue the new config lacks; they are counted as such.
    assert!(r.traffic.queue_not_in_new > 0, "{:?}", r.traffic);
    assert_eq!(r.traffic.refused_in_new_run, 0, "{:?}", r.traffic);
}

/// Removing a queue nobody called must not keep the agents who also served it at home.
#[test]
fn agents_with_a_tier_in_a_removed_queue_still_log_in() {
    let dir = tempfile::tempdir().unwrap();
    record_into(
        dir.path(),
        TWO_QUEUES,
        &traffic(&[("support", 60)], "{ support = 1, sales = 1 }"),
    );
    let new = tierline::config::parse(SUPPORT_ONLY, "new.toml")
        .unwrap()
        .routing;
    let r = replay(dir.path(), new, &opts(false)).expect("replay runs");
    assert_eq!(r.traffic.refused_in_new_run, 0, "{:?}", r.traffic);
    assert_eq!(r.traffic.tiers_not_in_new, 3, "{:?}", r.traffic);
    assert_eq!(
        r.new.overall.answered, r.old.overall.answered,
        "old {:?}\nnew {:?}",
        r.old.overall, r.new.overall
    );
}

/// `--agents`: "add per-agent figures"; old and new are both "a Report, as above".
#[test]
fn replay_with_agents_reports_agents_in_both_columns() {
    let dir = tempfile::tempdir().unwrap();
    record_into(
        dir.path(),
        SUPPORT_ONLY,
        r#"
duration_s = 3600
[[arrivals]]
queue = "support"
rate_per_hour = 60
handle = { dist = "fixed", s = 60 }
[[agents]]
count = 3
tiers = { support = 1 }
"#,
    );
    let new = tierline::config::parse(SUPPORT_ONLY, "new.toml")
        .unwrap()
        .routing;
    let r = replay(dir.path(), new, &opts(true)).expect("replay runs");
    assert!(r.new.agents.is_some());
    assert!(
        r.old.agents.is_some(),
        "old column has no per-agent figures"
    );
    // The table shows them too (it printed nothing more with --agents).
    let table = r.to_table();
    let agents = r.new.agents.as_ref().unwrap();
    assert_eq!(agents.len(), 3, "{agents:?}");
    let header = table.find("\nagent ").expect("an agents table");
    for a in agents {
        assert!(table[header..].contains(&a.agent), "{table}");
    }
    let without = replay(
        dir.path(),
        tierline::config::parse(SUPPORT_ONLY, "new.toml")
            .unwrap()
            .routing,
        &opts(false),
    )
    .expect("replay runs")
    .to_table();
    assert!(!without.contains("\nagent "), "{without}");
}

/// docs/SIMULATOR.md: option 1 is "the whole history, exactly"; damage stops the replay. A
/// directory whose segments are gone (snapshot 268 proves records 1..=268 existed) must not be
/// replayed as an empty "whole recorded history".
#[test]
fn a_journal_whose_segments_are_missing_is_not_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    record_into(
        dir.path(),
        SUPPORT_ONLY,
        &traffic(&[("support", 60)], "{ support = 1 }"),
    );
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            std::fs::remove_file(p).unwrap();
        }
    }
    match replay(
        dir.path(),
        tierline::config::parse(SUPPORT_ONLY, "n.toml")
            .unwrap()
            .routing,
        &opts(false),
    ) {
        Err(_) => {}
        Ok(r) => assert!(
            r.recording.history_incomplete,
            "replayed {} records as \"{}\"",
            r.recording.records, r.recording.start_from
        ),
    }
}

/// Agents always answer after 8 s. In the recording (max_wait 10 s) offers made after 2 s of
/// waiting are taken back by the overflow; the replay stores them as "the agent never answers",
/// so with max_wait 600 s the same agents let the same offers ring out and get parked.
/// The new column must be close to simulating the same traffic with the new config directly.
#[test]
fn an_offer_revoked_by_overflow_is_not_replayed_as_an_agent_who_never_answers() {
    let traffic = r#"
duration_s = 7200
[behaviour]
answer_delay = { dist = "fixed", s = 8 }
[[arrivals]]
queue = "support"
rate_per_hour = 100
handle = { dist = "fixed", s = 60 }
[[agents]]
count = 2
tiers = { support = 1 }
"#;
    let dir = tempfile::tempdir().unwrap();
    record_into(dir.path(), &overflowing(10), traffic);
    let new = tierline::config::parse(&overflowing(600), "new.toml")
        .unwrap()
        .routing;
    let plan = scenario::parse(traffic, "s.toml", &new).unwrap();
    let direct = tierline::sim::simulate(
        new.clone(),
        &plan,
        &tierline::sim::Options {
            seed: Some(3),
            agents: false,
        },
    )
    .unwrap();
    let r = replay(dir.path(), new, &opts(false)).expect("replay runs");
    let (n, d) = (
        r.new.overall.answered as f64,
        direct.overall.answered as f64,
    );
    assert!(
        n >= 0.9 * d,
        "replay new column answered {n}, direct simulation of the same traffic answered {d}\nold {:?}\nnew {:?}",
        r.old.overall,
        r.new.overall
    );
}

/// "What if the default queue were `b`?", where `b` serves voice only: the recorded chat
/// arrivals routed there are refused by the engine (`channel_not_served`, a 422 from a daemon).
/// The replay counts them and goes on (it stopped with "replay failed", exit 1). (A rule whose
/// queue does not serve a channel is passed over for that channel: `rules_fall_through`.)
#[test]
fn recorded_arrivals_routed_to_a_queue_not_serving_their_channel_are_counted() {
    let ruled = |queue: &str| {
        format!(
            "[defaults]\nwrap_up_s = 0\n\n[[queue]]\nid = \"a\"\nchannels = [\"voice\", \"chat\"]\n\n\
             [[queue]]\nid = \"b\"\nchannels = [\"voice\"]\n\n\
             [routing]\ndefault_queue = \"{queue}\"\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    record_into(
        dir.path(),
        &ruled("a"),
        "duration_s = 3600\nseed = 4\n[[arrivals]]\nattributes = { x = \"y\" }\n\
         rate_per_hour = 30\nchannels = { voice = 0.5, chat = 0.5 }\n\
         handle = { dist = \"fixed\", s = 60 }\n[[agents]]\ncount = 3\ntiers = { a = 1, b = 1 }\n",
    );
    let new = tierline::config::parse(&ruled("b"), "new.toml")
        .unwrap()
        .routing;
    let r = replay(dir.path(), new, &opts(false)).unwrap_or_else(|e| panic!("replay failed: {e}"));
    assert!(r.new.run.refused > 0, "{:?}", r.new.run);
    assert_eq!(r.old.run.refused, 0, "{:?}", r.old.run);
    assert_eq!(
        r.new.overall.offered + r.new.run.refused,
        r.old.overall.offered,
        "every recorded arrival is either offered or refused in the new run"
    );
    assert!(
        r.new.to_table().contains(&format!(
            "{} arrivals refused: the routing sends them to a queue that does not serve",
            r.new.run.refused
        )),
        "{}",
        r.new.to_table()
    );
}
