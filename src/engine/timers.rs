//! The engine's timers: escalation steps, max-wait overflow, offer expiry, wrap-up end, back-off end.
//!
//! A timer is a key `(deadline, creation number)` in an ordered map, so firing order is total and
//! deterministic (deadline, then creation order) and cancelling is O(log n). Entities keep the key
//! of each timer they own and cancel it when they change state; a timer therefore never fires for
//! an entity that moved on. Nothing here reads a clock: the engine's caller says what time it is.

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

/// Pending timers in firing order.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    pending: BTreeMap<TimerKey, Timer>,
    next_id: u64,
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

    /// Cancel a timer; cancelling one that already fired is harmless.
    pub fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(key) = key {
            self.pending.remove(&key);
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.pending.keys().next().map(|k| k.0)
    }

    /// Remove and return the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<(TimerKey, Timer)> {
        let (&key, _) = self.pending.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.pending.remove(&key).map(|t| (key, t))
    }
}
