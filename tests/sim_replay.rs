//! What-if on recorded traffic (`tierline simulate --replay`): a real daemon journal, written by
//! the daemon's durable path while the simulator plays a support team's afternoon, replayed
//! with its own config (old) and with a changed one (new).

use std::collections::BTreeMap;
use std::path::Path;

use tierline::config::daemon::SyncMode;
use tierline::config::{LoadedConfig, RoutingConfig};
use tierline::journal::{JournalOptions, LogOptions};
use tierline::sim::record;
use tierline::sim::replay::{replay, ReplayError, ReplayOptions, ReplayReport};
use tierline::sim::report::Report;
use tierline::sim::scenario;

/// One support queue, L1 then L1 + L2 after `l2_after_s`; `l1` L1 agents in the roster (`extra`
/// of them beyond the five who work in the recording).
fn config_text(l2_after_s: u64, extra_l1: usize) -> String {
    let mut text = format!(
        r#"
[defaults]
wrap_up_s = 10
sla_s = 30
short_abandon_s = 5

[[queue]]
id = "support"
channels = ["voice", "chat"]
steps = [ {{ after_s = 0, tiers = [1] }}, {{ after_s = {l2_after_s}, tiers = [1, 2] }} ]
max_wait_s = 600
overflow = {{ target = "sip:voicemail@pbx" }}

[routing]
default_queue = "support"
"#
    );
    for n in 1..=extra_l1 {
        text.push_str(&format!(
            "\n[[agent]]\nid = \"extra-{n}\"\naddress = \"sip:extra-{n}@pbx\"\ntiers = {{ support = 1 }}\n"
        ));
    }
    text
}

fn loaded(l2_after_s: u64, extra_l1: usize) -> LoadedConfig {
    tierline::config::parse(&config_text(l2_after_s, extra_l1), "test.toml").expect("valid config")
}

/// Four busy hours: about 460 calls and chats, impatient callers, slow and declining agents, a
/// break and a late shift. Agents log in with their own tiers (as a PBX adapter would).
const AFTERNOON: &str = r#"
duration_s = 14400
seed = 5
start = "2026-11-23T12:00:00Z"

[behaviour]
answer_delay = { dist = "lognormal", mean_s = 4, sd_s = 2 }
no_answer_prob = 0.03
decline_prob = 0.02

[[arrivals]]
queue = "support"
rates = [ { from_s = 0, per_hour = 90 }, { from_s = 3600, per_hour = 150 }, { from_s = 9000, per_hour = 100 } ]
channels = { voice = 0.8, chat = 0.2 }
handle = { dist = "lognormal", mean_s = 170, sd_s = 100 }
wrap_up = { dist = "exponential", mean_s = 6 }
patience = { dist = "exponential", mean_s = 90 }

[[agents]]
count = 4
id_prefix = "l1-"
tiers = { support = 1 }
breaks = [ { at_s = 5400, duration_s = 900 } ]

[[agents]]
id = "late-1"
tiers = { support = 1 }
shifts = [ { login_s = 3600, logout_s = 14400 } ]

[[agents]]
count = 2
id_prefix = "l2-"
tiers = { support = 2 }
behaviour = { answer_delay = { dist = "fixed", s = 6 } }
"#;

fn journal_options(segment_bytes: u64) -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync: SyncMode::None,
            segment_bytes,
        },
        // The daemon's defaults: a snapshot every 5 minutes of engine time, the newest two kept,
        // so snapshot 0 is long gone by the end of the afternoon.
        ..JournalOptions::default()
    }
}

/// Record the afternoon into `dir`; returns the simulator's own report of what it did.
fn record_afternoon(dir: &Path, segment_bytes: u64) -> Report {
    let config = loaded(60, 0);
    let plan = scenario::parse(AFTERNOON, "afternoon.toml", &config.routing).expect("scenario");
    record::record(config, &plan, 5, false, dir, journal_options(segment_bytes)).expect("recorded")
}

fn options(seed: u64) -> ReplayOptions {
    ReplayOptions {
        seed,
        agents: false,
        add_roster_agents: false,
    }
}

fn replay_with(dir: &Path, routing: RoutingConfig, options: &ReplayOptions) -> ReplayReport {
    replay(dir, routing, options).expect("replay runs")
}

/// Every journal file's name and bytes, to prove the replay changes nothing.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_old_column_is_exactly_what_the_recorded_run_did() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = record_afternoon(dir.path(), 64 << 20);
    let r = replay_with(dir.path(), loaded(60, 0).routing, &options(1));
    // The journal's own inputs through its own config give the recorded run's figures.
    let (old, sim) = (&r.old.overall, &recorded.overall);
    assert!(sim.offered > 300 && sim.abandoned > 10, "{sim:?}");
    assert_eq!(old.offered, sim.offered);
    assert_eq!(old.answered, sim.answered);
    assert_eq!(old.abandoned, sim.abandoned);
    assert_eq!(old.short_abandoned, sim.short_abandoned);
    assert_eq!(old.overflowed, sim.overflowed);
    assert_eq!(old.service_level, sim.service_level);
    assert_eq!(old.asa_s, sim.asa_s);
    assert_eq!(old.answered_by_tier, sim.answered_by_tier);
    // Snapshot 0 was pruned, but every record from 1 is on disk: rebuilt from a fresh state and
    // checked against the oldest snapshot.
    assert!(!r.recording.history_incomplete, "{:?}", r.recording);
    assert!(
        r.recording.start_from.contains("fresh state"),
        "{}",
        r.recording.start_from
    );
    assert_eq!(r.recording.first_record, 1);
    assert_eq!(r.traffic.interactions, sim.offered);
    assert_eq!(r.traffic.abandoned, sim.abandoned + sim.short_abandoned);
}

#[test]
fn replaying_with_the_unchanged_config_reproduces_the_recorded_figures() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    let r = replay_with(dir.path(), loaded(60, 0).routing, &options(1));
    let (old, new) = (&r.old.overall, &r.new.overall);
    // Same arrivals at the same times, same handle times, wrap-ups and recorded answers, and a
    // recorded abandon keeps its exact patience: the counts come out the same. (On this journal
    // they are identical; the slack covers what can legitimately differ: offers the recording
    // never made, answered with drawn behaviour, and same-millisecond events taken in another
    // order — see docs/SIMULATOR.md.)
    assert_eq!(new.offered, old.offered);
    let close = |a: u64, b: u64, slack: u64| a.abs_diff(b) <= slack;
    assert!(close(new.answered, old.answered, 2), "{new:?} vs {old:?}");
    assert!(close(new.abandoned, old.abandoned, 2), "{new:?} vs {old:?}");
    assert_eq!(new.rejected, old.rejected);
    let (sl_old, sl_new) = (old.service_level.unwrap(), new.service_level.unwrap());
    assert!((sl_new - sl_old).abs() < 0.01, "SL {sl_old} → {sl_new}");
    let (asa_old, asa_new) = (old.asa_s.unwrap(), new.asa_s.unwrap());
    assert!((asa_new - asa_old).abs() < 1.0, "ASA {asa_old} → {asa_new}");
    assert_eq!(r.traffic.refused_in_new_run, 0);
    assert!(r.traffic.patience[0].mean_s.is_some(), "{:?}", r.traffic);
}

#[test]
fn an_earlier_l2_step_gives_a_better_service_level_on_the_same_traffic() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    let r = replay_with(dir.path(), loaded(5, 0).routing, &options(1));
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert_eq!(new.offered, old.offered);
    assert!(
        new.service_level.unwrap() > old.service_level.unwrap() + 0.02,
        "SL {:?} → {:?}",
        old.service_level,
        new.service_level
    );
    assert!(new.abandoned < old.abandoned, "{new:?} vs {old:?}");
    let l2_old = old.answered_by_tier.get(&2).copied().unwrap_or(0);
    let l2_new = new.answered_by_tier.get(&2).copied().unwrap_or(0);
    assert!(l2_new > l2_old, "L2 answered {l2_old} → {l2_new}");
    let d = r.difference.overall.service_level.unwrap();
    assert!((d - (new.service_level.unwrap() - old.service_level.unwrap())).abs() < 1e-12);
}

#[test]
fn more_l1_agents_in_the_new_roster_give_a_better_service_level() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    let mut opts = options(1);
    opts.add_roster_agents = true;
    let r = replay_with(dir.path(), loaded(60, 2).routing, &opts);
    assert_eq!(r.traffic.added_agents, vec!["extra-1", "extra-2"]);
    let (old, new) = (&r.old.overall, &r.new.overall);
    assert!(
        new.service_level.unwrap() > old.service_level.unwrap() + 0.05,
        "SL {:?} → {:?}",
        old.service_level,
        new.service_level
    );
    assert!(new.asa_s.unwrap() < old.asa_s.unwrap());
    // Without the flag the roster additions stay at home and nothing changes much.
    let same = replay_with(dir.path(), loaded(60, 2).routing, &options(1));
    assert!(same.traffic.added_agents.is_empty());
    assert_eq!(
        same.traffic.agents, 7,
        "the five L1 and two L2 agents of the recording"
    );
    assert!((same.new.overall.service_level.unwrap() - old.service_level.unwrap()).abs() < 0.01);
}

#[test]
fn the_same_seed_gives_identical_json_and_the_journal_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    let before = contents(dir.path());
    let a = replay_with(dir.path(), loaded(5, 0).routing, &options(7)).to_json();
    let b = replay_with(dir.path(), loaded(5, 0).routing, &options(7)).to_json();
    assert_eq!(a, b);
    assert_eq!(
        contents(dir.path()),
        before,
        "the replay changed the journal"
    );
    let json: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(json["seed"], 7);
    for key in ["recording", "traffic", "old", "new", "difference"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

/// Flip the byte at `at(length)` of the recording's (only) segment; returns the segment.
fn flip_a_segment_byte(dir: &Path, at: impl Fn(usize) -> usize) -> std::path::PathBuf {
    let segment = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let k = at(bytes.len());
    bytes[k] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    segment
}

#[test]
fn a_corrupt_journal_is_refused_naming_the_file_and_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    // Inside the last frames, after the oldest kept snapshot a replay starts from.
    let segment = flip_a_segment_byte(dir.path(), |len| len - 100);
    let err = match replay(dir.path(), loaded(60, 0).routing, &options(1)) {
        Err(e) => e,
        Ok(_) => panic!("a damaged journal must not replay"),
    };
    assert!(matches!(err, ReplayError::Journal(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("journal damaged"), "{message}");
    assert!(
        message.contains(&segment.file_name().unwrap().to_string_lossy().to_string()),
        "{message}"
    );
    assert!(message.contains("at byte"), "{message}");
}

/// Damage among the first records, which a fresh start needs but a start from the oldest kept
/// snapshot does not: the replay starts from that snapshot (reading past the damage, as the
/// daemon's recovery does) and says why it did not start from record 1.
#[test]
fn damage_before_the_oldest_snapshot_replays_from_that_snapshot_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    flip_a_segment_byte(dir.path(), |_| 100); // inside the first frame
    let r = replay_with(dir.path(), loaded(60, 0).routing, &options(1));
    assert!(r.recording.first_record > 1, "{:?}", r.recording);
    assert!(
        r.recording.notes.iter().any(|n| n
            .starts_with("not started from record 1: journal damaged")
            && n.contains("at byte")),
        "{:?}",
        r.recording.notes
    );
    // What is there replays, and with the same config the columns agree on arrivals.
    assert_eq!(r.new.overall.offered, r.old.overall.offered);
}

/// A segment cut short below the newest snapshot's record (which proves those records were
/// synced) is damage, refused with the file and offset, as `journal verify` says; before, the
/// replay took it for a torn tail and blamed missing segments.
#[test]
fn a_journal_cut_below_its_snapshot_is_refused_as_damage_not_missing_segments() {
    let dir = tempfile::tempdir().unwrap();
    record_afternoon(dir.path(), 64 << 20);
    let newest = |ext: &str| {
        let mut paths: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        paths.sort();
        paths.pop().unwrap_or_else(|| panic!("a .{ext} file"))
    };
    let (segment, snapshot) = (newest("seg"), newest("snap"));
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let err =
        replay(dir.path(), loaded(60, 0).routing, &options(1)).expect_err("damage must not replay");
    let message = err.to_string();
    assert!(matches!(err, ReplayError::Journal(_)), "{err:?}");
    assert!(message.contains("at byte"), "{message}");
    assert!(message.contains("proves"), "{message}");
    assert!(!message.contains("segments are missing"), "{message}");
    assert!(snapshot.exists());
}

#[test]
fn a_compacted_journal_is_replayed_from_its_oldest_snapshot_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: the ones covered by the older kept snapshot are deleted, record 1 with them.
    record_afternoon(dir.path(), 16 << 10);
    let r = replay_with(dir.path(), loaded(60, 0).routing, &options(1));
    assert!(r.recording.history_incomplete, "{:?}", r.recording);
    assert!(r.recording.first_record > 1);
    assert!(
        r.recording.start_from.contains("compacted"),
        "{}",
        r.recording.start_from
    );
    assert!(r
        .to_table()
        .contains("warning: the recording's oldest history"));
    // What is there still replays, and with the same config the columns agree on arrivals.
    assert_eq!(r.new.overall.offered, r.old.overall.offered);
}

#[test]
fn a_directory_without_a_journal_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        replay(dir.path(), loaded(60, 0).routing, &options(1)).expect_err("nothing to replay");
    assert!(
        err.to_string().contains("holds no journal records"),
        "{err}"
    );
    let missing = dir.path().join("nope");
    let err = replay(&missing, loaded(60, 0).routing, &options(1)).expect_err("no directory");
    assert!(err.to_string().contains("no such directory"), "{err}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = replay(&file, loaded(60, 0).routing, &options(1)).expect_err("a file");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

/// A recording is reproducible: the same run writes the same files, byte for byte. Each snapshot
/// is placed by the records alone (the recorder waits for the one in flight), not by how fast the
/// snapshot thread happened to be. Before, which snapshots a recording of SIMULATOR.md's day
/// kept varied from run to run (500, 2500 or 3500 besides the final one, in three runs).
#[test]
fn recording_the_same_run_twice_writes_the_same_journal() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config/scenarios/support-ladder.routing.toml"))
        .expect("the documented routing config");
    let config = tierline::config::parse(&text, "support-ladder.routing.toml").expect("valid");
    let plan_text = std::fs::read_to_string(root.join("config/scenarios/support-ladder.toml"))
        .expect("the documented scenario");
    let plan = scenario::parse(&plan_text, "support-ladder.toml", &config.routing).expect("plan");
    let journal = JournalOptions::from_config(&config.daemon.journal);
    let record_into = |dir: &Path| {
        record::record(config.clone(), &plan, 3, false, dir, journal).expect("recorded");
        contents(dir)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (record_into(a.path()), record_into(b.path()));
    let snapshots = |files: &BTreeMap<String, Vec<u8>>| {
        files
            .keys()
            .filter(|name| name.ends_with(".snap"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        snapshots(&first).len() >= 2,
        "a snapshot during the run and the final one: {:?}",
        first.keys()
    );
    assert_eq!(snapshots(&first), snapshots(&second), "the same snapshots");
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(
            bytes == &second[name],
            "{name} differs between the two recordings"
        );
    }
}
