//! Recovery benchmarks for docs/BENCHMARKS.md (ignored by default; they print, never assert on time):
//!
//! ```text
//! cargo test --release --test journal_bench -- --ignored --nocapture --test-threads 1
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tierline::config::daemon::SyncMode;
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Step};
use tierline::engine::{DecisionKind, Engine, Event};
use tierline::journal::{Journal, JournalOptions, Log, LogOptions, Replay};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Timed {
    at: u64,
    event: Event,
}

struct Routing {
    engine: Engine,
}

impl Replay for Routing {
    type Input = Timed;
    fn replay(&mut self, input: Timed) {
        let _ = self.engine.step(input.at, &input.event);
    }
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        self.engine.write_snapshot(out).map_err(|e| e.to_string())
    }
    fn load(bytes: &[u8]) -> Result<Self, String> {
        Engine::read_snapshot(&mut &bytes[..])
            .map(|engine| Routing { engine })
            .map_err(|e| e.to_string())
    }
}

fn config(agents: usize) -> RoutingConfig {
    let mut q = QueueConfig::with_defaults("support");
    q.steps = vec![
        Step {
            after_ms: 0,
            tiers: vec![1],
            priority_boost: 0,
            skip_if_no_agents: false,
        },
        Step {
            after_ms: 20_000,
            tiers: vec![1, 2],
            priority_boost: 2,
            skip_if_no_agents: false,
        },
    ];
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
            event: Event::AgentLogin {
                agent: format!("agent-{n}"),
                address: None,
                tiers: None,
                skills: None,
                capacity: None,
            },
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
                event: Event::OfferAccepted { interaction, agent },
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
            serde_json::from_slice::<Timed>(p).map(|_| ()).map_err(|e| {
                tierline::journal::JournalError::Decode {
                    index: 0,
                    reason: e.to_string(),
                }
            })
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
