//! Memory at scale for the whole daemon: 100,000 agents and 1,000,000 waiting interactions must
//! fit in under 1.5 GiB RSS with everything the daemon keeps (engine, idempotency window,
//! decision log, telemetry, journal writer), not just the engine.
//!
//! The daemon is started in process the way `tierline serve` starts it (`Daemon::start` with
//! its journal in a temporary directory, `sync = "none"`, default snapshot schedule; set
//! `TIERLINE_SCALE_JOURNAL=off` to run without a journal). The events then go the way
//! `POST /v1/events` takes them *after* the HTTP layer: JSON array bodies of 1,000 events are
//! parsed by `api::events::parse_body` and applied by `api::events::apply_parsed` (bounded
//! channel to the engine task, oneshot reply, the answer serialized to JSON as the handler
//! does). HTTP itself is left out: 1.3 million requests over loopback would take minutes here
//! and add nothing to the resident state.
//!
//! Phases: every agent logs in (L1 on one queue, L2 on the next, L3 on the third); one arrival
//! per agent is offered at once and accepted (every agent busy on a call); then the waiting
//! interactions arrive, spread round-robin over the queues, each with a pending ladder timer.
//! After each phase it prints `VmRSS`/`VmHWM` from `/proc/self/status` and the live bytes seen by
//! a counting allocator, and checks the engine's counts, so the numbers cannot describe a
//! different state. Then it measures the idempotency window and the decision ring on their own
//! at the same sizes, to say what part of the total they are.
//!
//! `cargo bench --bench scale_memory` (about a minute). Under `cargo test` (no `--bench`) it runs
//! 300 agents and 3,000 waiting as a quick check. `TIERLINE_SCALE_AGENTS` and
//! `TIERLINE_SCALE_WAITING` override the sizes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tierline::api::events::{apply_parsed, parse_body, ResultDecisions};
use tierline::config::{self, LoadedConfig};
use tierline::daemon::decision_log::{Cause, DecisionLog, DEFAULT_DECISION_LOG};
use tierline::daemon::idempotency::{Caused, IdempotencyWindow};
use tierline::daemon::task::EngineHandle;
use tierline::daemon::{Daemon, DaemonOptions};
use tierline::engine::{Decision, DecisionKind};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Events per request body, as a PBX batching its webhooks would send them.
const BATCH: usize = 1_000;
/// Agents per queue at tier 1 (so 100,000 agents make 100 queues).
const AGENTS_PER_QUEUE: usize = 1_000;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// `VmRSS` and `VmHWM` in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[derive(Clone, Copy)]
struct Point {
    rss: u64,
    hwm: u64,
    live: usize,
}

fn point(label: &str, started: Instant) -> Point {
    let (rss, hwm) = rss();
    let live = LIVE_BYTES.load(Ordering::Relaxed);
    println!(
        "{label:<44} VmRSS {:>8.1} MiB  VmHWM {:>8.1} MiB  live {:>8.1} MiB  ({:.1} s)",
        rss as f64 / MIB,
        hwm as f64 / MIB,
        live as f64 / MIB,
        started.elapsed().as_secs_f64()
    );
    Point { rss, hwm, live }
}

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The routing config: `queues` alike, voice only, L1 at once and everyone after an hour (so
/// each waiting interaction keeps one pending ladder timer), offers that ring for a day.
fn config_text(queues: usize, journal: Option<&std::path::Path>) -> String {
    let mut text = String::from(
        "[defaults]\noffer_timeout_s = 86400\nwrap_up_s = 0\n\n\
         [channels.voice]\ncapacity = 1\nexclusive = true\n\n",
    );
    for q in 0..queues {
        let _ = write!(
            text,
            "[[queue]]\nid = \"q{q}\"\nchannels = [\"voice\"]\n\
             steps = [{{ after_s = 0, tiers = [1] }}, {{ after_s = 3600, tiers = [1, 2, 3] }}]\n\n"
        );
    }
    text.push_str(
        "[routing]\nseed = 0\ndefault_queue = \"q0\"\n\n\
         [limits]\nmax_live_interactions = 5000000\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\nevent_queue_depth = 4096\nidempotency_ids = 1000000\n",
    );
    if let Some(dir) = journal {
        let _ = write!(
            text,
            "\n[journal]\ndir = \"{}\"\nsync = \"none\"\n",
            dir.display()
        );
    }
    text
}

/// Send `events` (JSON objects) in bodies of `BATCH` through the handlers' path; returns every
/// decision the answers carried. Panics on anything but `applied`.
async fn post(engine: &EngineHandle, events: &[String]) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for chunk in events.chunks(BATCH) {
        let mut body = String::with_capacity(chunk.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        body.push('[');
        body.push_str(&chunk.join(","));
        body.push(']');
        let parsed = parse_body(body.as_bytes()).expect("a well-formed body");
        let answer = apply_parsed(engine, parsed)
            .await
            .expect("the engine task answers");
        // What the handler sends back; built and dropped like an HTTP answer.
        let json = serde_json::to_vec(&answer).expect("serializable");
        assert!(!json.is_empty());
        for result in answer.results {
            assert_eq!(result.status, "applied", "{:?}", result.error);
            if let ResultDecisions::Made(made) = result.decisions {
                decisions.extend(made.decisions);
            }
        }
    }
    decisions
}

async fn run(agents: usize, waiting: usize, journal: bool) {
    let started = Instant::now();
    let queues = agents.div_ceil(AGENTS_PER_QUEUE).max(3);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal_dir = journal.then(|| dir.path().join("journal"));
    let text = config_text(queues, journal_dir.as_deref());
    let loaded: LoadedConfig = config::parse(&text, "<scale_memory>").expect("a valid config");
    println!(
        "{agents} agents, {waiting} waiting, {queues} queues, journal: {}",
        if journal {
            "on, sync = none, default snapshot schedule"
        } else {
            "off"
        }
    );
    let base = point("before the daemon", started);
    let mut options = DaemonOptions::new(loaded);
    options.journal_dir = journal_dir;
    let daemon = Daemon::start(options).await.expect("the daemon starts");
    let engine = daemon.engine().clone();
    let empty = point("daemon started, nothing logged in", started);

    let run = "s";
    let mut next_id = 0u64;
    let mut id = || {
        next_id += 1;
        format!("{run}-e{next_id}")
    };
    let logins: Vec<String> = (0..agents)
        .map(|j| {
            let tiers: Vec<String> = [(0, 1), (1, 2), (2, 3)]
                .iter()
                .map(|(offset, tier)| format!("\"q{}\":{tier}", (j / AGENTS_PER_QUEUE + offset) % queues))
                .collect();
            format!(
                r#"{{"id":"{}","type":"agent.login","agent":"a{j}","address":"sip:a{j}@pbx.example","tiers":{{{}}}}}"#,
                id(),
                tiers.join(",")
            )
        })
        .collect();
    post(&engine, &logins).await;
    drop(logins);
    let logged_in = point("agents logged in (all free)", started);

    // One call per agent, offered at once and accepted: every agent busy.
    let arrival = |id: String, i: usize| {
        format!(
            r#"{{"id":"{id}","type":"interaction.arrived","interaction":"c{i}","channel":"voice","queue":"q{}"}}"#,
            (i / AGENTS_PER_QUEUE) % queues
        )
    };
    let first: Vec<String> = (0..agents).map(|i| arrival(id(), i)).collect();
    let offers = post(&engine, &first).await;
    drop(first);
    let accepts: Vec<String> = offers
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Offer {
                interaction, agent, ..
            } => Some(format!(
                r#"{{"id":"{}","type":"offer.accepted","interaction":"{interaction}","agent":"{agent}"}}"#,
                id()
            )),
            _ => None,
        })
        .collect();
    assert_eq!(accepts.len(), agents, "every first arrival is offered");
    drop(offers);
    post(&engine, &accepts).await;
    drop(accepts);
    let busy = point("every agent on a call", started);

    let mut i = agents;
    while i < agents + waiting {
        let end = (i + 100_000).min(agents + waiting);
        let arrivals: Vec<String> = (i..end)
            .map(|n| {
                format!(
                    r#"{{"id":"{}","type":"interaction.arrived","interaction":"c{n}","channel":"voice","queue":"q{}"}}"#,
                    id(),
                    n % queues
                )
            })
            .collect();
        let decisions = post(&engine, &arrivals).await;
        assert!(
            decisions
                .iter()
                .all(|d| matches!(d.kind, DecisionKind::Queued { .. })),
            "with every agent busy, arrivals wait"
        );
        i = end;
    }
    let full = point("waiting interactions queued", started);
    // A journal snapshot may be in flight: its capture is a copy of the engine, encoded and
    // written on the snapshot thread, so until it is written the process holds the engine
    // twice. Give it time to finish (a bench, not a test: nothing asserts on this) and measure
    // the steady state too.
    if journal {
        tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    }
    let settled = point("20 s later (snapshot in flight written)", started);

    let (counts, window, next_seq) = engine
        .read(|v| {
            (
                v.core.engine().counts(),
                v.core.idempotency_window().len(),
                v.core.next_seq(),
            )
        })
        .await
        .expect("the engine task answers");
    assert_eq!(counts.waiting, waiting as u64);
    assert_eq!(counts.connected, agents as u64);
    let ring = (next_seq.saturating_sub(1) as usize).min(DEFAULT_DECISION_LOG);

    let per = |a: Point, b: Point, n: usize| {
        (
            (b.rss as f64 - a.rss as f64) / n as f64,
            (b.live as f64 - a.live as f64) / n as f64,
        )
    };
    let (agent_rss, agent_live) = per(empty, logged_in, agents);
    let (busy_rss, busy_live) = per(logged_in, busy, agents);
    let (wait_rss, wait_live) = per(busy, full, waiting);
    println!();
    println!("per agent logged in:            {agent_rss:>7.0} B RSS  {agent_live:>7.0} B live");
    println!("per agent's call (offer+accept):{busy_rss:>7.0} B RSS  {busy_live:>7.0} B live");
    println!("per waiting interaction:        {wait_rss:>7.0} B RSS  {wait_live:>7.0} B live");
    println!(
        "whole process: VmRSS {:.3} GiB, VmHWM {:.3} GiB (target < 1.5 GiB); the daemon's share {:.3} GiB",
        full.rss as f64 / GIB,
        full.hwm as f64 / GIB,
        (full.rss - base.rss) as f64 / GIB
    );
    println!(
        "after any snapshot in flight is written: VmRSS {:.3} GiB, VmHWM {:.3} GiB",
        settled.rss as f64 / GIB,
        settled.hwm as f64 / GIB
    );
    println!("idempotency window holds {window} ids; decision ring holds {ring} decisions");

    // The side tables on their own, at the sizes they have now, measured the same way once the
    // daemon has stopped (the live-byte counter is process-wide: the engine and snapshot threads
    // must not allocate or free meanwhile).
    let sample = engine
        .read(|v| v.core.decisions_after(None, 1).map(|p| p.decisions))
        .await
        .expect("the engine task answers")
        .unwrap_or_default();
    daemon.stop().await.expect("a clean stop");
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut ids = IdempotencyWindow::new(window.max(1));
    for n in 0..window {
        ids.insert(
            &format!("{run}-e{}", 1_000_000 + n),
            Caused::new(n as u64 + 1, 1),
        );
    }
    let window_bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    drop(ids);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut log = DecisionLog::new(ring.max(1), 1);
    if let Some(d) = sample.first() {
        let decision: Decision = serde_json::from_str(&d.json).expect("a logged decision");
        for seq in 1..=ring as u64 {
            // Each decision names an event as its cause, as an arrival's decisions do.
            let id = format!("{run}-e{seq}");
            log.push(
                std::slice::from_ref(&Decision {
                    seq,
                    ..decision.clone()
                }),
                Cause::Event {
                    id: &id,
                    kind: "interaction.arrived",
                },
            );
        }
    }
    let log_bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    drop(log);
    println!(
        "of the live bytes: idempotency window {:.1} MiB ({:.0} B per id), decision ring {:.1} MiB ({:.0} B per decision)",
        window_bytes as f64 / MIB,
        window_bytes as f64 / window.max(1) as f64,
        log_bytes as f64 / MIB,
        log_bytes as f64 / ring.max(1) as f64
    );
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (agents, waiting) = if benchmarking {
        (
            env_size("TIERLINE_SCALE_AGENTS", 100_000),
            env_size("TIERLINE_SCALE_WAITING", 1_000_000),
        )
    } else {
        (300, 3_000)
    };
    let journal = std::env::var("TIERLINE_SCALE_JOURNAL").map_or(true, |v| v != "off");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(agents, waiting, journal));
}
