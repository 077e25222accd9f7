//! The idempotency window: the last N event ids applied, so a PBX that retries a webhook never
//! applies the same event twice, and what each one's delivery decided, so the retry is told.
//!
//! Bounded by construction: when full, the oldest id is forgotten first (FIFO), and an id older
//! than the window would be applied again. Each id is stored once, in the eviction order
//! (`order`), beside the decisions its delivery caused (`Caused`: 8 bytes); the table holds only
//! the id's hash and its place in that order, so the table never hashes a string again when it
//! grows and a lookup of a new id (the hot path) never reads a string unless the full 64-bit
//! hashes match.
//!
//! Memory, counted with a counting allocator (bytes requested) for 20-byte ids: at the default
//! `[server] idempotency_ids` of 1,000,000, 101 B per id (~101 MB: the table's 2^21 buckets of
//! 17 B, ~36 MB; the order's 2^20 slots of 24 B, ~25 MB; each id's `Arc<str>`, 40 B), and 88 B
//! per id at 900,000 (2^20 buckets). (Measured when the order was one ring; it is now chunks of
//! 4,096 slots of the same 24 B, allocated as filled, and the oldest chunk keeps up to 4,095
//! forgotten ids until it goes: at most ~260 KB more.) Remembering `Caused` adds 8 B to every slot of the order
//! and the table saves 8 B a bucket (it held the id's `Arc<str>` itself, 24 B a bucket): with
//! at least as many buckets as order slots, never more than before (109 B per id at 1,000,000
//! and 88 B at 900,000 before). A snapshot holds each range as `[first, count]`: at most 7 more
//! bytes per id while seqs are below 2^32 (11 beyond).
//!
//! Ids are hashed with one process-wide random key (`IdHash`), so journal recovery can hash them
//! on its decoding thread and the engine thread only probes the table (`caused_hashed`,
//! `insert_hashed`).

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An event id with its hash under the process-wide key (see `IdHash::of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedId {
    hash: u64,
    id: Arc<str>,
}

impl HashedId {
    pub fn new(id: &str) -> HashedId {
        HashedId {
            hash: IdHash::of(id),
            id: Arc::from(id),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

/// The process-wide hash of event ids: random per process (so clients cannot aim collisions at
/// the table), the same on every thread (so another thread can hash for the window).
pub struct IdHash;

impl IdHash {
    pub fn of(id: &str) -> u64 {
        static KEY: OnceLock<ahash::RandomState> = OnceLock::new();
        KEY.get_or_init(ahash::RandomState::new).hash_one(id)
    }
}

/// The decisions an event's delivery caused: `count` consecutive seqs from `first`, or unknown.
///
/// An event's decisions are consecutive: the engine numbers every decision it makes from one
/// counter and `Engine::handle` returns all it made for the event, and `Core::apply` logs the
/// timers that fell due before the event first (they have lower seqs and are not the event's).
///
/// Packed in 8 bytes as `first << 16 | count`, so a first seq below 2^48 and at most
/// `MAX_COUNT` decisions. Beyond either (2^48 decisions is ~900 years at 10,000 a second; an
/// event makes a handful), and for ids restored from a snapshot written before ranges were kept,
/// the range is unknown: a duplicate of such an id is answered without decisions and flagged
/// incomplete, never with wrong ones.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Caused(u64);

impl Caused {
    /// The range is not known.
    pub const UNKNOWN: Caused = Caused(u64::MAX);
    /// The delivery decided nothing.
    pub const NOTHING: Caused = Caused(0);
    /// Most decisions one delivery can be remembered with (`0xFFFF` in the count is `UNKNOWN`).
    pub const MAX_COUNT: u64 = 0xFFFE;
    /// Highest first seq that can be remembered.
    pub const MAX_FIRST: u64 = (1 << 48) - 1;

    /// `count` decisions from seq `first` (`UNKNOWN` when that cannot be packed).
    pub fn new(first: u64, count: u64) -> Caused {
        if count == 0 {
            Caused::NOTHING
        } else if count <= Caused::MAX_COUNT && first <= Caused::MAX_FIRST {
            Caused(first << 16 | count)
        } else {
            Caused::UNKNOWN
        }
    }

    /// The seqs of the decisions caused (empty when none), or `None` when unknown.
    pub fn seqs(self) -> Option<Range<u64>> {
        if self == Caused::UNKNOWN {
            return None;
        }
        let first = self.0 >> 16;
        Some(first..first + (self.0 & 0xFFFF))
    }
}

impl fmt::Debug for Caused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seqs() {
            Some(seqs) => write!(f, "Caused({seqs:?})"),
            None => f.write_str("Caused(unknown)"),
        }
    }
}

/// In a snapshot: `[first, count]`, or nil when unknown.
impl Serialize for Caused {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seqs()
            .map(|seqs| (seqs.start, seqs.end - seqs.start))
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Caused {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Caused, D::Error> {
        Ok(match Option::<(u64, u64)>::deserialize(d)? {
            Some((first, count)) => Caused::new(first, count),
            None => Caused::UNKNOWN,
        })
    }
}

/// Ids per chunk of the window's order.
const CHUNK: usize = 4096;

/// One chunk of the order: the ids remembered at places `[k × CHUNK, (k + 1) × CHUNK)`.
type Chunk = Vec<(Arc<str>, Caused)>;

/// The last `capacity` event ids, oldest evicted first, each with what its delivery decided.
///
/// The order is kept in shared chunks of `CHUNK` ids, so a snapshot captures it by sharing the
/// chunks (`capture`: a pointer per chunk) instead of one reference count per id, which at
/// the default million ids stalled the engine task for tens of milliseconds per snapshot. The
/// window writes only to its newest chunk (copied once if a capture still shares it) and
/// forgets the oldest ids by moving `evicted` on, dropping a chunk once all of it is forgotten.
#[derive(Debug)]
pub struct IdempotencyWindow {
    capacity: usize,
    /// `(hash, place)`: the id's hash (kept so growing the table never re-hashes the strings)
    /// and its place, counted over all ids ever remembered.
    ids: HashTable<(u64, u64)>,
    /// The chunks holding places `first_chunk × CHUNK ..`, oldest first. Places below `evicted`
    /// in the first chunk are forgotten (still held until the chunk goes).
    order: VecDeque<Arc<Chunk>>,
    /// The chunk number of `order[0]`.
    first_chunk: u64,
    /// Ids forgotten so far: the place of the oldest one remembered.
    evicted: u64,
    /// The place the next id will take.
    next: u64,
}

/// A window's ids as they stood when captured, oldest first (for a snapshot, read later on
/// another thread).
#[derive(Debug, Clone)]
pub struct WindowCapture {
    chunks: Vec<Arc<Chunk>>,
    /// Forgotten ids at the front of the first chunk.
    skip: usize,
    len: usize,
}

/// The `len` entries of `chunks` after the first `skip` (forgotten ones), oldest first.
fn held<'a>(
    chunks: impl IntoIterator<Item = &'a Arc<Chunk>>,
    skip: usize,
    len: usize,
) -> impl Iterator<Item = &'a (Arc<str>, Caused)> {
    chunks
        .into_iter()
        .flat_map(|c| c.iter())
        .skip(skip)
        .take(len)
}

impl WindowCapture {
    fn entries(&self) -> impl Iterator<Item = &(Arc<str>, Caused)> {
        held(&self.chunks, self.skip, self.len)
    }

    /// The ids, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.entries().map(|(id, _)| id)
    }

    /// What each id's delivery decided, in the order of `ids`.
    pub fn caused(&self) -> impl Iterator<Item = Caused> + '_ {
        self.entries().map(|&(_, caused)| caused)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl IdempotencyWindow {
    /// A window remembering up to `capacity` ids (at least 1), with room for all of them from
    /// the start: growing the table as ids arrive stalled the engine task for milliseconds at
    /// each doubling in a daemon's first minutes (about 3 ms at 114,000 ids and twice that at
    /// each doubling after, every request waiting behind it). The room is address space until
    /// used: what is resident grows with the ids held, as before, plus the table's control
    /// bytes (1 byte a bucket, 2 MiB at the default 1,000,000). Chunks of the order are
    /// allocated whole as they are needed, so the order never copies itself either.
    pub fn new(capacity: usize) -> IdempotencyWindow {
        let capacity = capacity.max(1);
        IdempotencyWindow {
            capacity,
            ids: HashTable::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity / CHUNK + 2),
            first_chunk: 0,
            evicted: 0,
            next: 0,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.caused(id).is_some()
    }

    /// `contains` for an id already hashed (journal recovery hashes on its decoding thread).
    pub fn contains_hashed(&self, id: &HashedId) -> bool {
        self.caused_hashed(id).is_some()
    }

    /// What `id`'s delivery decided, if `id` is remembered.
    pub fn caused(&self, id: &str) -> Option<Caused> {
        self.find(IdHash::of(id), id).map(|place| self.at(place).1)
    }

    /// `caused` for an id already hashed.
    pub fn caused_hashed(&self, id: &HashedId) -> Option<Caused> {
        self.find(id.hash, &id.id).map(|place| self.at(place).1)
    }

    /// The entry at a remembered place (`evicted <= place < next`).
    fn at(&self, place: u64) -> &(Arc<str>, Caused) {
        &self.order[(place / CHUNK as u64 - self.first_chunk) as usize]
            [(place % CHUNK as u64) as usize]
    }

    /// The entry at `place` if it is remembered.
    fn get(&self, place: u64) -> Option<&(Arc<str>, Caused)> {
        if place < self.evicted || place >= self.next {
            return None;
        }
        let chunk = self
            .order
            .get((place / CHUNK as u64).checked_sub(self.first_chunk)? as usize)?;
        chunk.get((place % CHUNK as u64) as usize)
    }

    /// The place of `id`, whose hash is `hash`. Only an entry whose whole hash matches is
    /// compared as a string: a new id, the usual case, reads none.
    fn find(&self, hash: u64, id: &str) -> Option<u64> {
        self.ids
            .find(hash, |&(h, place)| {
                h == hash && self.get(place).is_some_and(|(held, _)| **held == *id)
            })
            .map(|&(_, place)| place)
    }

    /// Remember `id` and what its delivery decided; returns false (and changes nothing) if it
    /// was already remembered.
    pub fn insert(&mut self, id: &str, caused: Caused) -> bool {
        let hash = IdHash::of(id);
        if self.find(hash, id).is_some() {
            return false;
        }
        self.remember(hash, Arc::from(id), caused);
        true
    }

    /// `insert` for an id already hashed; shares its string rather than copying it.
    pub fn insert_hashed(&mut self, id: &HashedId, caused: Caused) -> bool {
        if self.find(id.hash, &id.id).is_some() {
            return false;
        }
        self.remember(id.hash, id.id.clone(), caused);
        true
    }

    fn remember(&mut self, hash: u64, id: Arc<str>, caused: Caused) {
        // Evict first: inserted first, a full window would hold one id more than the room made
        // for it, and grow (re-hash) for that one.
        self.evict_to(self.capacity - 1);
        let place = self.next;
        self.ids.insert_unique(hash, (hash, place), |&(h, _)| h);
        // Chunk k is started by place k × CHUNK (and dropped once all of it is forgotten, which
        // moves `first_chunk` on: `evict_to`), so the order is empty only at such a place.
        if place % CHUNK as u64 == 0 {
            self.order.push_back(Arc::new(Vec::with_capacity(CHUNK)));
        }
        if let Some(newest) = self.order.back_mut() {
            // Copied once if a snapshot capture still shares it.
            Arc::make_mut(newest).push((id, caused));
        }
        self.next += 1;
    }

    /// Change the capacity (a reload of `[server] idempotency_ids`); shrinking forgets the oldest.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.evict_to(self.capacity);
        // Room for the new capacity at once, as `new` gives (growing only).
        let more = self.capacity - self.len();
        self.ids.reserve(more, |&(h, _)| h);
        self.order.reserve(self.capacity / CHUNK + 2);
    }

    pub fn len(&self) -> usize {
        (self.next - self.evicted) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.next == self.evicted
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The remembered ids, oldest first (what a snapshot saves; inserting them in this order
    /// into a window of the same capacity rebuilds it exactly).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries().map(|(id, _)| &**id)
    }

    /// What each id's delivery decided, in the order of `ids`.
    pub fn caused_in_order(&self) -> impl Iterator<Item = Caused> + '_ {
        self.entries().map(|&(_, caused)| caused)
    }

    fn entries(&self) -> impl Iterator<Item = &(Arc<str>, Caused)> {
        held(&self.order, self.forgotten_in_first_chunk(), self.len())
    }

    /// Forgotten ids still held at the front of the oldest chunk.
    fn forgotten_in_first_chunk(&self) -> usize {
        (self.evicted - self.first_chunk * CHUNK as u64) as usize
    }

    /// The ids and what they caused as they stand now, sharing the chunks: a pointer per
    /// `CHUNK` ids, whatever the window holds.
    pub fn capture(&self) -> WindowCapture {
        WindowCapture {
            chunks: self.order.iter().cloned().collect(),
            skip: self.forgotten_in_first_chunk(),
            len: self.len(),
        }
    }

    fn evict_to(&mut self, capacity: usize) {
        while self.len() > capacity {
            let place = self.evicted;
            let hash = IdHash::of(&self.at(place).0);
            if let Ok(entry) = self.ids.find_entry(hash, |&(_, held)| held == place) {
                entry.remove();
            }
            self.evicted += 1;
            // The oldest chunk is wholly forgotten: let it go.
            if self.evicted % CHUNK as u64 == 0 {
                self.order.pop_front();
                self.first_chunk += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_the_ids_as_they_stood_whatever_the_window_does_next() {
        let mut w = IdempotencyWindow::new(2 * CHUNK + 100);
        for n in 0..3 * CHUNK {
            w.insert(&format!("e{n}"), Caused::new(n as u64 + 1, 1));
        }
        let captured = w.capture();
        let then: Vec<(String, Caused)> =
            w.ids().map(String::from).zip(w.caused_in_order()).collect();
        assert_eq!(then.len(), 2 * CHUNK + 100);
        // The window moves on: its newest chunk is written (copied, since the capture shares
        // it) and its oldest chunks are forgotten.
        for n in 3 * CHUNK..5 * CHUNK {
            w.insert(&format!("e{n}"), Caused::NOTHING);
        }
        let captured: Vec<(String, Caused)> = captured
            .ids()
            .map(|id| id.to_string())
            .zip(captured.caused())
            .collect();
        assert_eq!(captured, then);
        // It holds the last 2 × CHUNK + 100 ids: e(3 × CHUNK − 100) onwards.
        assert!(w.contains(&format!("e{}", 3 * CHUNK - 100)));
        assert!(!w.contains(&format!("e{}", 3 * CHUNK - 101)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Against a plain FIFO list of the last `capacity` ids: the same ids remembered, in
        /// the same order, with the same ranges, across chunk boundaries and capacity changes.
        #[test]
        fn the_window_is_the_last_capacity_ids_in_order(
            capacity in 1usize..3 * CHUNK,
            steps in proptest::collection::vec((0u32..12_000, proptest::option::weighted(0.001, 1usize..3 * CHUNK)), 1..12_000),
        ) {
            let mut w = IdempotencyWindow::new(capacity);
            let mut oracle: VecDeque<(String, Caused)> = VecDeque::new();
            let mut cap = capacity;
            for (n, (id, resize)) in steps.into_iter().enumerate() {
                if let Some(new_cap) = resize {
                    w.set_capacity(new_cap);
                    cap = new_cap;
                    while oracle.len() > cap {
                        oracle.pop_front();
                    }
                }
                let id = format!("e{id}");
                let caused = Caused::new(n as u64 + 1, 1);
                let known = oracle.iter().any(|(held, _)| *held == id);
                proptest::prop_assert_eq!(w.insert(&id, caused), !known);
                if !known {
                    oracle.push_back((id, caused));
                    if oracle.len() > cap {
                        oracle.pop_front();
                    }
                }
            }
            let got: Vec<(String, Caused)> = w.ids().map(String::from).zip(w.caused_in_order()).collect();
            let want: Vec<(String, Caused)> = oracle.iter().cloned().collect();
            proptest::prop_assert_eq!(&got, &want);
            for (id, caused) in &want {
                proptest::prop_assert_eq!(w.caused(id), Some(*caused));
            }
            let captured = w.capture();
            proptest::prop_assert_eq!(captured.len(), want.len());
            proptest::prop_assert!(captured.ids().map(|id| id.to_string()).eq(want.iter().map(|(id, _)| id.clone())));
        }
    }

    #[test]
    fn a_full_window_never_grew_to_get_there() {
        // Growing stalled the engine task at each doubling: room for every id is made up front,
        // and a reload that raises the capacity makes room for the new one at once.
        let mut w = IdempotencyWindow::new(5_000);
        let (table, order) = (w.ids.capacity(), w.order.capacity());
        assert!(table >= 5_000 && order >= 5_000 / CHUNK + 2);
        for n in 0..6_000 {
            w.insert(&format!("e{n}"), Caused::new(0, 0));
        }
        // (The table's free room may shrink by a few deleted slots; it never doubles.)
        assert!(w.ids.capacity() <= table && w.ids.capacity() > table / 2);
        assert_eq!(w.order.capacity(), order);
        w.set_capacity(20_000);
        let (table, order) = (w.ids.capacity(), w.order.capacity());
        assert!(table >= 20_000 && order >= 20_000 / CHUNK + 2);
        for n in 6_000..30_000 {
            w.insert(&format!("e{n}"), Caused::new(0, 0));
        }
        assert!(w.ids.capacity() <= table && w.ids.capacity() > table / 2);
        assert_eq!(w.order.capacity(), order);
        assert_eq!(w.len(), 20_000);
    }

    #[test]
    fn a_repeated_id_is_recognised() {
        let mut w = IdempotencyWindow::new(10);
        assert!(w.insert("e1", Caused::NOTHING));
        assert!(!w.insert("e1", Caused::NOTHING));
        assert!(w.contains("e1"));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn the_oldest_id_is_forgotten_first_when_the_window_is_full() {
        let mut w = IdempotencyWindow::new(3);
        for id in ["e1", "e2", "e3", "e4"] {
            assert!(w.insert(id, Caused::NOTHING));
        }
        assert_eq!(w.len(), 3);
        assert!(!w.contains("e1"), "e1 was the oldest");
        assert!(w.contains("e2") && w.contains("e3") && w.contains("e4"));
        // An evicted id is applied again.
        assert!(w.insert("e1", Caused::NOTHING));
        assert!(!w.contains("e2"));
    }

    #[test]
    fn shrinking_the_window_forgets_the_oldest() {
        let mut w = IdempotencyWindow::new(5);
        for id in ["a", "b", "c", "d"] {
            w.insert(id, Caused::NOTHING);
        }
        w.set_capacity(2);
        assert_eq!(w.len(), 2);
        assert!(!w.contains("a") && !w.contains("b"));
        assert!(w.contains("c") && w.contains("d"));
    }

    #[test]
    fn an_id_hashed_elsewhere_is_the_same_id() {
        let mut w = IdempotencyWindow::new(2);
        assert!(w.insert_hashed(&HashedId::new("e1"), Caused::NOTHING));
        assert!(w.contains("e1"));
        assert!(!w.insert("e1", Caused::NOTHING));
        assert!(w.insert("e2", Caused::NOTHING));
        assert!(w.contains_hashed(&HashedId::new("e2")));
        assert!(!w.insert_hashed(&HashedId::new("e2"), Caused::NOTHING));
        // Eviction finds an id inserted either way.
        assert!(w.insert_hashed(&HashedId::new("e3"), Caused::NOTHING));
        assert!(!w.contains("e1") && !w.contains_hashed(&HashedId::new("e1")));
        assert_eq!(w.ids().collect::<Vec<_>>(), vec!["e2", "e3"]);
    }

    #[test]
    fn each_id_keeps_the_seqs_its_delivery_caused_until_it_is_evicted() {
        let mut w = IdempotencyWindow::new(3);
        assert!(w.insert("e1", Caused::new(1, 2)));
        assert!(w.insert("e2", Caused::NOTHING));
        assert!(w.insert_hashed(&HashedId::new("e3"), Caused::new(3, 1)));
        assert_eq!(w.caused("e1").and_then(Caused::seqs), Some(1..3));
        assert_eq!(w.caused("e2").and_then(Caused::seqs), Some(0..0));
        assert_eq!(
            w.caused_hashed(&HashedId::new("e3")).and_then(Caused::seqs),
            Some(3..4)
        );
        // A repeated insert keeps the first delivery's range.
        assert!(!w.insert("e1", Caused::new(9, 9)));
        assert_eq!(w.caused("e1").and_then(Caused::seqs), Some(1..3));
        // e4 evicts the oldest, e1, and its range with it; the others keep theirs.
        assert!(w.insert("e4", Caused::new(4, 3)));
        assert_eq!(w.caused("e1"), None);
        assert_eq!(w.caused("e3").and_then(Caused::seqs), Some(3..4));
        assert_eq!(w.caused("e4").and_then(Caused::seqs), Some(4..7));
        let kept: Vec<_> = w.caused_in_order().map(Caused::seqs).collect();
        assert_eq!(kept, vec![Some(0..0), Some(3..4), Some(4..7)]);
        // Evicted and applied again: the new delivery's range, not the forgotten one.
        assert!(w.insert("e1", Caused::new(7, 1)));
        assert_eq!(w.caused("e1").and_then(Caused::seqs), Some(7..8));
        assert_eq!(w.caused("e2"), None);
        w.set_capacity(1);
        assert_eq!(w.caused("e4"), None);
        assert_eq!(w.caused("e1").and_then(Caused::seqs), Some(7..8));
    }

    #[test]
    fn a_range_that_cannot_be_packed_is_unknown_never_another() {
        assert_eq!(Caused::new(42, 0), Caused::NOTHING);
        let last = Caused::new(Caused::MAX_FIRST, Caused::MAX_COUNT);
        assert_eq!(
            last.seqs(),
            Some(Caused::MAX_FIRST..Caused::MAX_FIRST + Caused::MAX_COUNT)
        );
        assert_eq!(Caused::new(Caused::MAX_FIRST + 1, 1), Caused::UNKNOWN);
        assert_eq!(Caused::new(1, Caused::MAX_COUNT + 1), Caused::UNKNOWN);
        assert_eq!(Caused::UNKNOWN.seqs(), None);
        // In a snapshot: `[first, count]` or nil, read back the same.
        for c in [Caused::NOTHING, Caused::new(17, 3), last, Caused::UNKNOWN] {
            let bytes = rmp_serde::to_vec_named(&c).unwrap();
            assert_eq!(rmp_serde::from_slice::<Caused>(&bytes).unwrap(), c);
        }
        let bytes = rmp_serde::to_vec_named(&Some((Caused::MAX_FIRST + 1, 1u64))).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<Caused>(&bytes).unwrap(),
            Caused::UNKNOWN
        );
    }

    proptest::proptest! {
        /// Oracle: a plain FIFO list of the ids with their ranges, searched linearly. Inserts
        /// (plain or hashed elsewhere), lookups and capacity changes in any order give the same
        /// answers, the same ids and ranges in the same order.
        #[test]
        fn the_window_is_a_fifo_of_the_last_ids(
            first in 1usize..6,
            ops in proptest::collection::vec((0u8..4, 0u8..10), 1..80),
        ) {
            let mut w = IdempotencyWindow::new(first);
            let mut oracle: VecDeque<(String, Caused)> = VecDeque::new();
            let mut capacity = first;
            let mut seq = 1;
            for (what, n) in ops {
                let id = format!("e{n}");
                let held = oracle.iter().find(|(o, _)| *o == id).map(|&(_, c)| c);
                let known = held.is_some();
                match what {
                    0 | 1 => {
                        let caused = Caused::new(seq, u64::from(n % 3));
                        seq += u64::from(n % 3);
                        let inserted = if what == 0 {
                            w.insert(&id, caused)
                        } else {
                            w.insert_hashed(&HashedId::new(&id), caused)
                        };
                        proptest::prop_assert_eq!(inserted, !known, "insert {}", id);
                        if !known {
                            oracle.push_back((id, caused));
                        }
                    }
                    2 => {
                        proptest::prop_assert_eq!(w.contains(&id), known, "contains {}", id);
                        proptest::prop_assert_eq!(w.contains_hashed(&HashedId::new(&id)), known);
                        proptest::prop_assert_eq!(w.caused(&id), held, "caused {}", id);
                        proptest::prop_assert_eq!(w.caused_hashed(&HashedId::new(&id)), held);
                    }
                    _ => {
                        capacity = usize::from(n % 5) + 1;
                        w.set_capacity(capacity);
                    }
                }
                while oracle.len() > capacity {
                    oracle.pop_front();
                }
                proptest::prop_assert_eq!(w.len(), oracle.len());
                proptest::prop_assert!(w.ids().eq(oracle.iter().map(|(id, _)| id.as_str())));
                proptest::prop_assert!(w.caused_in_order().eq(oracle.iter().map(|&(_, c)| c)));
            }
        }
    }
}
