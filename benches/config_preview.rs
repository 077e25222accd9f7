//! What a config preview (`POST /v1/config/preview`) costs at TaskRouter's ceilings (15,000
//! agents, 5,000 queues) with 1,000 and 500,000 interactions waiting: the capture, which runs
//! on the engine task and so stalls routing, and the copy, change and comparison, which run on
//! a blocking thread (`tierline::daemon::preview::preview`), with the memory the copy takes at
//! its peak (a counting allocator, as in `engine_memory`).
//!
//! The change previewed is a ladder edit: every queue's last step (everyone, +5, after an hour)
//! a minute earlier, so every waiting interaction's ladder and timers are re-derived (the whole
//! of `Engine::reconfigure`'s work).
//! Medians of 5 runs of each part.
//!
//! Under `cargo test` (no `--bench` flag) it runs once at 2,000 waiting, as a check.

#[allow(dead_code)]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::Fixture;

struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE_BYTES.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE_BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benchmarking {
        &[1_000, 500_000]
    } else {
        &[2_000]
    };
    let runs = if benchmarking { 5 } else { 1 };
    println!("| waiting | capture (engine task), median | preview (blocking thread), median | copy's peak memory | interactions moved | decisions | the change applied (engine task), median | one queue's ladder changed, applied, median | the same, re-deriving everything, median |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &waiting in sizes {
        let f = Fixture::build(waiting);
        let mut changed = f.engine.config().clone();
        for q in &mut changed.queues {
            if let Some(last) = q.steps.last_mut().filter(|s| s.after_ms >= 60_000) {
                last.after_ms -= 60_000;
            }
        }
        let mut captures = Vec::new();
        let mut previews = Vec::new();
        let mut peak = 0usize;
        let mut last = None;
        for _ in 0..runs {
            let start = Instant::now();
            let captured = f.engine.capture();
            captures.push(start.elapsed());
            let before = LIVE_BYTES.load(Ordering::Relaxed);
            PEAK_BYTES.store(before, Ordering::Relaxed);
            let start = Instant::now();
            let report = tierline::daemon::preview::preview(captured, &[], changed.clone(), f.now)
                .unwrap_or_else(|e| panic!("preview at {waiting} waiting: {e}"));
            previews.push(start.elapsed());
            peak = peak.max(PEAK_BYTES.load(Ordering::Relaxed) - before);
            last = Some(report);
        }
        let report = last.expect("at least one run");
        assert_eq!(
            f.engine.counts().waiting,
            waiting as u64,
            "the preview changed the live engine"
        );
        // The change applied for real, on the engine (what a `PUT` stalls routing for), back
        // and forth between the two ladders so that every run changes something.
        let original = f.engine.config().clone();
        let mut f = f;
        let mut applies = Vec::new();
        for k in 0..runs.max(2) {
            let target = if k % 2 == 0 { &changed } else { &original };
            let start = Instant::now();
            f.engine
                .reconfigure(f.now, target.clone())
                .unwrap_or_else(|e| panic!("reconfigure at {waiting} waiting: {e}"));
            applies.push(start.elapsed());
        }
        // A change to one queue (the first busy one's last step), applied as a live change is
        // (only that queue re-derived) and re-deriving everything (as before): side by side.
        let mut one = original.clone();
        let busy = f.engine.config().queues[0].id.clone();
        one.queues[0] = changed.queues[0].clone();
        assert_ne!(
            one.queues[0], original.queues[0],
            "the one-queue change changes nothing"
        );
        let (mut touched, mut whole) = (Vec::new(), Vec::new());
        for k in 0..runs.max(2) * 2 {
            let target = if k % 2 == 0 { &one } else { &original };
            let start = Instant::now();
            if k % 4 < 2 {
                f.engine.reconfigure(f.now, target.clone())
            } else {
                f.engine.reconfigure_whole(f.now, target.clone())
            }
            .unwrap_or_else(|e| panic!("one-queue change at {waiting} waiting: {e}"));
            let took = start.elapsed();
            if k % 4 < 2 {
                touched.push(took);
            } else {
                whole.push(took);
            }
        }
        let waiting_there = f.engine.queue_load(&busy).map_or(0, |l| l.waiting);
        println!(
            "| {waiting} | {:.2} ms | {:.0} ms | {:.0} MB | {} | {} | {:.0} ms | {:.1} ms ({} waiting there) | {:.0} ms |",
            median(captures).as_secs_f64() * 1e3,
            median(previews).as_secs_f64() * 1e3,
            peak as f64 / 1e6,
            report.interactions.len(),
            report.decisions.len(),
            median(applies).as_secs_f64() * 1e3,
            median(touched).as_secs_f64() * 1e3,
            waiting_there,
            median(whole).as_secs_f64() * 1e3,
        );
    }
}
