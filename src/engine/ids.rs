//! Interaction id → slab key, for every interaction the engine still holds (live or retained).
//!
//! A `HashMap<Arc<str>, IKey>` keeps a 24-byte bucket per id (the `Arc<str>` and the key) and
//! compares a probed key by following its pointer to the string. At 500,000 waiting plus the
//! retained finished ones that table is ~24 MiB, so nearly every probe missed the cache twice:
//! the bucket, then the string. This index keeps only the 4-byte slab key per bucket (≈ 4 MiB at
//! that size, which stays in cache), compares through the slab (the interaction record the caller
//! reads next anyway), and removes an evicted interaction by its key without comparing strings.
//!
//! The table never owns the ids: the slab does. So every operation is given the slab, and a key
//! in the table always names a live slab entry whose id hashes to where it is filed.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::engine::model::Interaction;
use crate::engine::timers::IKey;

/// The engine's slab of interactions (`Engine::interactions`).
pub type Slab = [Option<Arc<Interaction>>];

#[derive(Debug, Clone, Default)]
pub struct InteractionIds {
    table: HashTable<IKey>,
    hasher: ahash::RandomState,
}

fn id_at(slab: &Slab, ik: IKey) -> Option<&str> {
    match slab.get(ik as usize) {
        Some(Some(i)) => Some(&i.id),
        _ => None,
    }
}

impl InteractionIds {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The key of the interaction with this id, if the engine holds one.
    pub fn get(&self, slab: &Slab, id: &str) -> Option<IKey> {
        self.table
            .find(self.hash(id), |&k| id_at(slab, k) == Some(id))
            .copied()
    }

    /// File `ik`, whose slab entry is already in place and whose id is not filed yet.
    pub fn insert(&mut self, slab: &Slab, ik: IKey) {
        let Some(id) = id_at(slab, ik) else { return };
        let hash = self.hash(id);
        let hasher = &self.hasher;
        // Growing rehashes every key through the slab, which holds all of them.
        self.table.insert_unique(hash, ik, |&k| {
            hasher.hash_one(id_at(slab, k).unwrap_or_default())
        });
    }

    /// Unfile `ik`, which had id `id` (its slab entry may already be gone).
    pub fn remove(&mut self, id: &str, ik: IKey) {
        if let Ok(entry) = self.table.find_entry(self.hash(id), |&k| k == ik) {
            entry.remove();
        }
    }

    /// File every interaction in the slab (restoring a snapshot).
    pub fn rebuild(&mut self, slab: &Slab) {
        self.table.clear();
        // Sized once, so filing them never grows (and re-hashes) the table.
        self.reserve_total(slab, slab.iter().flatten().count());
        for ik in 0..slab.len() {
            self.insert(slab, ik as IKey);
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// How many ids fit before the table grows (tests check it never does).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Make room for `total` ids in all, so filing up to that many never grows the table (a
    /// growth re-hashes every key through the slab: a cache miss per interaction held).
    pub fn reserve_total(&mut self, slab: &Slab, total: usize) {
        let more = total.saturating_sub(self.table.len());
        let hasher = &self.hasher;
        self.table.reserve(more, |&k| {
            hasher.hash_one(id_at(slab, k).unwrap_or_default())
        });
    }
}
