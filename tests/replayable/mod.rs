//! The engine as journal-replayable state, and the small mixed-channel desk the snapshot and
//! journal tests route on. Shared so those tests replay and configure identically.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Step, Strategy};
use tierline::engine::{Engine, Event};
use tierline::journal::Replay;

/// One journaled input: an event at a time (the daemon's `TimedInput` plays this part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    pub at: u64,
    pub event: Event,
}

/// The engine as replayable state.
pub struct Routing {
    pub engine: Engine,
}

impl Replay for Routing {
    type Input = Timed;
    fn decode(payload: &[u8]) -> Result<Timed, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
    fn replay(&mut self, input: &Timed) {
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

/// One `support` queue (voice + chat, random strategy, L1 then L1+L2 with +3 after 20 s) and
/// `agents` agents alternating L1/L2; `seed` drives the random strategy.
pub fn mixed_desk(seed: u64, agents: usize) -> RoutingConfig {
    let mut support = QueueConfig::with_defaults("support");
    support.channels = vec![Channel::Voice, Channel::Chat];
    support.strategy = Strategy::Random;
    support.steps = vec![Step::new(0, &[1]), Step::new(20_000, &[1, 2]).boosted(3)];
    let mut cfg = RoutingConfig::empty();
    cfg.seed = seed;
    cfg.queues.push(support);
    cfg.agents = (0..agents)
        .map(|n| AgentConfig {
            id: format!("a{n}"),
            address: format!("sip:{n}@pbx"),
            tiers: BTreeMap::from([("support".to_string(), 1 + (n % 2) as u8)]),
            skills: vec![],
            capacity: BTreeMap::new(),
        })
        .collect();
    cfg
}

/// The smallest replayable state: the inputs seen, in order. With `PAD` > 0 it is saved with
/// that many bytes of ballast: a state much larger than its journal records, like the daemon's
/// retained interactions and idempotency ids.
#[derive(Debug, Default, PartialEq)]
pub struct Seen<const PAD: usize = 0>(pub Vec<u64>);

impl<const PAD: usize> Replay for Seen<PAD> {
    type Input = u64;
    fn decode(payload: &[u8]) -> Result<u64, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
    fn replay(&mut self, input: &u64) {
        self.0.push(*input);
    }
    fn save(&self, out: &mut Vec<u8>) -> Result<(), String> {
        if PAD == 0 {
            serde_json::to_writer(out, &self.0)
        } else {
            serde_json::to_writer(out, &(&self.0, "x".repeat(PAD)))
        }
        .map_err(|e| e.to_string())
    }
    fn load(bytes: &[u8]) -> Result<Self, String> {
        if PAD == 0 {
            serde_json::from_slice(bytes).map(Seen)
        } else {
            serde_json::from_slice::<(Vec<u64>, String)>(bytes).map(|(seen, _)| Seen(seen))
        }
        .map_err(|e| e.to_string())
    }
}
