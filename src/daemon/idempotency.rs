//! The idempotency window: the last N event ids applied, so a PBX that retries a webhook never
//! applies the same event twice.
//!
//! Bounded by construction: when full, the oldest id is forgotten first (FIFO), and an id older
//! than the window would be applied again. Each id is stored once (shared by the set and the
//! eviction order); about 70 bytes per 20-byte id, so the default 1,000,000 ids cost ~70 MB.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// The last `capacity` event ids, oldest evicted first.
#[derive(Debug)]
pub struct IdempotencyWindow {
    capacity: usize,
    ids: HashSet<Arc<str>, ahash::RandomState>,
    order: VecDeque<Arc<str>>,
}

impl IdempotencyWindow {
    /// A window remembering up to `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> IdempotencyWindow {
        IdempotencyWindow {
            capacity: capacity.max(1),
            ids: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remember `id`; returns false if it was already remembered.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        let id: Arc<str> = Arc::from(id);
        self.ids.insert(id.clone());
        self.order.push_back(id);
        self.evict_to(self.capacity);
        true
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
                self.ids.remove(&old);
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
}
