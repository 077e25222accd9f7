//! What a routing config change would do if it were applied now: worked out on a copy of the
//! engine (`POST /v1/config/preview`), so an admin can see it before a `PUT` does it.
//!
//! The engine task only takes the copy (`Engine::capture`, a pointer per record, as a snapshot
//! does) after checking the change against the live state; the copy is rebuilt
//! (`Engine::from_capture`: its records shared with the live engine, each copied on the copy's
//! first write to it), changed and compared on a blocking thread, never on the engine task. The
//! live engine is not touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Millis, RoutingConfig, Tier};
use crate::engine::{Decision, Engine, EngineCapture, InteractionState, Owner};

/// What the change would do, applied at `at` (the engine time of the copy).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewReport {
    #[serde(with = "crate::engine::decision::rfc3339_ms")]
    pub at: Millis,
    /// The `ETag` of the config in force the preview was worked out against: a `PUT` with
    /// `If-Match` set to it applies only if no other change came in between.
    pub config_etag: String,
    pub queues_added: Vec<String>,
    pub queues_removed: Vec<String>,
    /// Queues in both configs whose settings differ.
    pub queues_changed: Vec<String>,
    /// The decisions the change would make at once, numbered as a `PUT` at that moment would
    /// number them (offers to newly eligible agents, revoked offers, overflows, escalations).
    pub decisions: Vec<Decision>,
    /// Live interactions the change would move: another queue, another ladder step (forward
    /// or back), another priority, state or owner.
    pub interactions: Vec<InteractionChange>,
    /// Agents whose tiers the change alters, and agents the new roster leaves out (they keep
    /// their state and tiers: see `in_roster`).
    pub agents: Vec<AgentChange>,
    /// What the change does that moves nothing now but refuses what comes next: a queue whose
    /// new `max_waiting` is at or below what waits in it (arrivals refused `queue_full`), a
    /// queue the new schedule has closed now (arrivals refused `closed`). One sentence each.
    pub effects: Vec<String>,
}

/// Where a live interaction stands, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub state: InteractionState,
    pub owner: Owner,
    pub queue: Option<Arc<str>>,
    pub step: Option<usize>,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionChange {
    pub interaction: Arc<str>,
    pub before: Place,
    /// `None`: the change would end it (e.g. an overflow to an external target).
    pub after: Option<Place>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentChange {
    pub agent: Arc<str>,
    pub tiers_before: BTreeMap<Arc<str>, Tier>,
    pub tiers_after: BTreeMap<Arc<str>, Tier>,
    /// Whether the new roster has the agent. An agent the old roster had and the new one
    /// leaves out is not removed: it keeps its status and tiers (and gets calls) until it
    /// logs out or a restart; `false` here says so before it surprises anyone.
    pub in_roster: bool,
}

/// Why a preview could not be worked out (never the change's own problems: those are found
/// on the engine task first).
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("cannot copy the engine for the preview: {0}")]
    Copy(String),
    #[error("the copy of the engine refused the change: {0}")]
    Refused(String),
}

/// Rebuild the engine from `captured`, apply `routing` to it and report the difference.
/// `roster`: the ids of the roster in force (the engine keeps none).
pub fn preview(
    captured: EngineCapture,
    roster: &[String],
    routing: RoutingConfig,
    now: Millis,
) -> Result<PreviewReport, PreviewError> {
    // Records stay shared with the live engine; the copy copies each one it changes.
    let mut copy = Engine::from_capture(captured).map_err(|e| PreviewError::Copy(e.to_string()))?;
    // A `PUT` now applies at the clock's time: the engine first fires the timers due by then
    // (their decisions are not the change's), then applies the change. So does the copy, and
    // "before" is the state after those timers, so what they do is not put on the change.
    let at = now.max(copy.now());
    let _ = copy.advance(at);
    let old = copy.config().clone();
    let places_before = places(&copy);
    let tiers_before = tiers(&copy);
    let decisions = copy
        .reconfigure(at, routing.clone())
        .map_err(|e| PreviewError::Refused(e.to_string()))?;
    let places_after = places(&copy);
    let tiers_after = tiers(&copy);
    let effects = effects(&old, &routing, &copy, at);

    let old_queues: BTreeMap<&str, _> = old.queues.iter().map(|q| (q.id.as_str(), q)).collect();
    let new_queues: BTreeMap<&str, _> = routing.queues.iter().map(|q| (q.id.as_str(), q)).collect();
    let queues_added = new_queues
        .keys()
        .filter(|id| !old_queues.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    let queues_removed = old_queues
        .keys()
        .filter(|id| !new_queues.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    let queues_changed = old_queues
        .iter()
        .filter(|(id, q)| new_queues.get(*id).is_some_and(|n| n != *q))
        .map(|(id, _)| id.to_string())
        .collect();

    let interactions = places_before
        .into_iter()
        .filter_map(|(id, before)| {
            let after = places_after.get(&id).cloned();
            (after.as_ref() != Some(&before)).then_some(InteractionChange {
                interaction: id,
                before,
                after,
            })
        })
        .collect();

    let old_roster: BTreeSet<&str> = roster.iter().map(String::as_str).collect();
    let new_roster: BTreeSet<&str> = routing.agents.iter().map(|a| a.id.as_str()).collect();
    let agents = tiers_after
        .into_iter()
        .filter_map(|(agent, after)| {
            let before = tiers_before.get(&agent).cloned().unwrap_or_default();
            let in_roster = new_roster.contains(&*agent);
            let left_out = old_roster.contains(&*agent) && !in_roster;
            (before != after || left_out).then_some(AgentChange {
                agent,
                tiers_before: before,
                tiers_after: after,
                in_roster,
            })
        })
        .collect();

    Ok(PreviewReport {
        at,
        config_etag: String::new(),
        queues_added,
        queues_removed,
        queues_changed,
        decisions,
        interactions,
        agents,
        effects,
    })
}

/// `PreviewReport::effects`: each queue of `new` that the change leaves refusing arrivals
/// while it did not before (`old`), judged on `after` (the copy, changed) at `at`.
fn effects(old: &RoutingConfig, new: &RoutingConfig, after: &Engine, at: Millis) -> Vec<String> {
    let mut effects = Vec::new();
    for q in &new.queues {
        let before = old.queue(&q.id);
        let Some(view) = after.queue(&q.id) else {
            continue;
        };
        if let Some(max) = q.max_waiting {
            let was = before.and_then(|b| b.max_waiting);
            if view.waiting >= max && was != Some(max) {
                effects.push(format!(
                    "queue `{}`: {} waiting, at or over its new max_waiting {max}: an arrival \
                     no agent can take at once is refused `queue_full` until fewer than {max} \
                     wait (those waiting stay)",
                    q.id, view.waiting
                ));
            }
        }
        // Closed now by its new schedule, and open before (or new).
        let open =
            |c: &crate::config::QueueConfig| c.schedule.as_ref().is_none_or(|s| s.is_open(at));
        if !open(q) && before.is_none_or(open) {
            let added = if before.is_none() { " (new)" } else { "" };
            effects.push(format!(
                "queue `{}`{added}: its schedule has it closed now: arrivals are refused `closed` \
                 until it opens (those waiting stay)",
                q.id
            ));
        }
    }
    effects
}

/// Every live interaction (waiting in a queue, or on an agent's slot) and where it stands.
fn places(engine: &Engine) -> BTreeMap<Arc<str>, Place> {
    let mut ids: BTreeSet<Arc<str>> = BTreeSet::new();
    for q in engine.queues() {
        ids.extend(engine.waiting_in(&q.id));
    }
    for a in engine.agents() {
        ids.extend(a.slots.into_iter().filter_map(|s| s.interaction));
    }
    ids.into_iter()
        .filter_map(|id| {
            let v = engine.interaction(&id)?;
            (!v.state.is_final()).then_some((
                id,
                Place {
                    state: v.state,
                    owner: v.owner,
                    queue: v.queue,
                    step: v.step,
                    priority: v.priority,
                },
            ))
        })
        .collect()
}

fn tiers(engine: &Engine) -> BTreeMap<Arc<str>, BTreeMap<Arc<str>, Tier>> {
    engine
        .agents()
        .into_iter()
        .map(|a| (a.id, a.tiers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overflow, QueueConfig};
    use crate::engine::{DecisionKind, Event};

    const T0: Millis = 1_800_000_000_000;

    fn desk(max_wait_s: u64) -> RoutingConfig {
        let mut routing = RoutingConfig::empty();
        let mut q = QueueConfig::with_defaults("support");
        q.max_wait_ms = Some(max_wait_s * 1000);
        q.overflow = Some(Overflow::Target("sip:vm@pbx".into()));
        routing.queues.push(q);
        routing
    }

    fn parsed(extra: &str) -> RoutingConfig {
        let text = format!("[[queue]]\nid = \"support\"\nchannels = [\"voice\"]\n{extra}\n");
        crate::config::parse(&text, "t.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .routing
    }

    /// A change that moves nothing now but refuses what comes next says so: `max_waiting`
    /// lowered to what waits, a schedule that closes the queue now. Before, the preview of
    /// either was empty, and the next arrival was refused.
    #[test]
    fn a_preview_says_when_the_change_refuses_the_next_arrivals() {
        // 2026-11-23 (a Monday) 12:00 UTC.
        let monday_noon: Millis = 1_795_435_200_000;
        let mut engine = Engine::new(parsed(""), monday_noon);
        for c in ["c1", "c2", "c3"] {
            engine
                .handle(monday_noon, &Event::voice_call(c, "support"))
                .unwrap();
        }
        let full = preview(
            engine.capture(),
            &[],
            parsed("max_waiting = 2"),
            monday_noon,
        )
        .unwrap();
        assert!(full.decisions.is_empty() && full.interactions.is_empty());
        let [effect] = full.effects.as_slice() else {
            panic!("{:?}", full.effects);
        };
        assert!(
            effect.starts_with("queue `support`: 3 waiting, at or over its new max_waiting 2")
                && effect.contains("`queue_full`"),
            "{effect}"
        );
        let roomy = preview(
            engine.capture(),
            &[],
            parsed("max_waiting = 4"),
            monday_noon,
        )
        .unwrap();
        assert!(roomy.effects.is_empty(), "{:?}", roomy.effects);

        let sundays = parsed(r#"schedule = { tz = "UTC", sun = ["09:00-17:00"] }"#);
        let closed = preview(engine.capture(), &[], sundays.clone(), monday_noon).unwrap();
        let [effect] = closed.effects.as_slice() else {
            panic!("{:?}", closed.effects);
        };
        assert!(
            effect.starts_with("queue `support`: its schedule has it closed now")
                && effect.contains("`closed`"),
            "{effect}"
        );
        // Already closed before the change: not the change's doing.
        let mut closed_already = Engine::new(sundays.clone(), monday_noon);
        closed_already
            .handle(monday_noon, &Event::voice_call("c9", "support"))
            .ok();
        let again = preview(closed_already.capture(), &[], sundays, monday_noon).unwrap();
        assert!(again.effects.is_empty(), "{:?}", again.effects);
    }

    /// The preview applies the change at the clock's time, as a `PUT` then would, not at the
    /// engine's last event: a call that has waited 300 s overflows under a `max_wait_s` cut to
    /// 120 s although the engine last moved when it arrived.
    #[test]
    fn a_preview_applies_the_change_at_the_time_it_is_asked_not_at_the_last_event() {
        let mut engine = Engine::new(desk(600), T0);
        let arrived = Event::voice_call("c1", "support");
        engine.handle(T0, &arrived).unwrap();
        let later = T0 + 300_000;
        let report = preview(engine.capture(), &[], desk(120), later).unwrap();
        assert_eq!(report.at, later);
        assert!(
            report.decisions.iter().any(|d| matches!(
                &d.kind,
                DecisionKind::Overflow { interaction, .. } if &**interaction == "c1"
            )),
            "{:?}",
            report.decisions
        );
        let [moved] = report.interactions.as_slice() else {
            panic!("{:?}", report.interactions);
        };
        assert_eq!((&*moved.interaction, &moved.after), ("c1", &None));
        // The copy shared the live engine's records and changed c1 (it overflowed there): the
        // live engine's c1 is as it was.
        let live = engine.interaction("c1").unwrap();
        assert_eq!(live.state, InteractionState::Waiting);
        assert_eq!(live.history.len(), 1, "{:?}", live.history);
        engine.check_consistency().unwrap();
        // The same change asked for at the arrival moves nothing.
        let mut engine = Engine::new(desk(600), T0);
        engine.handle(T0, &arrived).unwrap();
        let report = preview(engine.capture(), &[], desk(120), T0).unwrap();
        assert!(report.interactions.is_empty(), "{:?}", report.interactions);
    }
}
