//! The idempotency window: the last N event ids applied, so a PBX that retries a webhook never
//! applies the same event twice.
//!
//! Bounded by construction: when full, the oldest id is forgotten first (FIFO), and an id older
//! than the window would be applied again. Each id is stored once (shared by the table and the
//! eviction order) with its hash beside it, so the table never hashes a string again when it
//! grows; about 80 bytes per 20-byte id, so the default 1,000,000 ids cost ~80 MB.
//!
//! Ids are hashed with one process-wide random key (`IdHash`), so journal recovery can hash them
//! on its decoding thread and the engine thread only probes the table (`contains_hashed`,
//! `insert_hashed`).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;

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

/// The last `capacity` event ids, oldest evicted first.
#[derive(Debug)]
pub struct IdempotencyWindow {
    capacity: usize,
    /// `(hash, id)`: the hash is kept so growing the table never re-hashes the strings.
    ids: HashTable<(u64, Arc<str>)>,
    order: VecDeque<Arc<str>>,
}

impl IdempotencyWindow {
    /// A window remembering up to `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> IdempotencyWindow {
        IdempotencyWindow {
            capacity: capacity.max(1),
            ids: HashTable::new(),
            order: VecDeque::new(),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.find(IdHash::of(id), id)
    }

    /// `contains` for an id already hashed (journal recovery hashes on its decoding thread).
    pub fn contains_hashed(&self, id: &HashedId) -> bool {
        self.find(id.hash, &id.id)
    }

    fn find(&self, hash: u64, id: &str) -> bool {
        self.ids.find(hash, |(_, held)| **held == *id).is_some()
    }

    /// Remember `id`; returns false if it was already remembered.
    pub fn insert(&mut self, id: &str) -> bool {
        let hash = IdHash::of(id);
        if self.find(hash, id) {
            return false;
        }
        self.remember(hash, Arc::from(id));
        true
    }

    /// `insert` for an id already hashed; shares its string rather than copying it.
    pub fn insert_hashed(&mut self, id: &HashedId) -> bool {
        if self.find(id.hash, &id.id) {
            return false;
        }
        self.remember(id.hash, id.id.clone());
        true
    }

    fn remember(&mut self, hash: u64, id: Arc<str>) {
        self.ids
            .insert_unique(hash, (hash, id.clone()), |(h, _)| *h);
        self.order.push_back(id);
        self.evict_to(self.capacity);
    }

    /// Change the capacity (a reload of `[server] idempotency_ids`); shrinking forgets the oldest.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.evict_to(self.capacity);
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The remembered ids, oldest first (what a snapshot saves; inserting them in this order
    /// into a window of the same capacity rebuilds it exactly).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|id| &**id)
    }

    /// The ids, oldest first, shared rather than copied (a snapshot captures them cheaply).
    pub fn shared_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.order.iter()
    }

    fn evict_to(&mut self, capacity: usize) {
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                let hash = IdHash::of(&old);
                if let Ok(entry) = self
                    .ids
                    .find_entry(hash, |(_, held)| Arc::ptr_eq(held, &old))
                {
                    entry.remove();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_recognised() {
        let mut w = IdempotencyWindow::new(10);
        assert!(w.insert("e1"));
        assert!(!w.insert("e1"));
        assert!(w.contains("e1"));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn the_oldest_id_is_forgotten_first_when_the_window_is_full() {
        let mut w = IdempotencyWindow::new(3);
        for id in ["e1", "e2", "e3", "e4"] {
            assert!(w.insert(id));
        }
        assert_eq!(w.len(), 3);
        assert!(!w.contains("e1"), "e1 was the oldest");
        assert!(w.contains("e2") && w.contains("e3") && w.contains("e4"));
        // An evicted id is applied again.
        assert!(w.insert("e1"));
        assert!(!w.contains("e2"));
    }

    #[test]
    fn shrinking_the_window_forgets_the_oldest() {
        let mut w = IdempotencyWindow::new(5);
        for id in ["a", "b", "c", "d"] {
            w.insert(id);
        }
        w.set_capacity(2);
        assert_eq!(w.len(), 2);
        assert!(!w.contains("a") && !w.contains("b"));
        assert!(w.contains("c") && w.contains("d"));
    }

    #[test]
    fn an_id_hashed_elsewhere_is_the_same_id() {
        let mut w = IdempotencyWindow::new(2);
        assert!(w.insert_hashed(&HashedId::new("e1")));
        assert!(w.contains("e1"));
        assert!(!w.insert("e1"));
        assert!(w.insert("e2"));
        assert!(w.contains_hashed(&HashedId::new("e2")));
        assert!(!w.insert_hashed(&HashedId::new("e2")));
        // Eviction finds an id inserted either way.
        assert!(w.insert_hashed(&HashedId::new("e3")));
        assert!(!w.contains("e1") && !w.contains_hashed(&HashedId::new("e1")));
        assert_eq!(w.ids().collect::<Vec<_>>(), vec!["e2", "e3"]);
    }

    proptest::proptest! {
        /// Oracle: a plain FIFO list of the ids, searched linearly. Inserts (plain or hashed
        /// elsewhere), lookups and capacity changes in any order give the same answers, the
        /// same ids in the same order.
        #[test]
        fn the_window_is_a_fifo_of_the_last_ids(
            first in 1usize..6,
            ops in proptest::collection::vec((0u8..4, 0u8..10), 1..80),
        ) {
            let mut w = IdempotencyWindow::new(first);
            let mut oracle: VecDeque<String> = VecDeque::new();
            let mut capacity = first;
            for (what, n) in ops {
                let id = format!("e{n}");
                let known = oracle.contains(&id);
                match what {
                    0 | 1 => {
                        let inserted = if what == 0 {
                            w.insert(&id)
                        } else {
                            w.insert_hashed(&HashedId::new(&id))
                        };
                        proptest::prop_assert_eq!(inserted, !known, "insert {}", id);
                        if !known {
                            oracle.push_back(id);
                        }
                    }
                    2 => {
                        proptest::prop_assert_eq!(w.contains(&id), known, "contains {}", id);
                        proptest::prop_assert_eq!(w.contains_hashed(&HashedId::new(&id)), known);
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
                proptest::prop_assert!(w.ids().eq(oracle.iter().map(String::as_str)));
            }
        }
    }
}
