//! Memory per agent and per waiting interaction at TaskRouter's ceilings (15,000 agents,
//! 500,000 waiting), measured with a counting global allocator.
//!
//! The allocator counts bytes requested from the system allocator that are still live (and how
//! many allocations they are), so a delta between two points is exactly what the engine kept.
//! It does not see malloc's own per-allocation overhead (8–16 bytes on glibc), which is why the
//! live allocation count is reported too, and RSS from `/proc/self/status` for reference.
//!
//! Under `cargo test` (no `--bench` flag) it measures 2,000 waiting only, as a quick check.

// Shared with `benches/engine.rs`, which uses the parts this program does not.
#[allow(dead_code)]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tierline::engine::Engine;

use support::{agents, config, log_everyone_in, queues, Fixture, T0};

/// The system allocator, counting live bytes and allocations.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
            LIVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            grew(new_size);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes and allocations at one moment.
#[derive(Clone, Copy)]
struct Mark {
    bytes: usize,
    allocs: usize,
}

fn mark() -> Mark {
    Mark {
        bytes: LIVE_BYTES.load(Ordering::Relaxed),
        allocs: LIVE_ALLOCS.load(Ordering::Relaxed),
    }
}

/// (bytes, allocations) kept per item between two marks.
fn per(from: Mark, to: Mark, items: usize) -> (f64, f64) {
    let bytes = to.bytes as f64 - from.bytes as f64;
    let allocs = to.allocs as f64 - from.allocs as f64;
    (bytes / items as f64, allocs / items as f64)
}

/// `VmRSS` and `VmHWM` in MiB (0 where `/proc` is unavailable).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn verdict(bytes: f64) -> &'static str {
    if bytes <= 1024.0 {
        "within the 1 KiB target"
    } else {
        "OVER the 1 KiB target"
    }
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let checkpoints: &[usize] = if benchmarking {
        &[1_000, 100_000, 250_000, 500_000]
    } else {
        &[2_000]
    };

    // Per agent: an engine with the 15,000-agent roster, everyone logged in, minus the same
    // engine without agents. Both include the config the engine keeps (without the roster: the
    // engine turns roster entries into agent state and keeps no copy of them).
    // The roster as configured (what a `RoutingConfig` costs per agent; for reference only).
    let config_mark = mark();
    let roster_config = {
        let with = config(true);
        let with_mark = mark();
        let without = config(false);
        let (w, wo) = (
            with_mark.bytes as f64,
            mark().bytes as f64 - with_mark.bytes as f64,
        );
        drop((with, without));
        (w - config_mark.bytes as f64 - wo) / agents() as f64
    };
    let before = mark();
    let queues_only = {
        let _engine = Engine::new(config(false), T0);
        mark()
    };
    let before_staff = mark();
    let (roster, logged_in) = {
        let mut engine = Engine::new(config(true), T0);
        let roster = mark();
        log_everyone_in(&mut engine);
        (roster, mark())
    };

    let delta = |from: Mark, to: Mark| {
        (
            to.bytes as f64 - from.bytes as f64,
            to.allocs as f64 - from.allocs as f64,
        )
    };
    let (queues_bytes, queues_allocs) = delta(before, queues_only);
    let (staffed_bytes, staffed_allocs) = delta(before_staff, logged_in);
    let agents_bytes = staffed_bytes - queues_bytes;
    let agents_allocs = staffed_allocs - queues_allocs;
    let per_agent = agents_bytes / agents() as f64;
    let (per_login, _) = per(roster, logged_in, agents());
    println!("## engine memory (counting allocator: live requested bytes)");
    println!();
    println!(
        "engine with {} queues, no agents: {:.1} MiB",
        queues(),
        queues_bytes / 1048576.0
    );
    println!(
        "per agent (roster + logged in, {} agents): {per_agent:.0} bytes, {:.1} allocations \
         (a roster entry in a RoutingConfig, not kept by the engine: {roster_config:.0} bytes; logging in: \
         {per_login:.0} bytes) — {}",
        agents(),
        agents_allocs / agents() as f64,
        verdict(per_agent)
    );

    // Per waiting interaction: every agent busy, then add the waiting population.
    let mut fixture = Fixture::staffed();
    let base = mark();
    let (rss_base, _) = rss_mib();
    println!();
    println!("| waiting | bytes/interaction | allocations/interaction | live MiB | peak MiB | RSS MiB | build s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut last = (0.0, 0.0);
    for &n in checkpoints {
        let start = Instant::now();
        fixture.add_waiting(n - fixture.waiting);
        let took = start.elapsed().as_secs_f64();
        let now = mark();
        let (bytes, allocs) = per(base, now, n);
        let (rss, _) = rss_mib();
        println!(
            "| {n} | {bytes:.0} | {allocs:.2} | {:.1} | {:.1} | {rss:.0} | {took:.1} |",
            now.bytes as f64 / 1048576.0,
            PEAK_BYTES.load(Ordering::Relaxed) as f64 / 1048576.0,
        );
        last = (bytes, allocs);
    }
    let n = fixture.waiting;
    fixture.settle();
    let (settled, settled_allocs) = per(base, mark(), n);
    let (rss, hwm) = rss_mib();
    println!();
    println!(
        "per waiting interaction at {n}: {:.0} bytes, {:.2} allocations on arrival; \
         {settled:.0} bytes, {settled_allocs:.2} allocations after its first ladder step — {}",
        last.0,
        last.1,
        verdict(settled.max(last.0))
    );
    println!(
        "RSS {rss:.0} MiB (peak {hwm:.0} MiB); {rss_base:.0} MiB before the waiting population \
         ({:.0} bytes/interaction by RSS, includes malloc overhead and free-list slack)",
        (rss - rss_base) * 1048576.0 / n as f64
    );
    let counts = fixture.engine.counts();
    assert_eq!(
        counts.waiting, n as u64,
        "the engine should hold exactly the waiting population: {counts:?}"
    );
}
