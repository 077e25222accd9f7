//! The engine's timers: escalation steps, max-wait overflow, offer expiry, wrap-up end, back-off end.
//!
//! A timer is a key `(deadline, creation number)` in an ordered map, so firing order is total and
//! deterministic (deadline, then creation order). Entities keep the key of each timer they own;
//! that field is the truth. Cancelling is lazy: the entity forgets the key and the map entry stays
//! until it reaches the front, where the engine sees that no entity owns it any more and drops it
//! unfired (`Engine::timer_is_live`). So cancelling costs nothing on the hot path (an offer
//! cancels the step timer of an interaction anywhere in a map of a million timers), and stale
//! entries are bounded: when they are more than half the map, the engine compacts it. Nothing
//! here reads a clock: the engine's caller says what time it is.

use std::collections::BTreeMap;

use crate::config::Millis;

/// Index of an interaction in the engine's slab.
pub type IKey = u32;
/// Index of an agent in the engine's agent table.
pub type AKey = u32;

/// A scheduled timer's identity.
pub type TimerKey = (Millis, u64);

/// What happens when a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The interaction reaches its next ladder step.
    Step(IKey),
    /// The interaction has waited `max_wait_s` in its queue.
    MaxWait(IKey),
    /// The pending offer of this interaction expires.
    OfferExpiry(IKey),
    /// The agent's wrap-up slot (by slot id) ends.
    WrapUp(AKey, u64),
    /// The agent's back-off after a decline or no-answer ends.
    Backoff(AKey),
}

/// Pending timers in firing order, including cancelled ones not yet dropped.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    pending: BTreeMap<TimerKey, Timer>,
    next_id: u64,
    /// Cancelled entries still in `pending` (an estimate: cancelling a timer that already fired
    /// counts too; compaction recounts exactly).
    cancelled: usize,
}

impl Timers {
    pub fn schedule(&mut self, deadline: Millis, timer: Timer) -> TimerKey {
        let key = (deadline, self.next_id);
        self.next_id += 1;
        self.pending.insert(key, timer);
        key
    }

    /// Re-insert a timer under its original key (restoring a snapshot).
    pub fn restore(&mut self, key: TimerKey, timer: Timer) {
        self.pending.insert(key, timer);
    }

    /// The creation number the next timer will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// Note that the owner forgot this timer (it will be dropped unfired when it comes up).
    pub fn cancel(&mut self, key: Option<TimerKey>) {
        if key.is_some() {
            self.cancelled += 1;
        }
    }

    /// The earliest entry's deadline. Exact only after `Engine::tidy_timers`, which drops
    /// cancelled entries from the front; the engine does that before returning to its caller.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.pending.keys().next().map(|k| k.0)
    }

    /// The earliest entry, live or cancelled.
    pub fn first(&self) -> Option<(TimerKey, Timer)> {
        self.pending.iter().next().map(|(k, t)| (*k, *t))
    }

    /// Remove the earliest entry, which the engine found cancelled.
    pub fn drop_first_cancelled(&mut self) {
        if self.pending.pop_first().is_some() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
    }

    /// An entry that came up cancelled was removed by `pop_due`.
    pub fn dropped_cancelled(&mut self) {
        self.cancelled = self.cancelled.saturating_sub(1);
    }

    /// Remove and return the earliest entry due at or before `now` (it may be cancelled).
    pub fn pop_due(&mut self, now: Millis) -> Option<(TimerKey, Timer)> {
        // One walk down the left edge, no key search (a `remove(&key)` would search again).
        let first = self.pending.first_entry()?;
        if first.key().0 > now {
            return None;
        }
        Some(first.remove_entry())
    }

    /// Whether cancelled entries are so many that the map should be rebuilt without them.
    pub fn wants_compaction(&self) -> bool {
        self.cancelled > 4096 && self.cancelled > self.pending.len() / 2
    }

    /// Entries in the map, cancelled ones included.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Keep only the entries `live` says are owned; the count of cancelled ones becomes exact.
    pub fn compact(&mut self, mut live: impl FnMut(TimerKey, Timer) -> bool) {
        self.pending.retain(|k, t| live(*k, *t));
        self.cancelled = 0;
    }
}
