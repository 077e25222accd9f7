//! `simulate --replay` on a journal a daemon wrote: it stops mid-afternoon, with offers still
//! ringing, which a simulator's own recording (drained to the end) never has.

#[path = "api_common/mod.rs"]
mod api_common;

use api_common::{call, loaded, login, TestDaemon};
use tierline::daemon::DaemonOptions;
use tierline::sim::replay::{replay, ReplayOptions};

/// docs/SIMULATOR.md: with the journal's own config the new column reproduces the old one. The
/// journal ends with the offer of `c1` to `a1` ringing, never answered: the new run lets it
/// ring too. Before, the agent answered it at once (a response drawn from nothing), so the new
/// column showed an answer the recording does not have.
#[tokio::test]
async fn an_offer_ringing_when_the_daemon_stopped_is_not_answered_in_the_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::new(loaded(api_common::one_agent_desk()));
    options.journal_dir = Some(dir.path().to_path_buf());
    let d = TestDaemon::start(options).await;
    d.apply(login("e1", "a1")).await;
    d.apply(call("e2", "c1")).await;
    d.apply(call("e3", "c2")).await;
    d.stop().await;

    let options = ReplayOptions {
        seed: 1,
        agents: false,
        add_roster_agents: false,
    };
    let r = replay(dir.path(), api_common::one_agent_desk(), &options).expect("replay runs");
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert_eq!(old.offered, 2, "{old:?}");
    assert_eq!(old.answered, 0, "{old:?}");
    assert_eq!(new.answered, 0, "old {old:?}\nnew {new:?}");
    assert_eq!(new.offered, old.offered);
}

/// docs/SIMULATOR.md: with the journal's own config the new column reproduces the old one. Here
/// the journal ends with `c1` still connected to the only agent, and `c2` overflowed after its
/// 8 s wait behind it. Before, the new run gave `c1` a handle time drawn from the recording's
/// (`c0`'s 2 s), so the agent came free and answered `c2`: +1 answered, −1 overflowed, for a
/// change that changed nothing. Now a call still connected at the end stays connected to the end
/// of the new run.
#[test]
fn a_call_still_connected_when_the_journal_ends_keeps_its_agent_to_the_end_of_the_new_run() {
    use tierline::daemon::core::{Input, TimedInput};
    use tierline::engine::Event;

    let dir = tempfile::tempdir().unwrap();
    let event = |v: serde_json::Value| -> Event { serde_json::from_value(v).unwrap() };
    let call = |i: &str| {
        event(
            serde_json::json!({"type": "interaction.arrived", "interaction": i,
            "channel": "voice", "queue": "support"}),
        )
    };
    let accept = |i: &str| {
        event(serde_json::json!({"type": "offer.accepted", "interaction": i, "agent": "a1"}))
    };
    let inputs = [
        (
            1_000,
            event(serde_json::json!({"type": "agent.login", "agent": "a1"})),
        ),
        (2_000, call("c0")),
        (2_500, accept("c0")),
        (
            4_500,
            event(serde_json::json!({"type": "interaction.ended", "interaction": "c0"})),
        ),
        (5_000, call("c1")),
        (5_500, accept("c1")),
        (6_000, call("c2")),
    ];
    let mut batch: Vec<TimedInput> = inputs
        .into_iter()
        .enumerate()
        .map(|(n, (at, event))| TimedInput {
            at,
            input: Input::Event {
                id: format!("e{n}"),
                event,
            },
        })
        .collect();
    // The overflow at 14 s, and the recording's end at 20 s.
    batch.push(TimedInput {
        at: 14_000,
        input: Input::Advance,
    });
    batch.push(TimedInput {
        at: 20_000,
        input: Input::Advance,
    });
    write_journal(dir.path(), DESK, &batch);

    let r = replay_with_the_desk(dir.path());
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert_eq!((old.answered, old.overflowed), (2, 1), "{old:?}");
    assert_eq!(
        (new.answered, new.overflowed),
        (old.answered, old.overflowed),
        "old {old:?}\nnew {new:?}"
    );
    assert_eq!(r.traffic.handle_open, 1);
    // `c2`, never answered, has its handle time drawn as before.
    assert_eq!(r.traffic.handle_drawn, 1);
}

/// One queue `support` (wrap-up 0, an 8 s max wait overflowing to a PBX target), one agent `a1`.
const DESK: &str = r#"
[[queue]]
id = "support"
channels = ["voice"]
wrap_up_s = 0
max_wait_s = 8
overflow = { target = "sip:voicemail@pbx" }
steps = [{ after_s = 0, tiers = [1] }]

[[agent]]
id = "a1"
address = "sip:a1@pbx"
tiers = { support = 1 }
"#;

/// Journal `inputs` into `dir` as a daemon on `config_text` would: each appended, then applied.
fn write_journal(
    dir: &std::path::Path,
    config_text: &str,
    inputs: &[tierline::daemon::core::TimedInput],
) {
    use tierline::daemon::core::Core;
    use tierline::daemon::task::{InputSink, JournalEntry};
    let config = tierline::config::parse(config_text, "desk.toml").expect("the desk parses");
    let journal = tierline::journal::JournalOptions {
        log: tierline::journal::LogOptions {
            sync: tierline::config::daemon::SyncMode::None,
            segment_bytes: 1 << 20,
        },
        snapshot_every_records: 0,
        snapshot_every_ms: 0,
        snapshot_journal_percent: 0,
        keep_snapshots: 2,
    };
    let (mut sink, mut core, _) =
        tierline::daemon::durable::recover(dir, journal, 0, || Core::new(config, 0))
            .expect("a new journal");
    let mut now = 0;
    for input in inputs {
        let entries = [JournalEntry::from(input)];
        sink.append(&entries).expect("journaled");
        core.apply(&input.input, input.at);
        now = input.at;
    }
    sink.on_stop(&core, now);
}

/// A recording holding a live config change says so in the table: the old column ran it at
/// its time, the new one runs the given config throughout (`recording.reloads`). Before, the
/// table never mentioned it.
#[test]
fn a_recording_with_a_live_config_change_says_so_in_the_table() {
    use tierline::daemon::core::{Input, TimedInput};
    let dir = tempfile::tempdir().unwrap();
    let login: tierline::engine::Event =
        serde_json::from_value(serde_json::json!({"type": "agent.login", "agent": "a1"})).unwrap();
    let inputs = [
        TimedInput {
            at: 1_000,
            input: Input::Event {
                id: "e1".into(),
                event: login,
            },
        },
        TimedInput {
            at: 2_000,
            input: Input::Reconfigure {
                source: DESK.replace("max_wait_s = 8", "max_wait_s = 9"),
                origin: "PUT /v1/config".into(),
                resolved: None,
            },
        },
        TimedInput {
            at: 3_000,
            input: Input::Advance,
        },
    ];
    write_journal(dir.path(), DESK, &inputs);
    let r = replay_with_the_desk(dir.path());
    assert_eq!(r.recording.reloads, 1);
    let table = r.to_table();
    assert!(
        table.contains("note: the recording holds 1 live config change: the old column ran each"),
        "{table}"
    );
}

/// A PBX that reports the answer (`interaction.answered`) rather than accepting the offer: the
/// agent the call was ringing answered it, and the new run accepts that offer after the same
/// delay. Before, the answer was not re-driven: with the journal's own config the old column
/// had the call answered and the new one did not.
#[test]
fn an_answer_reported_by_the_pbx_while_the_call_rings_that_agent_is_replayed() {
    use tierline::daemon::core::{Input, TimedInput};
    let dir = tempfile::tempdir().unwrap();
    let event = |n: usize, at: u64, v: serde_json::Value| TimedInput {
        at,
        input: Input::Event {
            id: format!("e{n}"),
            event: serde_json::from_value(v).unwrap(),
        },
    };
    let inputs = [
        event(
            1,
            1_000,
            serde_json::json!({"type": "agent.login", "agent": "a1"}),
        ),
        event(
            2,
            2_000,
            serde_json::json!({"type": "interaction.arrived", "interaction": "c1",
            "channel": "voice", "queue": "support"}),
        ),
        event(
            3,
            3_500,
            serde_json::json!({"type": "interaction.answered", "interaction": "c1",
            "agent": "a1"}),
        ),
        event(
            4,
            6_000,
            serde_json::json!({"type": "interaction.ended", "interaction": "c1"}),
        ),
        TimedInput {
            at: 7_000,
            input: Input::Advance,
        },
    ];
    write_journal(dir.path(), DESK, &inputs);
    let r = replay_with_the_desk(dir.path());
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert_eq!(old.answered, 1, "{old:?}");
    assert_eq!(new.answered, 1, "old {old:?}\nnew {new:?}");
    assert_eq!(new.asa_s, old.asa_s, "answered after the same 1.5 s");
}

/// `simulate --replay` of `dir` with `DESK`, the config the journal was written with.
fn replay_with_the_desk(dir: &std::path::Path) -> tierline::sim::replay::ReplayReport {
    let options = ReplayOptions {
        seed: 1,
        agents: false,
        add_roster_agents: false,
    };
    let routing = tierline::config::parse(DESK, "desk.toml")
        .expect("the desk parses")
        .routing;
    replay(dir, routing, &options).expect("replay runs")
}
