//! `tierline simulate`: the real routing engine in virtual time, against synthetic traffic.
//!
//! The simulator owns the scenario format (`scenario`), the arrival sources (`traffic`), the
//! discrete-event loop that plays the PBX, the customers and the agents (`run`), the counting
//! (`tally`) and the report (`report`). It drives the engine only through its public API, exactly
//! as the daemon does, so what it measures is what production would do. It never sleeps, never
//! reads a clock and never uses unseeded randomness: the same routing config, scenario and seed
//! give the same report, byte for byte.
//!
//! Recorded traffic plugs in as another [`traffic::Traffic`] source: `recording` reads a daemon's
//! journal directory, `playback` replays it with its own config (the "old" figures) and extracts
//! the traffic, `replay` fits what is only partly observed and runs it through a new config
//! (`--replay`). `record` writes a simulated run as a daemon journal (demos and tests).

pub mod cli;
pub mod dist;
pub mod playback;
pub mod record;
pub mod recording;
pub mod replay;
pub mod replay_report;
pub mod report;
pub mod run;
pub mod scenario;
pub mod tally;
pub mod traffic;

use thiserror::Error;

use crate::config::RoutingConfig;
use crate::engine::EngineError;

pub use dist::Dist;
pub use report::Report;
pub use scenario::Plan;
pub use traffic::{Arrival, Synthetic, Traffic};

/// Why a simulation stopped before its end.
#[derive(Debug, Error)]
pub enum SimError {
    /// The engine refused an event the simulator sent. The simulator only sends events that are
    /// valid for the engine's state, so this is a bug in one of the two (or an engine limit, such
    /// as `max_live_interactions`, reached by the scenario's traffic).
    #[error(
        "the engine refused `{event}` for `{subject}` at {at_s:.3} s of virtual time: {source}"
    )]
    EngineRefused {
        event: &'static str,
        subject: String,
        at_s: f64,
        #[source]
        source: Box<EngineError>,
    },
    /// Virtual time stopped advancing: `steps` events and timer firings in a row at one
    /// millisecond, more than any burst the scenario could make. The run would never end.
    #[error(
        "the run stopped making progress: {steps} steps at {at_s:.3} s of virtual time without \
         the clock moving on. Most likely agents who decline or miss every offer at once \
         (answer_delay 0) in a queue with no back-off after it (reject_delay_s, busy_delay_s or \
         no_answer_delay_s = 0) and max_no_answer = 0: the same call is offered back to them at \
         once, for ever. Give the queue a back-off or a max_no_answer"
    )]
    NoProgress { at_s: f64, steps: u64 },
}

/// Options of one run beside the scenario.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Include per-agent figures in the report.
    pub agents: bool,
}

/// Run a scenario's synthetic traffic through `config`.
pub fn simulate(config: RoutingConfig, plan: &Plan, options: &Options) -> Result<Report, SimError> {
    let seed = options.seed.unwrap_or(plan.seed);
    let traffic = Synthetic::new(plan, seed);
    run::run(config, plan, traffic, seed, options.agents)
}
