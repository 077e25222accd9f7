//! Draining the exporter's histogram buffers off the threads that record.
//!
//! `metrics-exporter-prometheus` buffers histogram samples lock-free until something drains
//! them into the histograms (`PrometheusHandle::run_upkeep`; a scrape does it too). `Metrics`
//! asks for a drain every `UPKEEP_EVERY_SAMPLES` samples so the buffers stay bounded when nobody
//! scrapes. Drained inline, that work landed on whichever thread crossed the count: the engine
//! thread, an HTTP worker or the sync thread, each of which every request in flight waits for.
//! A drain usually takes 0.3–0.4 ms there, but one in ten took 5–11 ms at 10,000 events/s (the
//! sampled daemon, docs/BENCHMARKS.md): a stall of the whole pipeline each time.
//!
//! So the drain runs on a thread of its own (`tierline-metrics`), woken by the count crossing
//! (an event, not a timer: nothing polls). Requests coalesce: while a drain is asked for and
//! not yet started, more asks add nothing. Recording never waits for a drain (the buffers are
//! lock-free). If the thread cannot be started, or has gone, the drain runs inline as before.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

/// What a drain does (the exporter's `run_upkeep`, or a test's probe).
pub(crate) type Drain = Arc<dyn Fn() + Send + Sync>;

/// The drain thread's doorbell.
pub(crate) struct Upkeep {
    drain: Drain,
    /// `None`: no thread, drain inline.
    wake: Option<SyncSender<()>>,
}

impl Upkeep {
    /// Start the drain thread (`tierline-metrics`). It ends when this `Upkeep` is dropped.
    pub(crate) fn start(drain: Drain) -> Upkeep {
        // Depth 1: one ask waiting is enough, since a drain takes everything buffered so far.
        let (wake, asks) = mpsc::sync_channel::<()>(1);
        let theirs = drain.clone();
        let started = std::thread::Builder::new()
            .name("tierline-metrics".into())
            .spawn(move || {
                while asks.recv().is_ok() {
                    theirs();
                }
            });
        Upkeep {
            drain,
            wake: started.is_ok().then_some(wake),
        }
    }

    /// Ask for a drain: on the drain thread if there is one, else here.
    pub(crate) fn ask(&self) {
        let gone = match &self.wake {
            Some(wake) => match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => false,
                Err(TrySendError::Disconnected(())) => true,
            },
            None => true,
        };
        if gone {
            (self.drain)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn a_drain_runs_on_its_own_thread_not_on_the_one_that_asks() {
        let (done, drained) = mpsc::channel::<Option<String>>();
        let done = Mutex::new(done);
        let upkeep = Upkeep::start(Arc::new(move || {
            let name = std::thread::current().name().map(str::to_string);
            let _ = done.lock().map(|d| d.send(name));
        }));
        upkeep.ask();
        let on = drained
            .recv_timeout(Duration::from_secs(10))
            .expect("the drain ran");
        assert_eq!(on.as_deref(), Some("tierline-metrics"));
    }

    #[test]
    fn without_a_thread_the_drain_runs_inline() {
        let (done, drained) = mpsc::channel::<Option<String>>();
        let done = Mutex::new(done);
        let drain: Drain = Arc::new(move || {
            let name = std::thread::current().name().map(str::to_string);
            let _ = done.lock().map(|d| d.send(name));
        });
        let upkeep = Upkeep { drain, wake: None };
        upkeep.ask();
        let here = std::thread::current().name().map(str::to_string);
        assert_eq!(drained.try_recv().expect("ran inline"), here);
    }
}
