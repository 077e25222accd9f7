//! The decision log: the last N decisions, serialized once, for long-poll, SSE and webhook
//! subscribers.
//!
//! Decisions carry a gap-free `seq`, so the log is a ring indexed by `seq - oldest`. It is
//! bounded (default 100,000); a reader asking for decisions that have already left the ring gets
//! `DecisionsGone` naming the oldest seq still held, and one whose cursor is past the newest
//! decision ever made gets `DecisionsAhead`: never a silent gap.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use thiserror::Error;

use crate::engine::Decision;

/// Decisions kept for late readers by default.
pub const DEFAULT_DECISION_LOG: usize = 100_000;

/// What made a batch of decisions: the feed shows it on each of them as `cause`, so a reader
/// can tell the offer its own `offer.declined` caused from one a timer or an admin's config
/// change made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause<'a> {
    /// A timer fell due (offer expiry, ladder step, max wait, wrap-up or back-off end, opening
    /// hours).
    Timer,
    /// An event from `POST /v1/events` (or an adapter), by its envelope id and type.
    Event {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    /// A routing config change, by where it came from.
    ConfigChange { origin: &'a str },
    /// An administrator forced an agent's status (`PUT /v1/agents/{id}/state`).
    AgentState { agent: &'a str },
}

impl Cause<'_> {
    /// `,"cause":{…}`: the member `with_cause` adds to each decision's JSON object.
    pub fn member(&self) -> String {
        let cause = serde_json::to_string(self).unwrap_or_else(|_| "null".to_string());
        format!(",\"cause\":{cause}")
    }
}

/// A decision's JSON object with `member` (`Cause::member`) added as its last member: how
/// every reader sees a decision (the feed, webhooks, an event's answer and its duplicate).
pub fn with_cause(d: &Decision, member: &str) -> String {
    let mut json = serde_json::to_string(d).unwrap_or_else(|e| {
        // A Decision is plain data; serialization cannot fail. Keep the seq regardless.
        format!(
            r#"{{"seq":{},"error":"unserializable decision: {e}"}}"#,
            d.seq
        )
    });
    if json.ends_with('}') {
        json.pop();
        json.push_str(member);
        json.push('}');
    }
    json
}

/// Decisions one input made, with the member naming their cause, serialized as a list exactly as
/// the feed shows each of them (the answer of an event, a config change, a forced state).
#[derive(Debug, Default)]
pub struct CausedDecisions {
    pub decisions: Vec<Decision>,
    member: String,
}

impl CausedDecisions {
    pub fn new(decisions: Vec<Decision>, cause: Cause) -> CausedDecisions {
        CausedDecisions {
            member: cause.member(),
            decisions,
        }
    }
}

impl serde::Serialize for CausedDecisions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.decisions.len()))?;
        for d in &self.decisions {
            let json = with_cause(d, &self.member);
            let raw: &serde_json::value::RawValue =
                serde_json::from_str(&json).map_err(S::Error::custom)?;
            seq.serialize_element(raw)?;
        }
        seq.end()
    }
}

/// One decision as sent to readers: its seq, its type and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedDecision {
    pub seq: u64,
    pub kind: &'static str,
    /// The decision serialized as a JSON object.
    pub json: Arc<str>,
}

/// A page of decisions after some seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPage {
    pub decisions: Vec<LoggedDecision>,
    /// The seq to ask `after` next time: the last decision returned, else the one asked for.
    pub next: u64,
}

/// The reader asked for decisions older than the ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "decisions after seq {after} are no longer held: the oldest kept is seq {oldest}; \
     resume from after={resume_after} and reconcile state with the read API"
)]
pub struct DecisionsGone {
    pub after: u64,
    pub oldest: u64,
    pub resume_after: u64,
}

/// The reader's cursor is past the newest decision this feed made: it saw seqs the journal no
/// longer holds (`sync = "none"` and a crash lost the tail; those seqs will be made again, for
/// other decisions) or it comes from another deployment. Waiting would skip the decisions made
/// until the feed caught up with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "after={after} is ahead of the decision feed, whose newest decision is seq {newest}: the \
     reader saw decisions the journal no longer holds, or its cursor is from another deployment; \
     resume from after={newest} and reconcile state with the read API"
)]
pub struct DecisionsAhead {
    pub after: u64,
    pub newest: u64,
}

/// Why a page of decisions cannot be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FeedError {
    #[error(transparent)]
    Gone(#[from] DecisionsGone),
    #[error(transparent)]
    Ahead(#[from] DecisionsAhead),
}

/// The ring of recent decisions.
#[derive(Debug)]
pub struct DecisionLog {
    capacity: usize,
    ring: VecDeque<LoggedDecision>,
    /// Decisions re-made by journal replay, newer than `ring`, not serialized yet, each with its
    /// cause's member (shared by a batch): recovery only serializes the ones still held when it
    /// ends (`finish_replay`), not every one it re-makes.
    replayed: VecDeque<(Decision, Arc<str>)>,
    /// The seq the next decision will carry (when the ring is empty, the oldest a reader may ask for).
    next_seq: u64,
}

impl DecisionLog {
    /// An empty log whose first decision will carry `next_seq`.
    pub fn new(capacity: usize, next_seq: u64) -> DecisionLog {
        // Room for a full ring from the start: doubling it as decisions arrive copied the
        // whole ring on the engine task each time.
        DecisionLog::restored(capacity, next_seq, capacity)
    }

    /// A log restored from a snapshot holding `held` decisions: room for those only, not for
    /// the whole bound it was saved under (a restart that lowers `decision_log` would otherwise
    /// allocate the old bound first); `set_capacity` makes room for the bound in force.
    pub fn restored(capacity: usize, next_seq: u64, held: usize) -> DecisionLog {
        DecisionLog {
            capacity: capacity.max(1),
            ring: VecDeque::with_capacity(held.min(capacity.max(1))),
            replayed: VecDeque::new(),
            next_seq,
        }
    }

    /// Append decisions re-made by journal replay (in seq order), evicting the oldest beyond
    /// capacity. They are serialized by `finish_replay`, which must run before any read.
    pub fn push_replayed(&mut self, decisions: Vec<Decision>, cause: Cause) {
        if decisions.is_empty() {
            return;
        }
        let member: Arc<str> = Arc::from(cause.member());
        for d in decisions {
            self.next_seq = d.seq + 1;
            self.replayed.push_back((d, member.clone()));
            if self.ring.len() + self.replayed.len() > self.capacity
                && self.ring.pop_front().is_none()
            {
                self.replayed.pop_front();
            }
        }
    }

    /// Serialize what replay kept, so readers (and subscribers resuming after a restart) get it.
    pub fn finish_replay(&mut self) {
        let replayed = std::mem::take(&mut self.replayed);
        for (d, member) in replayed {
            self.push_one(&d, &member);
        }
    }

    /// Append decisions (in seq order), evicting the oldest beyond capacity.
    pub fn push(&mut self, decisions: &[Decision], cause: Cause) {
        if !self.replayed.is_empty() {
            self.finish_replay();
        }
        if decisions.is_empty() {
            return;
        }
        let member = cause.member();
        for d in decisions {
            self.push_one(d, &member);
        }
    }

    /// Append one decision already serialized (a snapshot's log being restored).
    pub fn push_logged(&mut self, d: LoggedDecision) {
        if !self.replayed.is_empty() {
            self.finish_replay();
        }
        self.next_seq = d.seq + 1;
        self.make_room();
        self.ring.push_back(d);
    }

    /// Evict the oldest while the ring is full, before a push: pushed first, a full ring would
    /// hold one more than its capacity for a moment, and grow (copy itself) for it.
    fn make_room(&mut self) {
        while self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
    }

    fn push_one(&mut self, d: &Decision, member: &str) {
        let json = with_cause(d, member);
        self.make_room();
        self.ring.push_back(LoggedDecision {
            seq: d.seq,
            kind: d.kind.type_name(),
            json: Arc::from(json),
        });
        self.next_seq = d.seq + 1;
    }

    /// The oldest seq a reader can still get.
    pub fn oldest(&self) -> u64 {
        self.ring.front().map_or(self.next_seq, |d| d.seq)
    }

    /// The seq the next decision will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `limit` decisions with seq > `after` (`None` = from the oldest held).
    pub fn after(&self, after: Option<u64>, limit: usize) -> Result<DecisionPage, FeedError> {
        debug_assert!(self.replayed.is_empty(), "finish_replay before reading");
        let newest = self.next_seq.saturating_sub(1);
        if let Some(after) = after.filter(|a| *a > newest) {
            return Err(DecisionsAhead { after, newest }.into());
        }
        let oldest = self.oldest();
        let start = match after {
            Some(a) => a.saturating_add(1),
            None => oldest,
        };
        if start < oldest {
            // `after` is old: fine if nothing between it and the oldest was ever made (a fresh
            // log whose first seq is higher), otherwise decisions were evicted.
            if !self.ring.is_empty() {
                let after = after.unwrap_or(0);
                return Err(DecisionsGone {
                    after,
                    oldest,
                    resume_after: oldest.saturating_sub(1),
                }
                .into());
            }
        }
        let from = start.max(oldest);
        let index = (from - oldest) as usize;
        let decisions: Vec<LoggedDecision> =
            self.ring.iter().skip(index).take(limit).cloned().collect();
        let next = match decisions.last() {
            Some(d) => d.seq,
            None => from.saturating_sub(1),
        };
        Ok(DecisionPage { decisions, next })
    }

    /// The decisions with a seq in `seqs` that the ring still holds, in seq order (shared, not
    /// copied), and whether that is all of them: `false` when the oldest have left the ring.
    pub fn held(&self, seqs: Range<u64>) -> (Vec<LoggedDecision>, bool) {
        debug_assert!(self.replayed.is_empty(), "finish_replay before reading");
        let oldest = self.oldest();
        let newest_end = oldest + self.ring.len() as u64;
        let start = seqs.start.max(oldest);
        let end = seqs.end.min(newest_end);
        let held: Vec<LoggedDecision> = if start < end {
            self.ring
                .range((start - oldest) as usize..(end - oldest) as usize)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let complete = seqs.is_empty() || (start == seqs.start && end == seqs.end);
        (held, complete)
    }

    /// Hold at most `capacity` decisions from now on, the oldest beyond it dropped: a restart
    /// with a new `[server] decision_log` restores a log saved under the old bound.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        // Room first, so that serializing what replay kept does not grow the ring by doublings.
        if self.ring.capacity() < self.capacity {
            self.ring
                .reserve_exact(self.capacity.saturating_sub(self.ring.len()));
        }
        if !self.replayed.is_empty() {
            self.finish_replay();
        }
        let excess = self.ring.len().saturating_sub(self.capacity);
        self.ring.drain(..excess);
        if self.ring.capacity() > self.capacity {
            self.ring.shrink_to(self.capacity);
        }
    }

    /// Decisions held at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The decisions held, oldest first (what a snapshot saves).
    pub fn iter(&self) -> impl Iterator<Item = &LoggedDecision> {
        debug_assert!(self.replayed.is_empty(), "finish_replay before reading");
        self.ring.iter()
    }

    pub fn len(&self) -> usize {
        self.ring.len() + self.replayed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty() && self.replayed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AgentStatus, DecisionKind};

    fn decision(seq: u64) -> Decision {
        Decision {
            seq,
            at: 1_700_000_000_000 + seq,
            kind: DecisionKind::AgentState {
                agent: "a1".into(),
                state: AgentStatus::NotReady,
                reason: Some("no_answer".into()),
            },
        }
    }

    fn seqs(page: &DecisionPage) -> Vec<u64> {
        page.decisions.iter().map(|d| d.seq).collect()
    }

    #[test]
    fn a_full_ring_never_grew_to_get_there() {
        let mut log = DecisionLog::new(1_000, 1);
        let room = log.ring.capacity();
        assert!(room >= 1_000);
        for seq in 1..=1_500 {
            log.push(&[decision(seq)], Cause::Timer);
        }
        assert_eq!(log.ring.capacity(), room);
    }

    #[test]
    fn a_reader_gets_the_decisions_after_its_seq_in_order() {
        let mut log = DecisionLog::new(10, 1);
        log.push(&[decision(1), decision(2), decision(3)], Cause::Timer);
        let page = log.after(Some(1), 100).unwrap();
        assert_eq!(seqs(&page), vec![2, 3]);
        assert_eq!(page.next, 3);
        assert_eq!(page.decisions[0].kind, "agent_state");
        assert!(page.decisions[0].json.contains(r#""seq":2"#));
    }

    #[test]
    fn a_seq_range_gives_what_is_still_held_and_says_whether_that_is_all() {
        let mut log = DecisionLog::new(3, 1);
        log.push(&(1..=5).map(decision).collect::<Vec<_>>(), Cause::Timer);
        let held = |seqs: Range<u64>| {
            let (d, complete) = log.held(seqs);
            (d.iter().map(|d| d.seq).collect::<Vec<_>>(), complete)
        };
        assert_eq!(held(3..6), (vec![3, 4, 5], true));
        assert_eq!(held(4..5), (vec![4], true));
        // 1 and 2 left the ring: the rest, flagged.
        assert_eq!(held(2..5), (vec![3, 4], false));
        assert_eq!(held(1..3), (vec![], false));
        assert_eq!(held(9..9), (vec![], true));
        // Never made: not invented.
        assert_eq!(held(5..7), (vec![5], false));
    }

    #[test]
    fn a_page_is_limited_and_next_points_at_its_last_decision() {
        let mut log = DecisionLog::new(10, 1);
        log.push(&(1..=5).map(decision).collect::<Vec<_>>(), Cause::Timer);
        let page = log.after(None, 2).unwrap();
        assert_eq!(seqs(&page), vec![1, 2]);
        assert_eq!(page.next, 2);
    }

    #[test]
    fn a_caught_up_reader_gets_an_empty_page_and_keeps_its_seq() {
        let mut log = DecisionLog::new(10, 1);
        log.push(&[decision(1), decision(2)], Cause::Timer);
        let page = log.after(Some(2), 100).unwrap();
        assert!(page.decisions.is_empty());
        assert_eq!(page.next, 2);
    }

    #[test]
    fn a_reader_past_the_newest_decision_is_told_so_instead_of_waiting() {
        let mut log = DecisionLog::new(10, 1);
        // Nothing made yet: only after=0 (or none) is a real cursor.
        assert!(log.after(Some(0), 100).is_ok());
        assert_eq!(
            log.after(Some(1), 100),
            Err(FeedError::Ahead(DecisionsAhead {
                after: 1,
                newest: 0
            }))
        );
        log.push(&[decision(1), decision(2)], Cause::Timer);
        assert!(log.after(Some(2), 100).is_ok());
        let ahead = log.after(Some(50), 100).unwrap_err();
        assert_eq!(
            ahead,
            FeedError::Ahead(DecisionsAhead {
                after: 50,
                newest: 2
            })
        );
        assert!(ahead.to_string().contains("resume from after=2"), "{ahead}");
    }

    #[test]
    fn decisions_that_left_the_ring_are_gone_with_the_oldest_seq_named() {
        let mut log = DecisionLog::new(3, 1);
        log.push(&(1..=6).map(decision).collect::<Vec<_>>(), Cause::Timer);
        assert_eq!(log.oldest(), 4);
        let Err(FeedError::Gone(gone)) = log.after(Some(1), 100) else {
            panic!("seq 2 and 3 left the ring");
        };
        assert_eq!(gone.oldest, 4);
        assert_eq!(gone.resume_after, 3);
        assert!(gone.to_string().contains("oldest kept is seq 4"));
        // Exactly at the edge is fine.
        assert_eq!(seqs(&log.after(Some(3), 100).unwrap()), vec![4, 5, 6]);
    }

    #[test]
    fn replayed_decisions_are_kept_up_to_capacity_and_read_like_live_ones() {
        let mut live = DecisionLog::new(4, 1);
        live.push(&(1..=6).map(decision).collect::<Vec<_>>(), Cause::Timer);
        let mut replayed = DecisionLog::new(4, 1);
        replayed.push(&[decision(1), decision(2)], Cause::Timer);
        replayed.push_replayed((3..=6).map(decision).collect(), Cause::Timer);
        assert_eq!(replayed.len(), 4);
        replayed.finish_replay();
        assert_eq!(replayed.after(None, 100), live.after(None, 100));
        assert_eq!(replayed.oldest(), 3);
        assert_eq!(replayed.next_seq(), 7);
        // A live push after replay keeps the order.
        let mut mixed = DecisionLog::new(10, 1);
        mixed.push_replayed(vec![decision(1)], Cause::Timer);
        mixed.push(&[decision(2)], Cause::Timer);
        assert_eq!(seqs(&mixed.after(None, 100).unwrap()), vec![1, 2]);
    }

    #[test]
    fn an_empty_log_is_not_gone_for_any_reader() {
        let log = DecisionLog::new(3, 1);
        let page = log.after(Some(0), 100).unwrap();
        assert!(page.decisions.is_empty());
        assert_eq!(page.next, 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// `n` new decisions, live.
        Push(u64),
        /// `n` decisions re-made by journal replay (serialized at the next read or live push).
        Replay(u64),
        /// A read: `after` as an offset from the log's first seq (`None`: from the oldest).
        Read(Option<u64>, usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0u64..5).prop_map(Op::Push),
            1 => (0u64..5).prop_map(Op::Replay),
            4 => (proptest::option::weighted(0.85, 0u64..30), 0usize..6)
                .prop_map(|(after, limit)| Op::Read(after, limit)),
        ]
    }

    proptest::proptest! {
        /// Oracle: every seq ever made, in a plain list; the log holds its last `capacity`. A
        /// read gives the held decisions after the cursor (a filter over that list), or says
        /// the cursor is ahead of the newest or that decisions after it are gone.
        #[test]
        fn every_read_is_the_slice_of_all_decisions_after_the_cursor(
            capacity in 1usize..6,
            first in 1u64..5,
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let mut log = DecisionLog::new(capacity, first);
            let mut made: Vec<u64> = Vec::new();
            let mut replay_pending = false;
            for op in ops {
                let next = first + made.len() as u64;
                match op {
                    Op::Push(n) => {
                        let ds: Vec<Decision> = (next..next + n).map(decision).collect();
                        log.push(&ds, Cause::Timer);
                        made.extend(next..next + n);
                        replay_pending = false;
                    }
                    Op::Replay(n) => {
                        log.push_replayed((next..next + n).map(decision).collect(), Cause::Timer);
                        made.extend(next..next + n);
                        replay_pending = true;
                    }
                    Op::Read(offset, limit) => {
                        if replay_pending {
                            log.finish_replay();
                            replay_pending = false;
                        }
                        let held = &made[made.len().saturating_sub(capacity)..];
                        let newest = (first + made.len() as u64).saturating_sub(1);
                        let oldest = held.first().copied().unwrap_or(first + made.len() as u64);
                        let after = offset.map(|o| (first + o).saturating_sub(3));
                        let want = match after {
                            Some(a) if a > newest => {
                                Err(FeedError::Ahead(DecisionsAhead { after: a, newest }))
                            }
                            Some(a) if a + 1 < oldest && !held.is_empty() => {
                                Err(FeedError::Gone(DecisionsGone {
                                    after: a,
                                    oldest,
                                    resume_after: oldest - 1,
                                }))
                            }
                            _ => {
                                let from = after.map_or(oldest, |a| (a + 1).max(oldest));
                                let page: Vec<u64> = held
                                    .iter()
                                    .copied()
                                    .filter(|s| *s >= from)
                                    .take(limit)
                                    .collect();
                                let next = page.last().copied().unwrap_or(from - 1);
                                Ok((page, next))
                            }
                        };
                        let got = log.after(after, limit).map(|p| {
                            for d in &p.decisions {
                                assert!(d.json.contains(&format!(r#""seq":{}"#, d.seq)));
                                assert_eq!(d.kind, "agent_state");
                            }
                            (seqs(&p), p.next)
                        });
                        proptest::prop_assert_eq!(got, want, "after {:?} limit {}", after, limit);
                        proptest::prop_assert_eq!(log.oldest(), oldest);
                        proptest::prop_assert_eq!(log.next_seq(), first + made.len() as u64);
                    }
                }
                proptest::prop_assert_eq!(log.len(), made.len().min(capacity));
            }
        }
    }
}
