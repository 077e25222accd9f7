//! Ordered sets of waiting interactions, shaped the way queues are used.
//!
//! A queue's waiting order is (priority, then entry time, then entry number). Entries almost
//! always join at the back of their priority (a new entry's time is "now" and its number the
//! next one) and almost always leave from the front (the most urgent is offered) or, for a
//! ladder step, from the back (the newest reaches its step first). So instead of one ordered
//! tree per set, each priority is a [`Fifo`]: a deque sorted by (entry time, entry number), where
//! joining at the back, leaving at either end and reading the front cost O(1) and touch one or
//! two cache lines. Leaving from the middle (an abandon) marks the entry as gone in place, in
//! O(log n), and the gone entries are dropped when they reach an end or, all at once, when they
//! outnumber the live ones (amortised O(1)). The rare join in the middle (an interaction put
//! back after a declined offer keeps its original place) is an insert that shifts the shorter
//! side of the deque; it re-joins near the front, where it was taken from.
//!
//! The engine's derived indexes use these (see `index.rs`); `check_consistency` and the
//! property test below compare them with a plain ordered set.

use std::collections::VecDeque;

use smallvec::SmallVec;

use crate::config::Millis;
use crate::engine::model::WaitKey;
use crate::engine::timers::IKey;

/// A place in a [`Fifo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub entered: Millis,
    pub order: u64,
    /// [`GONE`] once removed from the middle (the place is kept so the deque stays sorted).
    pub ikey: IKey,
}

/// Marks a place whose interaction left from the middle of the deque.
const GONE: IKey = IKey::MAX;

/// Gone places are dropped all at once when there are more than this many and more than live.
const COMPACT_AT: usize = 32;

impl Place {
    fn pos(&self) -> (Millis, u64) {
        (self.entered, self.order)
    }
}

/// Places in (entry time, entry number) order; see the module docs. The front and the back are
/// always live (or the deque is empty).
#[derive(Debug, Clone, Default)]
pub struct Fifo {
    places: VecDeque<Place>,
    live: usize,
}

impl Fifo {
    /// The earliest live entry.
    pub fn first(&self) -> Option<Place> {
        self.places.front().copied()
    }

    /// Add an entry. Entries are unique by (entry time, entry number).
    pub fn insert(&mut self, place: Place) {
        debug_assert_ne!(place.ikey, GONE);
        self.live += 1;
        match self.places.back() {
            None => return self.places.push_back(place),
            Some(back) if back.pos() < place.pos() => return self.places.push_back(place),
            _ => {}
        }
        match self.places.binary_search_by(|p| p.pos().cmp(&place.pos())) {
            // The same place left from the middle earlier: it comes back to life.
            Ok(i) => {
                debug_assert_eq!(self.places[i].ikey, GONE, "duplicate waiting entry");
                self.places[i].ikey = place.ikey;
            }
            Err(i) => self.places.insert(i, place),
        }
    }

    /// Remove an entry; false if it is not there.
    pub fn remove(&mut self, place: Place) -> bool {
        if self.places.back() == Some(&place) {
            self.places.pop_back();
            self.live -= 1;
            while self.places.back().is_some_and(|p| p.ikey == GONE) {
                self.places.pop_back();
            }
            return true;
        }
        if self.places.front() == Some(&place) {
            self.places.pop_front();
            self.live -= 1;
            while self.places.front().is_some_and(|p| p.ikey == GONE) {
                self.places.pop_front();
            }
            return true;
        }
        let Ok(i) = self.places.binary_search_by(|p| p.pos().cmp(&place.pos())) else {
            return false;
        };
        if self.places[i].ikey != place.ikey {
            return false;
        }
        self.places[i].ikey = GONE;
        self.live -= 1;
        let gone = self.places.len() - self.live;
        if gone > COMPACT_AT && gone > self.live {
            self.places.retain(|p| p.ikey != GONE);
        }
        true
    }

    pub fn contains(&self, place: Place) -> bool {
        self.places
            .binary_search_by(|p| p.pos().cmp(&place.pos()))
            .is_ok_and(|i| self.places[i].ikey == place.ikey)
    }

    /// Live entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Place> + '_ {
        self.places.iter().copied().filter(|p| p.ikey != GONE)
    }
}

/// Empty priority buckets kept for reuse (so a queue whose priorities come and go allocates
/// nothing); beyond this many buckets, an emptied one is dropped.
const KEEP_BUCKETS: usize = 16;

/// Waiting interactions of one (class, skill set) in urgency order ([`WaitKey`] order): one
/// [`Fifo`] per priority, most urgent priority first.
///
/// The set's own record (which sits inside its queue's map node) holds the head and, inline for
/// up to eight priorities, each bucket's priority and live count. So finding a bucket, skipping
/// empty ones and reading the head touch only that record; the deques behind it are read only
/// for the entry being added or taken.
#[derive(Debug, Clone, Default)]
pub struct WaitSet {
    /// The most urgent entry.
    head: Option<WaitKey>,
    /// (priority, live entries) per bucket, highest priority first; parallel to `fifos`.
    prios: SmallVec<[(i32, u32); 8]>,
    fifos: Vec<Fifo>,
    live: usize,
}

impl WaitSet {
    pub fn len(&self) -> usize {
        self.live
    }

    /// Where the bucket of `neg_priority` is (`Ok`) or would go (`Err`).
    fn bucket(&self, neg_priority: i64) -> Result<usize, usize> {
        // A WaitKey's neg_priority is an i32 priority negated, so this is exact.
        let priority = (-neg_priority) as i32;
        if self.prios.len() > 16 {
            // Many distinct priorities: binary search (highest first).
            return self.prios.binary_search_by(|&(p, _)| priority.cmp(&p));
        }
        for (i, &(p, _)) in self.prios.iter().enumerate() {
            if p == priority {
                return Ok(i);
            }
            if p < priority {
                return Err(i);
            }
        }
        Err(self.prios.len())
    }

    pub fn insert(&mut self, key: WaitKey) {
        let i = match self.bucket(key.neg_priority) {
            Ok(i) => i,
            Err(i) => {
                self.prios.insert(i, ((-key.neg_priority) as i32, 0));
                self.fifos.insert(i, Fifo::default());
                i
            }
        };
        self.fifos[i].insert(place_of(&key));
        self.prios[i].1 += 1;
        self.live += 1;
        if self.head.is_none_or(|head| key < head) {
            self.head = Some(key);
        }
    }

    /// Remove an entry; false if it is not there.
    pub fn remove(&mut self, key: &WaitKey) -> bool {
        let Ok(i) = self.bucket(key.neg_priority) else {
            return false;
        };
        if !self.fifos[i].remove(place_of(key)) {
            return false;
        }
        self.prios[i].1 -= 1;
        self.live -= 1;
        if self.prios[i].1 == 0 && self.prios.len() > KEEP_BUCKETS {
            self.prios.remove(i);
            self.fifos.remove(i);
        }
        if self.head == Some(*key) {
            self.head = self.scan_first();
        }
        true
    }

    /// The most urgent entry.
    pub fn first(&self) -> Option<WaitKey> {
        self.head
    }

    /// When the longest-waiting entry entered (each FIFO is in entry order).
    pub fn oldest_entered_at(&self) -> Option<Millis> {
        self.fifos
            .iter()
            .filter_map(|fifo| fifo.first().map(|p| p.entered))
            .min()
    }

    fn scan_first(&self) -> Option<WaitKey> {
        let i = self.prios.iter().position(|&(_, live)| live > 0)?;
        let p = self.fifos[i].first()?;
        Some(WaitKey {
            neg_priority: -(self.prios[i].0 as i64),
            entered: p.entered,
            order: p.order,
            ikey: p.ikey,
        })
    }

    pub fn contains(&self, key: &WaitKey) -> bool {
        self.bucket(key.neg_priority)
            .is_ok_and(|i| self.fifos[i].contains(place_of(key)))
    }

    /// Every entry in urgency order.
    pub fn iter(&self) -> impl Iterator<Item = WaitKey> + '_ {
        self.prios
            .iter()
            .zip(&self.fifos)
            .flat_map(|(&(priority, _), fifo)| {
                fifo.iter().map(move |p| WaitKey {
                    neg_priority: -(priority as i64),
                    entered: p.entered,
                    order: p.order,
                    ikey: p.ikey,
                })
            })
    }
}

fn place_of(key: &WaitKey) -> Place {
    Place {
        entered: key.entered,
        order: key.order,
        ikey: key.ikey,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A new entry at the back of its priority (time and number grow).
        Join { priority: i64, late: Millis },
        /// Put back an entry removed earlier (by index into the removed list), at its old place.
        Rejoin(usize),
        /// Remove the k-th live entry in urgency order (modulo the count).
        Leave(usize),
        /// Remove the most urgent.
        TakeFirst,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Mostly a handful of priorities (inline buckets); sometimes more than 16 (binary
            // search, emptied buckets dropped).
            4 => (prop_oneof![3 => 0i64..6, 1 => -15i64..30], 0u64..3)
                .prop_map(|(priority, late)| Op::Join { priority, late }),
            1 => any::<usize>().prop_map(Op::Rejoin),
            2 => any::<usize>().prop_map(Op::Leave),
            2 => Just(Op::TakeFirst),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Against a plain ordered set: same members, same order, same first, same counts,
        /// whatever mix of joins at the back, re-joins in the middle and leaves from anywhere.
        #[test]
        fn a_wait_set_orders_like_an_ordered_set(ops in prop::collection::vec(op(), 1..400)) {
            let mut set = WaitSet::default();
            let mut oracle: BTreeSet<WaitKey> = BTreeSet::new();
            let mut removed: Vec<WaitKey> = Vec::new();
            let (mut now, mut order, mut next_ikey) = (1_000u64, 0u64, 0u32);
            for op in ops {
                match op {
                    Op::Join { priority, late } => {
                        now += late;
                        order += 1;
                        next_ikey += 1;
                        let key = WaitKey { neg_priority: -priority, entered: now, order, ikey: next_ikey };
                        set.insert(key);
                        oracle.insert(key);
                    }
                    Op::Rejoin(k) => {
                        if !removed.is_empty() {
                            let key = removed.swap_remove(k % removed.len());
                            set.insert(key);
                            oracle.insert(key);
                        }
                    }
                    Op::Leave(k) => {
                        if !oracle.is_empty() {
                            let key = *oracle.iter().nth(k % oracle.len()).unwrap();
                            prop_assert!(set.remove(&key));
                            oracle.remove(&key);
                            prop_assert!(!set.remove(&key), "removed twice");
                            removed.push(key);
                        }
                    }
                    Op::TakeFirst => {
                        let first = set.first();
                        prop_assert_eq!(first, oracle.first().copied());
                        if let Some(key) = first {
                            prop_assert!(set.remove(&key));
                            oracle.remove(&key);
                            removed.push(key);
                        }
                    }
                }
                prop_assert_eq!(set.len(), oracle.len());
                prop_assert_eq!(set.first(), oracle.first().copied());
                prop_assert_eq!(set.oldest_entered_at(), oracle.iter().map(|k| k.entered).min());
            }
            prop_assert!(set.iter().eq(oracle.iter().copied()));
            for key in &oracle {
                prop_assert!(set.contains(key));
            }
            for key in &removed {
                prop_assert!(!set.contains(key));
            }
        }
    }

    #[test]
    fn removing_from_the_middle_keeps_the_order_and_compacts() {
        let mut fifo = Fifo::default();
        let place = |n: u64| Place {
            entered: n,
            order: n,
            ikey: n as IKey,
        };
        for n in 0..100 {
            fifo.insert(place(n));
        }
        for n in (1..99).filter(|n| n % 3 != 0) {
            assert!(fifo.remove(place(n)));
        }
        assert_eq!(fifo.live, 100 - 66);
        // The 51st gone place outnumbered the 49 live ones: compacted to 49; the 15 removed
        // after that are still held as gone places (15 <= 32).
        assert_eq!(fifo.places.len(), 34 + 15);
        let left: Vec<u64> = fifo.iter().map(|p| p.order).collect();
        let expect: Vec<u64> = (0..100).filter(|n| n % 3 == 0 || *n == 99).collect();
        assert_eq!(left, expect);
        assert_eq!(fifo.first(), Some(place(0)));
    }

    #[test]
    fn the_ends_stay_live() {
        let mut fifo = Fifo::default();
        let place = |n: u64| Place {
            entered: 7,
            order: n,
            ikey: n as IKey,
        };
        for n in 0..5 {
            fifo.insert(place(n));
        }
        assert!(fifo.remove(place(1)));
        assert!(fifo.remove(place(3)));
        assert!(fifo.remove(place(0)));
        assert_eq!(fifo.first(), Some(place(2)));
        assert!(fifo.remove(place(4)));
        // 3 was gone in the middle: it went with the back.
        assert_eq!(fifo.places.len(), 1);
        assert!(fifo.remove(place(2)));
        assert!(fifo.live == 0 && fifo.places.is_empty());
        assert!(!fifo.remove(place(2)));
    }
}
