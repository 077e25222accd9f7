//! The engine's timers: escalation steps, max-wait overflow, offer expiry, wrap-up end, back-off end.
//!
//! A timer is a key `(deadline, creation number)`, so firing order is total and deterministic
//! (deadline, then creation order); where a timer is kept (a lane of timers scheduled the same
//! distance ahead, or the general map) never changes that order (see `Timers`). Entities keep
//! the key of each timer they own; that field is the truth. Cancelling is lazy: the entity
//! forgets the key and the entry stays until it reaches the front, where the engine sees that no
//! entity owns it any more and drops it unfired (`Engine::timer_is_live`). So cancelling costs
//! nothing on the hot path (an offer cancels the step timer of an interaction anywhere among a
//! million timers), and stale entries are bounded: when they are more than half of all entries,
//! the engine compacts. Nothing here reads a clock: the engine's caller says what time it is.

use std::collections::{btree_map, BTreeMap, VecDeque};

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

/// Lanes (distinct delays) kept at most: a timer whose delay has no lane when this many exist goes
/// to the general map. Real configs have a few dozen delays (offer timeout, wrap-up, each ladder
/// gap, back-offs, max waits); the cap only bounds the pathological case of every timer being
/// scheduled a different distance ahead.
pub const MAX_LANES: usize = 256;

/// Pending timers in firing order, including cancelled ones not yet dropped.
///
/// A timer scheduled `d` ms ahead of engine time goes to the lane of delay `d`, a FIFO: engine
/// time never goes back, so each lane fills in key order and scheduling is an append (at 500,000
/// waiting, inserting into one ordered map of every timer searched seven levels of nodes, on
/// every arrival, offer, wrap-up and ladder step). `heads` orders the lanes by their first key.
/// Anything that would not be its lane's last key (a deadline already past, a restored
/// snapshot's timers, more than `MAX_LANES` delays) goes to `misc`, an ordered map as before.
/// The earliest timer is the earlier of the first head and `misc`'s first: firing order is
/// exactly key order, whatever went where.
///
/// Invariants (`check`): every lane is non-empty and strictly ascending; `heads` holds exactly
/// each lane's first key (with its delay and timer); `len` counts every entry.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    lanes: BTreeMap<Millis, VecDeque<(TimerKey, Timer)>>,
    heads: BTreeMap<TimerKey, (Millis, Timer)>,
    misc: BTreeMap<TimerKey, Timer>,
    len: usize,
    next_id: u64,
    /// Cancelled entries still pending (an estimate: cancelling a timer that already fired
    /// counts too; compaction recounts exactly).
    cancelled: usize,
}

impl Timers {
    /// Schedule `timer` at `deadline`; `now` is engine time (it only picks the lane).
    pub fn schedule(&mut self, now: Millis, deadline: Millis, timer: Timer) -> TimerKey {
        let key = (deadline, self.next_id);
        self.next_id += 1;
        self.len += 1;
        let Some(delay) = deadline.checked_sub(now) else {
            self.misc.insert(key, timer);
            return key;
        };
        let lanes = self.lanes.len();
        match self.lanes.entry(delay) {
            btree_map::Entry::Occupied(mut lane) => match lane.get().back() {
                Some((last, _)) if *last < key => lane.get_mut().push_back((key, timer)),
                _ => {
                    self.misc.insert(key, timer);
                }
            },
            btree_map::Entry::Vacant(slot) if lanes < MAX_LANES => {
                slot.insert(VecDeque::from([(key, timer)]));
                self.heads.insert(key, (delay, timer));
            }
            btree_map::Entry::Vacant(_) => {
                self.misc.insert(key, timer);
            }
        }
        key
    }

    /// Re-insert a timer under its original key (restoring a snapshot).
    pub fn restore(&mut self, key: TimerKey, timer: Timer) {
        if self.misc.insert(key, timer).is_none() {
            self.len += 1;
        }
    }

    /// The creation number the next timer will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// `kept`, an owner's timer, when it is due at `deadline` already; else `kept` cancelled and
    /// `timer` scheduled at `deadline`. Keeping the key keeps the timer's place among those due
    /// in the same millisecond (a live change re-deriving a deadline it left as it was).
    pub fn keep_or_schedule(
        &mut self,
        now: Millis,
        kept: Option<TimerKey>,
        deadline: Millis,
        timer: Timer,
    ) -> TimerKey {
        match kept {
            Some(key) if key.0 == deadline => key,
            _ => {
                self.cancel(kept);
                self.schedule(now, deadline, timer)
            }
        }
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
        self.first().map(|(k, _)| k.0)
    }

    /// The earliest entry, live or cancelled.
    pub fn first(&self) -> Option<(TimerKey, Timer)> {
        self.earliest().map(|(key, timer, _)| (key, timer))
    }

    /// The earliest entry, and whether it is a lane's head (else `misc`'s first).
    fn earliest(&self) -> Option<(TimerKey, Timer, bool)> {
        let head = self
            .heads
            .first_key_value()
            .map(|(k, (_, t))| (*k, *t, true));
        let misc = self.misc.first_key_value().map(|(k, t)| (*k, *t, false));
        match (head, misc) {
            (Some(h), Some(m)) => Some(if h.0 < m.0 { h } else { m }),
            (h, m) => h.or(m),
        }
    }

    /// Remove the earliest entry, which `earliest` found in a lane (`in_lane`) or in `misc`.
    fn take_earliest(&mut self, in_lane: bool) -> Option<(TimerKey, Timer)> {
        let popped = if in_lane {
            let (key, (delay, timer)) = self.heads.pop_first()?;
            if let btree_map::Entry::Occupied(mut lane) = self.lanes.entry(delay) {
                lane.get_mut().pop_front();
                match lane.get().front() {
                    Some(&(next, t)) => {
                        self.heads.insert(next, (delay, t));
                    }
                    None => {
                        lane.remove();
                    }
                }
            }
            (key, timer)
        } else {
            self.misc.pop_first()?
        };
        self.len -= 1;
        Some(popped)
    }

    /// Remove the earliest entry, which the engine found cancelled.
    pub fn drop_first_cancelled(&mut self) {
        let taken = self
            .earliest()
            .and_then(|(_, _, in_lane)| self.take_earliest(in_lane));
        if taken.is_some() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
    }

    /// An entry that came up cancelled was removed by `pop_due`.
    pub fn dropped_cancelled(&mut self) {
        self.cancelled = self.cancelled.saturating_sub(1);
    }

    /// Remove and return the earliest entry due at or before `now` (it may be cancelled).
    pub fn pop_due(&mut self, now: Millis) -> Option<(TimerKey, Timer)> {
        let (key, _, in_lane) = self.earliest()?;
        if key.0 > now {
            return None;
        }
        self.take_earliest(in_lane)
    }

    /// Whether cancelled entries are so many that the map should be rebuilt without them.
    pub fn wants_compaction(&self) -> bool {
        self.cancelled > 4096 && self.cancelled > self.len / 2
    }

    /// Entries pending, cancelled ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keep only the entries `live` says are owned; the count of cancelled ones becomes exact.
    pub fn compact(&mut self, mut live: impl FnMut(TimerKey, Timer) -> bool) {
        self.misc.retain(|k, t| live(*k, *t));
        for lane in self.lanes.values_mut() {
            lane.retain(|(k, t)| live(*k, *t));
        }
        self.lanes.retain(|_, lane| !lane.is_empty());
        self.heads = self
            .lanes
            .iter()
            .filter_map(|(delay, lane)| lane.front().map(|&(k, t)| (k, (*delay, t))))
            .collect();
        self.len = self.misc.len() + self.lanes.values().map(VecDeque::len).sum::<usize>();
        self.cancelled = 0;
    }

    /// Every entry in key order (tests).
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(TimerKey, Timer)> {
        let mut all: Vec<(TimerKey, Timer)> = self.misc.iter().map(|(k, t)| (*k, *t)).collect();
        for lane in self.lanes.values() {
            all.extend(lane.iter().copied());
        }
        all.sort_unstable_by_key(|e| e.0);
        all
    }

    /// The invariants above.
    pub fn check(&self) -> Result<(), String> {
        let mut counted = self.misc.len();
        for (delay, lane) in &self.lanes {
            counted += lane.len();
            let Some(&(first, t)) = lane.front() else {
                return Err(format!("timer lane {delay} is empty"));
            };
            if self.heads.get(&first) != Some(&(*delay, t)) {
                return Err(format!(
                    "timer lane {delay} starts at {first:?}, not in heads"
                ));
            }
            if lane
                .iter()
                .zip(lane.iter().skip(1))
                .any(|(a, b)| a.0 >= b.0)
            {
                return Err(format!("timer lane {delay} is out of order"));
            }
        }
        if self.heads.len() != self.lanes.len() {
            return Err(format!(
                "{} lane heads for {} lanes",
                self.heads.len(),
                self.lanes.len()
            ));
        }
        if counted != self.len {
            return Err(format!("{counted} timers pending but {} counted", self.len));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::{Timer, TimerKey, Timers, MAX_LANES};
    use crate::config::Millis;

    #[derive(Debug, Clone)]
    enum Op {
        /// Move engine time on by this much (negative: stay, but tell `schedule` a `now` that
        /// much earlier, which only a caller bug would do: lanes must stay ordered anyway),
        /// then schedule this far ahead (negative: already due).
        Schedule(i8, i16),
        PopDue(u8),
        DropFirst,
        Restore(u16),
        /// Compact, keeping keys whose creation number is not a multiple of this.
        Compact(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (-3..4i8, -50..400i16).prop_map(|(a, d)| Op::Schedule(a, d)),
            3 => (0..60u8).prop_map(Op::PopDue),
            1 => Just(Op::DropFirst),
            1 => (0..2_000u16).prop_map(Op::Restore),
            1 => (2..5u8).prop_map(Op::Compact),
        ]
    }

    proptest! {
        /// Lanes plus the general map fire exactly in key order, as one ordered map of every
        /// timer (the oracle) would, and keep their invariants after every operation.
        #[test]
        fn timers_fire_in_key_order_like_one_ordered_map(ops in prop::collection::vec(op(), 1..300)) {
            let mut timers = Timers::default();
            let mut oracle: BTreeMap<TimerKey, Timer> = BTreeMap::new();
            let mut now: Millis = 1_000;
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Schedule(ahead, delay) => {
                        now += Millis::from(ahead.max(0).unsigned_abs());
                        let said = now - Millis::from(ahead.min(0).unsigned_abs());
                        let deadline = now.saturating_add_signed(i64::from(delay));
                        let timer = Timer::Backoff(n as u32);
                        let key = timers.schedule(said, deadline, timer);
                        prop_assert_eq!(key.0, deadline);
                        prop_assert!(oracle.insert(key, timer).is_none());
                    }
                    Op::PopDue(ahead) => {
                        now += Millis::from(ahead);
                        let expected = match oracle.first_key_value() {
                            Some((k, _)) if k.0 <= now => oracle.pop_first(),
                            _ => None,
                        };
                        prop_assert_eq!(timers.pop_due(now), expected);
                    }
                    Op::DropFirst => {
                        timers.drop_first_cancelled();
                        oracle.pop_first();
                    }
                    Op::Restore(at) => {
                        let key = (Millis::from(at), 1_000_000 + n as u64);
                        timers.restore(key, Timer::WrapUp(1, n as u64));
                        oracle.insert(key, Timer::WrapUp(1, n as u64));
                    }
                    Op::Compact(m) => {
                        let keep = |k: TimerKey, _: Timer| k.1 % u64::from(m) != 0;
                        timers.compact(keep);
                        oracle.retain(|k, t| keep(*k, *t));
                    }
                }
                prop_assert_eq!(timers.check(), Ok(()));
                prop_assert_eq!(timers.len(), oracle.len());
                prop_assert_eq!(timers.first(), oracle.first_key_value().map(|(k, t)| (*k, *t)));
                prop_assert_eq!(timers.next_deadline(), oracle.keys().next().map(|k| k.0));
                let all: Vec<(TimerKey, Timer)> = oracle.iter().map(|(k, t)| (*k, *t)).collect();
                prop_assert_eq!(timers.entries(), all);
            }
        }
    }

    /// Timers a fixed distance ahead share one lane and append; a deadline already past, or a
    /// delay beyond `MAX_LANES` distinct ones, goes to the general map, and all still fire in
    /// key order.
    #[test]
    fn same_delay_timers_share_a_lane_and_the_rest_fall_back_to_the_map() {
        let mut timers = Timers::default();
        for now in 0..10 {
            timers.schedule(now, now + 15_000, Timer::OfferExpiry(now as u32));
        }
        assert_eq!(timers.lanes.len(), 1);
        assert!(timers.misc.is_empty());
        timers.schedule(100, 50, Timer::Backoff(7));
        assert_eq!(timers.misc.len(), 1, "a past deadline has no lane");
        for d in 0..MAX_LANES as u64 + 5 {
            timers.schedule(100, 200_000 + d, Timer::Backoff(d as u32));
        }
        assert_eq!(timers.lanes.len(), MAX_LANES);
        assert_eq!(timers.check(), Ok(()));
        let mut last = None;
        while let Some((key, _)) = timers.pop_due(u64::MAX) {
            assert!(last < Some(key), "{key:?} fired after {last:?}");
            last = Some(key);
        }
        assert_eq!(timers.len(), 0);
        assert!(timers.lanes.is_empty() && timers.heads.is_empty());
    }
}
