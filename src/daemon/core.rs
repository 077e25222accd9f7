//! The deterministic heart of the daemon: the engine plus the idempotency window and the decision
//! log, driven by serializable `Input`s at explicit times.
//!
//! `Core` owns everything whose state must survive a restart, so the durability journal can record
//! the `Input`s and replay them through this same code to rebuild it exactly. It must never do I/O,
//! read a clock, spawn or await: the engine task (`super::task`) does all of that around it.

use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, LoadedConfig, Millis};
use crate::engine::{Decision, Engine, EngineError, Event, RequestedState};

use super::decision_log::{DecisionLog, DecisionPage, DecisionsGone, DEFAULT_DECISION_LOG};
use super::idempotency::IdempotencyWindow;

/// One thing that happened to the core, as journaled and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// An event from `POST /v1/events`, with its envelope id (the idempotency key).
    Event { id: String, event: Event },
    /// Only time passed: fire the timers due by now.
    Advance,
    /// Replace the routing config with this TOML text (file reload, SIGHUP or `PUT /v1/config`).
    Reconfigure { source: String, origin: String },
    /// An administrator forces an agent's status (`PUT /v1/agents/{id}/state`).
    AgentState {
        agent: String,
        state: RequestedState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// An input with the time it was applied at: the unit the journal records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedInput {
    pub at: Millis,
    #[serde(flatten)]
    pub input: Input,
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It took effect; these are the decisions it caused.
    Applied(Vec<Decision>),
    /// An event whose id is in the idempotency window: not applied again.
    Duplicate,
    /// The engine refused the event; nothing changed.
    Rejected(EngineError),
    /// The new config was refused (every problem listed); the old one stays in force.
    ConfigRefused(Vec<ConfigError>),
}

impl Outcome {
    /// Whether the input changed state (and so must be journaled).
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied(_))
    }
}

/// The result of `Core::apply`.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Decisions of timers that fell due before the input took effect (they come first).
    pub fired: Vec<Decision>,
    pub outcome: Outcome,
}

/// The engine with the daemon's replayable state around it. See the module docs.
pub struct Core {
    engine: Engine,
    config: LoadedConfig,
    window: IdempotencyWindow,
    log: DecisionLog,
}

impl Core {
    /// A fresh core at time `now`, keeping the default number of decisions for readers.
    pub fn new(config: LoadedConfig, now: Millis) -> Core {
        Core::with_decision_log(config, now, DEFAULT_DECISION_LOG)
    }

    /// A fresh core keeping the last `log_capacity` decisions for readers.
    pub fn with_decision_log(config: LoadedConfig, now: Millis, log_capacity: usize) -> Core {
        let engine = Engine::new(config.routing.clone(), now);
        let window = IdempotencyWindow::new(config.daemon.server.idempotency_ids);
        let log = DecisionLog::new(log_capacity, engine.next_seq());
        Core {
            engine,
            config,
            window,
            log,
        }
    }

    /// Apply one input at `now`: first fire every timer due by `now`, then the input itself.
    pub fn apply(&mut self, input: &Input, now: Millis) -> Applied {
        let fired = self.engine.advance(now);
        self.log.push(&fired);
        let outcome = match input {
            Input::Advance => Outcome::Applied(Vec::new()),
            Input::Event { id, event } => self.apply_event(id, event, now),
            Input::Reconfigure { source, origin } => self.reconfigure(source, origin, now),
            Input::AgentState {
                agent,
                state,
                reason,
            } => {
                let reason = match (state, reason) {
                    (_, Some(r)) => Some(r.clone()),
                    (RequestedState::Available, None) => None,
                    (_, None) => Some("admin".to_string()),
                };
                let event = Event::AgentState {
                    agent: agent.clone(),
                    state: *state,
                    reason,
                };
                match self.engine.handle(now, &event) {
                    Ok(decisions) => self.applied(decisions),
                    Err(e) => Outcome::Rejected(e),
                }
            }
        };
        Applied { fired, outcome }
    }

    fn apply_event(&mut self, id: &str, event: &Event, now: Millis) -> Outcome {
        if self.window.contains(id) {
            return Outcome::Duplicate;
        }
        match self.engine.handle(now, event) {
            Ok(decisions) => {
                self.window.insert(id);
                self.applied(decisions)
            }
            Err(e) => Outcome::Rejected(e),
        }
    }

    fn reconfigure(&mut self, source: &str, origin: &str, now: Millis) -> Outcome {
        let loaded = match config::parse(source, origin) {
            Ok(loaded) => loaded,
            Err(errors) => return Outcome::ConfigRefused(errors.0),
        };
        match self.engine.reconfigure(now, loaded.routing.clone()) {
            Ok(decisions) => {
                self.window
                    .set_capacity(loaded.daemon.server.idempotency_ids);
                self.config = loaded;
                self.applied(decisions)
            }
            Err(refused) => Outcome::ConfigRefused(
                refused
                    .problems
                    .into_iter()
                    .map(|message| ConfigError {
                        file: origin.to_string(),
                        line: None,
                        column: None,
                        field: String::new(),
                        message,
                    })
                    .collect(),
            ),
        }
    }

    fn applied(&mut self, decisions: Vec<Decision>) -> Outcome {
        self.log.push(&decisions);
        Outcome::Applied(decisions)
    }

    /// When `apply(Input::Advance, …)` is next needed.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.engine.next_deadline()
    }

    /// Up to `limit` logged decisions after seq `after` (`None` = from the oldest held).
    pub fn decisions_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<DecisionPage, DecisionsGone> {
        self.log.after(after, limit)
    }

    /// The seq the next decision will carry.
    pub fn next_seq(&self) -> u64 {
        self.log.next_seq()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// For switching fact recording and taking facts; never for applying events (use `apply`).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The config in force (routing, daemon settings and its TOML source).
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    pub fn idempotency_window(&self) -> &IdempotencyWindow {
        &self.window
    }
}
