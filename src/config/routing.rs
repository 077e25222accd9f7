//! The validated, resolved routing configuration the engine runs on.
//!
//! Everything here has already passed validation (`super::validate`): ids are unique, every queue a
//! rule or overflow names exists, ladders start at 0 and increase, capacities are positive. Defaults
//! from `[defaults]` and `[channels.*]` are already applied, and times are in milliseconds, so the
//! engine never has to second-guess a value or look anything up in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds. Engine time is whatever the caller says it is (Unix milliseconds in the daemon,
/// virtual milliseconds in the simulator).
pub type Millis = u64;

/// A tier level: 1 = first line (L1), 2 = L2, 3 = experts. Per queue.
pub type Tier = u8;

/// The media an interaction arrives on. Each has its own per-agent capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Voice,
    Chat,
    Email,
    Callback,
}

impl Channel {
    /// Every channel, in index order.
    pub const ALL: [Channel; 4] = [
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::Callback,
    ];

    /// Dense index for per-channel arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Callback => "callback",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voice" => Ok(Channel::Voice),
            "chat" => Ok(Channel::Chat),
            "email" => Ok(Channel::Email),
            "callback" => Ok(Channel::Callback),
            other => Err(format!(
                "unknown channel `{other}` (expected voice, chat, email or callback)"
            )),
        }
    }
}

/// Per-channel agent limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSettings {
    /// How many interactions of this channel one agent may hold at once (offered, connected or
    /// in wrap-up). Always ≥ 1.
    pub capacity: u32,
    /// An exclusive interaction is only offered to an agent holding nothing else, and while the
    /// agent holds it (offered, connected or wrap-up) nothing else is offered.
    pub exclusive: bool,
}

impl ChannelSettings {
    /// The defaults: voice 1 exclusive, chat 3, email 5, callback 1.
    pub fn default_for(channel: Channel) -> Self {
        match channel {
            Channel::Voice => ChannelSettings {
                capacity: 1,
                exclusive: true,
            },
            Channel::Chat => ChannelSettings {
                capacity: 3,
                exclusive: false,
            },
            Channel::Email => ChannelSettings {
                capacity: 5,
                exclusive: false,
            },
            Channel::Callback => ChannelSettings {
                capacity: 1,
                exclusive: false,
            },
        }
    }
}

/// How a queue picks among several free eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Earliest moment the agent last became free, ties by agent id.
    #[default]
    LongestIdle,
    /// Rotate through the queue's agents (in agent-id order) starting after the last one offered.
    RoundRobin,
    /// Fewest interactions accepted since login, then longest-idle.
    FewestInteractions,
    /// Lowest tier number first (even after the ladder widened), then longest-idle.
    TierOrder,
    /// Uniformly among the eligible agents, from the RNG seeded by the config's `seed`.
    Random,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest-idle",
            Strategy::RoundRobin => "round-robin",
            Strategy::FewestInteractions => "fewest-interactions",
            Strategy::TierOrder => "tier-order",
            Strategy::Random => "random",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "longest-idle" => Ok(Strategy::LongestIdle),
            "round-robin" => Ok(Strategy::RoundRobin),
            "fewest-interactions" => Ok(Strategy::FewestInteractions),
            "tier-order" => Ok(Strategy::TierOrder),
            "random" => Ok(Strategy::Random),
            other => Err(format!(
                "unknown strategy `{other}` (expected longest-idle, round-robin, \
                 fewest-interactions, tier-order or random)"
            )),
        }
    }
}

/// One rung of a queue's escalation ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Time since the interaction entered this queue at which the step is entered.
    pub after_ms: Millis,
    /// Agent tiers allowed from this step on (sorted, deduplicated, non-empty).
    pub tiers: Vec<Tier>,
    /// Added to the interaction's priority once, when the step is reached.
    pub priority_boost: i32,
    /// If no agent of an allowed tier is logged in for this queue, move on to the next step at once.
    pub skip_if_no_agents: bool,
}

impl Step {
    /// A step entered `after_ms` after the interaction entered the queue, allowing `tiers`, with
    /// no priority boost and no skipping.
    pub fn new(after_ms: Millis, tiers: &[Tier]) -> Step {
        Step {
            after_ms,
            tiers: tiers.to_vec(),
            priority_boost: 0,
            skip_if_no_agents: false,
        }
    }

    /// The same step, adding `boost` to the interaction's priority when it is reached.
    pub fn boosted(self, boost: i32) -> Step {
        Step {
            priority_boost: boost,
            ..self
        }
    }
}

/// Where an interaction goes when it has waited `max_wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Move it to another tierline queue, keeping its arrival time and history.
    Queue(String),
    /// Hand it back to the PBX with this external destination (`overflow` decision).
    Target(String),
}

/// Weekly opening hours in a named time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub tz: chrono_tz::Tz,
    /// Per weekday (0 = Monday … 6 = Sunday), open intervals as `[start, end)` minutes after
    /// local midnight, sorted.
    pub open: [Vec<(u16, u16)>; 7],
}

/// A queue, with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub id: String,
    pub channels: Vec<Channel>,
    pub strategy: Strategy,
    /// The service-level threshold (answered within this is "in SLA").
    pub sla_ms: Millis,
    /// How long an agent may take to accept an offer before it is revoked.
    pub offer_timeout_ms: Millis,
    /// Wrap-up time after an interaction ends (0 = the slot frees at once).
    pub wrap_up_ms: Millis,
    /// Abandons faster than this are "short abandons", excluded from SL and abandon rate.
    pub short_abandon_ms: Millis,
    /// After this long waiting in the queue the interaction overflows (`overflow` must be set).
    pub max_wait_ms: Option<Millis>,
    pub overflow: Option<Overflow>,
    /// Beyond this many waiting, a new arrival that would have to wait is rejected (`queue_full`).
    pub max_waiting: Option<usize>,
    /// Opening hours; `None` = always open.
    pub schedule: Option<Schedule>,
    /// Handed to the PBX in the `rejected` decision when the queue is closed.
    pub closed_target: Option<String>,
    /// The escalation ladder (first step at 0, strictly increasing, non-empty).
    pub steps: Vec<Step>,
    /// Priority added when an agent explicitly escalates an interaction back to this queue.
    pub escalation_priority_boost: i32,
    /// Back-off after a decline with reason `rejected`.
    pub reject_delay_ms: Millis,
    /// Back-off after a decline with reason `busy`.
    pub busy_delay_ms: Millis,
    /// Back-off after a no-answer (decline `no_answer` or offer expiry).
    pub no_answer_delay_ms: Millis,
    /// Consecutive missed offers after which the agent is made not_ready; 0 = never. A miss is a
    /// no-answer (decline `no_answer` or expiry) and, when `count_declines`, any other decline.
    pub max_no_answer: u32,
    /// Whether declines with reason `busy` or `rejected` count towards `max_no_answer` (a phone on
    /// do-not-disturb answers every offer with 486 at once). Default true.
    pub count_declines: bool,
    /// On a live reload that removes this queue, its waiting interactions move here.
    pub drain_to: Option<String>,
}

/// An agent from the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub id: String,
    /// What the PBX dials, or where the chat goes.
    pub address: String,
    /// Tier per queue id; an agent serves exactly the queues named here.
    pub tiers: BTreeMap<String, Tier>,
    pub skills: Vec<String>,
    /// Capacity overrides per channel.
    pub capacity: BTreeMap<Channel, u32>,
}

/// A routing rule: the first rule met whose queue serves the arrival's channel wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Attribute equalities; the key `channel` matches the interaction's channel.
    pub when: BTreeMap<String, String>,
    pub queue: String,
    /// Used when the arrival carries no priority of its own.
    pub priority: Option<i32>,
}

/// Engine limits; each has a documented answer at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Live (not finished) interactions the engine holds; beyond it arrivals are refused with
    /// `EngineError::AtCapacity`.
    pub max_live_interactions: usize,
    /// Finished interactions kept for `GET /v1/interactions/{id}` (oldest evicted first).
    pub retain_finished: usize,
    /// History entries kept per interaction; beyond it the oldest entries after the first are
    /// dropped and counted in `history_dropped`.
    pub max_history: usize,
    /// Agents the engine holds (an agent, once known, stays): a login that would create one
    /// more is refused with `EngineError::TooManyAgents`. The roster must fit in it.
    #[serde(default = "default_max_agents")]
    pub max_agents: usize,
}

fn default_max_agents() -> usize {
    Limits::default().max_agents
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_live_interactions: 2_000_000,
            retain_finished: 100_000,
            max_history: 64,
            max_agents: 200_000,
        }
    }
}

/// The whole routing configuration: what the engine needs, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingConfig {
    /// Seeds the engine's RNG (the `random` strategy). Same seed ⇒ same decisions.
    pub seed: u64,
    /// Indexed by `Channel::index()`.
    pub channels: [ChannelSettings; 4],
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
    pub rules: Vec<Rule>,
    /// Used when an arrival names no queue and no rule matches; `None` ⇒ `rejected`/`no_route`.
    pub default_queue: Option<String>,
    pub limits: Limits,
}

impl RoutingConfig {
    /// An empty configuration with default channels and limits (tests and builders start here).
    pub fn empty() -> Self {
        RoutingConfig {
            seed: 0,
            channels: Channel::ALL.map(ChannelSettings::default_for),
            queues: Vec::new(),
            agents: Vec::new(),
            rules: Vec::new(),
            default_queue: None,
            limits: Limits::default(),
        }
    }

    pub fn queue(&self, id: &str) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| q.id == id)
    }

    /// The rules whose `when` an arrival on `channel` with `attributes` meets, in order, with
    /// their index: every `when` entry equal, the key `channel` against the channel. Which of
    /// them routes it is the first whose queue serves the channel (`matching_rule`).
    pub fn rules_met<'a>(
        &'a self,
        channel: Channel,
        attributes: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = (usize, &'a Rule)> + 'a {
        self.rules.iter().enumerate().filter(move |(_, r)| {
            r.when.iter().all(|(k, v)| {
                if k == "channel" {
                    channel.as_str() == v
                } else {
                    attributes.get(k) == Some(v)
                }
            })
        })
    }

    /// The rule that routes an arrival on `channel` with `attributes`, with its index: the first
    /// whose `when` it meets and whose queue serves the channel (a rule applies only to the
    /// channels its queue serves; an arrival of another channel goes on to the next rule). The
    /// engine does the same with its own queue table (`Engine::route`).
    pub fn matching_rule<'a>(
        &'a self,
        channel: Channel,
        attributes: &'a BTreeMap<String, String>,
    ) -> Option<(usize, &'a Rule)> {
        self.rules_met(channel, attributes).find(|(_, r)| {
            self.queue(&r.queue)
                .is_some_and(|q| q.channels.contains(&channel))
        })
    }
}

impl QueueConfig {
    /// Whether some step of the ladder offers this queue's work to agents at `tier` (otherwise
    /// only an agent's explicit escalation reaches them).
    pub fn offers_tier(&self, tier: Tier) -> bool {
        self.steps.iter().any(|s| s.tiers.contains(&tier))
    }

    /// A queue with the documented defaults: voice only, longest-idle, SLA 30 s, offer timeout
    /// 15 s, wrap-up 10 s, one step (tier 1 at 0 s).
    pub fn with_defaults(id: &str) -> Self {
        QueueConfig {
            id: id.to_string(),
            channels: vec![Channel::Voice],
            strategy: Strategy::LongestIdle,
            sla_ms: 30_000,
            offer_timeout_ms: 15_000,
            wrap_up_ms: 10_000,
            short_abandon_ms: 5_000,
            max_wait_ms: None,
            overflow: None,
            max_waiting: None,
            schedule: None,
            closed_target: None,
            steps: vec![Step::new(0, &[1])],
            escalation_priority_boost: 0,
            reject_delay_ms: 5_000,
            busy_delay_ms: 10_000,
            no_answer_delay_ms: 10_000,
            max_no_answer: 3,
            count_declines: true,
            drain_to: None,
        }
    }
}

impl Schedule {
    /// Whether the queue is open at `at` (Unix milliseconds), in the schedule's time zone.
    pub fn is_open(&self, at: Millis) -> bool {
        use chrono::{Datelike, Timelike};
        let Some(utc) = chrono::DateTime::from_timestamp_millis(at.min(i64::MAX as u64) as i64)
        else {
            return false;
        };
        let local = utc.with_timezone(&self.tz);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.open[day]
            .iter()
            .any(|&(start, end)| minute >= start && minute < end)
    }
}
