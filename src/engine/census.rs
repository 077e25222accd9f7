//! The agent census: per queue, how many of its agents are in each tier and activity, kept up to
//! date on every agent change instead of being recounted from every agent when someone asks; and
//! the set of queues whose load (census, waiting count, oldest wait) changed since metrics last
//! looked.
//!
//! Each agent remembers the activity it is counted under (`Agent::census_as`). Wherever the
//! inputs of its activity change (status, a slot added, removed or changing phase) the engine
//! calls `census_touch`, which moves the agent between activities in each of its queues when the
//! activity changed: O(slots + queues the agent serves). A change of the agent's tiers is wrapped
//! in `census_out` / `census_in`. `skip_if_no_agents` reads its logged-in counts (`logged_in`).
//! `check_consistency` recounts everything from the agents and compares.

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::config::{Channel, Millis, Tier};
use crate::engine::model::QKey;
use crate::engine::timers::AKey;
use crate::engine::view::Activity;
use crate::engine::views::activity_of;
use crate::engine::Engine;

/// Tiers a queue's census keeps inline, in the queue record, before it moves to the heap: an
/// L1/L2/L3 ladder needs no more.
pub const INLINE_TIERS: usize = 3;

/// Agents of one queue by tier and activity (indexed like `Activity::ALL`), sorted by tier,
/// and per tier how many of them are signed off while still handling (`Counted::signed_off`:
/// counted under their call's activity, not logged in). Tiers with no agent are absent.
///
/// It lives in the queue record's first lines (see `QueueRt`): every change of an agent's
/// activity updates the census of each queue it serves, so at scale a separate node per queue
/// would be a cold line per queue per change. A tier is a `u8`, so a census holds at most 256
/// entries and a sorted list stays cheap to update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    by_tier: SmallVec<[(Tier, [u32; 6], u32); INLINE_TIERS]>,
}

/// What an agent is counted under: its activity, and whether it is signed off (status
/// `offline`) while still handling a call or wrap-up it kept, which counts as busy or wrap-up
/// but not as logged in (`skip_if_no_agents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub activity: Activity,
    pub signed_off: bool,
}

impl Counted {
    pub fn of(a: &crate::engine::model::Agent) -> Counted {
        let activity = activity_of(a);
        Counted {
            activity,
            signed_off: activity != Activity::Offline
                && a.status == crate::engine::decision::AgentStatus::Offline,
        }
    }
}

impl Census {
    /// Every tier with at least one agent, in tier order, with its counts per activity.
    pub fn tiers(&self) -> impl Iterator<Item = (Tier, &[u32; 6])> + '_ {
        self.by_tier.iter().map(|(t, n, _)| (*t, n))
    }

    fn position(&self, tier: Tier) -> Result<usize, usize> {
        self.by_tier.binary_search_by_key(&tier, |(t, _, _)| *t)
    }

    fn get(&self, tier: Tier) -> Option<&[u32; 6]> {
        self.position(tier).ok().map(|at| &self.by_tier[at].1)
    }

    /// Agents of `tier` that are logged in (status not offline: in any activity but
    /// `Offline`, less those signed off while still handling).
    pub fn logged_in(&self, tier: Tier) -> u32 {
        self.position(tier).map_or(0, |at| {
            let (_, n, signed_off) = &self.by_tier[at];
            let active: u32 = Activity::ALL
                .iter()
                .zip(n)
                .filter(|(a, _)| **a != Activity::Offline)
                .map(|(_, n)| *n)
                .sum();
            active.saturating_sub(*signed_off)
        })
    }

    /// Agents of `tier` in `activity`.
    pub fn count(&self, tier: Tier, activity: Activity) -> u32 {
        self.get(tier).map_or(0, |n| n[activity_index(activity)])
    }

    /// The same counts in the shape of `QueueView::agents` (non-zero counts only).
    pub fn to_map(&self) -> BTreeMap<Tier, BTreeMap<Activity, usize>> {
        self.by_tier
            .iter()
            .map(|(t, n, _)| {
                let by_activity = Activity::ALL
                    .iter()
                    .zip(n)
                    .filter(|(_, n)| **n > 0)
                    .map(|(a, n)| (*a, *n as usize))
                    .collect();
                (*t, by_activity)
            })
            .collect()
    }

    fn add(&mut self, tier: Tier, counted: Counted, delta: i32) {
        let at = match self.position(tier) {
            Ok(at) => at,
            Err(at) => {
                self.by_tier.insert(at, (tier, [0; 6], 0));
                at
            }
        };
        let (_, counts, signed_off) = &mut self.by_tier[at];
        let n = &mut counts[activity_index(counted.activity)];
        *n = n.saturating_add_signed(delta);
        if counted.signed_off {
            *signed_off = signed_off.saturating_add_signed(delta);
        }
        if *signed_off == 0 && counts.iter().all(|n| *n == 0) {
            self.by_tier.remove(at);
        }
    }

    /// One agent of `tier` moves from one activity to another: one lookup, and the tier's
    /// total is unchanged, so its entry stays. (`add(-1)` then `add(+1)`, which each looked the
    /// tier up and checked for an empty entry, was about a sixth of a freed agent's
    /// instructions.)
    fn shift(&mut self, tier: Tier, from: Counted, to: Counted) {
        match self.position(tier) {
            Ok(at) => {
                let (_, counts, signed_off) = &mut self.by_tier[at];
                let n = &mut counts[activity_index(from.activity)];
                *n = n.saturating_sub(1);
                counts[activity_index(to.activity)] += 1;
                if from.signed_off {
                    *signed_off = signed_off.saturating_sub(1);
                }
                if to.signed_off {
                    *signed_off += 1;
                }
            }
            // Not counted under `from`: count it under `to` only, as the two `add`s would.
            Err(_) => self.add(tier, to, 1),
        }
    }
}

/// `a`'s place in `Activity::ALL` (the test `activity_index_follows_all` pins the two together).
fn activity_index(a: Activity) -> usize {
    match a {
        Activity::Available => 0,
        Activity::Offered => 1,
        Activity::Busy => 2,
        Activity::WrapUp => 3,
        Activity::NotReady => 4,
        Activity::Offline => 5,
    }
}

/// What metrics need of one queue after a change: cheap, no walk over its agents.
#[derive(Debug, Clone, Copy)]
pub struct QueueLoad<'a> {
    pub waiting: usize,
    /// Indexed like `Channel::ALL`.
    pub waiting_by_channel: [usize; 4],
    /// Being offered (ringing an agent) per channel, indexed like `Channel::ALL`.
    pub ringing_by_channel: [usize; 4],
    /// When the oldest unanswered interaction entered: waiting or ringing.
    pub oldest_entered_at: Option<Millis>,
    pub agents: &'a Census,
}

impl QueueLoad<'_> {
    pub fn waiting_on(&self, channel: Channel) -> usize {
        self.waiting_by_channel[channel.index()]
    }

    pub fn ringing_on(&self, channel: Channel) -> usize {
        self.ringing_by_channel[channel.index()]
    }

    pub fn ringing(&self) -> usize {
        self.ringing_by_channel.iter().sum()
    }
}

impl Engine {
    /// The load of queue `id` now (`None` for a queue the current config does not have).
    pub fn queue_load(&self, id: &str) -> Option<QueueLoad<'_>> {
        let q = *self.queue_ids.get(id)?;
        let queue = &self.queues[q as usize];
        Some(QueueLoad {
            waiting: queue.waiting_count,
            waiting_by_channel: queue.waiting_by_channel.map(|n| n as usize),
            ringing_by_channel: Channel::ALL
                .map(|c| queue.ringing.iter().filter(|r| r.2 == c).count()),
            oldest_entered_at: self.oldest_entered(q),
            agents: &queue.census,
        })
    }

    /// Agents of the whole centre in each activity (indexed like `Activity::ALL`), each counted
    /// once however many queues it serves (agents serving no queue included). O(1).
    pub fn centre_agents(&self) -> [u32; 6] {
        self.centre
    }

    /// The queues of the current config whose load changed since the last call (each once, in the
    /// order they first changed). After a reconfiguration every queue is listed.
    pub fn take_changed_queues(&mut self) -> Vec<Arc<str>> {
        let changed = std::mem::take(&mut self.changed_queues);
        let mut ids = Vec::with_capacity(changed.len());
        for q in changed {
            let queue = &mut self.queues[q as usize];
            queue.changed = false;
            if !queue.retired {
                ids.push(queue.name.clone());
            }
        }
        ids
    }

    pub(super) fn mark_changed(&mut self, q: QKey) {
        let queue = &mut self.queues[q as usize];
        if !queue.changed {
            queue.changed = true;
            self.changed_queues.push(q);
        }
    }

    pub(super) fn mark_all_changed(&mut self) {
        for q in 0..self.queues.len() {
            self.mark_changed(q as QKey);
        }
    }

    /// Count the agent into its queues under its current activity.
    pub(super) fn census_in(&mut self, ak: AKey) {
        let counted = Counted::of(&self.agents[ak as usize]);
        self.agents[ak as usize].census_as = Some(counted);
        self.census_move(ak, None, Some(counted));
    }

    /// Count the agent out of its queues (before its tiers change).
    pub(super) fn census_out(&mut self, ak: AKey) {
        let counted = self.agents[ak as usize].census_as.take();
        if counted.is_some() {
            self.census_move(ak, counted, None);
        }
    }

    /// After the agent's status or slots changed: move it to its new activity, if it has one.
    pub(super) fn census_touch(&mut self, ak: AKey) {
        let a = &self.agents[ak as usize];
        let Some(counted) = a.census_as else {
            return;
        };
        let now = Counted::of(a);
        if now != counted {
            self.agents[ak as usize].census_as = Some(now);
            self.census_move(ak, Some(counted), Some(now));
        }
    }

    fn census_move(&mut self, ak: AKey, from: Option<Counted>, to: Option<Counted>) {
        if let Some(from) = from {
            let n = &mut self.centre[activity_index(from.activity)];
            *n = n.saturating_sub(1);
        }
        if let Some(to) = to {
            self.centre[activity_index(to.activity)] += 1;
        }
        for i in 0..self.agents[ak as usize].tiers.len() {
            let (q, tier) = self.agents[ak as usize].tiers[i];
            let census = &mut self.queues[q as usize].census;
            match (from, to) {
                (Some(from), Some(to)) => census.shift(tier, from, to),
                (Some(from), None) => census.add(tier, from, -1),
                (None, Some(to)) => census.add(tier, to, 1),
                (None, None) => {}
            }
            self.mark_changed(q);
        }
    }

    /// Recount every queue's census from the agents and compare (for `check_consistency`).
    pub(super) fn check_census(&self) -> Result<(), String> {
        let mut recount = vec![Census::default(); self.queues.len()];
        let mut centre = [0u32; 6];
        for a in &self.agents {
            let counted = Counted::of(a);
            centre[activity_index(counted.activity)] += 1;
            if a.census_as != Some(counted) {
                return Err(format!(
                    "agent {} is {counted:?} but counted as {:?}",
                    a.id, a.census_as
                ));
            }
            for &(q, tier) in &a.tiers {
                recount[q as usize].add(tier, counted, 1);
            }
        }
        for (queue, expected) in self.queues.iter().zip(recount) {
            if queue.census != expected {
                return Err(format!(
                    "queue {} census {:?} but the agents say {:?}",
                    queue.name,
                    queue.census.to_map(),
                    expected.to_map()
                ));
            }
        }
        if self.centre != centre {
            return Err(format!(
                "the centre counts {:?} agents per activity but the agents say {centre:?}",
                self.centre
            ));
        }
        let listed = self.changed_queues.len();
        let flagged = self.queues.iter().filter(|q| q.changed).count();
        if listed != flagged {
            return Err(format!(
                "{listed} queues listed as changed but {flagged} flagged"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_index_follows_all() {
        for (i, a) in Activity::ALL.iter().enumerate() {
            assert_eq!(activity_index(*a), i, "{a:?}");
        }
    }

    /// Every way an agent can be counted: each activity, signed off or not (an offline one
    /// never is: it is not handling anything).
    fn all_counted() -> Vec<Counted> {
        Activity::ALL
            .iter()
            .flat_map(|&activity| {
                [false, true]
                    .into_iter()
                    .filter(move |s| !(*s && activity == Activity::Offline))
                    .map(move |signed_off| Counted {
                        activity,
                        signed_off,
                    })
            })
            .collect()
    }

    /// `shift` leaves the census exactly as `add(from, -1)` then `add(to, +1)` would, whether
    /// or not the agent was counted under `from` and whatever the tier's entry held.
    #[test]
    fn a_shift_equals_a_removal_then_an_addition() {
        let tiers: [Tier; 3] = [1, 2, 3];
        let all = all_counted();
        let mut seeds = Vec::new();
        // Censuses with 0–2 agents per (tier, activity) on a few patterns.
        for pattern in 0u32..64 {
            let mut c = Census::default();
            for (k, tier) in tiers.iter().enumerate() {
                for (i, counted) in all.iter().enumerate() {
                    let n = (pattern >> ((k + i) % 6)) & 1;
                    for _ in 0..n {
                        c.add(*tier, *counted, 1);
                    }
                }
            }
            seeds.push(c);
        }
        seeds.push(Census::default());
        for seed in &seeds {
            for tier in [1, 2, 3, 4] {
                for &from in &all {
                    for &to in &all {
                        let mut expected = seed.clone();
                        expected.add(tier, from, -1);
                        expected.add(tier, to, 1);
                        let mut got = seed.clone();
                        got.shift(tier, from, to);
                        assert_eq!(got, expected, "tier {tier} {from:?} -> {to:?} on {seed:?}");
                    }
                }
            }
        }
    }

    /// An agent signed off during a call it kept counts as busy but not as logged in.
    #[test]
    fn a_signed_off_agent_still_handling_is_not_logged_in() {
        let mut c = Census::default();
        let busy = |signed_off| Counted {
            activity: Activity::Busy,
            signed_off,
        };
        c.add(1, busy(false), 1);
        c.add(1, busy(true), 1);
        assert_eq!((c.count(1, Activity::Busy), c.logged_in(1)), (2, 1));
        c.shift(1, busy(false), busy(true));
        assert_eq!((c.count(1, Activity::Busy), c.logged_in(1)), (2, 0));
        let offline = Counted {
            activity: Activity::Offline,
            signed_off: false,
        };
        c.shift(1, busy(true), offline);
        assert_eq!((c.count(1, Activity::Busy), c.logged_in(1)), (1, 0));
    }
}
