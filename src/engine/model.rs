//! The engine's primary state: interactions, agents and their slots, queues at run time.
//!
//! Everything in `index.rs` (who is free, who waits in which order) is derived from these and
//! can be rebuilt from them; these records are the truth.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::config::{Channel, Millis, QueueConfig, Step, Strategy, Tier};
use crate::engine::census::Census;
use crate::engine::decision::AgentStatus;
use crate::engine::runs::{Runs, RunsIter};
use crate::engine::timers::{AKey, IKey, TimerKey};
use crate::engine::view::{InteractionState, SlotPhase, Transition};

/// Index of a queue in the current config's queue table.
pub type QKey = u32;
/// Index of a distinct required-skill set (interned).
pub type SkillSetId = u32;

/// History entries kept inside the record itself: what an interaction gathers while it waits
/// (arrived, and usually one ladder step). A waiting record therefore needs no second allocation,
/// and its first offer moves the entries out of the record (already loaded) into a heap list
/// sized for the rest of its life, instead of reallocating a separate block that at scale is cold
/// (its memory, and the allocator's bookkeeping for freeing it).
pub const HISTORY_INLINE: usize = 2;

/// An interaction's history: inline up to `HISTORY_INLINE` entries, then on the heap.
pub type History = SmallVec<[Transition; HISTORY_INLINE]>;

/// An interaction (call, chat, email, callback) from arrival until it is evicted after finishing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub id: Arc<str>,
    pub channel: Channel,
    pub state: InteractionState,
    /// Current queue (or the last one, once finished). `None` only for unrouted rejections.
    pub queue: Option<QKey>,
    /// Priority on entering the current queue: the arrival's (event or rule) priority, or the
    /// priority it carried over from a transfer, overflow or explicit escalation (boost included).
    pub base_priority: i32,
    /// Current priority = `base_priority` + boosts of the ladder steps reached in this queue.
    pub priority: i32,
    pub arrived_at: Millis,
    pub entered_queue_at: Millis,
    /// Place in the queue's waiting order among equal priority and entry time.
    pub order: u64,
    /// Ladder step reached (None once an agent escalated it: `min_tier` rules instead).
    pub step: Option<u16>,
    pub min_tier: Option<Tier>,
    pub skills: SkillSetId,
    pub customer: Option<Arc<str>>,
    pub attributes: Box<[(Arc<str>, Arc<str>)]>,
    pub history: History,
    pub history_dropped: u32,
    pub rating: Option<u8>,
    pub resolved: Option<bool>,
    /// The agent holding it (offered, connected, wrap-up).
    pub agent: Option<AKey>,
    /// The agent's slot id holding it.
    pub slot: Option<u64>,
    pub offer: Option<Arc<str>>,
    pub step_timer: Option<TimerKey>,
    pub wait_timer: Option<TimerKey>,
    /// `max_wait` passed while it was offered: overflow as soon as it is back in the queue.
    pub overflow_due: bool,
    /// The agent who last accepted it: whether it was ever connected, and whom a rating
    /// credits, without depending on how much history is kept.
    #[serde(default)]
    pub answered_by: Option<AKey>,
}

/// One unit of an agent's capacity in use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    pub id: u64,
    pub channel: Channel,
    pub phase: SlotPhase,
    /// The interaction; `None` for a wrap-up after a transfer/escalation (it moved on).
    pub interaction: Option<IKey>,
    pub queue: QKey,
    pub offer: Option<Arc<str>>,
    /// When the slot entered its current phase (offered, connected, wrap-up).
    pub since: Millis,
    /// When the slot became connected (for handle time).
    pub connected_at: Option<Millis>,
    pub until: Option<Millis>,
    pub timer: Option<TimerKey>,
}

/// An agent and everything it holds.
///
/// `repr(C)`, with what every offer, answer, end of call and freed agent reads or writes first
/// (load and capacity, status, slots, tiers, the ids a decision carries, the free-index and
/// census bookkeeping), so those are the record's first four cache lines instead of fields
/// spread over all six. At scale a freed agent's record is cold (docs/BENCHMARKS.md, "Smaller
/// footprint per operation"). Snapshots keep format 3's field order: they are written and read
/// through `AgentWire`, not in this order.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "AgentWire")]
#[repr(C)]
pub struct Agent {
    pub load: [u32; 4],
    pub capacity: [u32; 4],
    /// Slots held on exclusive channels.
    pub exclusive_held: u32,
    pub status: AgentStatus,
    /// The activity the agent is counted under in its queues' census (`None`: not counted).
    /// Derived.
    pub census_as: Option<crate::engine::census::Counted>,
    pub idle_since: Millis,
    pub backoff_until: Option<Millis>,
    pub slots: Vec<Slot>,
    /// Tier per queue, resolved against the current queue table (`tiers_by_name`).
    pub tiers: Vec<(QKey, Tier)>,
    pub id: Arc<str>,
    pub address: Arc<str>,
    /// Sorted, deduplicated skill ids.
    pub skills: Vec<u32>,
    /// Free-index entries this agent currently has: (queue, channel, tier). Derived.
    pub free_entries: Vec<(QKey, Channel, Tier)>,
    /// The agent fields its free-index keys were built from, so the old keys can be rebuilt
    /// for removal without storing a copy of each. Derived.
    pub indexed_as: KeyState,
    pub accepted_since_login: u64,
    pub consecutive_missed_offers: u32,
    pub backoff_timer: Option<TimerKey>,
    pub reason: Option<Arc<str>>,
    pub status_since: Millis,
    pub logged_in_since: Option<Millis>,
    /// Tier per queue id, as configured or given at login (queue ids may not exist any more),
    /// sorted by id. The names share the queue table's `Arc`s.
    pub tiers_by_name: Box<[(Arc<str>, Tier)]>,
    pub capacity_overrides: BTreeMap<Channel, u32>,
    /// Fingerprints of the roster entry's address, tiers, skills and capacity last applied to
    /// this agent (`RosterFields`; 0: none). A config change rewrites only the fields whose
    /// roster entry changed, so it does not undo what a login set for fields the change left
    /// alone.
    pub roster_fields: [u64; 4],
}

/// An agent as snapshots store it: format 3's field order (positional), written from a borrow.
#[derive(Serialize)]
#[serde(rename = "Agent")]
struct AgentWireRef<'a> {
    id: &'a Arc<str>,
    address: &'a Arc<str>,
    status: AgentStatus,
    reason: &'a Option<Arc<str>>,
    status_since: Millis,
    logged_in_since: Option<Millis>,
    tiers_by_name: &'a [(Arc<str>, Tier)],
    tiers: &'a [(QKey, Tier)],
    skills: &'a [u32],
    capacity: [u32; 4],
    capacity_overrides: &'a BTreeMap<Channel, u32>,
    load: [u32; 4],
    exclusive_held: u32,
    slots: &'a [Slot],
    idle_since: Millis,
    accepted_since_login: u64,
    consecutive_missed_offers: u32,
    backoff_until: Option<Millis>,
    backoff_timer: Option<TimerKey>,
    roster_fields: [u64; 4],
}

/// `AgentWireRef`, read back.
#[derive(Deserialize)]
#[serde(rename = "Agent")]
struct AgentWire {
    id: Arc<str>,
    address: Arc<str>,
    status: AgentStatus,
    reason: Option<Arc<str>>,
    status_since: Millis,
    logged_in_since: Option<Millis>,
    tiers_by_name: Box<[(Arc<str>, Tier)]>,
    tiers: Vec<(QKey, Tier)>,
    skills: Vec<u32>,
    capacity: [u32; 4],
    capacity_overrides: BTreeMap<Channel, u32>,
    load: [u32; 4],
    exclusive_held: u32,
    slots: Vec<Slot>,
    idle_since: Millis,
    accepted_since_login: u64,
    consecutive_missed_offers: u32,
    backoff_until: Option<Millis>,
    backoff_timer: Option<TimerKey>,
    #[serde(default)]
    roster_fields: [u64; 4],
}

impl Serialize for Agent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AgentWireRef {
            id: &self.id,
            address: &self.address,
            status: self.status,
            reason: &self.reason,
            status_since: self.status_since,
            logged_in_since: self.logged_in_since,
            tiers_by_name: &self.tiers_by_name,
            tiers: &self.tiers,
            skills: &self.skills,
            capacity: self.capacity,
            capacity_overrides: &self.capacity_overrides,
            load: self.load,
            exclusive_held: self.exclusive_held,
            slots: &self.slots,
            idle_since: self.idle_since,
            accepted_since_login: self.accepted_since_login,
            consecutive_missed_offers: self.consecutive_missed_offers,
            backoff_until: self.backoff_until,
            backoff_timer: self.backoff_timer,
            roster_fields: self.roster_fields,
        }
        .serialize(serializer)
    }
}

impl From<AgentWire> for Agent {
    fn from(w: AgentWire) -> Agent {
        Agent {
            load: w.load,
            capacity: w.capacity,
            exclusive_held: w.exclusive_held,
            status: w.status,
            census_as: None,
            idle_since: w.idle_since,
            backoff_until: w.backoff_until,
            slots: w.slots,
            tiers: w.tiers,
            id: w.id,
            address: w.address,
            skills: w.skills,
            free_entries: Vec::new(),
            indexed_as: KeyState::default(),
            accepted_since_login: w.accepted_since_login,
            consecutive_missed_offers: w.consecutive_missed_offers,
            backoff_timer: w.backoff_timer,
            reason: w.reason,
            status_since: w.status_since,
            logged_in_since: w.logged_in_since,
            tiers_by_name: w.tiers_by_name,
            capacity_overrides: w.capacity_overrides,
            roster_fields: w.roster_fields,
        }
    }
}

/// The agent fields a free-set key depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyState {
    pub load: [u32; 4],
    pub accepted: u64,
    pub idle: Millis,
}

impl Agent {
    pub fn total_load(&self) -> u32 {
        self.load.iter().sum()
    }

    pub fn tier_in(&self, q: QKey) -> Option<Tier> {
        self.tiers.iter().find(|(k, _)| *k == q).map(|(_, t)| *t)
    }
}

/// Ordering key of a free agent in a (queue, channel) set: by tier, then smallest wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FreeKey {
    /// The agent's tier in the queue: one set holds every tier, each tier a contiguous range.
    pub tier: Tier,
    /// Active interactions on this channel (fewer first).
    pub load: u32,
    /// Strategy-specific: accepted since login for fewest-interactions, else 0.
    pub primary: u64,
    /// `idle_since` (0 for round-robin, which orders by id only).
    pub idle: Millis,
    pub id: Arc<str>,
    pub agent: AKey,
}

/// A random queue's free agents per channel, by position (`QueueRt::pool`); `None` for a channel
/// the queue does not serve (an empty tree still allocates a leaf).
pub type Pool = [Option<indexset::BTreeSet<FreeKey>>; 4];

/// Keys per leaf of a pool's tree. The crate's default (1024) makes each insert or removal shift
/// up to 1024 keys of 48 bytes within a leaf; 128 bounds that to a few kilobytes and keeps the
/// spine (one entry per leaf, searched by bisection, re-counted when a leaf splits or empties)
/// at 80–160 leaves for 10,000 free agents. 32, 128 and 1024 measured alike within the noise
/// (`pick_random/10000`, 4.5–6.4 µs): the pick's cost is the key comparisons, not the shifts.
const POOL_LEAF: usize = 128;

fn pool_set() -> indexset::BTreeSet<FreeKey> {
    indexset::BTreeSet::with_maximum_node_size(POOL_LEAF)
}

/// Which agents may take an interaction: a ladder step, or "tiers ≥ n" after an agent escalated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Step(u16),
    MinTier(Tier),
}

/// Ordering key of a waiting interaction: most urgent first. That is priority (higher first),
/// then the order it entered its queue, then (never needed: orders are unique) its slab key.
///
/// Entry order stands for entry time: `enter_queue` stamps both together from a clock that never
/// goes back, so ordering by time then order is ordering by order. Packed into 16 bytes (was 32
/// with the time): the waiting sets were B-trees then, and at 500,000 waiting the cost of a
/// ladder step or a freed agent was the cold node lines its key scan and shift touched, which
/// this halved.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitKey {
    /// Priority, flipped so that higher sorts first (high 32 bits); entry order's high half.
    hi: u64,
    /// Entry order's low half (high 32 bits); the slab key.
    lo: u64,
}

impl WaitKey {
    pub fn new(priority: i32, order: u64, ikey: IKey) -> WaitKey {
        WaitKey {
            hi: u64::from(Self::flip(priority)) << 32 | order >> 32,
            lo: order << 32 | u64::from(ikey),
        }
    }

    /// The smallest key of `priority`: every key of that priority is at or after it, every key
    /// of a higher priority before it.
    pub fn floor(priority: i32) -> WaitKey {
        WaitKey {
            hi: u64::from(Self::flip(priority)) << 32,
            lo: 0,
        }
    }

    /// Ascending in the flipped value is descending in priority.
    fn flip(priority: i32) -> u32 {
        !((priority as u32) ^ 0x8000_0000)
    }

    pub fn priority(self) -> i32 {
        (!((self.hi >> 32) as u32) ^ 0x8000_0000) as i32
    }

    pub fn order(self) -> u64 {
        (self.hi << 32) | (self.lo >> 32)
    }

    pub fn ikey(self) -> IKey {
        self.lo as IKey
    }

    /// The key as `Runs` files it: by `hi` (the priority, in practice), then `lo`.
    fn parts(self) -> (u64, u64) {
        (self.hi, self.lo)
    }

    fn from_parts((hi, lo): (u64, u64)) -> WaitKey {
        WaitKey { hi, lo }
    }
}

impl std::fmt::Debug for WaitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitKey")
            .field("priority", &self.priority())
            .field("order", &self.order())
            .field("ikey", &self.ikey())
            .finish()
    }
}

/// Keys a waiting set keeps outside its runs, inline: its most urgent ones.
pub const WAIT_FRONT: usize = 4;

/// The waiting interactions of one (class, skill set) of a queue and channel, most urgent first.
///
/// The most urgent few sit in `front`, inline where the set itself is stored; the rest in
/// `Runs`, one sorted run per priority (see `runs.rs`). A freed agent reads each candidate set's
/// head and takes one: both touch `front` only. `rest` is walked when `front` runs empty (one
/// walk refills it with up to `WAIT_FRONT` keys) and for keys that do not belong in front; a
/// key that is the newest of its priority (an arrival, a ladder step) is appended to its run
/// instead of being searched for through three levels of B-tree nodes, cold at 500,000 waiting.
/// A set of up to `WAIT_FRONT` keys allocates nothing. Every operation is O(log n). Measured:
/// docs/BENCHMARKS.md, "Inline history and waiting-set fronts" and "Waiting-set runs and timer
/// lanes".
///
/// Invariants (checked by `check`): `front` is sorted and holds at most `WAIT_FRONT` keys; every
/// key in `front` sorts before every key in `rest`; `front` is empty only if `rest` is; `rest`
/// keeps its own (`Runs::check`).
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct WaitSet {
    front: SmallVec<[WaitKey; WAIT_FRONT]>,
    rest: Runs,
}

impl WaitSet {
    pub fn insert(&mut self, key: WaitKey) {
        let before_last = self.front.last().is_some_and(|last| key < *last);
        if before_last || (self.front.len() < WAIT_FRONT && self.rest.is_empty()) {
            // Full: the front's last key makes room (first, so `front` never leaves its
            // inline storage).
            if self.front.len() == WAIT_FRONT {
                if let Some(last) = self.front.pop() {
                    self.rest.insert(last.parts());
                }
            }
            let at = self.front.partition_point(|k| *k < key);
            self.front.insert(at, key);
        } else {
            self.rest.insert(key.parts());
        }
    }

    /// Take `key` out; whether it was there.
    pub fn remove(&mut self, key: &WaitKey) -> bool {
        match self.front.binary_search(key) {
            Ok(at) => {
                self.front.remove(at);
                if self.front.is_empty() {
                    self.refill();
                }
                true
            }
            Err(at) if at < self.front.len() => false,
            Err(_) => self.rest.remove(key.parts()),
        }
    }

    /// Move the most urgent keys of `rest` into an empty `front`.
    fn refill(&mut self) {
        while self.front.len() < WAIT_FRONT {
            match self.rest.pop_first() {
                Some(parts) => self.front.push(WaitKey::from_parts(parts)),
                None => break,
            }
        }
    }

    /// The most urgent key.
    pub fn first(&self) -> Option<&WaitKey> {
        self.front.first()
    }

    /// The first key at or after `from`.
    pub fn first_from(&self, from: WaitKey) -> Option<WaitKey> {
        match self.front.iter().find(|k| **k >= from) {
            Some(key) => Some(*key),
            None => self.rest.first_from(from.parts()).map(WaitKey::from_parts),
        }
    }

    pub fn contains(&self, key: &WaitKey) -> bool {
        self.front.binary_search(key).is_ok() || self.rest.contains(key.parts())
    }

    pub fn len(&self) -> usize {
        self.front.len() + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.front.is_empty()
    }

    /// Most urgent first.
    pub fn iter(&self) -> WaitSetIter<'_> {
        WaitSetIter {
            front: self.front.iter(),
            rest: self.rest.iter(),
        }
    }

    /// The invariants above, for consistency checks.
    pub fn check(&self) -> Result<(), String> {
        let sorted = self.front.windows(2).all(|w| w[0] < w[1]);
        let split = match (
            self.front.last(),
            self.rest.first().map(WaitKey::from_parts),
        ) {
            (Some(last), Some(first)) => *last < first,
            (None, Some(_)) => false,
            _ => true,
        };
        self.rest.check()?;
        if sorted && split && self.front.len() <= WAIT_FRONT && !self.front.spilled() {
            Ok(())
        } else {
            Err(format!(
                "waiting set out of order: front {:?}, rest starts at {:?}",
                self.front,
                self.rest.first()
            ))
        }
    }
}

/// A waiting set's keys, most urgent first: the front, then the runs.
pub struct WaitSetIter<'a> {
    front: std::slice::Iter<'a, WaitKey>,
    rest: RunsIter<'a>,
}

impl Iterator for WaitSetIter<'_> {
    type Item = WaitKey;

    fn next(&mut self) -> Option<WaitKey> {
        match self.front.next() {
            Some(key) => Some(*key),
            None => self.rest.next().map(WaitKey::from_parts),
        }
    }
}

impl<'a> IntoIterator for &'a WaitSet {
    type Item = WaitKey;
    type IntoIter = WaitSetIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Which waiting set of a queue: channel index, class, required skill set.
pub type SetId = (u8, Class, SkillSetId);

/// Which waiting set, and its most urgent key (`None`: the set is empty): all a freed agent
/// reads of a set it is not taking from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetHead {
    pub id: SetId,
    pub first: Option<WaitKey>,
}

/// Waiting sets a queue keeps inside its own record before they move to the heap: a ladder of
/// three steps on one channel, with no required skills, needs no more.
pub const INLINE_SETS: usize = 3;

/// A queue's waiting sets, one per (channel, class, required skill set), sorted by that id.
///
/// Two parallel lists: `heads` (each set's id and most urgent key, 40 bytes) and `sets` (the
/// sets themselves, 96 bytes each). A freed agent reads the head of every set of each of its
/// queues, and takes from one: so it reads the dense `heads` of both queues (two cache lines
/// each for three sets, instead of the first bytes of three 112-byte entries spread over four)
/// and one set's body. The first `INLINE_SETS` of each live inside the queue record; a queue
/// with more keeps them in one sorted heap list each: one chase, still contiguous. Finding a
/// set is a binary search; adding or dropping one moves the sets after it, so it costs
/// O(sets in the queue), which is the number of distinct (channel, class, skill set)
/// combinations waiting there, not the number waiting.
///
/// Invariants (`check`): `heads` sorted by id without repeats, as long as `sets`, and each
/// head's `first` is its set's first key. Every change goes through `insert` and
/// `remove_key`, which keep the head.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct WaitingSets {
    heads: SmallVec<[SetHead; INLINE_SETS]>,
    sets: SmallVec<[WaitSet; INLINE_SETS]>,
}

impl WaitingSets {
    fn position(&self, id: &SetId) -> Result<usize, usize> {
        self.heads.binary_search_by(|h| h.id.cmp(id))
    }

    pub fn get(&self, id: &SetId) -> Option<&WaitSet> {
        self.position(id).ok().map(|at| &self.sets[at])
    }

    /// Put `key` in the set `id`, created empty if the queue has none yet.
    pub fn insert(&mut self, id: SetId, key: WaitKey) {
        let at = match self.position(&id) {
            Ok(at) => at,
            Err(at) => {
                self.heads.insert(at, SetHead { id, first: None });
                self.sets.insert(at, WaitSet::default());
                at
            }
        };
        let set = &mut self.sets[at];
        set.insert(key);
        self.heads[at].first = set.first().copied();
    }

    /// Take `key` out of the set `id`: `None` if there is no such set, else whether the key
    /// was there and whether the set is now empty (it stays; see `remove`).
    pub fn remove_key(&mut self, id: &SetId, key: &WaitKey) -> Option<(bool, bool)> {
        let at = self.position(id).ok()?;
        let set = &mut self.sets[at];
        let was_there = set.remove(key);
        let first = set.first().copied();
        self.heads[at].first = first;
        Some((was_there, first.is_none()))
    }

    /// Drop the set `id` (the caller has emptied it).
    pub fn remove(&mut self, id: &SetId) {
        if let Ok(at) = self.position(id) {
            self.heads.remove(at);
            self.sets.remove(at);
        }
    }

    /// Drop every empty set.
    pub fn drop_empty(&mut self) {
        let mut kept = 0;
        for at in 0..self.sets.len() {
            if !self.sets[at].is_empty() {
                self.heads.swap(kept, at);
                self.sets.swap(kept, at);
                kept += 1;
            }
        }
        self.heads.truncate(kept);
        self.sets.truncate(kept);
    }

    /// How many sets, empty ones included.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Every set's id and most urgent key, in id order (channel, then class, then skill set).
    pub fn heads(&self) -> &[SetHead] {
        &self.heads
    }

    /// Every set with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SetId, &WaitSet)> {
        self.heads.iter().map(|h| h.id).zip(&self.sets)
    }

    pub fn values(&self) -> impl Iterator<Item = &WaitSet> {
        self.sets.iter()
    }

    /// The invariants above.
    pub fn check(&self) -> Result<(), String> {
        if !self.heads.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(format!(
                "waiting sets out of order: {:?}",
                self.heads.iter().map(|h| h.id).collect::<Vec<_>>()
            ));
        }
        if self.heads.len() != self.sets.len() {
            return Err(format!(
                "{} waiting-set heads for {} sets",
                self.heads.len(),
                self.sets.len()
            ));
        }
        for (head, set) in self.heads.iter().zip(&self.sets) {
            if head.first != set.first().copied() {
                return Err(format!(
                    "waiting set {:?}: head {:?} but the set starts at {:?}",
                    head.id,
                    head.first,
                    set.first()
                ));
            }
        }
        Ok(())
    }
}

/// Distinct priorities a queue counts inline, in its record, before it switches to a B-tree.
pub const INLINE_PRIORITIES: usize = 12;

/// How many wait at each current priority in a queue (for `queued` positions), no zero counts.
///
/// A queue usually sees a handful of priorities (a rule's, a boost or two), so they are counted
/// in a sorted list inside the queue record: an arrival, a ladder step and a freed agent each
/// update it without leaving the record's hot lines. Past `INLINE_PRIORITIES` distinct
/// priorities the counts move to a B-tree, so an update stays O(log n) whatever the
/// priorities, and back once the queue has no priority left.
#[derive(Debug, Clone)]
pub enum PriorityCounts {
    Few(SmallVec<[(i32, u32); INLINE_PRIORITIES]>),
    Many(BTreeMap<i32, u32>),
}

impl Default for PriorityCounts {
    fn default() -> Self {
        PriorityCounts::Few(SmallVec::new())
    }
}

impl PriorityCounts {
    /// One more waiting at `priority`.
    pub fn add(&mut self, priority: i32) {
        match self {
            PriorityCounts::Few(counts) => match counts.binary_search_by_key(&priority, |e| e.0) {
                Ok(at) => counts[at].1 += 1,
                Err(_) if counts.len() == INLINE_PRIORITIES => {
                    let mut many: BTreeMap<i32, u32> = counts.iter().copied().collect();
                    many.insert(priority, 1);
                    *self = PriorityCounts::Many(many);
                }
                Err(at) => counts.insert(at, (priority, 1)),
            },
            PriorityCounts::Many(counts) => *counts.entry(priority).or_insert(0) += 1,
        }
    }

    /// One fewer waiting at `priority` (nothing if none was counted there).
    pub fn remove(&mut self, priority: i32) {
        match self {
            PriorityCounts::Few(counts) => {
                if let Ok(at) = counts.binary_search_by_key(&priority, |e| e.0) {
                    counts[at].1 -= 1;
                    if counts[at].1 == 0 {
                        counts.remove(at);
                    }
                }
            }
            PriorityCounts::Many(counts) => {
                if let Some(n) = counts.get_mut(&priority) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&priority);
                    }
                }
                if counts.is_empty() {
                    *self = PriorityCounts::default();
                }
            }
        }
    }

    /// How many wait at `priority` or higher.
    pub fn at_or_above(&self, priority: i32) -> u64 {
        match self {
            PriorityCounts::Few(counts) => {
                let from = counts.partition_point(|e| e.0 < priority);
                counts[from..].iter().map(|e| u64::from(e.1)).sum()
            }
            PriorityCounts::Many(counts) => {
                counts.range(priority..).map(|(_, n)| u64::from(*n)).sum()
            }
        }
    }

    /// The priorities counted, lowest first, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (i32, u32)> + '_ {
        let (few, many) = match self {
            PriorityCounts::Few(counts) => (Some(counts), None),
            PriorityCounts::Many(counts) => (None, Some(counts)),
        };
        let few = few.into_iter().flat_map(|c| c.iter().copied());
        let many = many
            .into_iter()
            .flat_map(|c| c.iter().map(|(p, n)| (*p, *n)));
        few.chain(many)
    }

    /// Sorted, no zero counts, and inline exactly while few enough.
    pub fn check(&self) -> Result<(), String> {
        let counts: Vec<(i32, u32)> = self.iter().collect();
        let sorted = counts.windows(2).all(|w| w[0].0 < w[1].0);
        let positive = counts.iter().all(|e| e.1 > 0);
        let placed = match self {
            PriorityCounts::Few(c) => c.len() <= INLINE_PRIORITIES && !c.spilled(),
            PriorityCounts::Many(c) => !c.is_empty(),
        };
        if sorted && positive && placed {
            Ok(())
        } else {
            Err(format!("priority counts malformed: {self:?}"))
        }
    }
}

/// A queue at run time: its config plus the waiting and free-agent indexes.
///
/// `repr(C)`, aligned to a cache line, hot fields first: what routing reads and writes of each
/// queue an agent serves (waiting counts, the changed flag, the agent census, per-priority
/// counts, the inline waiting sets) starts the record, so it is a few adjacent lines rather than
/// fields scattered across the record's dozen lines.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct QueueRt {
    pub waiting_count: usize,
    pub waiting_by_channel: [u32; 4],
    pub serves: [bool; 4],
    /// Listed in `Engine::changed_queues` since its load last changed.
    pub changed: bool,
    /// Last agent this queue offered to (round-robin). Written on every offer, so kept here,
    /// as a key: no reference count of an agent id to touch.
    pub rr_last: Option<AKey>,
    /// `cfg`'s ladder as bit masks, read by every freed agent for every set it looks at:
    /// bit `t` of entry `k` is set when step `k` allows tier `t` (`class_allows`). Only steps
    /// and tiers that fit (`MASKED_STEPS`, tiers below 32); the rest read `cfg`. Kept with
    /// `cfg` by `set_cfg`.
    step_masks: [u32; MASKED_STEPS],
    /// `cfg.offer_timeout_ms` and `cfg.wrap_up_ms`, here so an offer or a wrap-up reads the
    /// record's first lines, not `cfg`'s. Kept with `cfg` by `set_cfg`.
    pub offer_timeout_ms: Millis,
    pub wrap_up_ms: Millis,
    /// Its agents by tier and activity (`census.rs`); also answers `skip_if_no_agents` (agents
    /// not offline, per tier).
    pub census: Census,
    /// Waiting interactions by (channel, class, required skill set): the sets' heads first,
    /// then the sets.
    pub waiting: WaitingSets,
    /// Waiting count per current priority, for `queued` positions.
    pub by_priority: PriorityCounts,
    pub name: Arc<str>,
    /// The queue's configuration. Replaced only through `set_cfg`, which keeps the copies
    /// above in step.
    cfg: QueueConfig,
    /// Per channel: free agents, by tier then strategy order (one dense set, not one per tier).
    pub free: [BTreeSet<FreeKey>; 4],
    /// For a `random` queue only (`None` for every other strategy, which pays one word): per
    /// channel, the same keys as `free` in an order-statistic tree, so that a pick counts the
    /// agents of a (tier, load) range and takes the k-th of them by position, each in O(log n)
    /// (`dispatch.rs`). Changed only with `free`, through `free_insert`, `free_remove` and
    /// `clear_free`; `check_consistency` compares the two.
    pub pool: Option<Box<Pool>>,
    /// Removed by a live reload. Kept so that keys held by finished interactions and wrap-up
    /// slots stay valid; never routed to again (not in the id map).
    pub retired: bool,
    /// Interactions of this queue being offered (ringing an agent), with when they entered it
    /// and their channel: their callers still wait, so the oldest wait and the wallboard count
    /// them. Unordered: a queue rings at most as many as it has agent slots, and only views and
    /// metrics read it (the counts per channel are counted from it there).
    pub ringing: SmallVec<[(Millis, IKey, Channel); 2]>,
}

impl QueueRt {
    pub fn new(cfg: QueueConfig) -> QueueRt {
        let (serves, step_masks, offer_timeout_ms, wrap_up_ms) = copies_of(&cfg);
        let mut rt = QueueRt {
            name: Arc::from(cfg.id.as_str()),
            step_masks,
            offer_timeout_ms,
            wrap_up_ms,
            cfg,
            serves,
            waiting: Default::default(),
            waiting_count: 0,
            waiting_by_channel: [0; 4],
            by_priority: PriorityCounts::default(),
            free: Default::default(),
            pool: None,
            census: Census::default(),
            changed: false,
            ringing: SmallVec::new(),
            rr_last: None,
            retired: false,
        };
        rt.clear_free();
        rt
    }

    /// Empty the free sets (and the random pool), and give the queue a pool if and only if its
    /// strategy is `random`. Called whenever the free sets are rebuilt from scratch: a live
    /// reload (which may have changed the strategy) and a snapshot restore.
    pub fn clear_free(&mut self) {
        self.free = Default::default();
        let serves = self.serves;
        self.pool = (self.cfg.strategy == Strategy::Random)
            .then(|| Box::new(std::array::from_fn(|c| serves[c].then(pool_set))));
    }

    /// File a free-set key on channel index `c` (and in the pool, for a random queue).
    #[inline]
    pub fn free_insert(&mut self, c: usize, key: FreeKey) {
        if let Some(pool) = self.pool.as_mut().and_then(|p| p[c].as_mut()) {
            pool.insert(key.clone());
        }
        self.free[c].insert(key);
    }

    /// Take a free-set key out of channel index `c` (and out of the pool, for a random queue).
    #[inline]
    pub fn free_remove(&mut self, c: usize, key: &FreeKey) {
        if let Some(pool) = self.pool.as_mut().and_then(|p| p[c].as_mut()) {
            pool.remove(key);
        }
        self.free[c].remove(key);
    }

    /// Whether the pool holds exactly the free sets' keys for a random queue and is absent for
    /// any other (`check_consistency`).
    pub fn check_pool(&self) -> Result<(), String> {
        match (&self.pool, self.cfg.strategy == Strategy::Random) {
            (None, false) => Ok(()),
            (Some(_), false) => Err(format!(
                "queue is {:?} but keeps a random pool",
                self.cfg.strategy
            )),
            (None, true) => Err("random queue without a pool".to_string()),
            (Some(pool), true) => {
                for (c, (pool, free)) in pool.iter().zip(&self.free).enumerate() {
                    let Some(pool) = pool else {
                        if self.serves[c] || !free.is_empty() {
                            return Err(format!("random queue has no pool on channel index {c}"));
                        }
                        continue;
                    };
                    if !self.serves[c] {
                        return Err(format!("random pool on unserved channel index {c}"));
                    }
                    if pool.len() != free.len() || !pool.iter().eq(free.iter()) {
                        return Err(format!(
                            "random pool on channel index {c} holds {} keys, the free set {}, \
                             or they differ",
                            pool.len(),
                            free.len()
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// The queue's configuration.
    pub fn cfg(&self) -> &QueueConfig {
        &self.cfg
    }

    /// Replace the configuration (a live reload), with the copies kept beside it.
    pub fn set_cfg(&mut self, cfg: QueueConfig) {
        (
            self.serves,
            self.step_masks,
            self.offer_timeout_ms,
            self.wrap_up_ms,
        ) = copies_of(&cfg);
        self.cfg = cfg;
    }

    /// Whether the copies of `cfg` kept in the record agree with it (`check_consistency`).
    pub fn check_copies(&self) -> Result<(), String> {
        let kept = (
            self.serves,
            self.step_masks,
            self.offer_timeout_ms,
            self.wrap_up_ms,
        );
        if kept != copies_of(&self.cfg) {
            return Err("the record's copies of its configuration are stale".to_string());
        }
        Ok(())
    }

    /// Tiers allowed by a class.
    pub fn class_allows(&self, class: Class, tier: Tier) -> bool {
        match class {
            Class::Step(k) => match self.step_masks.get(usize::from(k)) {
                Some(&mask) if u32::from(tier) < u32::BITS => mask & (1 << tier) != 0,
                _ => self
                    .cfg
                    .steps
                    .get(k as usize)
                    .is_some_and(|s| s.tiers.contains(&tier)),
            },
            Class::MinTier(m) => tier >= m,
        }
    }
}

/// What a queue record keeps of its configuration beside it: the channels it serves, the
/// ladder's tier masks, the offer timeout and the wrap-up time.
fn copies_of(cfg: &QueueConfig) -> ([bool; 4], [u32; MASKED_STEPS], Millis, Millis) {
    let mut serves = [false; 4];
    for c in &cfg.channels {
        serves[c.index()] = true;
    }
    (
        serves,
        step_masks(&cfg.steps),
        cfg.offer_timeout_ms,
        cfg.wrap_up_ms,
    )
}

/// Ladder steps whose tiers a queue record keeps as bit masks (`QueueRt::class_allows`).
const MASKED_STEPS: usize = 6;

/// The first `MASKED_STEPS` steps' tiers below 32, one bit per tier.
fn step_masks(steps: &[Step]) -> [u32; MASKED_STEPS] {
    let mut masks = [0; MASKED_STEPS];
    for (mask, step) in masks.iter_mut().zip(steps) {
        for &t in &step.tiers {
            if u32::from(t) < u32::BITS {
                *mask |= 1 << t;
            }
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::{
        Class, PriorityCounts, SetId, WaitKey, WaitSet, WaitingSets, INLINE_PRIORITIES, WAIT_FRONT,
    };

    /// The packed key orders exactly as (priority descending, order ascending, slab key), over
    /// the whole range of each part, and gives each part back.
    #[test]
    fn a_packed_wait_key_orders_as_priority_then_entry_order() {
        let priorities = [i32::MIN, -7, -1, 0, 1, 5, i32::MAX];
        let orders = [
            0,
            1,
            u32::MAX as u64,
            1 << 32,
            (1 << 32) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        let ikeys = [0, 3, u32::MAX];
        let mut keys = Vec::new();
        for &p in &priorities {
            for &o in &orders {
                for &i in &ikeys {
                    let k = WaitKey::new(p, o, i);
                    assert_eq!((k.priority(), k.order(), k.ikey()), (p, o, i));
                    keys.push(k);
                }
            }
        }
        for a in &keys {
            for b in &keys {
                let plain = (-(a.priority() as i64), a.order(), a.ikey()).cmp(&(
                    -(b.priority() as i64),
                    b.order(),
                    b.ikey(),
                ));
                assert_eq!(a.cmp(b), plain, "{a:?} vs {b:?}");
            }
            let floor = WaitKey::floor(a.priority());
            assert!(floor <= *a);
            if a.priority() < i32::MAX {
                assert!(WaitKey::new(a.priority() + 1, u64::MAX, u32::MAX) < floor);
            }
        }
    }

    /// One step against a waiting set: insert a key, remove one (present or not), or take the
    /// head, as arrivals, abandons/step changes and freed agents do.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(i32, u64),
        Remove(i32, u64),
        TakeHead,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few priorities and orders, so that keys collide, come back and land in front.
        prop_oneof![
            4 => (0..4i32, 0..40u64).prop_map(|(p, o)| Op::Insert(p, o)),
            2 => (0..4i32, 0..40u64).prop_map(|(p, o)| Op::Remove(p, o)),
            2 => Just(Op::TakeHead),
        ]
    }

    proptest! {
        /// The inline front plus runs behaves exactly as one ordered set (the oracle), and
        /// keeps its own invariants, after every operation.
        #[test]
        fn a_waiting_set_behaves_as_one_ordered_set(ops in prop::collection::vec(op(), 1..300)) {
            let mut set = WaitSet::default();
            let mut oracle = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(p, o) => {
                        let key = WaitKey::new(p, o, o as u32);
                        if oracle.insert(key) {
                            set.insert(key);
                        }
                    }
                    Op::Remove(p, o) => {
                        let key = WaitKey::new(p, o, o as u32);
                        prop_assert_eq!(set.remove(&key), oracle.remove(&key));
                    }
                    Op::TakeHead => {
                        let head = set.first().copied();
                        prop_assert_eq!(head, oracle.first().copied());
                        if let Some(key) = head {
                            prop_assert!(set.remove(&key));
                            oracle.remove(&key);
                        }
                    }
                }
                prop_assert_eq!(set.check(), Ok(()));
                prop_assert_eq!(set.len(), oracle.len());
                prop_assert_eq!(set.is_empty(), oracle.is_empty());
                prop_assert_eq!(set.first(), oracle.first());
                prop_assert!(set.iter().eq(oracle.iter().copied()));
                prop_assert!((&set).into_iter().eq(oracle.iter().copied()));
                for p in 0..4 {
                    let floor = WaitKey::floor(p);
                    prop_assert_eq!(set.first_from(floor), oracle.range(floor..).next().copied());
                }
                for o in [0u64, 7, 39] {
                    let key = WaitKey::new(1, o, o as u32);
                    prop_assert_eq!(set.contains(&key), oracle.contains(&key));
                }
            }
        }
    }

    /// One step against a queue's waiting sets: file a key in a set (creating it), take a key
    /// out (dropping the set when it empties, as a queue with many sets does), or read a set.
    #[derive(Debug, Clone)]
    enum SetsOp {
        Insert(u8, u16, u64),
        Remove(u8, u16, u64),
        /// Drop the set if it is empty.
        DropIfEmpty(u8, u16),
        DropEmpty,
    }

    fn sets_op() -> impl Strategy<Value = SetsOp> {
        // Few channels, classes and keys, so that sets are created, refilled and dropped.
        prop_oneof![
            3 => (0..4u8, 0..4u16, 0..12u64).prop_map(|(c, k, o)| SetsOp::Insert(c, k, o)),
            2 => (0..4u8, 0..4u16, 0..12u64).prop_map(|(c, k, o)| SetsOp::Remove(c, k, o)),
            1 => (0..4u8, 0..4u16).prop_map(|(c, k)| SetsOp::DropIfEmpty(c, k)),
            1 => Just(SetsOp::DropEmpty),
        ]
    }

    proptest! {
        /// The queue's sorted, partly inline list of sets behaves as a map from set id to
        /// ordered set (the oracle): same sets, in the same order, with the same keys.
        #[test]
        fn a_queues_waiting_sets_behave_as_an_ordered_map(
            ops in prop::collection::vec(sets_op(), 1..200),
        ) {
            let mut sets = WaitingSets::default();
            let mut oracle: BTreeMap<SetId, BTreeSet<WaitKey>> = BTreeMap::new();
            for op in ops {
                match op {
                    SetsOp::Insert(c, k, o) => {
                        let id = (c, Class::Step(k), 0);
                        let key = WaitKey::new(0, o, o as u32);
                        if oracle.entry(id).or_default().insert(key) {
                            sets.insert(id, key);
                        }
                    }
                    SetsOp::Remove(c, k, o) => {
                        let id = (c, Class::Step(k), 0);
                        let key = WaitKey::new(0, o, o as u32);
                        let expected = oracle.get_mut(&id).is_some_and(|s| s.remove(&key));
                        let removed = sets.remove_key(&id, &key);
                        prop_assert_eq!(removed.is_some_and(|(was, _)| was), expected);
                        let emptied = oracle.get(&id).is_some_and(BTreeSet::is_empty);
                        prop_assert!(removed.is_none_or(|(_, empty)| empty == emptied));
                    }
                    SetsOp::DropIfEmpty(c, k) => {
                        let id = (c, Class::Step(k), 0);
                        if oracle.get(&id).is_some_and(BTreeSet::is_empty) {
                            oracle.remove(&id);
                            sets.remove(&id);
                        }
                    }
                    SetsOp::DropEmpty => {
                        oracle.retain(|_, keys| !keys.is_empty());
                        sets.drop_empty();
                    }
                }
                prop_assert_eq!(sets.check(), Ok(()));
                prop_assert_eq!(sets.len(), oracle.len());
                prop_assert!(sets.heads().iter().map(|h| h.id).eq(oracle.keys().copied()));
                prop_assert!(sets
                    .heads()
                    .iter()
                    .map(|h| h.first)
                    .eq(oracle.values().map(|keys| keys.first().copied())));
                for (id, keys) in &oracle {
                    let set = sets.get(id);
                    prop_assert!(set.is_some_and(|s| s.iter().eq(keys.iter().copied())));
                }
                prop_assert!(sets.get(&(9, Class::Step(0), 0)).is_none());
            }
        }
    }

    proptest! {
        /// Per-priority counts, inline or in their B-tree, agree with a map oracle after every
        /// change, and switch storage at the documented points.
        #[test]
        fn a_queues_priority_counts_agree_with_a_map(
            ops in prop::collection::vec((any::<bool>(), -3..20i32), 1..300),
        ) {
            let mut counts = PriorityCounts::default();
            let mut oracle: BTreeMap<i32, u32> = BTreeMap::new();
            for (add, p) in ops {
                if add {
                    counts.add(p);
                    *oracle.entry(p).or_insert(0) += 1;
                } else {
                    counts.remove(p);
                    if let Some(n) = oracle.get_mut(&p) {
                        *n -= 1;
                        if *n == 0 {
                            oracle.remove(&p);
                        }
                    }
                }
                prop_assert_eq!(counts.check(), Ok(()));
                prop_assert!(counts.iter().eq(oracle.iter().map(|(p, n)| (*p, *n))));
                for q in [-4, 0, 7, 19, 25] {
                    let above: u64 = oracle.range(q..).map(|(_, n)| u64::from(*n)).sum();
                    prop_assert_eq!(counts.at_or_above(q), above);
                }
                if oracle.is_empty() {
                    prop_assert!(matches!(counts, PriorityCounts::Few(_)));
                }
                if oracle.len() > INLINE_PRIORITIES {
                    prop_assert!(matches!(counts, PriorityCounts::Many(_)));
                }
            }
        }
    }

    /// Arrivals in waiting order fill the front, then the runs; taking heads refills the front
    /// from the runs in order.
    #[test]
    fn a_waiting_set_keeps_its_most_urgent_keys_in_front() {
        let mut set = WaitSet::default();
        let keys: Vec<WaitKey> = (0..10).map(|o| WaitKey::new(0, o, o as u32)).collect();
        for &k in &keys {
            set.insert(k);
        }
        assert_eq!(set.front.as_slice(), &keys[..WAIT_FRONT]);
        assert_eq!(set.rest.len(), 10 - WAIT_FRONT);
        // A more urgent arrival goes in front and pushes the front's last into the runs.
        let urgent = WaitKey::new(5, 100, 100);
        set.insert(urgent);
        assert_eq!(set.first(), Some(&urgent));
        assert_eq!(set.front.len(), WAIT_FRONT);
        assert_eq!(set.rest.first(), Some(keys[WAIT_FRONT - 1].parts()));
        let mut taken = Vec::new();
        while let Some(&head) = set.first() {
            assert!(set.remove(&head));
            assert_eq!(set.check(), Ok(()));
            taken.push(head);
        }
        let mut expected = vec![urgent];
        expected.extend(&keys);
        assert_eq!(taken, expected);
    }
}

#[cfg(test)]
mod copies_tests {
    use super::*;

    /// The masks answer what the ladder says, for every step and tier, past the masked steps
    /// and tiers too; a reload keeps them with the new ladder.
    #[test]
    fn class_allows_agrees_with_the_ladder_beyond_the_masks() {
        let ladder = |shift: u8| -> Vec<Step> {
            (0..9u8)
                .map(|k| {
                    let tiers: Vec<Tier> = vec![1 + (k + shift) % 3, 31, 32 + k, 200, 255];
                    Step::new(u64::from(k) * 1_000, &tiers)
                })
                .collect()
        };
        let mut cfg = QueueConfig::with_defaults("q");
        cfg.steps = ladder(0);
        let mut rt = QueueRt::new(cfg.clone());
        for shift in [0, 1] {
            cfg.steps = ladder(shift);
            cfg.offer_timeout_ms = 7_000 + u64::from(shift);
            rt.set_cfg(cfg.clone());
            assert_eq!(rt.check_copies(), Ok(()));
            assert_eq!(rt.offer_timeout_ms, 7_000 + u64::from(shift));
            for k in 0..12u16 {
                for tier in 0..=255u8 {
                    let expected = cfg
                        .steps
                        .get(usize::from(k))
                        .is_some_and(|s| s.tiers.contains(&tier));
                    assert_eq!(
                        rt.class_allows(Class::Step(k), tier),
                        expected,
                        "step {k} tier {tier} (shift {shift})"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod agent_wire_tests {
    use super::*;

    /// An agent with every stored field set to something other than its default.
    fn sample() -> Agent {
        Agent {
            id: Arc::from("a1"),
            address: Arc::from("sip:a1@pbx"),
            status: AgentStatus::NotReady,
            reason: Some(Arc::from("lunch")),
            status_since: 11,
            logged_in_since: Some(12),
            tiers_by_name: vec![(Arc::from("sales"), 2), (Arc::from("support"), 1)].into(),
            tiers: vec![(3, 1), (4, 2)],
            skills: vec![5, 6],
            capacity: [1, 3, 5, 1],
            capacity_overrides: BTreeMap::from([(Channel::Chat, 3)]),
            load: [1, 2, 0, 0],
            exclusive_held: 1,
            slots: vec![Slot {
                id: 13,
                channel: Channel::Voice,
                phase: SlotPhase::Connected,
                interaction: Some(14),
                queue: 3,
                offer: Some(Arc::from("o15")),
                since: 16,
                connected_at: Some(17),
                until: Some(18),
                timer: None,
            }],
            idle_since: 19,
            accepted_since_login: 20,
            consecutive_missed_offers: 2,
            backoff_until: Some(21),
            backoff_timer: None,
            roster_fields: [22, 23, 24, 25],
            free_entries: vec![(3, Channel::Voice, 1)],
            indexed_as: KeyState::default(),
            census_as: Some(crate::engine::census::Counted {
                activity: crate::engine::view::Activity::Busy,
                signed_off: false,
            }),
        }
    }

    /// What format 3 wrote for `sample()`, recorded before the record's fields were reordered.
    const FORMAT_3: &str = "dc0014a26131aa7369703a613140706278a96e6f745f7265616479a56c756e63680b0c9292a573616c65730292a7737570706f72740192920301920402920506940103050181a46368617403940102000001919a0da5766f696365a9636f6e6e65637465640e03a36f3135101112c013140215c09416171819";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A snapshot stores an agent as format 3 did, whatever the record's field order, and reads
    /// it back with every stored field (the derived ones are rebuilt by the engine).
    #[test]
    fn an_agent_is_stored_in_format_3s_field_order() {
        let agent = sample();
        let bytes = rmp_serde::to_vec(&agent).unwrap();
        assert_eq!(hex(&bytes), FORMAT_3);
        let back: Agent = rmp_serde::from_slice(&bytes).unwrap();
        let mut expected = agent;
        expected.free_entries.clear();
        expected.census_as = None;
        expected.indexed_as = KeyState::default();
        assert_eq!(format!("{back:?}"), format!("{expected:?}"));
    }
}
