//! `Runs`: an ordered set of `(hi, lo)` keys kept as one sorted run of `lo` values per `hi`.
//!
//! A waiting set's keys are `(priority, entry order)` (see `WaitKey`), and almost every key that
//! enters a set is the newest of its priority: an arrival, or an interaction moving up a ladder
//! step (steps fall due in entry order). So instead of one B-tree over all keys, where each insert
//! descends three levels of cold nodes at 500,000 waiting and scans half of each, `Runs` keeps a
//! small map from `hi` to that priority's run, and a run is a sorted `VecDeque`: the newest key is
//! a `push_back`, the most urgent a `pop_front`, each touching one line of the run.
//!
//! A key that is not the newest (an offer declined or expired goes back to its original place, an
//! overflow keeps its arrival order) is inserted by binary search and a shift of at most
//! `DEQUE_MAX` entries; a run that grows beyond `DEQUE_MAX` becomes a `BTreeSet`, so every
//! operation stays O(log n) however many wait at one priority.

use std::collections::{btree_map, btree_set, vec_deque, BTreeMap, BTreeSet, VecDeque};

/// Entries a run keeps in a `VecDeque` before it becomes a B-tree: a middle insert or removal
/// shifts at most this many `u64`s (4 KiB).
pub const DEQUE_MAX: usize = 512;

/// One priority's keys, ascending.
#[derive(Debug, Clone)]
enum Run {
    Deque(VecDeque<u64>),
    Tree(BTreeSet<u64>),
}

impl Run {
    fn one(lo: u64) -> Run {
        Run::Deque(VecDeque::from([lo]))
    }

    fn len(&self) -> usize {
        match self {
            Run::Deque(d) => d.len(),
            Run::Tree(t) => t.len(),
        }
    }

    fn first(&self) -> Option<u64> {
        match self {
            Run::Deque(d) => d.front().copied(),
            Run::Tree(t) => t.first().copied(),
        }
    }

    #[cfg(test)]
    fn last(&self) -> Option<u64> {
        match self {
            Run::Deque(d) => d.back().copied(),
            Run::Tree(t) => t.last().copied(),
        }
    }

    /// Whether `lo` was new.
    fn insert(&mut self, lo: u64) -> bool {
        match self {
            Run::Deque(d) => {
                if d.back().is_none_or(|&last| lo > last) {
                    d.push_back(lo);
                } else {
                    match d.binary_search(&lo) {
                        Ok(_) => return false,
                        Err(at) => d.insert(at, lo),
                    }
                }
                if d.len() > DEQUE_MAX {
                    *self = Run::Tree(d.iter().copied().collect());
                }
                true
            }
            Run::Tree(t) => t.insert(lo),
        }
    }

    /// Whether `lo` was there.
    fn remove(&mut self, lo: u64) -> bool {
        match self {
            Run::Deque(d) => {
                if d.front() == Some(&lo) {
                    d.pop_front();
                    return true;
                }
                match d.binary_search(&lo) {
                    Ok(at) => d.remove(at).is_some(),
                    Err(_) => false,
                }
            }
            Run::Tree(t) => t.remove(&lo),
        }
    }

    fn pop_first(&mut self) -> Option<u64> {
        match self {
            Run::Deque(d) => d.pop_front(),
            Run::Tree(t) => t.pop_first(),
        }
    }

    fn contains(&self, lo: u64) -> bool {
        match self {
            Run::Deque(d) => d.binary_search(&lo).is_ok(),
            Run::Tree(t) => t.contains(&lo),
        }
    }

    /// The first entry at or after `lo`.
    fn first_from(&self, lo: u64) -> Option<u64> {
        match self {
            Run::Deque(d) => d.get(d.partition_point(|&x| x < lo)).copied(),
            Run::Tree(t) => t.range(lo..).next().copied(),
        }
    }

    fn iter(&self) -> RunIter<'_> {
        match self {
            Run::Deque(d) => RunIter::Deque(d.iter()),
            Run::Tree(t) => RunIter::Tree(t.iter()),
        }
    }
}

/// An ordered set of `(hi, lo)` keys (ordered by `hi`, then `lo`), as runs per `hi`.
///
/// No count is kept: `Runs` is as big as the `BTreeSet` it replaced (24 bytes), so the waiting
/// sets inside a queue record keep their size and the record its layout. `len` is O(runs); only
/// views and consistency checks ask.
///
/// Invariants (`check`): no run is empty; every deque run is strictly ascending and holds at most
/// `DEQUE_MAX` entries.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    runs: BTreeMap<u64, Run>,
}

impl Runs {
    pub fn len(&self) -> usize {
        self.runs.values().map(Run::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Whether the key was new.
    pub fn insert(&mut self, (hi, lo): (u64, u64)) -> bool {
        match self.runs.entry(hi) {
            btree_map::Entry::Vacant(e) => {
                e.insert(Run::one(lo));
                true
            }
            btree_map::Entry::Occupied(mut e) => e.get_mut().insert(lo),
        }
    }

    /// Whether the key was there.
    pub fn remove(&mut self, (hi, lo): (u64, u64)) -> bool {
        let btree_map::Entry::Occupied(mut e) = self.runs.entry(hi) else {
            return false;
        };
        let was = e.get_mut().remove(lo);
        if e.get().len() == 0 {
            e.remove();
        }
        was
    }

    pub fn contains(&self, (hi, lo): (u64, u64)) -> bool {
        self.runs.get(&hi).is_some_and(|r| r.contains(lo))
    }

    pub fn first(&self) -> Option<(u64, u64)> {
        if self.runs.is_empty() {
            return None;
        }
        let (&hi, run) = self.runs.first_key_value()?;
        run.first().map(|lo| (hi, lo))
    }

    pub fn pop_first(&mut self) -> Option<(u64, u64)> {
        // An emptied `BTreeMap` keeps its root node: asking it for its first entry would read
        // that node, a cold line at scale, where the map's own length says there is none.
        if self.runs.is_empty() {
            return None;
        }
        let mut e = self.runs.first_entry()?;
        let hi = *e.key();
        let lo = e.get_mut().pop_first()?;
        if e.get().len() == 0 {
            e.remove();
        }
        Some((hi, lo))
    }

    /// The first key at or after `(hi, lo)`.
    pub fn first_from(&self, (hi, lo): (u64, u64)) -> Option<(u64, u64)> {
        let mut runs = self.runs.range(hi..);
        let (&h, run) = runs.next()?;
        let within = if h == hi {
            run.first_from(lo)
        } else {
            run.first()
        };
        match within {
            Some(l) => Some((h, l)),
            None => {
                let (&h, run) = runs.next()?;
                run.first().map(|l| (h, l))
            }
        }
    }

    /// Ascending.
    pub fn iter(&self) -> RunsIter<'_> {
        RunsIter {
            runs: self.runs.iter(),
            current: None,
        }
    }

    /// The invariants above.
    pub fn check(&self) -> Result<(), String> {
        for (hi, run) in &self.runs {
            match run {
                Run::Deque(d) if d.is_empty() => return Err(format!("run {hi:#x} is empty")),
                Run::Deque(d) if d.len() > DEQUE_MAX => {
                    return Err(format!("run {hi:#x} holds {} in a deque", d.len()))
                }
                Run::Deque(d) => {
                    if let Some(at) = (1..d.len()).find(|&i| d[i - 1] >= d[i]) {
                        return Err(format!("run {hi:#x} out of order at {at}"));
                    }
                }
                Run::Tree(t) if t.is_empty() => return Err(format!("run {hi:#x} is empty")),
                Run::Tree(_) => {}
            }
        }
        Ok(())
    }

    /// The largest key, for tests.
    #[cfg(test)]
    pub fn last(&self) -> Option<(u64, u64)> {
        let (&hi, run) = self.runs.last_key_value()?;
        run.last().map(|lo| (hi, lo))
    }
}

enum RunIter<'a> {
    Deque(vec_deque::Iter<'a, u64>),
    Tree(btree_set::Iter<'a, u64>),
}

impl Iterator for RunIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self {
            RunIter::Deque(i) => i.next().copied(),
            RunIter::Tree(i) => i.next().copied(),
        }
    }
}

/// The keys of `Runs`, ascending.
pub struct RunsIter<'a> {
    runs: btree_map::Iter<'a, u64, Run>,
    current: Option<(u64, RunIter<'a>)>,
}

impl Iterator for RunsIter<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        loop {
            if let Some((hi, run)) = &mut self.current {
                if let Some(lo) = run.next() {
                    return Some((*hi, lo));
                }
            }
            let (&hi, run) = self.runs.next()?;
            self.current = Some((hi, run.iter()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::{Run, Runs, DEQUE_MAX};

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u64),
        Remove(u64, u64),
        PopFirst,
        /// Append a run of `n` keys after everything at `hi`, to cross `DEQUE_MAX`.
        Burst(u64, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4u64, 0..2_000u64).prop_map(|(h, l)| Op::Insert(h, l)),
            3 => (0..4u64, 0..2_000u64).prop_map(|(h, l)| Op::Remove(h, l)),
            2 => Just(Op::PopFirst),
            1 => (0..4u64, 0..700u16).prop_map(|(h, n)| Op::Burst(h, n)),
        ]
    }

    proptest! {
        /// `Runs` behaves exactly as one `BTreeSet<(u64, u64)>` (the oracle) and keeps its
        /// invariants after every operation, across the deque-to-tree switch.
        #[test]
        fn runs_behave_as_one_ordered_set(ops in prop::collection::vec(op(), 1..200)) {
            let mut runs = Runs::default();
            let mut oracle = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(h, l) => {
                        prop_assert_eq!(runs.insert((h, l)), oracle.insert((h, l)));
                    }
                    Op::Remove(h, l) => {
                        prop_assert_eq!(runs.remove((h, l)), oracle.remove(&(h, l)));
                    }
                    Op::PopFirst => prop_assert_eq!(runs.pop_first(), oracle.pop_first()),
                    Op::Burst(h, n) => {
                        let newest = oracle.range((h, 0)..(h + 1, 0)).next_back();
                        let from = newest.map_or(0, |k| k.1 + 1);
                        for l in from..from + u64::from(n) {
                            prop_assert!(runs.insert((h, l)));
                            oracle.insert((h, l));
                        }
                    }
                }
                prop_assert_eq!(runs.check(), Ok(()));
                prop_assert_eq!(runs.len(), oracle.len());
                prop_assert_eq!(runs.is_empty(), oracle.is_empty());
                prop_assert_eq!(runs.first(), oracle.first().copied());
                prop_assert_eq!(runs.last(), oracle.last().copied());
                prop_assert!(runs.iter().eq(oracle.iter().copied()));
                for h in 0..5u64 {
                    for l in [0u64, 1, 999, 1_999, 2_500] {
                        let expected = oracle.range((h, l)..).next().copied();
                        prop_assert_eq!(runs.first_from((h, l)), expected);
                        prop_assert_eq!(runs.contains((h, l)), oracle.contains(&(h, l)));
                    }
                }
            }
        }
    }

    /// `Runs` takes the place of a `BTreeSet<WaitKey>` without growing the waiting sets that
    /// live inside queue records.
    #[test]
    fn runs_are_as_small_as_the_b_tree_they_replace() {
        assert_eq!(
            std::mem::size_of::<Runs>(),
            std::mem::size_of::<BTreeSet<(u64, u64)>>()
        );
    }

    /// Newest keys append, the most urgent pop from the front, and a run that outgrows a deque
    /// becomes a tree without changing what it holds.
    #[test]
    fn a_run_appends_pops_and_outgrows_its_deque() {
        let mut runs = Runs::default();
        for lo in 0..DEQUE_MAX as u64 {
            assert!(runs.insert((7, lo)));
        }
        assert!(matches!(runs.runs[&7], Run::Deque(_)));
        // Out of order: goes to its place, not the back.
        assert!(runs.remove((7, 10)));
        assert!(runs.insert((7, 10)));
        assert!(!runs.insert((7, 10)));
        assert!(runs.insert((7, DEQUE_MAX as u64)));
        assert!(matches!(runs.runs[&7], Run::Tree(_)));
        assert_eq!(runs.check(), Ok(()));
        assert_eq!(runs.len(), DEQUE_MAX + 1);
        assert!(runs.insert((3, 99)));
        assert_eq!(runs.pop_first(), Some((3, 99)));
        for lo in 0..=DEQUE_MAX as u64 {
            assert_eq!(runs.pop_first(), Some((7, lo)));
        }
        assert!(runs.is_empty());
        assert!(runs.runs.is_empty(), "an emptied run is dropped");
    }
}
