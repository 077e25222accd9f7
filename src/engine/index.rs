//! Derived indexes: which agents are free (per queue, channel, tier, in strategy order) and which
//! interactions wait (per queue, channel, class, in urgency order).
//!
//! They exist so that an arrival, a freed agent and a timer each cost O(log n) instead of a scan.
//! They are always updated together with the primary state in `model.rs`, and
//! `check_consistency` rebuilds them from scratch in tests to prove it.

use std::collections::btree_set;
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use crate::config::{Channel, Millis, Strategy, Tier};
use crate::engine::decision::AgentStatus;
use crate::engine::dispatch::Head;
use crate::engine::model::{Class, FreeKey, KeyState, QKey, SetId, WaitKey};
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

    /// The agent's ordering key in queue `q`'s free set for `channel`, as of now.
    pub(super) fn free_key(&self, ak: AKey, q: QKey, tier: Tier, channel: Channel) -> FreeKey {
        self.key_from(ak, q, tier, channel, &self.key_state(ak))
    }

    fn key_state(&self, ak: AKey) -> KeyState {
        let a = &self.agents[ak as usize];
        KeyState {
            load: a.load,
            accepted: a.accepted_since_login,
            idle: a.idle_since,
        }
    }

    /// The key the agent has (or had) in queue `q`'s free set for `channel`, given `state`.
    fn key_from(
        &self,
        ak: AKey,
        q: QKey,
        tier: Tier,
        channel: Channel,
        state: &KeyState,
    ) -> FreeKey {
        let (load, primary, idle) = self.key_fields(q, channel, state);
        FreeKey {
            tier,
            load,
            primary,
            idle,
            id: self.agents[ak as usize].id.clone(),
            agent: ak,
        }
    }

    /// The parts of a free-set key that follow the agent's state: load on the channel, the
    /// strategy's primary order and the idle time. The rest (tier, id, agent) never changes
    /// between two reindexes of the same entry.
    fn key_fields(&self, q: QKey, channel: Channel, state: &KeyState) -> (u32, u64, Millis) {
        let load = state.load[channel.index()];
        match self.queues[q as usize].cfg().strategy {
            Strategy::FewestInteractions => (load, state.accepted, state.idle),
            Strategy::RoundRobin => (load, 0, 0),
            Strategy::LongestIdle | Strategy::TierOrder | Strategy::Random => (load, 0, state.idle),
        }
    }

    /// Move the agent's free-set entries to where it belongs now: remove the entries it no
    /// longer has, add the new ones, and re-file the ones whose key changed.
    ///
    /// An entry whose key is the same before and after stays where it is. That is the common
    /// case for a multichannel agent: an answer (`offer.accepted`) changes no key under most
    /// strategies, and a change of chat load leaves its email entries alone. When the list of
    /// entries changes at all (the agent became free or busy for some channel, its tiers
    /// changed) every old entry is removed and every new one added, as a plain rebuild would.
    pub(super) fn reindex_agent(&mut self, ak: AKey) {
        let mut entries = std::mem::take(&mut self.agents[ak as usize].free_entries);
        let old_state = self.agents[ak as usize].indexed_as;
        let state = self.key_state(ak);
        let mut same_entries = true;
        let mut n = 0;
        self.each_free_entry(ak, |entry| {
            same_entries &= entries.get(n) == Some(&entry);
            n += 1;
        });
        if same_entries && n == entries.len() {
            if old_state != state {
                for &(q, c, tier) in &entries {
                    if self.key_fields(q, c, &old_state) == self.key_fields(q, c, &state) {
                        continue;
                    }
                    let old_key = self.key_from(ak, q, tier, c, &old_state);
                    let key = self.key_from(ak, q, tier, c, &state);
                    let queue = &mut self.queues[q as usize];
                    queue.free_remove(c.index(), &old_key);
                    queue.free_insert(c.index(), key);
                }
            }
        } else {
            // All out, then all in: an old key equal to a new one must not be removed after
            // it went back in.
            for &(q, c, tier) in &entries {
                let key = self.key_from(ak, q, tier, c, &old_state);
                self.queues[q as usize].free_remove(c.index(), &key);
            }
            entries.clear();
            self.each_free_entry(ak, |entry| entries.push(entry));
            for &(q, c, tier) in &entries {
                let key = self.key_from(ak, q, tier, c, &state);
                self.queues[q as usize].free_insert(c.index(), key);
            }
        }
        let a = &mut self.agents[ak as usize];
        a.free_entries = entries;
        a.indexed_as = state;
    }

    /// The free-set entries the agent should have now, in a fixed order (channel, then the
    /// agent's tier list): one per queue it has a tier in and channel it is free for there.
    fn each_free_entry(&self, ak: AKey, mut entry: impl FnMut((QKey, Channel, Tier))) {
        for channel in Channel::ALL {
            if !self.agent_free_for(ak, channel) {
                continue;
            }
            for &(q, tier) in &self.agents[ak as usize].tiers {
                if self.queues[q as usize].serves[channel.index()] {
                    entry((q, channel, tier));
                }
            }
        }
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
        WaitKey::new(i.priority, i.order, ik)
    }

    /// Put a waiting interaction into its queue's indexes.
    pub(super) fn index_waiting(&mut self, ik: IKey) {
        self.index_class(ik);
        let i = self.ix(ik);
        debug_assert_eq!(i.state, InteractionState::Waiting);
        let (Some(q), c) = (i.queue, i.channel.index()) else {
            return;
        };
        let queue = &mut self.queues[q as usize];
        queue.waiting_count += 1;
        queue.waiting_by_channel[c] += 1;
        self.mark_changed(q);
    }

    /// Take a waiting interaction out of its queue's indexes (before any field of it changes).
    pub(super) fn unindex_waiting(&mut self, ik: IKey) {
        self.unindex_class(ik);
        self.unindex_membership(ik);
    }

    /// The part of `unindex_waiting` that does not depend on class or priority: the queue's counts.
    pub(super) fn unindex_membership(&mut self, ik: IKey) {
        let i = self.ix(ik);
        let (Some(q), c) = (i.queue, i.channel.index()) else {
            return;
        };
        self.count_out(q, c);
    }

    /// An interaction of its queue starts ringing an agent (offered): counted, and its entry
    /// time kept for the oldest wait.
    pub(super) fn ring(&mut self, ik: IKey) {
        let i = self.ix(ik);
        let (Some(q), channel, entered) = (i.queue, i.channel, i.entered_queue_at) else {
            return;
        };
        self.queues[q as usize].ringing.push((entered, ik, channel));
        self.mark_changed(q);
    }

    /// It stops ringing (accepted, declined, expired, revoked, abandoned). A no-op for one not
    /// listed (a reconfiguration rebuilds the lists after taking offers back).
    pub(super) fn unring(&mut self, ik: IKey) {
        let Some(q) = self.ix(ik).queue else {
            return;
        };
        let queue = &mut self.queues[q as usize];
        if let Some(at) = queue.ringing.iter().position(|&(_, k, _)| k == ik) {
            queue.ringing.swap_remove(at);
            self.mark_changed(q);
        }
    }

    /// One fewer waiting in queue `q` on channel index `c`.
    fn count_out(&mut self, q: QKey, c: usize) {
        let queue = &mut self.queues[q as usize];
        queue.waiting_count -= 1;
        queue.waiting_by_channel[c] -= 1;
        self.mark_changed(q);
    }

    /// When the longest-waiting interaction of queue `q` entered it. Each (class, skills) set is
    /// ordered by priority, then entry: the first key at each priority present is that priority's
    /// oldest, so this costs one range lookup per (set, priority), never a scan. It is asked for
    /// by views (wallboards, metrics), not on the routing path, which therefore keeps no
    /// entry-time index of its own.
    pub(super) fn oldest_entered(&self, q: QKey) -> Option<Millis> {
        let queue = &self.queues[q as usize];
        // A ringing caller still waits: the oldest unanswered, waiting or being offered.
        let mut oldest: Option<Millis> = queue.ringing.iter().map(|&(at, _, _)| at).min();
        if queue.waiting_count == 0 {
            return oldest;
        }
        for set in queue.waiting.values() {
            for (priority, _) in queue.by_priority.iter() {
                if let Some(k) = set.first_from(WaitKey::floor(priority)) {
                    let entered = self.ix(k.ikey()).entered_queue_at;
                    if k.priority() == priority && oldest.is_none_or(|o| entered < o) {
                        oldest = Some(entered);
                    }
                }
            }
        }
        oldest
    }

    /// Insert into the (class, skills) set and the per-priority count: the part of the index a
    /// ladder step changes. Waiting count and entry order stay as they are.
    pub(super) fn index_class(&mut self, ik: IKey) {
        let class = self.class_of(ik);
        let key = self.wait_key(ik);
        let i = self.ix(ik);
        let (Some(q), c, skills, prio) = (i.queue, i.channel.index(), i.skills, i.priority) else {
            return;
        };
        let queue = &mut self.queues[q as usize];
        let sets = queue.waiting.len();
        queue.waiting.insert((c as u8, class, skills), key);
        if queue.waiting.len() > sets.max(KEEP_EMPTY_WAITING_SETS) {
            // A new set took the queue past the number kept: the empty sets kept so far go too
            // (see `unindex_key`; beyond the number, none is ever left empty).
            queue.waiting.drop_empty();
        }
        queue.by_priority.add(prio);
    }

    /// The reverse of `index_class` (before class or priority change).
    pub(super) fn unindex_class(&mut self, ik: IKey) {
        let class = self.class_of(ik);
        let key = self.wait_key(ik);
        let i = self.ix(ik);
        let (Some(q), c, skills) = (i.queue, i.channel.index(), i.skills) else {
            return;
        };
        self.unindex_key(q, (c as u8, class, skills), key);
    }

    /// Take `key` out of its (class, skills) set of queue `q`, channel index `c`, and out of the
    /// per-priority count.
    fn unindex_key(&mut self, q: QKey, set_id: SetId, key: WaitKey) {
        let queue = &mut self.queues[q as usize];
        // An emptied set stays while the queue has few (so the next entry allocates nothing:
        // a ladder step moves interactions between sets all the time). Beyond that it goes: a
        // freed agent looks at every (class, skills) set of its queues, and keeping empty ones
        // would make that cost grow with every skill combination that ever waited there.
        if let Some((was_there, empty)) = queue.waiting.remove_key(&set_id, &key) {
            debug_assert!(was_there, "{key:?} is not in its waiting set");
            if empty && queue.waiting.len() > KEEP_EMPTY_WAITING_SETS {
                queue.waiting.remove(&set_id);
            }
        }
        let prio = key.priority();
        queue.by_priority.remove(prio);
    }

    /// `unindex_waiting` for the head of a waiting set, from the head alone (its record is not
    /// read: the caller loads it meanwhile).
    pub(super) fn unindex_head(&mut self, head: &Head) {
        self.unindex_key(head.queue, head.set, head.key);
        self.count_out(head.queue, usize::from(head.set.0));
    }

    /// 1-based position of a just-queued interaction: those with higher priority, plus those with
    /// equal priority (all of which entered no later), plus itself.
    pub(super) fn position_of_newest(&self, ik: IKey) -> u64 {
        let i = self.ix(ik);
        let Some(q) = i.queue else { return 0 };
        let queue = &self.queues[q as usize];
        queue.by_priority.at_or_above(i.priority)
    }
}

/// Waiting sets per queue (all channels, classes and skill sets) below which an emptied set is
/// kept for reuse.
pub(super) const KEEP_EMPTY_WAITING_SETS: usize = 16;

/// The smallest possible key at (`tier`, `load`): where that level starts in a free set of any
/// strategy (no key is below strategy order 0, idle 0, id "", agent 0).
pub(super) fn level_floor(tier: Tier, load: u32) -> FreeKey {
    static EMPTY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));
    FreeKey {
        tier,
        load,
        primary: 0,
        idle: 0,
        id: EMPTY.clone(),
        agent: 0,
    }
}

/// The smallest possible key of a tier: where that tier's range starts in a free set.
fn tier_floor(tier: Tier) -> FreeKey {
    level_floor(tier, 0)
}

/// The distinct tiers present in a free set, each with its agents in strategy order. Costs one
/// range lookup per tier present, never a scan of the set.
pub(super) fn free_by_tier(
    set: &BTreeSet<FreeKey>,
) -> impl Iterator<Item = (Tier, btree_set::Range<'_, FreeKey>)> {
    let mut next: Option<Tier> = set.first().map(|k| k.tier);
    std::iter::from_fn(move || {
        let t = next?;
        let (range, after) = match t.checked_add(1) {
            Some(n) => (
                set.range(tier_floor(t)..tier_floor(n)),
                set.range(tier_floor(n)..).next().map(|k| k.tier),
            ),
            None => (set.range(tier_floor(t)..), None),
        };
        next = after;
        Some((t, range))
    })
}
