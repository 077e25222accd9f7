//! Building read-only views, and the consistency check that rebuilds every index from the primary
//! state and compares (tests call it after every step).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Channel;
use crate::engine::decision::AgentStatus;
use crate::engine::model::{Agent, Interaction, QKey, WaitSet};
use crate::engine::view::{
    Activity, AgentPresence, AgentView, InteractionState, InteractionView, Owner, QueueView,
    SlotPhase, SlotView,
};
use crate::engine::Engine;

/// What the agent is doing: handling (busy, ringing, wrap-up) before its status, so an agent
/// who signs off during a call it keeps (going offline keeps connected and wrap-up slots, which
/// finish normally) counts as busy, then wrap-up, until they end, as one on a break does.
pub(super) fn activity_of(a: &Agent) -> Activity {
    let has = |p: SlotPhase| a.slots.iter().any(|s| s.phase == p);
    if has(SlotPhase::Connected) {
        Activity::Busy
    } else if has(SlotPhase::Offered) {
        Activity::Offered
    } else if has(SlotPhase::WrapUp) {
        Activity::WrapUp
    } else {
        match a.status {
            AgentStatus::Offline => Activity::Offline,
            AgentStatus::NotReady => Activity::NotReady,
            AgentStatus::Available => Activity::Available,
        }
    }
}

impl Engine {
    fn interaction_view(&self, i: &Interaction) -> InteractionView {
        let queue = i.queue.map(|q| self.queues[q as usize].name.clone());
        let owner = match i.state {
            InteractionState::Waiting => queue.clone().map(Owner::Queue).unwrap_or(Owner::None),
            InteractionState::Offered | InteractionState::Connected | InteractionState::WrapUp => {
                match i.agent {
                    Some(a) => Owner::Agent(self.agents[a as usize].id.clone()),
                    None => Owner::None,
                }
            }
            _ => Owner::None,
        };
        let skills = self
            .skills
            .set(i.skills)
            .iter()
            .map(|s| self.skills.name(*s).clone())
            .collect();
        InteractionView {
            id: i.id.clone(),
            channel: i.channel,
            state: i.state,
            owner,
            queue,
            step: if i.state.is_final() {
                None
            } else {
                i.step.map(usize::from)
            },
            min_tier: i.min_tier,
            priority: i.priority,
            arrived_at: i.arrived_at,
            entered_queue_at: i.entered_queue_at,
            skills,
            customer: i.customer.clone(),
            attributes: i.attributes.iter().cloned().collect(),
            rating: i.rating,
            resolved: i.resolved,
            history: i.history.to_vec(),
            history_dropped: i.history_dropped,
        }
    }

    pub fn interaction(&self, id: &str) -> Option<InteractionView> {
        let ik = self.interaction_ids.get(&self.interactions, id)?;
        Some(self.interaction_view(self.ix(ik)))
    }

    fn agent_view(&self, a: &Agent) -> AgentView {
        let slots = a
            .slots
            .iter()
            .map(|s| SlotView {
                channel: s.channel,
                phase: s.phase,
                interaction: s.interaction.map(|ik| self.ix(ik).id.clone()),
                queue: self.queues[s.queue as usize].name.clone(),
                offer: s.offer.clone(),
                since: s.since,
                until: s.until,
            })
            .collect();
        AgentView {
            id: a.id.clone(),
            address: a.address.clone(),
            status: a.status,
            reason: a.reason.clone(),
            activity: activity_of(a),
            status_since: a.status_since,
            logged_in_since: a.logged_in_since,
            tiers: a.tiers_by_name.iter().cloned().collect(),
            skills: a
                .skills
                .iter()
                .map(|s| self.skills.name(*s).clone())
                .collect(),
            capacity: Channel::ALL
                .iter()
                .map(|c| (*c, a.capacity[c.index()]))
                .collect(),
            load: Channel::ALL
                .iter()
                .filter(|c| a.load[c.index()] > 0)
                .map(|c| (*c, a.load[c.index()]))
                .collect(),
            slots,
            idle_since: a.idle_since,
            accepted_since_login: a.accepted_since_login,
            consecutive_missed_offers: a.consecutive_missed_offers,
            backoff_until: a.backoff_until,
        }
    }

    /// `id`'s status and slot phases (the part of `agent` that telemetry needs).
    pub fn agent_presence(&self, id: &str) -> Option<AgentPresence> {
        let a = &self.agents[*self.agent_ids.get(id)? as usize];
        let count = |phase| a.slots.iter().filter(|s| s.phase == phase).count() as u32;
        Some(AgentPresence {
            status: a.status,
            reason: a.reason.clone(),
            activity: activity_of(a),
            offered: count(SlotPhase::Offered),
            connected: count(SlotPhase::Connected),
            wrap_up: count(SlotPhase::WrapUp),
        })
    }

    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let ak = *self.agent_ids.get(id)?;
        Some(self.agent_view(&self.agents[ak as usize]))
    }

    /// Every agent's id, in no particular order.
    pub fn agent_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.agents.iter().map(|a| &a.id)
    }

    /// All agents, sorted by id.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut all: Vec<&Agent> = self.agents.iter().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.into_iter().map(|a| self.agent_view(a)).collect()
    }

    pub fn queue(&self, id: &str) -> Option<QueueView> {
        let q = *self.queue_ids.get(id)?;
        let mut agents: BTreeMap<u8, BTreeMap<Activity, usize>> = BTreeMap::new();
        for a in &self.agents {
            if let Some(t) = a.tier_in(q) {
                *agents
                    .entry(t)
                    .or_default()
                    .entry(activity_of(a))
                    .or_insert(0) += 1;
            }
        }
        Some(self.queue_view_with(q, agents))
    }

    fn queue_view_with(
        &self,
        q: QKey,
        agents: BTreeMap<u8, BTreeMap<Activity, usize>>,
    ) -> QueueView {
        let queue = &self.queues[q as usize];
        QueueView {
            id: queue.name.clone(),
            waiting: queue.waiting_count,
            waiting_by_channel: queue
                .cfg()
                .channels
                .iter()
                .map(|c| (*c, queue.waiting_by_channel[c.index()] as usize))
                .collect(),
            ringing: queue.ringing.len(),
            oldest_entered_at: self.oldest_entered(q),
            agents,
            sla_ms: queue.cfg().sla_ms,
            open: queue
                .cfg()
                .schedule
                .as_ref()
                .is_none_or(|s| s.is_open(self.now)),
        }
    }

    /// Whether `queue`'s schedule has it open at `now` (engine time at the least: a view read
    /// between events asks about the present, while the engine's own time is its last event's).
    /// `None` for a queue the current config does not have.
    pub fn queue_open_at(&self, queue: &str, now: crate::config::Millis) -> Option<bool> {
        let &q = self.queue_ids.get(queue)?;
        let now = now.max(self.now);
        Some(
            self.queues[q as usize]
                .cfg()
                .schedule
                .as_ref()
                .is_none_or(|s| s.is_open(now)),
        )
    }

    /// All queues of the current config, in config order. One pass over the agents for all
    /// queues (O(agents × their queues)), not one per queue: metrics refresh every queue at once.
    pub fn queues(&self) -> Vec<QueueView> {
        let mut per_queue: Vec<BTreeMap<u8, BTreeMap<Activity, usize>>> =
            vec![BTreeMap::new(); self.queues.len()];
        for a in &self.agents {
            let activity = activity_of(a);
            for &(q, t) in &a.tiers {
                *per_queue[q as usize]
                    .entry(t)
                    .or_default()
                    .entry(activity)
                    .or_insert(0) += 1;
            }
        }
        self.queues
            .iter()
            .enumerate()
            .filter(|(q, rt)| self.queue_ids.get(&rt.name) == Some(&(*q as QKey)))
            .map(|(q, _)| {
                let agents = std::mem::take(&mut per_queue[q]);
                self.queue_view_with(q as QKey, agents)
            })
            .collect()
    }

    /// Ids waiting in `queue`, most urgent first.
    pub fn waiting_in(&self, queue: &str) -> Vec<Arc<str>> {
        let Some(&q) = self.queue_ids.get(queue) else {
            return Vec::new();
        };
        let mut keys: Vec<_> = self.queues[q as usize]
            .waiting
            .values()
            .flat_map(|s| s.iter())
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|k| self.ix(k.ikey()).id.clone())
            .collect()
    }

    /// Check every internal index against the primary state; `Err` describes the first mismatch.
    /// For tests (O(n)).
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut counts = crate::engine::view::Counts::default();
        let mut live = 0usize;
        for (ik, slot) in self.interactions.iter().enumerate() {
            let Some(i) = slot else { continue };
            if self.interaction_ids.get(&self.interactions, &i.id) != Some(ik as u32) {
                return Err(format!("interaction {} not in the id map", i.id));
            }
            counts.arrived += 1;
            match i.state {
                InteractionState::Waiting => counts.waiting += 1,
                InteractionState::Offered => counts.offered += 1,
                InteractionState::Connected => counts.connected += 1,
                InteractionState::WrapUp => counts.wrap_up += 1,
                InteractionState::Done => counts.done += 1,
                InteractionState::Abandoned => counts.abandoned += 1,
                InteractionState::Overflowed => counts.overflowed += 1,
                InteractionState::Rejected => counts.rejected += 1,
            }
            if !i.state.is_final() {
                live += 1;
            }
            let indexed = i.queue.is_some_and(|q| {
                let key = self.wait_key(ik as u32);
                self.queues[q as usize]
                    .waiting
                    .get(&(i.channel.index() as u8, self.class_of(ik as u32), i.skills))
                    .is_some_and(|s| s.contains(&key))
            });
            if indexed != (i.state == InteractionState::Waiting) {
                return Err(format!(
                    "interaction {} is {} but indexed={indexed}",
                    i.id,
                    i.state.as_str()
                ));
            }
            if matches!(
                i.state,
                InteractionState::Offered | InteractionState::Connected | InteractionState::WrapUp
            ) {
                let Some(ak) = i.agent else {
                    return Err(format!("interaction {} has no owner agent", i.id));
                };
                let holders = self.agents[ak as usize]
                    .slots
                    .iter()
                    .filter(|s| s.interaction == Some(ik as u32))
                    .count();
                if holders != 1 {
                    return Err(format!("interaction {} held by {holders} slots", i.id));
                }
            }
        }
        if live != self.live {
            return Err(format!("live count {} but {live} live", self.live));
        }
        for queue in &self.queues {
            let sets = &queue.waiting;
            sets.check()
                .map_err(|e| format!("queue {}: {e}", queue.name))?;
            for set in sets.values() {
                set.check()
                    .map_err(|e| format!("queue {}: {e}", queue.name))?;
            }
            let empty = sets.values().filter(|set| set.is_empty()).count();
            if empty > 0 && sets.len() > crate::engine::index::KEEP_EMPTY_WAITING_SETS {
                return Err(format!(
                    "queue {} keeps {empty} empty waiting sets among {}",
                    queue.name,
                    sets.len()
                ));
            }
            let mut indexed = [0usize; 4];
            for (id, set) in sets.iter() {
                match indexed.get_mut(usize::from(id.0)) {
                    Some(n) => *n += set.len(),
                    None => {
                        return Err(format!(
                            "queue {} has a waiting set on channel index {}, which does not exist",
                            queue.name, id.0
                        ))
                    }
                }
            }
            for (c, (&n, &indexed)) in queue.waiting_by_channel.iter().zip(&indexed).enumerate() {
                if indexed > 0 && !queue.serves[c] {
                    return Err(format!(
                        "queue {} has {indexed} waiting on channel index {c}, which it does not serve",
                        queue.name
                    ));
                }
                if indexed != n as usize {
                    return Err(format!(
                        "queue {} counts {n} waiting on channel index {c} but its sets hold {indexed}",
                        queue.name
                    ));
                }
            }
        }
        self.skills.check(
            self.agents.iter().map(|a| a.skills.as_slice()),
            self.interactions.iter().flatten().map(|i| i.skills),
        )?;
        let held = self.interactions.iter().flatten().count();
        if self.interaction_ids.len() != held {
            return Err(format!(
                "the id index files {} interactions but the engine holds {held}",
                self.interaction_ids.len()
            ));
        }
        let finished = counts.done + counts.abandoned + counts.overflowed + counts.rejected;
        let evicted = self.counts.arrived - counts.arrived;
        let expect_finished = self.counts.done
            + self.counts.abandoned
            + self.counts.overflowed
            + self.counts.rejected
            - evicted;
        if finished != expect_finished
            || counts.waiting != self.counts.waiting
            || counts.offered != self.counts.offered
            || counts.connected != self.counts.connected
            || counts.wrap_up != self.counts.wrap_up
        {
            return Err(format!(
                "state counts {:?} disagree with records {:?}",
                self.counts, counts
            ));
        }
        // What rings, per queue: exactly the offered interactions, with their entry times and
        // channels.
        let mut ringing = vec![Vec::new(); self.queues.len()];
        for (k, i) in self.interactions.iter().enumerate() {
            if let Some(i) = i.as_ref().filter(|i| i.state == InteractionState::Offered) {
                if let Some(list) = i.queue.and_then(|q| ringing.get_mut(q as usize)) {
                    list.push((i.entered_queue_at, k as super::timers::IKey, i.channel));
                }
            }
        }
        for (queue, mut expected) in self.queues.iter().zip(ringing) {
            let mut listed = queue.ringing.to_vec();
            listed.sort_unstable();
            expected.sort_unstable();
            if listed != expected {
                return Err(format!(
                    "queue {} lists ringing {listed:?} but offers {expected:?}",
                    queue.name
                ));
            }
        }
        for (q, queue) in self.queues.iter().enumerate() {
            queue
                .check_copies()
                .map_err(|e| format!("queue {}: {e}", queue.name))?;
            let n: usize = queue.waiting.values().map(WaitSet::len).sum();
            if n != queue.waiting_count {
                return Err(format!(
                    "queue {} waiting_count {} index {n}",
                    queue.name, queue.waiting_count,
                ));
            }
            let oldest = queue
                .waiting
                .values()
                .flatten()
                .map(|k| self.ix(k.ikey()).entered_queue_at)
                .chain(queue.ringing.iter().map(|&(at, _, _)| at))
                .min();
            if oldest != self.oldest_entered(q as QKey) {
                return Err(format!(
                    "queue {} oldest entry {oldest:?} but the index says {:?}",
                    queue.name,
                    self.oldest_entered(q as QKey)
                ));
            }
            queue
                .by_priority
                .check()
                .map_err(|e| format!("queue {}: {e}", queue.name))?;
            let prio: u32 = queue.by_priority.iter().map(|(_, n)| n).sum();
            if prio as usize != n {
                return Err(format!("queue {} by_priority sums to {prio}", queue.name));
            }
            queue
                .check_pool()
                .map_err(|e| format!("queue {}: {e}", queue.name))?;
            for (c, set) in queue.free.iter().enumerate() {
                for key in set {
                    let a = &self.agents[key.agent as usize];
                    if a.tier_in(q as u32) != Some(key.tier)
                        || !self.agent_free_for(key.agent, Channel::ALL[c])
                        || *key != self.free_key(key.agent, q as u32, key.tier, Channel::ALL[c])
                    {
                        return Err(format!(
                            "stale free entry for agent {} in queue {} channel {}",
                            a.id,
                            queue.name,
                            Channel::ALL[c]
                        ));
                    }
                }
            }
        }
        // Every key in a free set is one an agent should have (checked above, one per agent,
        // queue and channel since equal keys are one entry); as many keys as entries means no
        // entry is missing from its set either.
        let in_sets: usize = self
            .queues
            .iter()
            .flat_map(|q| q.free.iter())
            .map(BTreeSet::len)
            .sum();
        let mut filed = 0usize;
        for (ak, a) in self.agents.iter().enumerate() {
            let mut load = [0u32; 4];
            let mut exclusive = 0;
            for s in &a.slots {
                load[s.channel.index()] += 1;
                if self.config.channels[s.channel.index()].exclusive {
                    exclusive += 1;
                }
            }
            if load != a.load || exclusive != a.exclusive_held {
                return Err(format!(
                    "agent {} load {:?} vs slots {:?}",
                    a.id, a.load, load
                ));
            }
            let expected = Channel::ALL
                .iter()
                .filter(|c| self.agent_free_for(ak as u32, **c))
                .map(|c| {
                    a.tiers
                        .iter()
                        .filter(|(q, _)| self.queues[*q as usize].serves[c.index()])
                        .count()
                })
                .sum::<usize>();
            if expected != a.free_entries.len() {
                return Err(format!(
                    "agent {} has {} free entries, expected {expected}",
                    a.id,
                    a.free_entries.len()
                ));
            }
            filed += expected;
            if a.backoff_until.is_some() != a.backoff_timer.is_some() {
                return Err(format!("agent {} back-off without timer", a.id));
            }
        }
        if in_sets != filed {
            return Err(format!(
                "the free sets hold {in_sets} keys, but agents should be filed {filed} times"
            ));
        }
        self.timers.check()?;
        self.check_census()
    }
}
