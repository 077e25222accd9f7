//! Derived indexes: which agents are free (per queue, channel, tier, in strategy order) and which
//! interactions wait (per queue, channel, class, in urgency order).
//!
//! They exist so that an arrival, a freed agent and a timer each cost O(log n) instead of a scan.
//! They are always updated together with the primary state in `model.rs`, and
//! `check_consistency` rebuilds them from scratch in tests to prove it.

use crate::config::{Channel, Strategy};
use crate::engine::decision::AgentStatus;
use crate::engine::model::{Class, FreeKey, QKey, WaitKey};
use crate::engine::timers::{AKey, IKey};
use crate::engine::view::InteractionState;
use crate::engine::Engine;

impl Engine {
    /// Whether the agent can be offered something on `channel` right now (status, back-off,
    /// capacity, exclusivity), regardless of queue, tier and skills.
    pub(super) fn agent_free_for(&self, ak: AKey, channel: Channel) -> bool {
        let a = &self.agents[ak as usize];
        if a.status != AgentStatus::Available || a.backoff_until.is_some() {
            return false;
        }
        if a.exclusive_held > 0 {
            return false;
        }
        let c = channel.index();
        if a.load[c] >= a.capacity[c] {
            return false;
        }
        if self.config.channels[c].exclusive && a.total_load() > 0 {
            return false;
        }
        true
    }

    /// The agent's ordering key in queue `q`'s free set for `channel`.
    pub(super) fn free_key(&self, ak: AKey, q: QKey, channel: Channel) -> FreeKey {
        let a = &self.agents[ak as usize];
        let strategy = self.queues[q as usize].cfg.strategy;
        let (primary, idle) = match strategy {
            Strategy::FewestInteractions => (a.accepted_since_login, a.idle_since),
            Strategy::RoundRobin => (0, 0),
            Strategy::LongestIdle | Strategy::TierOrder | Strategy::Random => (0, a.idle_since),
        };
        FreeKey {
            load: a.load[channel.index()],
            primary,
            idle,
            id: a.id.clone(),
            agent: ak,
        }
    }

    /// Remove the agent from every free set and re-add it where it belongs now.
    pub(super) fn reindex_agent(&mut self, ak: AKey) {
        let old = std::mem::take(&mut self.agents[ak as usize].free_entries);
        for (q, c, tier, key) in old {
            let sets = &mut self.queues[q as usize].free[c.index()];
            if let Some(set) = sets.get_mut(&tier) {
                set.remove(&key);
                if set.is_empty() {
                    sets.remove(&tier);
                }
            }
        }
        let mut entries = Vec::new();
        let tiers = self.agents[ak as usize].tiers.clone();
        for channel in Channel::ALL {
            if !self.agent_free_for(ak, channel) {
                continue;
            }
            for &(q, tier) in &tiers {
                if !self.queues[q as usize].serves[channel.index()] {
                    continue;
                }
                let key = self.free_key(ak, q, channel);
                self.queues[q as usize].free[channel.index()]
                    .entry(tier)
                    .or_default()
                    .insert(key.clone());
                entries.push((q, channel, tier, key));
            }
        }
        self.agents[ak as usize].free_entries = entries;
    }

    /// The class (eligibility rule) of an interaction in its queue.
    pub(super) fn class_of(&self, ik: IKey) -> Class {
        let i = self.ix(ik);
        match i.min_tier {
            Some(m) => Class::MinTier(m),
            None => Class::Step(i.step.unwrap_or(0)),
        }
    }

    pub(super) fn wait_key(&self, ik: IKey) -> WaitKey {
        let i = self.ix(ik);
        WaitKey {
            neg_priority: -(i.priority as i64),
            entered: i.entered_queue_at,
            order: i.order,
            ikey: ik,
        }
    }

    /// Put a waiting interaction into its queue's indexes.
    pub(super) fn index_waiting(&mut self, ik: IKey) {
        let class = self.class_of(ik);
        let key = self.wait_key(ik);
        let i = self.ix(ik);
        debug_assert_eq!(i.state, InteractionState::Waiting);
        let (Some(q), c, skills, prio, entered, order) = (
            i.queue,
            i.channel.index(),
            i.skills,
            i.priority,
            i.entered_queue_at,
            i.order,
        ) else {
            return;
        };
        let queue = &mut self.queues[q as usize];
        queue.waiting[c]
            .entry((class, skills))
            .or_default()
            .insert(key);
        queue.waiting_count += 1;
        queue.waiting_by_channel[c] += 1;
        *queue.by_priority.entry(prio).or_insert(0) += 1;
        queue.by_entered.insert((entered, order, ik));
    }

    /// Take a waiting interaction out of its queue's indexes (before any field of it changes).
    pub(super) fn unindex_waiting(&mut self, ik: IKey) {
        let class = self.class_of(ik);
        let key = self.wait_key(ik);
        let i = self.ix(ik);
        let (Some(q), c, skills, prio, entered, order) = (
            i.queue,
            i.channel.index(),
            i.skills,
            i.priority,
            i.entered_queue_at,
            i.order,
        ) else {
            return;
        };
        let queue = &mut self.queues[q as usize];
        let map = &mut queue.waiting[c];
        if let Some(set) = map.get_mut(&(class, skills)) {
            set.remove(&key);
            if set.is_empty() {
                map.remove(&(class, skills));
            }
        }
        queue.waiting_count -= 1;
        queue.waiting_by_channel[c] -= 1;
        if let Some(n) = queue.by_priority.get_mut(&prio) {
            *n -= 1;
            if *n == 0 {
                queue.by_priority.remove(&prio);
            }
        }
        queue.by_entered.remove(&(entered, order, ik));
    }

    /// 1-based position of a just-queued interaction: those with higher priority, plus those with
    /// equal priority (all of which entered no later), plus itself.
    pub(super) fn position_of_newest(&self, ik: IKey) -> u64 {
        let i = self.ix(ik);
        let Some(q) = i.queue else { return 0 };
        let queue = &self.queues[q as usize];
        queue
            .by_priority
            .range(i.priority..)
            .map(|(_, n)| *n as u64)
            .sum()
    }
}
