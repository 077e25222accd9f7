//! The simulated PBX: which event to send next, and how it reacts to the decisions it sees.
//!
//! Owns the generator's picture of its agents and interactions and the follow-ups it has planned
//! (accept this offer in 4 ms, end that call in 180 ms, come back from a break…). Every send slot
//! is filled with the most overdue follow-up, else a new arrival, so every event counts toward
//! the target rate and the mix of event types follows from the lifecycles rather than being fixed.
//! It must never block, sleep or do I/O: senders call it under a std `Mutex` for a few
//! microseconds per event, which is cheaper than a channel round trip to a model task.
//!
//! Bounded: at most `max_live` interactions are tracked; beyond that a slot abandons the oldest
//! waiting one instead of adding another (what callers do when a queue is overloaded).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Channel, Tier};
use crate::engine::{DeclineReason, Event, RequestedState};

/// How the simulated callers and agents behave. Times are in milliseconds of generator time.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Share of arrivals that are voice calls (the rest are chats).
    pub voice_share: f64,
    /// Share of offers the agent declines (reason drawn from rejected / busy / no_answer).
    pub decline_share: f64,
    /// Share of arrivals whose caller gives up after an exponential patience.
    pub abandon_share: f64,
    pub patience_ms_mean: f64,
    /// Share of arrivals whose caller hangs up within the ring time (patience uniform in
    /// 1..=ring_ms_max): about half of them while their offer rings (the router revokes it,
    /// reason `abandoned`), the others lose the race to the agent's accept. With a staffed
    /// centre nobody waits long enough for `patience_ms_mean` to matter, so without these the
    /// abandon paths would hardly be exercised.
    pub short_abandon_share: f64,
    /// Share of ended interactions after which the agent sends `agent.wrapup_done`.
    pub wrapup_done_share: f64,
    pub wrapup_done_after_ms: u64,
    /// Share of ended interactions after which the agent takes a break (`agent.state not_ready`).
    pub break_share: f64,
    pub break_ms: u64,
    /// An agent the engine made not_ready (e.g. `max_no_answer`) comes back after this long.
    pub recover_ms: u64,
    /// Offers are answered after a uniform 1..=ring_ms_max.
    pub ring_ms_max: u64,
    /// Connected time, exponential with this mean.
    pub talk_ms_mean: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            voice_share: 0.7,
            decline_share: 0.05,
            abandon_share: 0.05,
            patience_ms_mean: 300.0,
            short_abandon_share: 0.02,
            wrapup_done_share: 0.3,
            wrapup_done_after_ms: 30,
            break_share: 0.01,
            break_ms: 500,
            recover_ms: 100,
            ring_ms_max: 10,
            talk_ms_mean: 200.0,
        }
    }
}

/// Who the simulated contact centre is.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSettings {
    /// Prefix of every id this run makes, so runs against one daemon never collide.
    pub run: String,
    pub agents: u32,
    /// Queues `q0..q{queues-1}`; they must exist in the daemon's config.
    pub queues: u32,
    /// Interactions tracked at once.
    pub max_live: usize,
    pub seed: u64,
    pub mix: Mix,
}

/// One decision as the PBX reads it from the wire. Only the fields the generator reacts to; the
/// rest are ignored, so this keeps working as decisions gain fields.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WireDecision {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub interaction: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub offer: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
}

/// An event ready to go on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The event's `type`.
    pub kind: &'static str,
    /// The JSON body of `POST /v1/events`.
    pub body: Vec<u8>,
    /// The interaction an arrival created (the sender reports a refused arrival back).
    pub arrival: Option<Arc<str>>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// The arrival is on the wire; no answer yet.
    Sent,
    Waiting,
    Offered {
        agent: Arc<str>,
        offer: Arc<str>,
    },
    Connected {
        agent: Arc<str>,
        offer: Arc<str>,
    },
}

#[derive(Debug, Clone)]
struct Interaction {
    phase: Phase,
    /// Highest decision seq applied to it: the same decision arrives both in a response and on
    /// the feed, in either order, and an older one must not undo a newer one.
    last_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FollowUp {
    Answer {
        interaction: Arc<str>,
        offer: Arc<str>,
    },
    End {
        interaction: Arc<str>,
        offer: Arc<str>,
    },
    Abandon {
        interaction: Arc<str>,
    },
    WrapupDone {
        agent: Arc<str>,
    },
    Break {
        agent: Arc<str>,
    },
    Available {
        agent: Arc<str>,
    },
}

/// The simulated PBX's state.
#[derive(Debug)]
pub struct Workload {
    settings: WorkloadSettings,
    rng: ChaCha8Rng,
    now_us: u64,
    next_event: u64,
    next_interaction: u64,
    next_offer: u64,
    next_agent: u32,
    follow_up_seq: u64,
    interactions: AHashMap<Arc<str>, Interaction>,
    /// Arrival order, for "abandon the oldest"; stale entries are skipped and compacted.
    arrival_order: VecDeque<Arc<str>>,
    follow_ups: BinaryHeap<Reverse<(u64, u64, FollowUp)>>,
    /// Agents on a break or made not_ready, with a return already planned.
    away: HashSet<Arc<str>>,
    decisions_seen: BTreeMap<String, u64>,
    results: BTreeMap<String, u64>,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Workload {
    pub fn new(settings: WorkloadSettings) -> Workload {
        Workload {
            rng: ChaCha8Rng::seed_from_u64(settings.seed),
            settings,
            now_us: 0,
            next_event: 0,
            next_interaction: 0,
            next_offer: 0,
            next_agent: 0,
            follow_up_seq: 0,
            interactions: AHashMap::new(),
            arrival_order: VecDeque::new(),
            follow_ups: BinaryHeap::new(),
            away: HashSet::new(),
            decisions_seen: BTreeMap::new(),
            results: BTreeMap::new(),
        }
    }

    pub fn agent_id(&self, index: u32) -> String {
        format!("{}-a{index}", self.settings.run)
    }

    /// Interactions tracked right now.
    pub fn live(&self) -> usize {
        self.interactions.len()
    }

    /// Decisions seen so far, by type.
    pub fn decisions_seen(&self) -> &BTreeMap<String, u64> {
        &self.decisions_seen
    }

    /// Per-event results inside 200 answers (applied / duplicate / rejected).
    pub fn results(&self) -> &BTreeMap<String, u64> {
        &self.results
    }

    fn plan(&mut self, event: Event) -> Planned {
        let id = format!("{}-e{}", self.settings.run, self.next_event);
        self.next_event += 1;
        let kind = event.type_name();
        let arrival = match &event {
            Event::InteractionArrived { interaction, .. } => Some(Arc::from(interaction.as_str())),
            _ => None,
        };
        // Serializing our own plain structs cannot fail; an empty body would be answered 400 and
        // show up in the report rather than vanish.
        let body = serde_json::to_vec(&Envelope {
            id: &id,
            event: &event,
        })
        .unwrap_or_default();
        Planned {
            kind,
            body,
            arrival,
        }
    }

    /// The setup phase: every agent logs in, L1 on one queue, L2 on the next, L3 on the third.
    pub fn logins(&mut self) -> Vec<Planned> {
        let queues = self.settings.queues.max(1);
        (0..self.settings.agents)
            .map(|j| {
                let mut tiers: BTreeMap<String, Tier> = BTreeMap::new();
                for (offset, tier) in [(0u32, 1u8), (1, 2), (2, 3)] {
                    tiers
                        .entry(format!("q{}", (j + offset) % queues))
                        .or_insert(tier);
                }
                let agent = self.agent_id(j);
                self.plan(Event::AgentLogin {
                    address: Some(format!("sip:{agent}@bench")),
                    agent,
                    tiers: Some(tiers),
                    skills: None,
                    capacity: None,
                })
            })
            .collect()
    }

    fn schedule(&mut self, after_ms: u64, follow_up: FollowUp) {
        let due = self.now_us.saturating_add(after_ms.saturating_mul(1000));
        self.follow_up_seq += 1;
        self.follow_ups
            .push(Reverse((due, self.follow_up_seq, follow_up)));
    }

    fn exp_ms(&mut self, mean: f64) -> u64 {
        let u: f64 = self.rng.gen();
        (-(1.0 - u).ln() * mean).min(mean * 20.0) as u64
    }

    /// The event to send in a slot due `now` after the start of the measured phase.
    pub fn next_event(&mut self, now: Duration) -> Planned {
        self.now_us = self.now_us.max(us(now));
        while let Some(Reverse((due, _, _))) = self.follow_ups.peek() {
            if *due > self.now_us {
                break;
            }
            if let Some(Reverse((_, _, f))) = self.follow_ups.pop() {
                if let Some(p) = self.realise(f) {
                    return p;
                }
            }
        }
        if self.interactions.len() < self.settings.max_live {
            return self.arrival();
        }
        if let Some(p) = self.abandon_oldest() {
            return p;
        }
        // Everything tracked is in flight or connected: bring the earliest follow-up forward.
        while let Some(Reverse((_, _, f))) = self.follow_ups.pop() {
            if let Some(p) = self.realise(f) {
                return p;
            }
        }
        self.arrival()
    }

    fn arrival(&mut self) -> Planned {
        let interaction: Arc<str> =
            Arc::from(format!("{}-i{}", self.settings.run, self.next_interaction));
        self.next_interaction += 1;
        let queue = format!("q{}", self.rng.gen_range(0..self.settings.queues.max(1)));
        let channel = if self
            .rng
            .gen_bool(self.settings.mix.voice_share.clamp(0.0, 1.0))
        {
            Channel::Voice
        } else {
            Channel::Chat
        };
        self.interactions.insert(
            interaction.clone(),
            Interaction {
                phase: Phase::Sent,
                last_seq: 0,
            },
        );
        if self.arrival_order.len() > 2 * self.settings.max_live.max(16) {
            let interactions = &self.interactions;
            self.arrival_order
                .retain(|id| interactions.contains_key(id));
        }
        self.arrival_order.push_back(interaction.clone());
        let mix = &self.settings.mix;
        let (abandon_share, patience_mean, short_share, ring_max) = (
            mix.abandon_share,
            mix.patience_ms_mean,
            mix.short_abandon_share,
            mix.ring_ms_max.max(1),
        );
        let patience = if self.rng.gen_bool(abandon_share.clamp(0.0, 1.0)) {
            Some(self.exp_ms(patience_mean))
        } else if self.rng.gen_bool(short_share.clamp(0.0, 1.0)) {
            Some(self.rng.gen_range(1..=ring_max))
        } else {
            None
        };
        if let Some(patience) = patience {
            self.schedule(
                patience,
                FollowUp::Abandon {
                    interaction: interaction.clone(),
                },
            );
        }
        self.plan(Event::InteractionArrived {
            interaction: interaction.to_string(),
            channel,
            queue: Some(queue),
            priority: None,
            skills: Vec::new(),
            customer: None,
            attributes: BTreeMap::new(),
        })
    }

    fn abandon_oldest(&mut self) -> Option<Planned> {
        while let Some(id) = self.arrival_order.pop_front() {
            let abandonable = matches!(
                self.interactions.get(&id).map(|i| &i.phase),
                Some(Phase::Waiting | Phase::Offered { .. })
            );
            if abandonable {
                self.interactions.remove(&id);
                return Some(self.plan(Event::InteractionAbandoned {
                    interaction: id.to_string(),
                }));
            }
            if matches!(
                self.interactions.get(&id).map(|i| &i.phase),
                Some(Phase::Sent)
            ) {
                // Not answered yet: keep its place and look no further (the rest are younger).
                self.arrival_order.push_front(id);
                return None;
            }
        }
        None
    }

    /// Turn a due follow-up into an event, or `None` when events overtook it (the offer was
    /// revoked, the caller already hung up…).
    fn realise(&mut self, follow_up: FollowUp) -> Option<Planned> {
        match follow_up {
            FollowUp::Answer { interaction, offer } => {
                let mix = self.settings.mix.clone();
                let state = self.interactions.get_mut(&interaction)?;
                let agent = match &state.phase {
                    Phase::Offered { agent, offer: o } if *o == offer => agent.clone(),
                    _ => return None,
                };
                if self.rng.gen_bool(mix.decline_share.clamp(0.0, 1.0)) {
                    state.phase = Phase::Waiting;
                    let reason = match self.rng.gen_range(0..3) {
                        0 => DeclineReason::Rejected,
                        1 => DeclineReason::Busy,
                        _ => DeclineReason::NoAnswer,
                    };
                    return Some(self.plan(Event::OfferDeclined {
                        interaction: interaction.to_string(),
                        agent: agent.to_string(),
                        reason,
                        offer: Some(offer.to_string()),
                    }));
                }
                state.phase = Phase::Connected {
                    agent: agent.clone(),
                    offer: offer.clone(),
                };
                let talk = self.exp_ms(mix.talk_ms_mean);
                let offer_id = offer.to_string();
                self.schedule(
                    talk,
                    FollowUp::End {
                        interaction: interaction.clone(),
                        offer,
                    },
                );
                Some(self.plan(Event::OfferAccepted {
                    interaction: interaction.to_string(),
                    agent: agent.to_string(),
                    offer: Some(offer_id),
                }))
            }
            FollowUp::End { interaction, offer } => {
                let agent = match self.interactions.get(&interaction).map(|i| &i.phase) {
                    Some(Phase::Connected { agent, offer: o }) if *o == offer => agent.clone(),
                    _ => return None,
                };
                self.interactions.remove(&interaction);
                let mix = &self.settings.mix;
                let (wrapup_share, wrapup_after, break_share) = (
                    mix.wrapup_done_share,
                    mix.wrapup_done_after_ms,
                    mix.break_share,
                );
                if self.rng.gen_bool(wrapup_share.clamp(0.0, 1.0)) {
                    self.schedule(
                        wrapup_after,
                        FollowUp::WrapupDone {
                            agent: agent.clone(),
                        },
                    );
                } else if self.rng.gen_bool(break_share.clamp(0.0, 1.0)) {
                    self.schedule(1, FollowUp::Break { agent });
                }
                Some(self.plan(Event::InteractionEnded {
                    interaction: interaction.to_string(),
                    resolved: Some(true),
                }))
            }
            FollowUp::Abandon { interaction } => {
                let abandonable = matches!(
                    self.interactions.get(&interaction).map(|i| &i.phase),
                    Some(Phase::Waiting | Phase::Offered { .. })
                );
                if !abandonable {
                    return None;
                }
                self.interactions.remove(&interaction);
                Some(self.plan(Event::InteractionAbandoned {
                    interaction: interaction.to_string(),
                }))
            }
            FollowUp::WrapupDone { agent } => Some(self.plan(Event::AgentWrapupDone {
                agent: agent.to_string(),
            })),
            FollowUp::Break { agent } => {
                if !self.away.insert(agent.clone()) {
                    return None;
                }
                let back = self.settings.mix.break_ms;
                self.schedule(
                    back,
                    FollowUp::Available {
                        agent: agent.clone(),
                    },
                );
                Some(self.plan(Event::AgentState {
                    agent: agent.to_string(),
                    state: RequestedState::NotReady,
                    reason: Some("break".into()),
                }))
            }
            FollowUp::Available { agent } => {
                if !self.away.remove(&agent) {
                    return None;
                }
                Some(self.plan(Event::AgentState {
                    agent: agent.to_string(),
                    state: RequestedState::Available,
                    reason: None,
                }))
            }
        }
    }

    /// The answer to an event came back. A refused arrival is forgotten.
    pub fn on_answer(&mut self, planned: &Planned, accepted: bool) {
        if let (Some(interaction), false) = (&planned.arrival, accepted) {
            self.interactions.remove(interaction);
        }
    }

    /// Count one per-event `status` from a 200 answer.
    pub fn on_result(&mut self, status: &str) {
        match self.results.get_mut(status) {
            Some(n) => *n += 1,
            None => {
                self.results.insert(status.to_string(), 1);
            }
        }
    }

    /// A decision from a response or the feed, seen `now` after the start.
    pub fn on_decision(&mut self, d: &WireDecision, now: Duration) {
        self.now_us = self.now_us.max(us(now));
        match self.decisions_seen.get_mut(d.kind.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.decisions_seen.insert(d.kind.clone(), 1);
            }
        }
        if d.kind == "agent_state" {
            if let (Some(agent), Some("not_ready")) = (&d.agent, d.state.as_deref()) {
                let agent: Arc<str> = Arc::from(agent.as_str());
                if agent.starts_with(self.settings.run.as_str()) && self.away.insert(agent.clone())
                {
                    let back = self.settings.mix.recover_ms;
                    self.schedule(back, FollowUp::Available { agent });
                }
            }
            return;
        }
        let Some(id) = d.interaction.as_deref() else {
            return;
        };
        let Some(key) = self.interactions.get_key_value(id).map(|(k, _)| k.clone()) else {
            return;
        };
        let Some(state) = self.interactions.get_mut(&key) else {
            return;
        };
        if d.seq <= state.last_seq {
            return;
        }
        state.last_seq = d.seq;
        match d.kind.as_str() {
            "offer" => {
                if matches!(state.phase, Phase::Connected { .. }) {
                    return;
                }
                let (Some(agent), Some(offer)) = (&d.agent, &d.offer) else {
                    return;
                };
                let offer: Arc<str> = Arc::from(offer.as_str());
                state.phase = Phase::Offered {
                    agent: Arc::from(agent.as_str()),
                    offer: offer.clone(),
                };
                self.plan_answer(key, offer);
            }
            "queued" if state.phase == Phase::Sent => state.phase = Phase::Waiting,
            "offer_revoked" => {
                let same_offer = match &state.phase {
                    Phase::Offered { offer, .. } | Phase::Connected { offer, .. } => {
                        d.offer.as_deref() == Some(&**offer)
                    }
                    _ => false,
                };
                if same_offer {
                    state.phase = Phase::Waiting;
                }
            }
            "overflow" if d.target.is_some() => {
                self.interactions.remove(&key);
            }
            "rejected" => {
                self.interactions.remove(&key);
            }
            _ => {}
        }
    }

    fn plan_answer(&mut self, interaction: Arc<str>, offer: Arc<str>) {
        let ring = self.rng.gen_range(1..=self.settings.mix.ring_ms_max.max(1));
        self.schedule(ring, FollowUp::Answer { interaction, offer });
    }

    /// Baseline mode: the bare server decides nothing, so pretend each arrival was offered at
    /// once to the next agent in turn. The baseline then gets the same lifecycle and event mix.
    pub fn pretend_offered(&mut self, interaction: &str) {
        let Some(key) = self
            .interactions
            .get_key_value(interaction)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        if self.interactions.get(&key).map(|i| &i.phase) != Some(&Phase::Sent) {
            return;
        }
        let agent_index = self.next_agent % self.settings.agents.max(1);
        self.next_agent = self.next_agent.wrapping_add(1);
        let agent: Arc<str> = Arc::from(format!("{}-a{agent_index}", self.settings.run));
        let offer: Arc<str> = Arc::from(format!("{}-o{}", self.settings.run, self.next_offer));
        self.next_offer += 1;
        if let Some(state) = self.interactions.get_mut(&key) {
            state.phase = Phase::Offered {
                agent,
                offer: offer.clone(),
            };
        }
        self.plan_answer(key, offer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_live: usize) -> WorkloadSettings {
        WorkloadSettings {
            run: "r".into(),
            agents: 4,
            queues: 2,
            max_live,
            seed: 1,
            mix: Mix {
                decline_share: 0.0,
                abandon_share: 0.0,
                short_abandon_share: 0.0,
                wrapup_done_share: 0.0,
                break_share: 0.0,
                ..Mix::default()
            },
        }
    }

    fn body(p: &Planned) -> serde_json::Value {
        serde_json::from_slice(&p.body).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn offer(seq: u64, interaction: &str, agent: &str, offer: &str) -> WireDecision {
        WireDecision {
            seq,
            kind: "offer".into(),
            interaction: Some(interaction.into()),
            agent: Some(agent.into()),
            offer: Some(offer.into()),
            state: None,
            target: None,
        }
    }

    #[test]
    fn logins_give_each_agent_three_tiers_on_consecutive_queues() {
        let mut w = Workload::new(WorkloadSettings {
            queues: 4,
            ..settings(10)
        });
        let logins = w.logins();
        assert_eq!(logins.len(), 4);
        let first = body(&logins[1]);
        assert_eq!(first["type"], "agent.login");
        assert_eq!(first["agent"], "r-a1");
        assert_eq!(first["address"], "sip:r-a1@bench");
        assert_eq!(first["tiers"]["q1"], 1);
        assert_eq!(first["tiers"]["q2"], 2);
        assert_eq!(first["tiers"]["q3"], 3);
        // Every body is a valid engine event with a unique id.
        let ids: HashSet<String> = logins
            .iter()
            .map(|p| body(p)["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn an_offer_is_accepted_after_ringing_and_the_call_ends_after_talking() {
        let mut w = Workload::new(settings(1));
        let arrival = w.next_event(ms(0));
        assert_eq!(arrival.kind, "interaction.arrived");
        let v = body(&arrival);
        assert_eq!(v["interaction"], "r-i0");
        assert!(v["queue"].as_str().unwrap().starts_with('q'));
        w.on_decision(&offer(7, "r-i0", "r-a2", "o7"), ms(1));

        // Ringing takes at most ring_ms_max (10 ms); by then the accept is due.
        let accept = w.next_event(ms(12));
        assert_eq!(accept.kind, "offer.accepted");
        assert_eq!(body(&accept)["agent"], "r-a2");

        // The call is still connected, so the next free slot (max_live = 1) cannot be an
        // arrival; it brings the end forward rather than abandon a connected call.
        let end = w.next_event(ms(13));
        assert_eq!(end.kind, "interaction.ended");
        assert_eq!(body(&end)["interaction"], "r-i0");
        assert_eq!(w.live(), 0);
    }

    #[test]
    fn every_event_id_is_unique_and_every_body_is_an_engine_event() {
        let mut w = Workload::new(WorkloadSettings {
            mix: Mix::default(),
            ..settings(50)
        });
        let mut ids = HashSet::new();
        for i in 0..2000u64 {
            let p = w.next_event(ms(i));
            if let Some(interaction) = &p.arrival {
                w.pretend_offered(interaction);
            }
            let v = body(&p);
            assert!(ids.insert(v["id"].as_str().unwrap().to_string()));
            let mut event = v.as_object().unwrap().clone();
            event.remove("id");
            let parsed: Event = serde_json::from_value(serde_json::Value::Object(event)).unwrap();
            assert_eq!(parsed.type_name(), p.kind);
        }
    }

    #[test]
    fn a_revoked_offer_is_not_accepted() {
        let mut w = Workload::new(settings(1));
        w.next_event(ms(0));
        w.on_decision(&offer(3, "r-i0", "r-a0", "o3"), ms(0));
        w.on_decision(
            &WireDecision {
                seq: 4,
                kind: "offer_revoked".into(),
                interaction: Some("r-i0".into()),
                agent: Some("r-a0".into()),
                offer: Some("o3".into()),
                state: None,
                target: None,
            },
            ms(0),
        );
        // Nothing to accept; the only live interaction waits, so the slot abandons it.
        let next = w.next_event(ms(20));
        assert_eq!(next.kind, "interaction.abandoned");
    }

    #[test]
    fn a_decision_seen_twice_or_out_of_order_changes_nothing() {
        let mut w = Workload::new(settings(1));
        w.next_event(ms(0));
        let revoke = WireDecision {
            seq: 4,
            kind: "offer_revoked".into(),
            interaction: Some("r-i0".into()),
            agent: Some("r-a0".into()),
            offer: Some("o3".into()),
            state: None,
            target: None,
        };
        // The feed delivers the offer and its revocation before the response with the offer.
        w.on_decision(&offer(3, "r-i0", "r-a0", "o3"), ms(0));
        w.on_decision(&revoke, ms(0));
        w.on_decision(&offer(3, "r-i0", "r-a0", "o3"), ms(1));
        assert_eq!(w.next_event(ms(20)).kind, "interaction.abandoned");
        assert_eq!(w.decisions_seen()["offer"], 2);
    }

    #[test]
    fn at_the_live_limit_the_oldest_waiting_caller_abandons() {
        let mut w = Workload::new(settings(2));
        assert_eq!(w.next_event(ms(0)).kind, "interaction.arrived");
        assert_eq!(w.next_event(ms(1)).kind, "interaction.arrived");
        for i in 0..2 {
            w.on_decision(
                &WireDecision {
                    seq: 10 + i,
                    kind: "queued".into(),
                    interaction: Some(format!("r-i{i}")),
                    agent: None,
                    offer: None,
                    state: None,
                    target: None,
                },
                ms(1),
            );
        }
        let abandon = w.next_event(ms(2));
        assert_eq!(abandon.kind, "interaction.abandoned");
        assert_eq!(body(&abandon)["interaction"], "r-i0");
        assert_eq!(w.next_event(ms(3)).kind, "interaction.arrived");
    }

    #[test]
    fn a_refused_arrival_is_forgotten() {
        let mut w = Workload::new(settings(1));
        let p = w.next_event(ms(0));
        w.on_answer(&p, false);
        assert_eq!(w.live(), 0);
        assert_eq!(w.next_event(ms(1)).kind, "interaction.arrived");
    }

    #[test]
    fn an_agent_made_not_ready_by_the_engine_comes_back() {
        let mut w = Workload::new(settings(0));
        w.on_decision(
            &WireDecision {
                seq: 1,
                kind: "agent_state".into(),
                interaction: None,
                agent: Some("r-a3".into()),
                offer: None,
                state: Some("not_ready".into()),
                target: None,
            },
            ms(0),
        );
        let back = w.next_event(ms(100));
        assert_eq!(back.kind, "agent.state");
        assert_eq!(body(&back)["state"], "available");
        assert_eq!(body(&back)["agent"], "r-a3");
    }

    #[test]
    fn a_baseline_run_has_the_same_lifecycle_mix() {
        let mut w = Workload::new(WorkloadSettings {
            mix: Mix::default(),
            agents: 100,
            ..settings(100)
        });
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for i in 0..20_000u64 {
            let p = w.next_event(ms(i));
            if let Some(interaction) = &p.arrival {
                w.pretend_offered(interaction);
            }
            *kinds.entry(p.kind).or_default() += 1;
        }
        for kind in [
            "interaction.arrived",
            "offer.accepted",
            "offer.declined",
            "interaction.ended",
            "interaction.abandoned",
            "agent.wrapup_done",
        ] {
            assert!(
                kinds.get(kind).copied().unwrap_or(0) > 0,
                "no {kind}: {kinds:?}"
            );
        }
        // Lifecycles, not a flood of arrivals: most arrivals are accepted and ended.
        assert!(
            kinds["interaction.ended"] * 2 > kinds["interaction.arrived"],
            "{kinds:?}"
        );
    }

    #[test]
    fn some_callers_hang_up_while_their_call_rings() {
        // No live limit in the way: every abandon is a caller's patience running out.
        let mut w = Workload::new(WorkloadSettings {
            mix: Mix::default(),
            agents: 100,
            ..settings(1_000_000)
        });
        let (mut arrived, mut abandoned) = (0u64, 0u64);
        for i in 0..20_000u64 {
            let p = w.next_event(ms(i));
            if let Some(interaction) = &p.arrival {
                w.pretend_offered(interaction);
                arrived += 1;
            }
            abandoned += u64::from(p.kind == "interaction.abandoned");
        }
        // Offers come at once and are accepted within 10 ms, so the 300 ms patience alone makes
        // ≈ 0.1 % abandon; the short abandons (2 % hang up within the ring time, about half of
        // them before the accept) bring it to ≈ 1 %.
        assert!(
            abandoned * 1000 >= arrived * 6,
            "{abandoned} abandons of {arrived} arrivals"
        );
    }
}
