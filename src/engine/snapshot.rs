//! Snapshots: the engine's whole primary state in one MessagePack document, and back.
//!
//! Only primary state is written (config, interactions, agents and their slots, counters, the
//! RNG, timer keys); the indexes are rebuilt on load by the same code a live reload uses, so a
//! restored engine makes exactly the decisions the original would have made.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Millis, QueueConfig, RoutingConfig};
use crate::engine::decision::RejectReason;
use crate::engine::model::{Agent, Interaction, QKey, QueueRt};
use crate::engine::shared::SharedVec;
use crate::engine::skills::SkillTable;
use crate::engine::timers::{AKey, IKey, Timer, Timers};
use crate::engine::view::{Counts, InteractionState, SlotPhase, Transition, Why};
use crate::engine::{Engine, Map};

/// Format version; bump when the layout changes.
/// 2: queues carry `count_declines`; agent tiers are a sorted list; no roster in the config.
/// 3: an overflow's history entry always writes its `queue` (version 2 left it out when the
///    overflow went to a PBX target, and the target read back as the queue); a rejection's
///    entry carries its `target`. Version 2 is still read, and repaired (`repair_v2_history`).
const VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot write snapshot: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("cannot read snapshot: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("snapshot format version {found}, this build reads version {VERSION}")]
    Version { found: u32 },
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("not a tierline engine snapshot: it {0}")]
    NoVersion(String),
}

/// A reader that keeps a copy of what it read (the snapshot's head, read twice).
struct Recorded<'a, R> {
    inner: &'a mut R,
    copy: &'a mut Vec<u8>,
}

impl<R: Read> Read for Recorded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// The format version at the head of a snapshot: the first field of the array a snapshot is
/// written as (`rmp_serde::encode::write` writes a struct as an array of its fields).
fn read_version(input: &mut impl Read) -> Result<u32, SnapshotError> {
    let fields = rmp::decode::read_array_len(&mut *input).map_err(|e| {
        SnapshotError::NoVersion(format!("does not start with an array of fields ({e})"))
    })?;
    if fields == 0 {
        return Err(SnapshotError::NoVersion(
            "is an empty array, with no format version".into(),
        ));
    }
    rmp::decode::read_int(input).map_err(|e| {
        SnapshotError::NoVersion(format!("has no format version as its first field ({e})"))
    })
}

#[derive(Serialize, Deserialize)]
struct QueueState {
    cfg: QueueConfig,
    retired: bool,
    rr_last: Option<Arc<str>>,
}

/// The primary state as written: borrowed from a live engine (`Engine::write_snapshot`), or
/// owned by an [`EngineCapture`] (the same fields, copied; interactions and agents shared).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    config: Cow<'a, RoutingConfig>,
    now: Millis,
    seq: u64,
    next_order: u64,
    next_offer: u64,
    next_slot: u64,
    next_timer: u64,
    counts: Cow<'a, Counts>,
    live: usize,
    rng: Cow<'a, ChaCha8Rng>,
    queues: Vec<QueueState>,
    agents: Cow<'a, SharedVec<Agent>>,
    interactions: Cow<'a, [Option<Arc<Interaction>>]>,
    free_ikeys: Cow<'a, [IKey]>,
    finished: Cow<'a, VecDeque<IKey>>,
    skill_names: Cow<'a, [Arc<str>]>,
    skill_sets: Cow<'a, [Vec<u32>]>,
}

impl SnapshotRef<'_> {
    fn into_owned(self) -> SnapshotRef<'static> {
        SnapshotRef {
            config: Cow::Owned(self.config.into_owned()),
            counts: Cow::Owned(self.counts.into_owned()),
            rng: Cow::Owned(self.rng.into_owned()),
            agents: Cow::Owned(self.agents.into_owned()),
            interactions: Cow::Owned(self.interactions.into_owned()),
            free_ikeys: Cow::Owned(self.free_ikeys.into_owned()),
            finished: Cow::Owned(self.finished.into_owned()),
            skill_names: Cow::Owned(self.skill_names.into_owned()),
            skill_sets: Cow::Owned(self.skill_sets.into_owned()),
            ..self
        }
    }
}

/// A copy of an engine's primary state, taken at one moment, to be written as a snapshot later
/// (on another thread). It leaves out every index (waiting sets, free-agent sets, timers, id
/// maps), which `read_snapshot` rebuilds, so it costs less memory than a clone of the engine.
pub struct EngineCapture(SnapshotRef<'static>);

impl EngineCapture {
    /// Write it exactly as `Engine::write_snapshot` would have at the moment of the capture.
    pub fn write_snapshot(&self, out: &mut impl Write) -> Result<(), SnapshotError> {
        rmp_serde::encode::write(out, &self.0)?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct SnapshotOwned {
    version: u32,
    config: RoutingConfig,
    now: Millis,
    seq: u64,
    next_order: u64,
    next_offer: u64,
    next_slot: u64,
    next_timer: u64,
    counts: Counts,
    live: usize,
    rng: ChaCha8Rng,
    queues: Vec<QueueState>,
    agents: SharedVec<Agent>,
    interactions: Vec<Option<Arc<Interaction>>>,
    free_ikeys: Vec<IKey>,
    finished: VecDeque<IKey>,
    skill_names: Vec<Arc<str>>,
    skill_sets: Vec<Vec<u32>>,
}

impl Engine {
    /// Write the whole engine state. Facts not yet taken are not part of it.
    pub fn write_snapshot(&self, out: &mut impl Write) -> Result<(), SnapshotError> {
        rmp_serde::encode::write(out, &self.primary_state())?;
        Ok(())
    }

    /// Copy the primary state for a snapshot written later (see [`EngineCapture`]). Interactions
    /// and agents are shared, not copied (one `Arc` each, copied on the engine's next write to
    /// that one only), so this costs a pointer per record, not the state's size in fresh memory.
    pub fn capture(&self) -> EngineCapture {
        EngineCapture(self.primary_state().into_owned())
    }

    fn primary_state(&self) -> SnapshotRef<'_> {
        SnapshotRef {
            version: VERSION,
            config: Cow::Borrowed(&self.config),
            now: self.now,
            seq: self.seq,
            next_order: self.next_order,
            next_offer: self.next_offer,
            next_slot: self.next_slot,
            next_timer: self.timers.next_id(),
            counts: Cow::Borrowed(&self.counts),
            live: self.live,
            rng: Cow::Borrowed(&self.rng),
            queues: self
                .queues
                .iter()
                .map(|q| QueueState {
                    cfg: q.cfg().clone(),
                    retired: q.retired,
                    rr_last: q
                        .rr_last
                        .and_then(|ak| self.agents.get(ak as usize))
                        .map(|a| a.id.clone()),
                })
                .collect(),
            agents: Cow::Borrowed(&self.agents),
            interactions: Cow::Borrowed(&self.interactions),
            free_ikeys: Cow::Borrowed(&self.free_ikeys),
            finished: Cow::Borrowed(&self.finished),
            skill_names: Cow::Borrowed(self.skills.names()),
            skill_sets: Cow::Borrowed(self.skills.sets()),
        }
    }

    /// Rebuild an engine from `write_snapshot` output.
    pub fn read_snapshot(input: &mut impl Read) -> Result<Engine, SnapshotError> {
        // The version comes first and is checked before the rest is read: another version's
        // layout would otherwise fail as a decode error somewhere in the middle, not naming it.
        let mut head = Vec::with_capacity(16);
        let version = read_version(&mut Recorded {
            inner: &mut *input,
            copy: &mut head,
        })?;
        if version != VERSION && version != 2 {
            return Err(SnapshotError::Version { found: version });
        }
        let s: SnapshotOwned = rmp_serde::decode::from_read(head.as_slice().chain(input))?;
        Engine::from_owned(s)
    }

    /// The engine a capture was taken of, rebuilt without encoding it: its records stay shared
    /// with the engine it was taken from, each copied on the rebuilt engine's first write to it
    /// (as the live engine copies a record a capture still shares), so a what-if copy costs
    /// the indexes, not the state (`daemon::preview`).
    pub fn from_capture(captured: EngineCapture) -> Result<Engine, SnapshotError> {
        let s = captured.0;
        Engine::from_owned(SnapshotOwned {
            version: s.version,
            config: s.config.into_owned(),
            now: s.now,
            seq: s.seq,
            next_order: s.next_order,
            next_offer: s.next_offer,
            next_slot: s.next_slot,
            next_timer: s.next_timer,
            counts: s.counts.into_owned(),
            live: s.live,
            rng: s.rng.into_owned(),
            queues: s.queues,
            agents: s.agents.into_owned(),
            interactions: s.interactions.into_owned(),
            free_ikeys: s.free_ikeys.into_owned(),
            finished: s.finished.into_owned(),
            skill_names: s.skill_names.into_owned(),
            skill_sets: s.skill_sets.into_owned(),
        })
    }

    /// Rebuild an engine from its primary state (read from a snapshot, or a capture's).
    fn from_owned(s: SnapshotOwned) -> Result<Engine, SnapshotError> {
        let from_v2 = s.version == 2;
        let mut e = Engine::new(RoutingConfig::empty(), s.now);
        e.config = s.config;
        e.seq = s.seq;
        e.next_order = s.next_order;
        e.next_offer = s.next_offer;
        e.next_slot = s.next_slot;
        e.counts = s.counts;
        e.live = s.live;
        e.rng = s.rng;
        e.agents = s.agents;
        e.agent_ids = e
            .agents
            .iter()
            .enumerate()
            .map(|(k, a)| (a.id.clone(), k as AKey))
            .collect();
        e.queues = s
            .queues
            .into_iter()
            .map(|qs| {
                let mut rt = QueueRt::new(qs.cfg);
                rt.retired = qs.retired;
                rt.rr_last = qs.rr_last.and_then(|id| e.agent_ids.get(&id).copied());
                rt
            })
            .collect();
        e.queue_ids = Map::default();
        for (q, rt) in e.queues.iter().enumerate() {
            if !rt.retired {
                e.queue_ids.insert(rt.name.clone(), q as QKey);
            }
        }
        e.interactions = s.interactions;
        e.interaction_ids.rebuild(&e.interactions);
        e.free_ikeys = s.free_ikeys;
        e.finished = s.finished;
        e.skills = SkillTable::restore(
            s.skill_names,
            s.skill_sets,
            e.agents.iter().map(|a| a.skills.as_slice()),
            e.interactions.iter().flatten().map(|i| i.skills),
        );

        if from_v2 {
            // Freshly read, so every record is unshared and `make_mut` copies nothing.
            for i in e.interactions.iter_mut().flatten() {
                let queue = i.queue.and_then(|q| e.queues.get(q as usize));
                let closed_target = queue.and_then(|q| q.cfg().closed_target.as_deref());
                repair_v2_history(&mut Arc::make_mut(i).history, closed_target);
            }
        }

        // Snapshots written before interactions kept `answered_by`: their history, as far as it
        // was kept, says who last accepted each one.
        for i in e.interactions.iter_mut().flatten() {
            if i.answered_by.is_some() {
                continue;
            }
            let answered = i.history.iter().rev().find_map(|t| match &t.why {
                Why::Accepted { agent } => e.agent_ids.get(agent).copied(),
                _ => None,
            });
            if answered.is_some() {
                Arc::make_mut(i).answered_by = answered;
            }
        }

        // Timers come back under their original keys, so firing order is unchanged.
        let mut timers = Timers::default();
        for (k, i) in e.interactions.iter().enumerate() {
            let Some(i) = i else { continue };
            if let Some(key) = i.step_timer {
                timers.restore(key, Timer::Step(k as IKey));
            }
            if let Some(key) = i.wait_timer {
                timers.restore(key, Timer::MaxWait(k as IKey));
            }
        }
        for (ak, a) in e.agents.iter().enumerate() {
            if let Some(key) = a.backoff_timer {
                timers.restore(key, Timer::Backoff(ak as AKey));
            }
            for slot in &a.slots {
                let Some(key) = slot.timer else { continue };
                let timer = match (slot.phase, slot.interaction) {
                    (SlotPhase::Offered, Some(ik)) => Timer::OfferExpiry(ik),
                    (SlotPhase::WrapUp, _) => Timer::WrapUp(ak as AKey, slot.id),
                    _ => {
                        return Err(SnapshotError::Inconsistent(format!(
                            "agent {} has a timer on a {:?} slot",
                            a.id, slot.phase
                        )))
                    }
                };
                timers.restore(key, timer);
            }
        }
        timers.set_next_id(s.next_timer);
        e.timers = timers;

        e.rebuild_agent_indexes();
        // The restored order and index hold exactly what was saved: room for the rest now.
        e.reserve_retained();
        // Re-index what waits and list what rings, from the interactions' states.
        use crate::engine::view::InteractionState::{Offered, Waiting};
        let live: Vec<(IKey, bool)> = e
            .interactions
            .iter()
            .enumerate()
            .filter_map(|(k, i)| match i.as_ref()?.state {
                Waiting => Some((k as IKey, true)),
                Offered => Some((k as IKey, false)),
                _ => None,
            })
            .collect();
        for (ik, waiting) in live {
            if waiting {
                e.index_waiting(ik);
            } else {
                e.ring(ik);
            }
        }
        if cfg!(debug_assertions) {
            e.check_consistency().map_err(SnapshotError::Inconsistent)?;
        }
        Ok(e)
    }
}

/// Version 2 wrote an overflow to a PBX target as if it had gone to a queue of the target's
/// name: an overflow that finished the interaction (to `overflowed`) always went to a target,
/// so it is put back. A closed-hours rejection did not record its target: it gets the queue's
/// `closed_target` as configured now, which is what version 2 answered with. Returns whether
/// it changed anything (a repaired history has nothing left to repair).
fn repair_v2_history(history: &mut [Transition], closed_target: Option<&str>) -> bool {
    let mut changed = false;
    for t in history {
        match (&t.to, &mut t.why) {
            (InteractionState::Overflowed, Why::Overflow { queue, target }) if target.is_none() => {
                *target = queue.take();
                changed = true;
            }
            (
                InteractionState::Rejected,
                Why::Rejected {
                    reason: RejectReason::Closed,
                    target,
                },
            ) if target.is_none() && closed_target.is_some() => {
                *target = closed_target.map(Arc::from);
                changed = true;
            }
            _ => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{AgentConfig, QueueConfig};
    use crate::engine::Event;

    #[test]
    fn a_snapshot_from_before_answered_by_gets_it_from_the_history() {
        let mut config = RoutingConfig::empty();
        config.queues.push(QueueConfig::with_defaults("support"));
        config.agents.push(AgentConfig {
            id: "a1".into(),
            address: "sip:a1@pbx".into(),
            tiers: [("support".to_string(), 1)].into(),
            skills: vec![],
            capacity: BTreeMap::new(),
        });
        let mut e = Engine::new(config, 0);
        let events = [
            Event::AgentLogin {
                agent: "a1".into(),
                address: None,
                tiers: None,
                skills: None,
                capacity: None,
            },
            Event::voice_call("c1", "support"),
            Event::OfferAccepted {
                interaction: "c1".into(),
                agent: "a1".into(),
                offer: None,
            },
        ];
        for (t, event) in events.iter().enumerate() {
            e.handle(t as Millis, event).unwrap();
        }
        let ik = e.interaction_ids.get(&e.interactions, "c1").unwrap();
        assert_eq!(e.ix(ik).answered_by, Some(0));
        // As an older build wrote it: no `answered_by`.
        e.ix_mut(ik).answered_by = None;
        let mut bytes = Vec::new();
        e.write_snapshot(&mut bytes).unwrap();
        let restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            restored
                .ix(restored
                    .interaction_ids
                    .get(&restored.interactions, "c1")
                    .unwrap())
                .answered_by,
            Some(0)
        );
    }

    #[test]
    fn a_snapshot_of_another_format_version_is_refused_naming_both_versions() {
        // A later build's snapshot: version 4, and a layout this build cannot decode (here a
        // string where the clock is). The version is what the error must name.
        let later = rmp_serde::to_vec(&(4u32, "a field this build does not know", 7u64)).unwrap();
        let err = Engine::read_snapshot(&mut later.as_slice()).err().unwrap();
        assert!(
            matches!(err, SnapshotError::Version { found: 4 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "snapshot format version 4, this build reads version 3"
        );
        for (bytes, says) in [
            (
                rmp_serde::to_vec(&"text").unwrap(),
                "does not start with an array",
            ),
            (
                rmp_serde::to_vec(&Vec::<u32>::new()).unwrap(),
                "empty array",
            ),
            (rmp_serde::to_vec(&("3", 1u8)).unwrap(), "no format version"),
            (Vec::new(), "does not start with an array"),
        ] {
            let err = Engine::read_snapshot(&mut bytes.as_slice()).err().unwrap();
            assert!(matches!(err, SnapshotError::NoVersion(_)), "{err:?}");
            assert!(err.to_string().contains(says), "{err}");
        }
        // The version is read, then the whole snapshot from its first byte.
        let mut bytes = Vec::new();
        Engine::new(RoutingConfig::empty(), 5)
            .write_snapshot(&mut bytes)
            .unwrap();
        let restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
        assert_eq!(restored.now, 5);
    }

    #[test]
    fn a_version_2_overflow_to_a_target_reads_back_as_that_target() {
        // What version 2 wrote for `Overflow { queue: None, target: Some(t) }`: the `queue`
        // field left out, so the array holds the tag and the target only.
        let v2 = rmp_serde::to_vec(&("overflow", "sip:vm@pbx")).unwrap();
        let mut read = vec![Transition {
            at: 0,
            from: Some(InteractionState::Waiting),
            to: InteractionState::Overflowed,
            why: rmp_serde::from_slice(&v2).unwrap(),
        }];
        assert_eq!(
            read[0].why,
            Why::Overflow {
                queue: Some("sip:vm@pbx".into()),
                target: None
            },
            "the ambiguity the repair is for"
        );
        let rejected = Transition {
            at: 0,
            from: None,
            to: InteractionState::Rejected,
            why: Why::Rejected {
                reason: RejectReason::Closed,
                target: None,
            },
        };
        // An overflow into a queue (the interaction waits on) is left as it is.
        let moved = Transition {
            at: 0,
            from: Some(InteractionState::Waiting),
            to: InteractionState::Waiting,
            why: Why::Overflow {
                queue: Some("other".into()),
                target: None,
            },
        };
        read.push(rejected);
        read.push(moved.clone());
        assert!(repair_v2_history(&mut read, Some("sip:closed@pbx")));
        assert_eq!(
            read[0].why,
            Why::Overflow {
                queue: None,
                target: Some("sip:vm@pbx".into())
            }
        );
        assert_eq!(
            read[1].why,
            Why::Rejected {
                reason: RejectReason::Closed,
                target: Some("sip:closed@pbx".into())
            }
        );
        assert_eq!(read[2], moved);
        assert!(!repair_v2_history(&mut read, Some("sip:closed@pbx")));
    }
}
