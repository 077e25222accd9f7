//! Matching: which agent an interaction gets, which interaction a freed agent gets, and the offer.
//!
//! Both directions read only the indexes, so each match costs O(tiers × log n) plus, for required
//! skills, the agents skipped for lacking them. The strategy is applied here and nowhere else.

use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;

use rand::Rng;
use smallvec::SmallVec;

use crate::config::{Channel, Strategy, Tier};
use crate::engine::decision::{DecisionKind, Fact};
use crate::engine::index::{free_by_tier, level_floor};
use crate::engine::model::{Class, FreeKey, QKey, SetId, SkillSetId, Slot, WaitKey};
use crate::engine::timers::{AKey, IKey, Timer};
use crate::engine::view::{InteractionState, SlotPhase, Why};
use crate::engine::{warm, Engine};

impl Engine {
    /// The agent the queue's strategy picks for a waiting interaction, if any is eligible.
    pub(super) fn find_agent_for(&mut self, ik: IKey) -> Option<AKey> {
        let class = self.class_of(ik);
        let i = self.ix(ik);
        let q = i.queue?;
        let (channel, skills) = (i.channel, i.skills);
        self.find_agent(q, channel, class, skills)
    }

    /// The agent queue `q`'s strategy picks for an interaction of this channel, class and skills.
    pub(super) fn find_agent(
        &mut self,
        q: QKey,
        channel: Channel,
        class: Class,
        skills: SkillSetId,
    ) -> Option<AKey> {
        let queue = &self.queues[q as usize];
        let strategy = queue.cfg().strategy;
        let free = &queue.free[channel.index()];
        // The best skilled agent of each allowed tier (each tier's range is in strategy order).
        let mut heads: SmallVec<[(Tier, &FreeKey); 4]> = SmallVec::new();
        for (tier, mut set) in free_by_tier(free) {
            if !queue.class_allows(class, tier) {
                continue;
            }
            if let Some(k) =
                set.find(|k| self.has_skills(&self.agents[k.agent as usize].skills, skills))
            {
                heads.push((tier, k));
            }
        }
        if heads.is_empty() {
            return None;
        }
        let min_load = heads.iter().map(|(_, k)| k.load).min()?;
        match strategy {
            // By position in the queue's pool; the draw needs the RNG, so `heads` (a borrow of
            // the free sets) ends first.
            Strategy::Random => {
                drop(heads);
                self.pick_random(q, channel, class, skills, min_load)
            }
            // Across tiers the tier itself does not count (except for tier-order).
            Strategy::LongestIdle | Strategy::FewestInteractions => heads
                .iter()
                .map(|(_, k)| *k)
                .min_by(|a, b| {
                    (a.load, a.primary, a.idle, &a.id).cmp(&(b.load, b.primary, b.idle, &b.id))
                })
                .map(|k| k.agent),
            Strategy::TierOrder => heads
                .iter()
                .min_by(|(ta, a), (tb, b)| {
                    (a.load, *ta, a.idle, &a.id).cmp(&(b.load, *tb, b.idle, &b.id))
                })
                .map(|(_, k)| k.agent),
            Strategy::RoundRobin => {
                // Round-robin keys are (tier, load, 0, 0, id, agent): within a tier, the agents
                // at `min_load` are one id-ordered range. Each tier costs two range lookups plus
                // the agents skipped for lacking skills, never a walk from the tier's start.
                let last = queue
                    .rr_last
                    .and_then(|ak| self.agents.get(ak as usize))
                    .map(|a| a.id.clone());
                let skilled =
                    |k: &&FreeKey| self.has_skills(&self.agents[k.agent as usize].skills, skills);
                let mut after: Option<&FreeKey> = None;
                let mut first: Option<&FreeKey> = None;
                for (tier, _) in free_by_tier(free) {
                    if !queue.class_allows(class, tier) {
                        continue;
                    }
                    let level = |from: Bound<FreeKey>| {
                        free.range((from, Unbounded))
                            .take_while(|k| k.tier == tier && k.load == min_load)
                    };
                    if let Some(k) = level(Included(level_floor(tier, min_load))).find(skilled) {
                        if first.is_none_or(|f| k.id < f.id) {
                            first = Some(k);
                        }
                    }
                    if let Some(last) = &last {
                        let past_last = Excluded(past_agent(tier, min_load, last.clone()));
                        if let Some(k) = level(past_last).find(skilled) {
                            if after.is_none_or(|f| k.id < f.id) {
                                after = Some(k);
                            }
                        }
                    }
                }
                after.or(first).map(|k| k.agent)
            }
        }
    }

    /// Whether some free agent other than `except` could take an interaction of this channel,
    /// class and skills from queue `q` now (the strategy's pick is one of them when any is).
    pub(super) fn could_take_now(
        &self,
        q: QKey,
        channel: Channel,
        class: Class,
        skills: SkillSetId,
        except: Option<AKey>,
    ) -> bool {
        let queue = &self.queues[q as usize];
        free_by_tier(&queue.free[channel.index()]).any(|(tier, mut set)| {
            queue.class_allows(class, tier)
                && set.any(|k| {
                    Some(k.agent) != except
                        && self.has_skills(&self.agents[k.agent as usize].skills, skills)
                })
        })
    }

    /// Random: uniform among the skilled agents at `min_load` in the tiers `class` allows.
    ///
    /// In a random queue's pool (the free set's keys, by position) the agents of one tier at one
    /// load are one contiguous range: two rank lookups per tier give its bounds, a draw `k` in
    /// the ranges' total picks the k-th by position. With required skills an unskilled draw is
    /// rejected and drawn again (each accepted draw is uniform among the skilled), at most
    /// `RANDOM_DRAWS` times, then the skilled agents of the ranges are listed and one drawn
    /// from them (exact, linear in the ranges): a mixture of uniform picks is uniform. The pool
    /// orders by key alone, so the pick is a function of the state and the seed, never of the
    /// order agents were filed in: a restored snapshot draws as the live engine would.
    fn pick_random(
        &mut self,
        q: QKey,
        channel: Channel,
        class: Class,
        skills: SkillSetId,
        min_load: u32,
    ) -> Option<AKey> {
        let queue = &self.queues[q as usize];
        let c = channel.index();
        // A random queue always has a pool on the channels it serves (`check_pool`).
        let pool = queue.pool.as_ref()?[c].as_ref()?;
        let mut ranges: SmallVec<[(usize, usize); 4]> = SmallVec::new();
        let mut total = 0usize;
        for (tier, _) in free_by_tier(&queue.free[c]) {
            if !queue.class_allows(class, tier) {
                continue;
            }
            let start = pool.rank(&level_floor(tier, min_load));
            let end = match (min_load.checked_add(1), tier.checked_add(1)) {
                (Some(load), _) => pool.rank(&level_floor(tier, load)),
                (None, Some(next)) => pool.rank(&level_floor(next, 0)),
                (None, None) => pool.len(),
            };
            if start < end {
                ranges.push((start, end));
                total += end - start;
            }
        }
        if total == 0 {
            return None;
        }
        // The k-th candidate across the ranges, in range order.
        let nth = |mut k: usize| {
            ranges.iter().find_map(|&(start, end)| {
                if k < end - start {
                    pool.get_index(start + k)
                } else {
                    k -= end - start;
                    None
                }
            })
        };
        let no_skills_needed = self.skills.set(skills).is_empty();
        let draws = if no_skills_needed { 1 } else { RANDOM_DRAWS };
        for _ in 0..draws {
            // Drawn as u64, so that the pick does not depend on the platform's word size.
            let k = self.rng.gen_range(0..total as u64) as usize;
            let Some(key) = nth(k) else {
                continue;
            };
            if no_skills_needed || self.has_skills(&self.agents[key.agent as usize].skills, skills)
            {
                return Some(key.agent);
            }
        }
        let skilled: Vec<AKey> = ranges
            .iter()
            .flat_map(|&(start, end)| pool.range_idx(start..end))
            .filter(|k| self.has_skills(&self.agents[k.agent as usize].skills, skills))
            .map(|k| k.agent)
            .collect();
        if skilled.is_empty() {
            return None;
        }
        let k = self.rng.gen_range(0..skilled.len() as u64) as usize;
        skilled.get(k).copied()
    }

    /// The most urgent waiting interaction this agent is eligible for, across its queues and
    /// channels, and the waiting set it heads.
    pub(super) fn find_work_for(&self, ak: AKey) -> Option<Head> {
        let a = &self.agents[ak as usize];
        let free_for = Channel::ALL.map(|c| self.agent_free_for(ak, c));
        if !free_for.contains(&true) {
            return None;
        }
        let mut best: Option<Head> = None;
        for &(q, tier) in &a.tiers {
            let queue = &self.queues[q as usize];
            if queue.waiting_count == 0 {
                continue;
            }
            for head in queue.waiting.heads() {
                let (c, class, skills) = head.id;
                let Some(key) = head.first else {
                    continue;
                };
                if best.is_some_and(|b| b.key < key)
                    || !free_for[usize::from(c)]
                    || !queue.class_allows(class, tier)
                    || !self.has_skills(&a.skills, skills)
                {
                    continue;
                }
                best = Some(Head {
                    key,
                    queue: q,
                    set: head.id,
                });
            }
        }
        best
    }

    /// Offer a waiting interaction to an agent: reserve a slot, start the expiry timer, decide.
    /// `indexed`: the interaction is in the waiting index (take it out). `reindex`: update the
    /// agent's free-set entries now (a caller offering several in a row does it once at the end).
    pub(super) fn make_offer(&mut self, ik: IKey, ak: AKey, indexed: bool, reindex: bool) {
        if indexed {
            self.unindex_waiting(ik);
        }
        let now = self.now;
        let offer = offer_id(self.next_offer);
        self.next_offer += 1;
        let slot_id = self.next_slot;
        self.next_slot += 1;
        let (q, channel) = {
            let i = self.ix(ik);
            // Read near the end (history growth, the decision's id): start loading them now.
            warm::prefetch_slice(&i.history);
            warm::prefetch_arc_str(&i.id);
            (i.queue.unwrap_or(0), i.channel)
        };
        let timeout = self.queues[q as usize].offer_timeout_ms;
        let expires_at = now.saturating_add(timeout);
        let timer = self
            .timers
            .schedule(self.now, expires_at, Timer::OfferExpiry(ik));
        self.add_slot(
            ak,
            Slot {
                id: slot_id,
                channel,
                phase: SlotPhase::Offered,
                interaction: Some(ik),
                queue: q,
                offer: Some(offer.clone()),
                since: now,
                connected_at: None,
                until: Some(expires_at),
                timer: Some(timer),
            },
        );
        if reindex {
            self.reindex_agent(ak);
        }
        let agent_id = self.agents[ak as usize].id.clone();
        let address = self.agents[ak as usize].address.clone();
        self.queues[q as usize].rr_last = Some(ak);
        let queue = self.queues[q as usize].name.clone();
        {
            let i = self.ix_mut(ik);
            i.agent = Some(ak);
            i.slot = Some(slot_id);
            i.offer = Some(offer.clone());
            // Room for the rest of the usual life at once (offered, connected, wrap-up, done):
            // usually this moves the inline entries out of the record (loaded) into one heap
            // list, instead of doubling a longer one later, and a finished history is the size of
            // its entries rather than a power of two.
            i.history.reserve_exact(OFFERED_ONWARDS);
        }
        self.transition(
            ik,
            InteractionState::Offered,
            Why::Offered {
                agent: agent_id.clone(),
                offer: offer.clone(),
            },
        );
        let interaction = self.ix(ik).id.clone();
        self.emit(DecisionKind::Offer {
            interaction,
            agent: agent_id.clone(),
            address,
            queue: queue.clone(),
            channel: Some(channel),
            offer,
            expires_at,
        });
        self.fact(|| Fact::Offered {
            queue,
            channel,
            agent: agent_id,
            at: now,
        });
    }

    /// Offer an indexed waiting interaction to the agent its strategy picks. Returns whether it
    /// was offered.
    pub(super) fn try_place(&mut self, ik: IKey) -> bool {
        match self.find_agent_for(ik) {
            Some(ak) => {
                self.make_offer(ik, ak, true, true);
                true
            }
            None => false,
        }
    }

    /// For a waiting interaction not yet in the index: offer it if an agent is eligible, else
    /// index it (so an immediate offer never touches the waiting index). Returns whether offered.
    pub(super) fn place_or_index(&mut self, ik: IKey) -> bool {
        match self.find_agent_for(ik) {
            Some(ak) => {
                self.make_offer(ik, ak, false, true);
                true
            }
            None => {
                self.index_waiting(ik);
                false
            }
        }
    }

    /// After anything about the agent changed: let it take the most urgent eligible interactions
    /// until it is full, then bring its free-set entries up to date, once.
    pub(super) fn agent_take_work(&mut self, ak: AKey) {
        while let Some(head) = self.find_work_for(ak) {
            let ik = head.key.ikey();
            // The record is cold at scale, and the set removal does not need it (the head's key
            // says where it is): load it meanwhile, for `make_offer`.
            if let Some(Some(i)) = self.interactions.get(ik as usize) {
                warm::prefetch_arc(i);
            }
            self.unindex_head(&head);
            self.make_offer(ik, ak, false, false);
        }
        self.reindex_agent(ak);
    }
}

/// In a round-robin free set (every key has strategy order and idle time 0): the last key agent
/// `id` could have at (`tier`, `load`), so the range after it starts with the next agent.
fn past_agent(tier: Tier, load: u32, id: Arc<str>) -> FreeKey {
    FreeKey {
        id,
        agent: AKey::MAX,
        ..level_floor(tier, load)
    }
}

/// The head of one waiting set: its key and which set it heads (queue; channel index, class,
/// skills), so it can be taken out without reading the interaction first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub key: WaitKey,
    pub queue: QKey,
    pub set: SetId,
}

/// Draws a random pick makes before it lists the skilled candidates instead: with one in two
/// candidates skilled, 16 draws all miss once in 65,536 picks.
const RANDOM_DRAWS: usize = 16;

/// History entries an offer is usually followed by, itself included: offered, connected,
/// wrap-up, done.
const OFFERED_ONWARDS: usize = 4;

/// `o<n>` without a temporary `String`: one allocation (the `Arc`) per offer.
fn offer_id(n: u64) -> Arc<str> {
    let mut buf = [0u8; 21];
    buf[0] = b'o';
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let end = 1 + digits.len();
    buf[1..end].copy_from_slice(digits.as_bytes());
    // 'o' and ASCII digits only.
    Arc::from(std::str::from_utf8(&buf[..end]).unwrap_or("o"))
}

#[cfg(test)]
mod tests {
    use super::offer_id;

    #[test]
    fn offer_ids_are_o_then_the_number() {
        assert_eq!(&*offer_id(0), "o0");
        assert_eq!(&*offer_id(7), "o7");
        assert_eq!(&*offer_id(1234567890), "o1234567890");
        assert_eq!(&*offer_id(u64::MAX), format!("o{}", u64::MAX));
    }
}
