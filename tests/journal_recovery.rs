//! Recovery rebuilds the routing state exactly: snapshot + replay equals a straight replay equals
//! the live engine; torn tails are cut off, damage in the middle refuses to start, old segments go.

mod replayable;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use replayable::{mixed_desk, Routing, Timed};
use tierline::config::daemon::SyncMode;
use tierline::config::{Channel, RoutingConfig};
use tierline::engine::{DecisionKind, DeclineReason, Engine, Event};
use tierline::journal::inspect::Checks;
use tierline::journal::{Journal, JournalError, JournalOptions, LogOptions, Replay};

fn config() -> RoutingConfig {
    mixed_desk(11, 5)
}

fn options(every: u64) -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync: SyncMode::Batch,
            segment_bytes: 4096,
        },
        snapshot_every_records: every,
        snapshot_every_ms: 0,
        snapshot_journal_percent: 0,
        keep_snapshots: 2,
    }
}

/// A live daemon in miniature: journal each batch, then apply it, snapshot when due.
struct Live {
    journal: Journal,
    state: Routing,
    /// Every input journaled, for the straight replay.
    inputs: Vec<Timed>,
    /// Every decision made, as JSON.
    decisions: Vec<String>,
}

impl Live {
    fn submit(&mut self, batch: Vec<Timed>) {
        self.journal.append(&batch).unwrap();
        for input in batch {
            let (fired, handled) = self.state.engine.step(input.at, &input.event);
            self.decisions
                .extend(fired.iter().map(|d| serde_json::to_string(d).unwrap()));
            if let Ok(ds) = handled {
                self.decisions
                    .extend(ds.iter().map(|d| serde_json::to_string(d).unwrap()));
            }
            self.inputs.push(input);
        }
        let now = self.state.engine.now();
        if self.journal.snapshot_due(now) {
            self.journal.snapshot(&self.state, now).unwrap();
        }
    }

    /// Offers made since decision `from` that nobody has answered, oldest first.
    fn open_offers(&self, from: usize) -> Vec<(String, String)> {
        self.decisions[from..]
            .iter()
            .filter_map(|d| {
                let d: tierline::engine::Decision = serde_json::from_str(d).ok()?;
                match d.kind {
                    DecisionKind::Offer {
                        interaction, agent, ..
                    } => Some((interaction.to_string(), agent.to_string())),
                    _ => None,
                }
            })
            .collect()
    }
}

/// A mixed workload: logins, arrivals on two channels, accepts, declines, ends, abandons.
fn drive(live: &mut Live, from: u64, to: u64) {
    if from == 0 {
        let logins = (0..5)
            .map(|n| Timed {
                at: 0,
                event: Event::AgentLogin {
                    agent: format!("a{n}"),
                    address: None,
                    tiers: None,
                    skills: None,
                    capacity: None,
                },
            })
            .collect();
        live.submit(logins);
    }
    for n in from..to {
        let at = n * 1_300;
        let seen = live.decisions.len();
        live.submit(vec![Timed {
            at,
            event: Event::InteractionArrived {
                interaction: format!("i{n}"),
                channel: if n % 3 == 0 {
                    Channel::Chat
                } else {
                    Channel::Voice
                },
                queue: Some("support".into()),
                priority: Some((n % 4) as i32),
                skills: vec![],
                customer: None,
                attributes: BTreeMap::new(),
            },
        }]);
        let replies: Vec<Timed> = live
            .open_offers(seen)
            .into_iter()
            .enumerate()
            .map(|(k, (interaction, agent))| Timed {
                at,
                event: if (n + k as u64) % 5 == 0 {
                    Event::OfferDeclined {
                        interaction,
                        agent,
                        reason: DeclineReason::NoAnswer,
                        offer: None,
                    }
                } else {
                    Event::OfferAccepted {
                        interaction,
                        agent,
                        offer: None,
                    }
                },
            })
            .collect();
        let mut batch = replies;
        if n >= 4 {
            batch.push(Timed {
                at,
                event: if n % 7 == 0 {
                    Event::InteractionAbandoned {
                        interaction: format!("i{}", n - 4),
                    }
                } else {
                    Event::InteractionEnded {
                        interaction: format!("i{}", n - 4),
                        resolved: None,
                    }
                },
            });
        }
        if !batch.is_empty() {
            live.submit(batch);
        }
    }
}

fn start(dir: &Path, opts: JournalOptions) -> Live {
    let (journal, state, report) = Journal::recover(dir, opts, 0, || Routing {
        engine: Engine::new(config(), 0),
    })
    .unwrap();
    assert!(report.fresh, "{report}");
    Live {
        journal,
        state,
        inputs: Vec::new(),
        decisions: Vec::new(),
    }
}

fn state_bytes(engine: &Engine) -> Vec<u8> {
    let mut out = Vec::new();
    engine.write_snapshot(&mut out).unwrap();
    out
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn recover(dir: &Path, opts: JournalOptions) -> Result<(Journal, Routing), JournalError> {
    // A recovered journal must not need the config it started with: this one is different.
    Journal::recover(dir, opts, 0, || Routing {
        engine: Engine::new(RoutingConfig::empty(), 0),
    })
    .map(|(j, s, _)| (j, s))
}

#[test]
fn snapshot_plus_replay_equals_straight_replay_equals_the_live_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(37));
    drive(&mut live, 0, 150);
    assert!(live.decisions.len() > 200, "{}", live.decisions.len());
    let expected = state_bytes(&live.state.engine);
    let inputs = live.inputs.clone();
    let live_index = live.journal.last_index();
    assert!(live.journal.snapshot_index() > 0);
    drop(live.journal);

    // Recovery: newest snapshot + the records after it.
    let (journal, recovered) = recover(tmp.path(), options(37)).unwrap();
    assert_eq!(journal.last_index(), live_index);
    assert_eq!(state_bytes(&recovered.engine), expected);

    // A straight replay of every input from the start, through the same code.
    let mut straight = Routing {
        engine: Engine::new(config(), 0),
    };
    for input in &inputs {
        straight.replay(input);
    }
    assert_eq!(state_bytes(&straight.engine), expected);

    // And the recovered engine goes on deciding exactly as the live one would have.
    let mut a = Live {
        journal,
        state: recovered,
        inputs: Vec::new(),
        decisions: Vec::new(),
    };
    let other = tempfile::tempdir().unwrap();
    let mut b = Live {
        journal: start(other.path(), options(0)).journal,
        state: Routing::load(&expected).unwrap(),
        inputs: Vec::new(),
        decisions: Vec::new(),
    };
    drive(&mut a, 150, 200);
    drive(&mut b, 150, 200);
    assert!(!a.decisions.is_empty());
    assert_eq!(a.decisions, b.decisions);
}

#[test]
fn segments_covered_by_the_older_kept_snapshot_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(50));
    drive(&mut live, 0, 200);
    let snaps = files(tmp.path(), "snap");
    assert_eq!(snaps.len(), 2, "two snapshots are kept: {snaps:?}");
    let segments = live.journal.log().segments().to_vec();
    let oldest_kept: u64 = snaps[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        segments[0].base > 1,
        "old segments must go: first is {}",
        segments[0].base
    );
    // The first segment left still holds the record right after the oldest kept snapshot.
    assert!(segments[0].base <= oldest_kept + 1);
    if segments.len() > 1 {
        assert!(segments[1].base > oldest_kept + 1);
    }
    assert_eq!(files(tmp.path(), "seg").len(), segments.len());
    let expected = state_bytes(&live.state.engine);
    drop(live.journal);
    let (_, recovered) = recover(tmp.path(), options(50)).unwrap();
    assert_eq!(state_bytes(&recovered.engine), expected);
}

#[test]
fn a_torn_tail_is_cut_off_and_the_acknowledged_state_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(0));
    drive(&mut live, 0, 60);
    let expected = state_bytes(&live.state.engine);
    let last = live.journal.last_index();
    drop(live.journal);
    // A crash in the middle of writing the next frame: its first 30 bytes made it to disk.
    let seg = files(tmp.path(), "seg").pop().unwrap();
    let mut frame = Vec::new();
    tierline::journal::frame::encode(&mut frame, last + 1, &[br#"{"at":1,"event":{}}"#]);
    let len_before = std::fs::metadata(&seg).unwrap().len();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&frame[..30]);
    std::fs::write(&seg, &bytes).unwrap();

    let report = tierline::journal::verify(tmp.path(), &Checks::generic()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.torn.as_ref().unwrap().offset, len_before);

    let (journal, state, report) = Journal::recover(tmp.path(), options(0), 0, || Routing {
        engine: Engine::new(RoutingConfig::empty(), 0),
    })
    .unwrap();
    let torn = report.truncated.expect("the torn tail is reported");
    assert_eq!(
        (torn.path, torn.offset, torn.bytes),
        (seg.clone(), len_before, 30)
    );
    assert_eq!(journal.last_index(), last);
    assert_eq!(state_bytes(&state.engine), expected);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len_before);
}

#[test]
fn damage_in_the_middle_refuses_to_start_and_names_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(0));
    drive(&mut live, 0, 60);
    drop(live.journal);
    let segs = files(tmp.path(), "seg");
    assert!(segs.len() >= 3, "{segs:?}");

    // A bit flip inside the first frame of a full (not newest) segment.
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    match recover(tmp.path(), options(0)) {
        Err(JournalError::Corrupt { path, offset, .. }) => {
            assert_eq!((&path, offset), (victim, 0));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a damaged journal must not start"),
    }
    let report = tierline::journal::verify(tmp.path(), &Checks::generic()).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems[0].contains(&victim.display().to_string()),
        "{report}"
    );
    bytes[20] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();

    // A bit flip in the newest segment with whole frames after it is damage too, not a torn tail.
    let newest = segs.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let first = tierline::journal::frame::check(&bytes).unwrap();
    assert!(
        first.len < bytes.len(),
        "the newest segment needs two frames"
    );
    bytes[first.len - 1] ^= 0x01;
    std::fs::write(newest, &bytes).unwrap();
    let err = recover(tmp.path(), options(0)).err().expect("must refuse");
    let text = err.to_string();
    assert!(
        text.contains(&newest.display().to_string()) && text.contains("at byte 0"),
        "{text}"
    );
}

#[test]
fn a_record_that_is_not_an_input_refuses_to_start_and_names_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(0));
    drive(&mut live, 0, 30);
    // Framed and checksummed like any record, but not a timed event (a foreign writer, a
    // downgrade): the checks pass, decoding does not.
    let bad = live
        .journal
        .append(&[serde_json::json!({"at": "noon"})])
        .unwrap();
    drive(&mut live, 30, 40);
    drop(live.journal);
    let segs = files(tmp.path(), "seg");
    let err = recover(tmp.path(), options(0))
        .err()
        .expect("an undecodable record must refuse to start");
    match &err {
        JournalError::Decode {
            index,
            at: Some((path, offset)),
            ..
        } => {
            assert_eq!(*index, bad.start);
            assert!(segs.contains(path), "{err}");
            // The named place is the frame that holds the record.
            let bytes = std::fs::read(path).unwrap();
            let frame = tierline::journal::frame::check(&bytes[*offset as usize..]).unwrap();
            assert!(
                (frame.first_index..frame.first_index + u64::from(frame.count))
                    .contains(&bad.start),
                "{err}: {frame:?}"
            );
            assert!(
                err.to_string()
                    .contains(&format!("frame at byte {offset} of {}", path.display())),
                "{err}"
            );
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("journal record {} (frame at byte", bad.start)),
        "{err}"
    );
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_one_before() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(40));
    drive(&mut live, 0, 120);
    let expected = state_bytes(&live.state.engine);
    drop(live.journal);
    let newest = files(tmp.path(), "snap").pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&newest, &bytes).unwrap();
    let (_, state, report) = Journal::recover(tmp.path(), options(40), 0, || Routing {
        engine: Engine::new(RoutingConfig::empty(), 0),
    })
    .unwrap();
    assert_eq!(report.skipped_snapshots.len(), 1, "{report}");
    assert!(report.skipped_snapshots[0].contains("checksum"), "{report}");
    assert_eq!(state_bytes(&state.engine), expected);
}

#[test]
fn records_without_any_snapshot_refuse_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(0));
    drive(&mut live, 0, 10);
    drop(live.journal);
    for snap in files(tmp.path(), "snap") {
        std::fs::remove_file(snap).unwrap();
    }
    assert!(matches!(
        recover(tmp.path(), options(0)),
        Err(JournalError::NoSnapshot { .. })
    ));
}

#[test]
fn dump_prints_one_json_line_per_input_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(0));
    drive(&mut live, 0, 20);
    let inputs = live.inputs.clone();
    drop(live.journal);
    let mut out = Vec::new();
    let report = tierline::journal::dump(tmp.path(), &mut out).unwrap();
    assert_eq!(report.records, inputs.len() as u64);
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(lines.len(), inputs.len());
    for (k, (line, input)) in lines.iter().zip(&inputs).enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["index"], k as u64 + 1);
        let back: Timed = serde_json::from_value(serde_json::json!({
            "at": value["at"], "event": value["event"]
        }))
        .unwrap();
        assert_eq!(&back, input);
    }
}

#[test]
fn a_crash_while_a_snapshot_is_written_leaves_the_previous_snapshot_and_the_journal_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut live = start(tmp.path(), options(50));
    drive(&mut live, 0, 200);
    let previous = files(tmp.path(), "snap");
    assert_eq!(previous.len(), 2, "{previous:?}");
    drive(&mut live, 200, 210);
    let expected = state_bytes(&live.state.engine);
    let last = live.journal.last_index();

    // The snapshot is captured (on the engine task) and the process dies while the snapshot
    // thread is writing it: its temp file is half written and nothing was renamed or pruned.
    let now = live.state.engine.now();
    let pending = live.journal.prepare_snapshot(&live.state, now).unwrap();
    assert_eq!(pending.index, last);
    let tmp_file = tmp.path().join(format!("{last:020}.snap.tmp"));
    std::fs::write(&tmp_file, &expected[..expected.len() / 2]).unwrap();
    drop(pending);
    drop(live.journal);

    let (journal, recovered) = recover(tmp.path(), options(50)).unwrap();
    assert_eq!(state_bytes(&recovered.engine), expected);
    assert_eq!(journal.last_index(), last);
    assert!(!tmp_file.exists(), "the half-written temp file is removed");
    assert_eq!(
        files(tmp.path(), "snap"),
        previous,
        "the older snapshots are intact"
    );
    drop(journal);

    // Same, but the process dies after the rename and before any pruning: the new snapshot is
    // used and the older files are harmless.
    let (mut journal, state) = recover(tmp.path(), options(50)).unwrap();
    let pending = journal.prepare_snapshot(&state, now).unwrap();
    let mut payload = Vec::new();
    state.save(&mut payload).unwrap();
    tierline::journal::snapshot::write_snapshot(tmp.path(), pending.index, &payload, true).unwrap();
    drop(pending);
    drop(journal);
    assert_eq!(files(tmp.path(), "snap").len(), 3);
    let (journal, recovered) = recover(tmp.path(), options(50)).unwrap();
    assert_eq!(state_bytes(&recovered.engine), expected);
    assert_eq!(journal.snapshot_index(), last);

    // And a snapshot written by another thread prunes exactly as one written inline.
    let (mut journal, state) = (journal, recovered);
    let pending = journal.prepare_snapshot(&state, now).unwrap();
    let written = std::thread::spawn(move || pending.write()).join().unwrap();
    journal.snapshot_written(last, &written);
    let written = written.unwrap();
    assert_eq!(written.removed_snapshots, 1);
    assert_eq!(files(tmp.path(), "snap").len(), 2);
    let on_disk: Vec<u64> = files(tmp.path(), "seg")
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    let listed: Vec<u64> = journal.log().segments().iter().map(|s| s.base).collect();
    assert_eq!(
        listed, on_disk,
        "the writer forgets the segments the thread removed"
    );
}

/// A journal path that is a regular file is refused in words that say so, and the file is left
/// as it was. Before: "cannot create f1: File exists (os error 17)", which reads as if the
/// directory were there.
#[test]
fn a_journal_path_that_is_a_file_is_refused_saying_it_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f1");
    std::fs::write(&file, b"not a journal").unwrap();
    let fresh = || Routing {
        engine: Engine::new(RoutingConfig::empty(), 0),
    };
    match Journal::recover(&file, options(0), 0, fresh) {
        Err(e @ JournalError::Io { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("f1") && text.contains("it is a file, not a directory"),
                "{text}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a file was opened as a journal"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a journal");
}
