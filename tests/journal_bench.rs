//! Recovery benchmarks for docs/BENCHMARKS.md (ignored by default; they print, never assert on time):
//!
//! ```text
//! cargo test --release --test journal_bench -- --ignored --nocapture --test-threads 1
//! ```

mod replayable;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use replayable::{Routing, Timed};
use tierline::config::daemon::SyncMode;
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Step};
use tierline::engine::{DecisionKind, Engine, Event};
use tierline::journal::{Journal, JournalOptions, Log, LogOptions, Replay};

/// The daemon's allocator (see `src/main.rs`), so these figures are what `tierline` itself gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Agent `agent-{n}` of `config` logs in with its configured tiers.
fn login(n: usize) -> Event {
    Event::AgentLogin {
        agent: format!("agent-{n}"),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    }
}

fn config(agents: usize) -> RoutingConfig {
    let mut q = QueueConfig::with_defaults("support");
    q.steps = vec![Step::new(0, &[1]), Step::new(20_000, &[1, 2]).boosted(2)];
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    cfg.agents = (0..agents)
        .map(|n| AgentConfig {
            id: format!("agent-{n}"),
            address: format!("sip:{n}@pbx"),
            tiers: BTreeMap::from([("support".to_string(), 1 + (n % 2) as u8)]),
            skills: vec![],
            capacity: BTreeMap::new(),
        })
        .collect();
    cfg
}

fn arrival(n: u64, at: u64) -> Timed {
    Timed {
        at,
        event: Event::InteractionArrived {
            interaction: format!("call-{n}"),
            channel: Channel::Voice,
            queue: Some("support".into()),
            priority: Some((n % 3) as i32),
            skills: vec![],
            customer: Some(format!("+4930{n:07}")),
            attributes: BTreeMap::new(),
        },
    }
}

fn options(sync: SyncMode) -> JournalOptions {
    JournalOptions {
        log: LogOptions {
            sync,
            segment_bytes: 64 << 20,
        },
        snapshot_every_records: 0,
        snapshot_every_ms: 0,
        snapshot_journal_percent: 0,
        keep_snapshots: 2,
    }
}

/// CPU time of this thread: on a shared, loaded machine wall time overstates the work.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and CPU time of `f`.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration, Duration) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let r = f();
    (r, wall.elapsed(), cpu_time() - cpu)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn recovery_of_a_journal_of_one_million_events() {
    const EVENTS: u64 = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut live, _) =
        Journal::recover(tmp.path(), options(SyncMode::None), 0, || Routing {
            engine: Engine::new(config(200), 0),
        })
        .unwrap();
    let apply = |journal: &mut Journal, live: &mut Routing, batch: Vec<Timed>| {
        journal.append(&batch).unwrap();
        let mut offers = Vec::new();
        for input in &batch {
            let (fired, handled) = live.engine.step(input.at, &input.event);
            for d in fired.iter().chain(handled.iter().flatten()) {
                if let DecisionKind::Offer {
                    interaction, agent, ..
                } = &d.kind
                {
                    offers.push((interaction.to_string(), agent.to_string()));
                }
            }
        }
        offers
    };
    let logins = (0..200)
        .map(|n| Timed {
            at: 0,
            event: login(n),
        })
        .collect();
    apply(&mut journal, &mut live, logins);
    let mut written = 200u64;
    let mut n = 0u64;
    let started = Instant::now();
    while written < EVENTS {
        let at = n * 100;
        let mut batch = vec![arrival(n, at)];
        if n >= 30 {
            batch.push(Timed {
                at,
                event: Event::InteractionEnded {
                    interaction: format!("call-{}", n - 30),
                    resolved: Some(true),
                },
            });
        }
        let offers = apply(&mut journal, &mut live, batch.clone());
        written += batch.len() as u64;
        let accepts: Vec<Timed> = offers
            .into_iter()
            .map(|(interaction, agent)| Timed {
                at,
                event: Event::OfferAccepted {
                    interaction,
                    agent,
                    offer: None,
                },
            })
            .collect();
        if !accepts.is_empty() {
            written += accepts.len() as u64;
            apply(&mut journal, &mut live, accepts);
        }
        n += 1;
    }
    let generated = started.elapsed();
    let records = journal.last_index();
    let mut expected = Vec::new();
    live.engine.write_snapshot(&mut expected).unwrap();
    drop(journal);
    let bytes = dir_bytes(tmp.path());

    // Where the time goes: reading + checking frames, then JSON decoding, then the engine.
    let (_, scan_wall, scan_cpu) =
        timed(|| Log::open(tmp.path(), options(SyncMode::None).log, 1, |_, _| Ok(())).unwrap());
    let (_, decode_wall, decode_cpu) = timed(|| {
        Log::open(tmp.path(), options(SyncMode::None).log, 1, |_, p| {
            serde_json::from_slice::<Timed>(p)
                .map(|_| ())
                .map_err(|e| tierline::journal::JournalError::decode(0, e.to_string()))
        })
        .unwrap()
    });
    let ((journal, recovered, report), took, took_cpu) = timed(|| {
        Journal::recover(tmp.path(), options(SyncMode::None), 0, || Routing {
            engine: Engine::new(RoutingConfig::empty(), 0),
        })
        .unwrap()
    });
    let mut got = Vec::new();
    recovered.engine.write_snapshot(&mut got).unwrap();
    assert_eq!(got, expected, "recovery must rebuild the live state");
    assert_eq!(journal.last_index(), records);
    println!(
        "journal of {records} records ({:.1} MiB on disk, written + applied in {:.2?}): \
         recovered in {took:.2?} wall / {took_cpu:.2?} CPU ({:.0} records per CPU second); \
         of which read + CRC {scan_wall:.2?} / {scan_cpu:.2?} CPU, + JSON decode {decode_wall:.2?} / {decode_cpu:.2?} CPU; {report}",
        bytes as f64 / (1 << 20) as f64,
        generated,
        records as f64 / took_cpu.as_secs_f64()
    );
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn snapshot_of_half_a_million_waiting_interactions() {
    const WAITING: u64 = 500_000;
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, mut live, _) =
        Journal::recover(tmp.path(), options(SyncMode::Batch), 0, || Routing {
            engine: Engine::new(config(200), 0),
        })
        .unwrap();
    // Nobody is logged in: every arrival waits (with its step timer pending).
    for n in 0..WAITING {
        let input = arrival(n, n / 10);
        let (_, handled) = live.engine.step(input.at, &input.event);
        assert!(handled.is_ok(), "{handled:?}");
    }
    assert_eq!(live.engine.counts().waiting, WAITING);
    let (_, save_wall, save_cpu) = timed(|| {
        let mut bytes = Vec::new();
        live.save(&mut bytes).unwrap();
    });
    let (_, wrote, wrote_cpu) = timed(|| journal.snapshot(&live, live.engine.now()).unwrap());
    drop(journal);
    let bytes = dir_bytes(tmp.path());

    let ((_, recovered, report), took, took_cpu) = timed(|| {
        Journal::recover(tmp.path(), options(SyncMode::Batch), 0, || Routing {
            engine: Engine::new(RoutingConfig::empty(), 0),
        })
        .unwrap()
    });
    assert_eq!(recovered.engine.counts().waiting, WAITING);
    assert_eq!(
        recovered.engine.next_deadline(),
        live.engine.next_deadline()
    );
    println!(
        "snapshot of {WAITING} waiting interactions: {:.1} MiB; serialize {save_wall:.2?} / {save_cpu:.2?} CPU; \
         serialize + write + sync {wrote:.2?} / {wrote_cpu:.2?} CPU; recovered in {took:.2?} / {took_cpu:.2?} CPU; {report}",
        bytes as f64 / (1 << 20) as f64
    );
}

// ---------------------------------------------------------------------------------------------
// The daemon's own state (`Core`: engine + idempotency window + decision log), as `tierline
// serve` recovers it.

use tierline::config::{DaemonConfig, LoadedConfig};
use tierline::daemon::core::{Core, Input, Outcome, TimedInput};

fn core(agents: usize) -> Core {
    Core::new(
        LoadedConfig {
            routing: config(agents),
            daemon: DaemonConfig::default(),
            source: String::new(),
        },
        0,
    )
}

fn event(id: u64, at: u64, event: Event) -> TimedInput {
    TimedInput {
        at,
        input: Input::Event {
            id: format!("evt-{id:09}"),
            event,
        },
    }
}

/// Journal `batch`, apply it to `live`, and return the offers it made.
fn apply_core(
    journal: &mut Journal,
    live: &mut Core,
    batch: &[TimedInput],
) -> Vec<(String, String)> {
    journal.append(batch).unwrap();
    let mut offers = Vec::new();
    for input in batch {
        let applied = live.apply(&input.input, input.at);
        let made = match &applied.outcome {
            Outcome::Applied(d) => d.as_slice(),
            _ => &[],
        };
        for d in applied.fired.iter().chain(made) {
            if let DecisionKind::Offer {
                interaction, agent, ..
            } = &d.kind
            {
                offers.push((interaction.to_string(), agent.to_string()));
            }
        }
    }
    offers
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn recovery_of_a_daemon_journal_of_one_million_events() {
    const EVENTS: u64 = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(SyncMode::None);
    let (mut journal, mut live, _) = Journal::recover(tmp.path(), opts, 0, || core(200)).unwrap();
    let mut id = 0u64;
    let mut next_id = || {
        id += 1;
        id
    };
    let logins: Vec<TimedInput> = (0..200).map(|n| event(next_id(), 0, login(n))).collect();
    apply_core(&mut journal, &mut live, &logins);
    let mut n = 0u64;
    while journal.last_index() < EVENTS {
        let at = n * 100;
        let mut batch = vec![event(next_id(), at, arrival(n, at).event)];
        if n >= 30 {
            batch.push(event(
                next_id(),
                at,
                Event::InteractionEnded {
                    interaction: format!("call-{}", n - 30),
                    resolved: Some(true),
                },
            ));
        }
        let offers = apply_core(&mut journal, &mut live, &batch);
        let accepts: Vec<TimedInput> = offers
            .into_iter()
            .map(|(interaction, agent)| {
                event(
                    next_id(),
                    at,
                    Event::OfferAccepted {
                        interaction,
                        agent,
                        offer: None,
                    },
                )
            })
            .collect();
        if !accepts.is_empty() {
            apply_core(&mut journal, &mut live, &accepts);
        }
        n += 1;
    }
    let records = journal.last_index();
    let mut expected = Vec::new();
    live.save(&mut expected).unwrap();
    let decisions = live.next_seq() - 1;
    drop(live);
    drop(journal);
    let bytes = dir_bytes(tmp.path());

    // The split: reading + checking frames, JSON decoding, then applying (engine + window + log).
    let (_, _, scan_cpu) = timed(|| Log::open(tmp.path(), opts.log, 1, |_, _| Ok(())).unwrap());
    // Decoding, side by side and alternating (3 rounds, medians): serde's reader of `TimedInput`
    // (what recovery used before) and what recovery's helper thread does per record now (the
    // fast reader, plus hashing event ids).
    let decode_serde = || {
        let mut inputs = Vec::with_capacity(records as usize);
        let (_, _, cpu) = timed(|| {
            Log::open(tmp.path(), opts.log, 1, |_, p| {
                inputs.push(serde_json::from_slice::<TimedInput>(p).unwrap());
                Ok(())
            })
            .unwrap()
        });
        (inputs, cpu)
    };
    let decode_replay = || {
        let mut inputs = Vec::with_capacity(records as usize);
        let (_, _, cpu) = timed(|| {
            Log::open(tmp.path(), opts.log, 1, |_, p| {
                inputs.push(<Core as Replay>::decode(p).unwrap());
                Ok(())
            })
            .unwrap()
        });
        (inputs, cpu)
    };
    let (mut serde_cpu, mut replay_decode_cpu) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        serde_cpu.push(decode_serde().1);
        replay_decode_cpu.push(decode_replay().1);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (decode_cpu, replay_decode_cpu) = (median(serde_cpu), median(replay_decode_cpu));
    let (inputs, _) = decode_serde();
    let (replay_inputs, _) = decode_replay();
    // Applying as the live path does (every decision serialized for the log)…
    let mut fresh = core(200);
    let (_, _, apply_cpu) = timed(|| {
        for i in &inputs {
            fresh.apply(&i.input, i.at);
        }
    });
    drop(fresh);
    drop(inputs);
    // …and as replay does (only the decisions the log still holds at the end are serialized;
    // the inputs are dropped elsewhere).
    let mut fresh = core(200);
    let (_, _, replay_cpu) = timed(|| {
        for i in &replay_inputs {
            fresh.replay(i);
        }
        fresh.replay_finished();
    });
    drop(fresh);
    let (_, _, drop_cpu) = timed(|| drop(replay_inputs));

    let ((journal, recovered, report), took, took_cpu) =
        timed(|| Journal::recover(tmp.path(), opts, 0, || core(200)).unwrap());
    let mut got = Vec::new();
    recovered.save(&mut got).unwrap();
    assert!(got == expected, "recovery must rebuild the live state");
    assert_eq!(journal.last_index(), records);
    println!(
        "daemon journal of {records} records, {decisions} decisions ({:.1} MiB on disk): \
         recovered in {took:.2?} wall / {took_cpu:.2?} CPU on the replaying thread; split (CPU, one thread each): \
         read + CRC {scan_cpu:.2?}, + JSON decode {decode_cpu:.2?} (serde reader of `TimedInput`) / \
         {replay_decode_cpu:.2?} (recovery's reader, with id hashing; medians of 3, alternating), apply as live {apply_cpu:.2?}, \
         replay with deferred decision JSON {replay_cpu:.2?}, dropping the inputs {drop_cpu:.2?}; {report}",
        bytes as f64 / (1 << 20) as f64,
    );
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn a_snapshot_of_half_a_million_waiting_blocks_the_engine_task_only_for_its_capture() {
    const WAITING: u64 = 500_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (mut sink, mut live, _) =
        tierline::daemon::durable::recover(&dir, options(SyncMode::Batch), 0, || core(200))
            .unwrap();
    // Nobody is logged in: every arrival waits (with its step timer pending).
    for n in 0..WAITING {
        let input = event(n, n / 10, arrival(n, n / 10).event);
        let applied = live.apply(&input.input, input.at);
        assert!(applied.outcome.is_applied(), "{:?}", applied.outcome);
    }
    assert_eq!(live.engine().counts().waiting, WAITING);
    let now = live.engine().now();
    let mut runs = Vec::new();
    for round in 0..3 {
        // Before: capture, encode, write, fsync and prune, all on the engine task.
        let journal_dir = tmp.path().join(format!("inline-{round}"));
        let (mut inline, _, _) =
            Journal::recover(&journal_dir, options(SyncMode::Batch), 0, || core(0)).unwrap();
        let (_, inline_wall, inline_cpu) = timed(|| inline.snapshot(&live, now).unwrap());
        drop(inline);
        std::fs::remove_dir_all(&journal_dir).unwrap();
        // After: only the capture on the engine task; the rest on the snapshot thread.
        let wall = Instant::now();
        let (captured, capture_wall, capture_cpu) =
            timed(|| sink.start_snapshot(&live, now + round));
        assert!(captured.is_some());
        sink.wait_for_snapshot();
        let durable = wall.elapsed();
        runs.push((inline_wall, inline_cpu, capture_wall, capture_cpu, durable));
    }
    let bytes = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "snap"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0);
    for (inline_wall, inline_cpu, capture_wall, capture_cpu, durable) in &runs {
        println!(
            "snapshot of {WAITING} waiting ({:.1} MiB): engine task blocked {inline_wall:.2?} wall / {inline_cpu:.2?} CPU \
             when written inline; {capture_wall:.2?} wall / {capture_cpu:.2?} CPU for the capture alone \
             (durable {durable:.2?} after it started, on the snapshot thread)",
            bytes as f64 / (1 << 20) as f64
        );
    }
    drop(sink);
    let ((_, recovered, _), took, took_cpu) =
        timed(|| Journal::recover(&dir, options(SyncMode::Batch), 0, || core(0)).unwrap());
    assert_eq!(recovered.engine().counts().waiting, WAITING);
    println!("recovered the daemon snapshot of {WAITING} waiting in {took:.2?} wall / {took_cpu:.2?} CPU");
}
